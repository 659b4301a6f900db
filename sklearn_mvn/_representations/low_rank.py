"""The factor model ``S = W W^T + diag(psi)`` by Woodbury and the determinant lemma.

A covariance that is low rank plus diagonal, with ``W`` of shape ``(d, k)``
(``k << d``) and a positive noise variance ``psi`` of shape ``(d,)``, is never
formed, inverted or factorised as a ``d x d`` matrix here. With the scaled
loadings ``V = diag(psi)^{-1/2} W`` and the ``k x k`` matrix ``M = I + V^T V``,

    S^{-1}   = diag(psi)^{-1/2} (I - V M^{-1} V^T) diag(psi)^{-1/2}   (Woodbury)
    log|S|   = log|M| + sum_j log psi_j                   (determinant lemma)
    S^{-1} W = diag(psi)^{-1} W M^{-1}.

For a residual ``r = x - mu`` with ``r~ = r / sqrt(psi)``, ``z = V^T r~`` and
``q = M^{-1} z``, the squared Mahalanobis distance is ``|r~|^2 - z.q``, the
whitened solve ``S^{-1} r = (r~ - V q) / sqrt(psi)`` and ``W^T S^{-1} r = q``:
O(d k) per row once ``M`` is factorised (O(d k^2)). A subset ``o`` of features
has the marginal covariance ``W_o W_o^T + diag(psi_o)``, the same structure,
with ``M_o = I + V_o^T V_o`` (O(d_o k^2)), and the conditional mean of the
others is ``mu_m + W_m M_o^{-1} V_o^T r~_o``.

The module holds the representation's algebra (:class:`LowRankPlusDiagonal`:
log-densities, distances, marginals and conditional means in row chunks),
:class:`FactorCovariance` (the representation the estimators use), the
canonical rotation of ``W``, Heywood features and the free-parameter count.
The likelihood of the factor model on its three data forms is in
:mod:`._likelihoods.normal_factor`; its fit in
:mod:`._solve.factor`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._linalg import LOG_2PI

# Bytes of one float64 row chunk: wide data get fewer rows, so the extra
# memory of a pass is a few such chunks whatever ``d``.
_CHUNK_BYTES = 2**23
_MIN_CHUNK_ROWS = 16
# The fit's passes over X use larger chunks: a chunk is a view of X (no copy
# unless a mean is large), and fewer, larger products keep two BLAS threads
# busy between synchronisations (on a loaded machine, 8 MiB chunks made
# two-thread passes several times slower).
_PASS_CHUNK_BYTES = 2**25
# Default lower bound of the noise variance, relative to the feature's
# variance (the data are standardised before fitting).
MIN_NOISE = 1e-6


def _chunk_rows(n_features, chunk_bytes=_CHUNK_BYTES):
    return max(_MIN_CHUNK_ROWS, int(chunk_bytes // (8 * max(n_features, 1))))


def _chol_inverse(matrix):
    """Inverse and log-determinant of a small SPD matrix (or a stack of them)."""
    chol = np.linalg.cholesky(matrix)
    logdet = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    eye = np.broadcast_to(np.eye(matrix.shape[-1]), matrix.shape)
    inv_chol = np.linalg.solve(chol, eye)
    inverse = np.swapaxes(inv_chol, -1, -2) @ inv_chol
    return 0.5 * (inverse + np.swapaxes(inverse, -1, -2)), logdet


def _distance(r, q, V, observed=None):
    """Squared Mahalanobis distances ``r~^T (I + V V^T)^{-1} r~`` of whitened
    residuals ``r`` (rows; 0 at missing entries) from ``q = M^{-1} V^T r~``.

    With ``e = r~ - V q = (I + V V^T)^{-1} r~`` (Woodbury) the distance is
    ``r~^T e = |e|^2 + |V^T e|^2 = |e|^2 + |q|^2`` (``V^T e = z - (M - I) q =
    q``): a sum of squares, so no digits are lost to the cancellation of
    ``|r~|^2 - z.q`` when some noise variances are small relative to the
    loadings, and far rows give ``inf`` rather than ``inf - inf``. With
    ``observed``, ``e`` is taken on the observed entries only (the marginal
    of the observed block has the same structure).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        e = r - q @ V.T
        if observed is not None:
            e = np.where(observed, e, 0.0)
        return np.einsum("ij,ij->i", e, e) + np.einsum("ij,ij->i", q, q)


def n_free_parameters(n_features, n_factors):
    """Free parameters of ``W W^T + diag(psi)``: ``d k + d - k (k - 1) / 2``.

    ``W`` is determined up to a ``k x k`` rotation, which removes
    ``k (k - 1) / 2`` of its ``d k`` entries. The mean adds ``d`` more.
    """
    d, k = int(n_features), int(n_factors)
    return d * k + d - k * (k - 1) // 2


# ---------------------------------------------------------------------------
# The covariance
# ---------------------------------------------------------------------------


class LowRankPlusDiagonal:
    """The covariance ``S = W W^T + diag(psi)``, used through Woodbury.

    Parameters
    ----------
    components : ndarray of shape (n_features, n_factors)
        Loadings ``W``.
    noise_variance : ndarray of shape (n_features,)
        Positive noise variances ``psi``.
    """

    def __init__(self, components, noise_variance):
        W = np.asarray(components, dtype=np.float64)
        psi = np.asarray(noise_variance, dtype=np.float64)
        if W.ndim != 2 or psi.shape != (W.shape[0],):
            raise ValueError(
                "components must have shape (n_features, n_factors) and "
                f"noise_variance shape (n_features,); got {W.shape} and {psi.shape}."
            )
        if not np.all(psi > 0.0) or not np.all(np.isfinite(psi)):
            raise ValueError("noise_variance must be positive and finite.")
        self.components = W
        self.noise_variance = psi
        self._root = np.sqrt(psi)
        self._scaled = W / self._root[:, np.newaxis]  # V
        k = W.shape[1]
        core = np.eye(k) + self._scaled.T @ self._scaled  # M
        self._core_inv, logdet_core = _chol_inverse(core)
        self.logdet = float(logdet_core + np.sum(np.log(psi)))

    @property
    def n_features(self):
        return self.components.shape[0]

    @property
    def n_factors(self):
        return self.components.shape[1]

    # -- dense forms (for attributes computed on access and for tests) --------

    def covariance(self):
        """The ``d x d`` matrix ``W W^T + diag(psi)``."""
        cov = self.components @ self.components.T
        cov[np.diag_indices_from(cov)] += self.noise_variance
        return cov

    def precision(self):
        """The ``d x d`` inverse, by Woodbury (no ``d x d`` factorisation)."""
        half = self._scaled @ self._core_inv
        prec = -(half @ self._scaled.T)
        prec[np.diag_indices_from(prec)] += 1.0
        prec /= self._root[:, np.newaxis]
        prec /= self._root[np.newaxis, :]
        return 0.5 * (prec + prec.T)

    # -- solves ---------------------------------------------------------------

    def solve(self, rhs):
        """``S^{-1} rhs`` for a vector or a ``(d, m)`` matrix: O(d k m)."""
        rhs = np.asarray(rhs, dtype=np.float64)
        matrix = rhs[:, np.newaxis] if rhs.ndim == 1 else rhs
        scaled = matrix / self._root[:, np.newaxis]
        out = scaled - self._scaled @ (self._core_inv @ (self._scaled.T @ scaled))
        out /= self._root[:, np.newaxis]
        return out[:, 0] if rhs.ndim == 1 else out

    def _whiten_chunk(self, block, mean, out):
        """``r~ = (x - mean) / sqrt(psi)`` written into ``out``."""
        np.subtract(block, mean, out=out)
        out /= self._root
        return out

    def squared_mahalanobis(self, X, mean, chunk_size=None):
        """``(x - mean)^T S^{-1} (x - mean)`` of each (complete) row, in chunks.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        mean : ndarray of shape (n_features,)
        chunk_size : int, default=None
            Rows per chunk (about 8 MiB of float64 by default).

        Returns
        -------
        dist : ndarray of shape (n_samples,)
        """
        n, d = X.shape
        out = np.empty(n)
        step = chunk_size or _chunk_rows(d)
        buffer = np.empty((min(step, n), d))
        mean = np.asarray(mean, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            for start in range(0, n, step):
                stop = min(start + step, n)
                r = self._whiten_chunk(X[start:stop], mean, buffer[: stop - start])
                q = (r @ self._scaled) @ self._core_inv
                out[start:stop] = _distance(r, q, self._scaled)
        return out

    def log_density(self, X, mean, chunk_size=None):
        """Log-density of each complete row under ``N(mean, S)``."""
        out = self.squared_mahalanobis(X, mean, chunk_size)
        out += self.n_features * LOG_2PI + self.logdet
        out *= -0.5
        return out

    def sample(self, n_samples, mean, random_state):
        """Draw ``mean + W z + sqrt(psi) e`` with standard normal ``z``, ``e``."""
        rng = (
            np.random.default_rng(random_state)
            if not hasattr(random_state, "standard_normal")
            else random_state
        )
        d, k = self.components.shape
        out = rng.standard_normal((n_samples, d))
        out *= self._root
        out += rng.standard_normal((n_samples, k)) @ self.components.T
        out += mean
        return out

    # -- subsets of features --------------------------------------------------

    def marginal(self, observed):
        """The marginal covariance of a subset of features (same structure).

        Parameters
        ----------
        observed : array-like of int or bool
            Features kept.

        Returns
        -------
        marginal : LowRankPlusDiagonal
        """
        return LowRankPlusDiagonal(
            self.components[observed], self.noise_variance[observed]
        )

    def _masked_cores(self, mask):
        """``M_o^{-1}`` and ``log|M_o|`` of each row of a boolean mask.

        ``M_o = I + sum_{j in o} v_j v_j^T``: one product of the mask with the
        per-feature outer products, O(d k^2) per row.
        """
        k = self.n_factors
        V = self._scaled
        outer = (V[:, :, np.newaxis] * V[:, np.newaxis, :]).reshape(-1, k * k)
        cores = (mask.astype(np.float64) @ outer).reshape(-1, k, k)
        cores += np.eye(k)
        return _chol_inverse(cores)

    def _observed_terms(self, X, mean):
        """Per-row quantities of the observed entries of a chunk with NaN.

        Returns ``observed`` (mask), ``q = M_o^{-1} V_o^T r~_o``, the squared
        Mahalanobis distance and ``log|S_oo|`` of each row.
        """
        observed = ~np.isnan(X)
        r = np.where(observed, X - mean, 0.0) / self._root
        z = r @ self._scaled
        core_inv, logdet_core = self._masked_cores(observed)
        q = np.einsum("ikl,il->ik", core_inv, z)
        maha = _distance(r, q, self._scaled, observed)
        logdet = logdet_core + observed.astype(np.float64) @ np.log(self.noise_variance)
        return observed, q, maha, logdet

    def conditional_mean(self, X, mean, chunk_size=None):
        """``X`` with each NaN replaced by its conditional expectation.

        ``x_m = mu_m + S_mo S_oo^{-1} (x_o - mu_o) = mu_m + W_m q`` with
        ``q = M_o^{-1} V_o^T r~_o``: O(d_o k^2) per row, in chunks.
        """
        X = np.array(X, dtype=np.float64)
        step = chunk_size or _chunk_rows(X.shape[1] * max(self.n_factors, 1))
        for start in range(0, X.shape[0], step):
            block = X[start : start + step]
            rows = np.flatnonzero(np.isnan(block).any(axis=1))
            if rows.size == 0:
                continue
            observed, q, _, _ = self._observed_terms(block[rows], mean)
            fill = mean + q @ self.components.T
            sub = block[rows]
            sub[~observed] = fill[~observed]
            block[rows] = sub
        return X

    def marginal_log_density(self, X, mean, chunk_size=None):
        """Log-density of each row's observed entries (NaN = missing)."""
        n, d = X.shape
        out = np.empty(n)
        step = chunk_size or _chunk_rows(d * max(self.n_factors, 1))
        for start in range(0, n, step):
            block = X[start : start + step]
            observed, _, maha, logdet = self._observed_terms(block, mean)
            out[start : start + step] = -0.5 * (
                observed.sum(axis=1) * LOG_2PI + logdet + maha
            )
        return out

    def marginal_squared_mahalanobis(self, X, mean, chunk_size=None):
        """Squared Mahalanobis distance of each row's observed entries."""
        n, d = X.shape
        out = np.empty(n)
        step = chunk_size or _chunk_rows(d * max(self.n_factors, 1))
        for start in range(0, n, step):
            out[start : start + step] = self._observed_terms(
                X[start : start + step], mean
            )[2]
        return out

    # -- canonical form -------------------------------------------------------

    def canonical(self):
        """The same covariance with ``W`` in canonical rotation.

        See :func:`canonical_rotation`.
        """
        return LowRankPlusDiagonal(
            canonical_rotation(self.components, self.noise_variance),
            self.noise_variance,
        )


def canonical_basis(components, noise_variance):
    """The orthogonal ``k x k`` rotation ``R`` that makes
    ``diag(psi)^{-1/2} W R`` have orthogonal columns (decreasing norms)."""
    root = np.sqrt(np.asarray(noise_variance, dtype=np.float64))
    _, _, vt = np.linalg.svd(components / root[:, np.newaxis], full_matrices=False)
    return vt.T


def canonical_rotation(components, noise_variance):
    """``W R`` for the rotation ``R`` that makes ``W`` canonical.

    The columns of ``diag(psi)^{-1/2} W R`` are orthogonal and ordered by
    decreasing norm (the right singular vectors of ``V = diag(psi)^{-1/2} W``),
    and each column's entry of largest magnitude is positive. ``W R (W R)^T =
    W W^T``. This is the form :class:`~sklearn.decomposition.FactorAnalysis`
    reports (its ``components_`` is the transpose, up to signs).

    Parameters
    ----------
    components : ndarray of shape (n_features, n_factors)
    noise_variance : ndarray of shape (n_features,)

    Returns
    -------
    components : ndarray of shape (n_features, n_factors)
    """
    W = np.asarray(components, dtype=np.float64)
    root = np.sqrt(np.asarray(noise_variance, dtype=np.float64))
    _, _, vt = np.linalg.svd(W / root[:, np.newaxis], full_matrices=False)
    rotated = W @ vt.T
    # Sign convention on the whitened columns (what the rotation orders).
    scaled = rotated / root[:, np.newaxis]
    pick = np.argmax(np.abs(scaled), axis=0)
    signs = np.sign(scaled[pick, np.arange(scaled.shape[1])])
    signs[signs == 0] = 1.0
    return rotated * signs


def heywood_features(noise_variance, lower, rtol=1e-3):
    """Indices of the features whose noise variance sits at its lower bound."""
    psi = np.asarray(noise_variance, dtype=np.float64)
    lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), psi.shape)
    return np.flatnonzero(psi <= lower * (1.0 + rtol))


# ---------------------------------------------------------------------------
# Low rank plus diagonal: a rectangular Lambda = [W | diag(sqrt(psi))]
# ---------------------------------------------------------------------------


class FactorCovariance:
    """``S = W W^T + diag(psi)`` (``'factor'``), used through Woodbury.

    The parameters of a fitted covariance are the pair ``(W, psi)`` with ``W`` of shape
    ``(n_features, n_factors)``. Its algebra is
    :class:`~._representations.low_rank.LowRankPlusDiagonal`: O(d k) per row,
    no ``d x d`` array. The optimisation is
    :func:`~._solve.factor.solve_factor` (preconditioned by diagonal scalings
    and ``k x k`` algebra, never by a ``d x d`` Cholesky factor).

    Parameters
    ----------
    n_features : int
    n_factors : int
    """

    covariance_type = "factor"

    def __init__(self, n_features, n_factors):
        self.n_features = n_features
        self.n_factors = n_factors
        # Standard normal draws per sample: the noise and the factors.
        self.n_draws = n_features + n_factors

    def n_parameters(self):
        """Free parameters: the mean and ``d k + d - k (k - 1) / 2``."""
        return self.n_features + n_free_parameters(self.n_features, self.n_factors)

    def fitted_attributes(self, params):
        """``components_`` (k, d) and ``noise_variance_`` (d,), as
        :class:`~sklearn.decomposition.FactorAnalysis` names them."""
        W, psi = params
        return {"components_": np.array(W.T), "noise_variance_": np.array(psi)}

    @staticmethod
    def _cov(params):
        return LowRankPlusDiagonal(*params)

    def covariance(self, params):
        """The dense covariance (computed on access only)."""
        return self._cov(params).covariance()

    def precision(self, params):
        """The dense precision, by Woodbury (computed on access only)."""
        return self._cov(params).precision()

    def log_density(self, X, mean, params):
        """Log-density of complete rows (NaN rows give NaN)."""
        return self._cov(params).log_density(X, mean)

    def mahalanobis(self, X, mean, params):
        """Squared Mahalanobis distances of complete rows."""
        return self._cov(params).squared_mahalanobis(X, mean)

    def marginal_log_density(self, X, mean, params):
        """Log-density of each row's observed entries (NaN = missing)."""
        return self._cov(params).marginal_log_density(X, mean)

    def marginal_mahalanobis(self, X, mean, params):
        """Squared distance of each row's observed entries."""
        return self._cov(params).marginal_squared_mahalanobis(X, mean)

    def conditional_mean(self, X, mean, params):
        """``X`` with each NaN replaced by its conditional expectation."""
        return self._cov(params).conditional_mean(X, mean)

    def sample(self, mean, params, draws):
        """``mean + sqrt(psi) e + W z`` from draws ``[e | z]`` of ``d + k`` normals."""
        W, psi = params
        d = self.n_features
        out = draws[:, :d] * np.sqrt(psi)
        out += draws[:, d:] @ W.T
        out += mean
        return out
