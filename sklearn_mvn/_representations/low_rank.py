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

The negative log-likelihood ``J`` and its gradients are those of the seed
(J. Rennie, 2006) with the rectangular factor ``Lambda = [W | diag(sqrt psi)]``,
``S = Lambda Lambda^T``: with ``B = sum_a w_a (x_a - mu)(x_a - mu)^T``,
``n = sum_a w_a`` and ``G = (n S^{-1} - S^{-1} B S^{-1}) / 2 = dJ/dS``,

    dJ/dmu     = -S^{-1} sum_a w_a (x_a - mu)                       (9)
    dJ/dLambda = 2 G Lambda                                   (7) + (14)

so that ``dJ/dW = 2 G W`` (the first ``k`` columns) and ``dJ/dpsi = diag(G)``
(the chain rule through ``Lambda_jj = sqrt(psi_j)``). Three data forms share
these formulas:

- complete-data statistics (weight, mean, ``d x d`` scatter): O(d^2 k) per
  evaluation, through one product of the scatter with a ``d x k`` matrix;
- a chunked pass over ``X`` with row weights: O(n d k) per evaluation, no
  ``d x d`` array and no ``n x d`` temporary (``(S^{-1} B S^{-1}) W`` needs only
  ``sum_a w_a r~_a q_a^T`` and ``sum_a w_a q_a q_a^T``, since ``W^T S^{-1} r_a =
  q_a``);
- per-pattern missing-data statistics (:class:`~sklearn_mvn._missing.PatternStats`):
  the exact observed-data likelihood, each pattern's ``M_o`` from one product
  of the pattern mask with the per-feature outer products ``v_j v_j^T``.

The module also holds the canonical rotation of ``W``, the free-parameter
count, a start (probabilistic PCA on the standardised data, from a randomised
subspace iteration), and :func:`fit_factor_model`, an L-BFGS-B fit in
standardised coordinates.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from ._lbfgs import lbfgsb
from ._linalg import LOG_2PI

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
                z = r @ self._scaled
                q = z @ self._core_inv
                out[start:stop] = np.einsum("ij,ij->i", r, r) - np.einsum(
                    "ij,ij->i", z, q
                )
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
        maha = np.einsum("ij,ij->i", r, r) - np.einsum("ij,ij->i", z, q)
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
# Objective and gradients: three data forms
# ---------------------------------------------------------------------------


def _gradients_from_moments(cov, weight, mean_sum, cross, qq, sq_sum, residual_sum):
    """Assemble the gradients from the weighted moments of a data pass.

    With ``r~_a = (x_a - mu) / sqrt(psi)``, ``q_a = M^{-1} V^T r~_a``:
    ``cross = sum w r~ q^T`` (d, k), ``qq = sum w q q^T`` (k, k),
    ``sq_sum = sum w r~^2`` (d,), ``residual_sum = sum w r~`` (d,) and
    ``mean_sum = sum w q`` (k,).

    ``S^{-1} B S^{-1} W = sum w y q^T`` with ``y = S^{-1} r = (r~ - V q) /
    sqrt(psi)``, and its diagonal ``sum w y^2`` expands in the same moments.
    """
    V, root, core_inv = cov._scaled, cov._root, cov._core_inv
    # sum w y q^T = (cross - V qq) / sqrt(psi)
    sbs_w = (cross - V @ qq) / root[:, np.newaxis]
    # diag(S^{-1} B S^{-1}) = (sq - 2 rowsum(cross o V) + rowsum((V qq) o V)) / psi
    sbs_diag = (
        sq_sum
        - 2.0 * np.einsum("jk,jk->j", cross, V)
        + np.einsum("jk,jk->j", V @ qq, V)
    ) / cov.noise_variance
    half = V @ core_inv  # V M^{-1}
    # n S^{-1} W = n V M^{-1} / sqrt(psi);
    # n diag(S^{-1}) = n (1 - rowsum(V M^{-1} o V)) / psi
    s_w = weight * half / root[:, np.newaxis]
    s_diag = weight * (1.0 - np.einsum("jk,jk->j", half, V)) / cov.noise_variance
    grad_W = s_w - sbs_w
    grad_psi = 0.5 * (s_diag - sbs_diag)
    # -S^{-1} sum w r = -(sum w r~ - V sum w q) / sqrt(psi)
    grad_mean = -(residual_sum - V @ mean_sum) / root
    return grad_mean, grad_W, grad_psi


def nll_grad_stats(stats, mean, components, noise_variance):
    """Negative log-likelihood and gradients from complete-data statistics.

    ``B = C + n (m - mu)(m - mu)^T`` is never formed: the scatter ``C``
    enters only through ``C diag(psi)^{-1/2} V`` (one ``d x d`` by ``d x k``
    product, O(d^2 k)) and its diagonal.

    Parameters
    ----------
    stats : SufficientStats
        Weight sum ``n``, weighted mean ``m``, centred scatter ``C``.
    mean : ndarray of shape (n_features,)
    components : ndarray of shape (n_features, n_factors)
    noise_variance : ndarray of shape (n_features,)

    Returns
    -------
    J : float
        Negative log-likelihood, constant included.
    grad_mean : ndarray of shape (n_features,)
    grad_components : ndarray of shape (n_features, n_factors)
    grad_noise_variance : ndarray of shape (n_features,)
    """
    return _nll_grad_moments(
        stats.weight_sum,
        stats.mean,
        lambda Q: stats.scatter @ Q,
        np.diag(stats.scatter),
        mean,
        components,
        noise_variance,
    )


def nll_grad_diagonal(
    weight, data_mean, scatter_diag, mean, components, noise_variance
):
    """:func:`nll_grad_stats` for statistics with a diagonal scatter (O(d k^2)).

    The penalty terms (shrinkage prior, ``reg_covar``) are such statistics.
    """
    scatter_diag = np.asarray(scatter_diag, dtype=np.float64)
    return _nll_grad_moments(
        float(weight),
        np.asarray(data_mean, dtype=np.float64),
        lambda Q: scatter_diag[:, np.newaxis] * Q,
        scatter_diag,
        mean,
        components,
        noise_variance,
    )


def _nll_grad_moments(
    n, data_mean, scatter_dot, scatter_diag, mean, components, noise_variance
):
    """NLL and gradients from weight, mean and the scatter's action."""
    cov = LowRankPlusDiagonal(components, noise_variance)
    d = cov.n_features
    V, root = cov._scaled, cov._root
    delta = (data_mean - np.asarray(mean, dtype=np.float64)) / root  # r~ of m
    # The moments of the data pass, from the statistics:
    # sum w r~ r~^T = C~ + n delta delta^T with C~ = C / (root root^T).
    cv = scatter_dot(V / root[:, np.newaxis]) / root[:, np.newaxis]  # C~ V
    dv = delta @ V
    z_sum_outer = cv + n * np.outer(delta, dv)  # sum w r~ z^T  (d, k)
    cross = z_sum_outer @ cov._core_inv  # sum w r~ q^T
    zz = V.T @ cv + n * np.outer(dv, dv)  # sum w z z^T
    qq = cov._core_inv @ zz @ cov._core_inv
    sq_sum = scatter_diag / cov.noise_variance + n * delta**2
    residual_sum = n * delta
    mean_sum = n * (cov._core_inv @ dv)
    trace = float(np.sum(sq_sum) - np.sum(cov._core_inv * zz))
    value = 0.5 * (n * (d * LOG_2PI + cov.logdet) + trace)
    grads = _gradients_from_moments(
        cov, n, mean_sum, cross, 0.5 * (qq + qq.T), sq_sum, residual_sum
    )
    return (value, *grads)


# Largest ``mean^2 / variance`` of a feature for which the chunked pass
# multiplies ``X`` in place (no copy); beyond it each chunk is first centred
# into a buffer (the products would otherwise lose digits to cancellation).
_MAX_KAPPA_DIRECT = 15.0


# A preliminary pass accumulates sums around the first row ``s`` and centres
# them afterwards; if a feature's mean is farther than this many standard
# deviations from ``s`` (the centred second moment would lose digits), a
# second, centred pass recomputes them.
_MAX_SHIFT_SDS = 10.0


class DataPass:
    """Negative log-likelihood and gradients by chunked passes over ``X``.

    One preliminary pass computes the weight, the weighted mean ``c`` and
    ``sum w (x - c)``, ``sum w (x - c)^2`` per feature (they do not depend on
    the parameters), from sums around the first row (a second pass only if a
    mean lies more than 10 standard deviations from it); with ``probe`` it
    also computes ``C probe`` for the weighted covariance ``C`` (the first
    product of the start's subspace iteration, at no extra pass). Each
    evaluation then reads ``X`` once, chunk by chunk,
    with two products: ``P = (X_c - s) U`` with ``U = diag(psi)^{-1} W`` (so
    ``z = P - (mu - s) U`` and ``q = z M^{-1}``) and ``(X_c - s)^T (w q)``, from
    which ``sum w r~ q^T`` follows. The shift ``s`` is 0 (``X`` is multiplied
    in place, without a copy) when every feature has ``mean^2 <= 15
    variance``, and ``c`` otherwise (each chunk is centred into one reused
    buffer). O(n d k) per evaluation; no ``d x d`` array, no ``n x d``
    temporary.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Complete data.
    sample_weight : ndarray of shape (n_samples,), default=None
    chunk_size : int, default=None
    probe : ndarray of shape (n_features, m), default=None
        A matrix whose product with the covariance is wanted (``probe_product``).
    """

    def __init__(self, X, sample_weight=None, chunk_size=None, probe=None):
        self.X = X
        n, d = X.shape
        self.sample_weight = (
            None
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        self.chunk = chunk_size or _chunk_rows(d, _PASS_CHUNK_BYTES)
        w = self.sample_weight
        self.weight = float(n if w is None else w.sum())
        origin = np.array(X[0], dtype=np.float64)
        first, second, product = self._moments(origin, probe)
        offset = first / self.weight  # c - s
        self.center = origin + offset
        second -= first * offset
        if np.any(offset**2 > _MAX_SHIFT_SDS**2 * second / self.weight):
            first, second, _ = self._moments(self.center, None)
        else:
            first = first - self.weight * offset  # sum w (x - c), ~0
        self.first, self.second = first, np.maximum(second, 0.0)
        self.variance = self.second / self.weight
        # sum w (x - c)(x - c)^T G = sum w (x - s)(x - s)^T G - n (c - s)(c - s)^T G
        self.probe_product = (
            None
            if probe is None
            else product / self.weight - np.outer(offset, offset @ probe)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.where(self.center == 0.0, 0.0, self.center**2 / self.variance)
        self.shift = None if np.all(kappa <= _MAX_KAPPA_DIRECT) else self.center

    def _moments(self, origin, probe):
        """``sum w r``, ``sum w r^2``, ``sum w r r^T probe`` for ``r = x - origin``."""
        d = self.X.shape[1]
        first, second = np.zeros(d), np.zeros(d)
        if probe is not None:
            probe_t = np.ascontiguousarray(probe.T)
            product = np.zeros(probe_t.shape)
        buffer = np.empty((min(self.chunk, self.X.shape[0]), d))
        for block, wb in self._chunks():
            rows = block.shape[0]
            r = np.subtract(block, origin, out=buffer[:rows])
            if probe is not None:
                part = probe_t @ r.T
                if wb is not None:
                    part *= wb
                product += part @ r
            if wb is None:
                first += r.sum(axis=0)
                second += np.einsum("ij,ij->j", r, r)
            else:
                first += wb @ r
                second += np.einsum("i,ij,ij->j", wb, r, r)
        return first, second, (None if probe is None else product.T)

    def _chunks(self):
        n = self.X.shape[0]
        w = self.sample_weight
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            yield self.X[start:stop], (None if w is None else w[start:stop])

    def covariance_products(self, Q):
        """``C Q`` for the weighted covariance ``C`` (one pass).

        Like an evaluation, ``X`` is multiplied in place (``C Q = X^T W X Q /
        n - c c^T Q``) unless a feature's mean is large against its standard
        deviation, when each chunk is first centred into a buffer.
        """
        shift = np.zeros(self.X.shape[1]) if self.shift is None else self.shift
        buffer = (
            None
            if self.shift is None
            else np.empty((min(self.chunk, self.X.shape[0]), self.X.shape[1]))
        )
        Q_t = np.ascontiguousarray(Q.T)
        out_t = np.zeros(Q_t.shape)
        for block, wb in self._chunks():
            if buffer is not None:
                block = np.subtract(block, shift, out=buffer[: block.shape[0]])
            part = Q_t @ block.T
            if wb is not None:
                part *= wb
            out_t += part @ block
        out = out_t.T / self.weight
        offset = self.center - shift
        out -= np.outer(offset, offset @ Q)
        return out

    def __call__(self, mean, components, noise_variance):
        cov = LowRankPlusDiagonal(components, noise_variance)
        d, k = cov.n_features, cov.n_factors
        mean = np.asarray(mean, dtype=np.float64)
        root = cov._root
        U = cov._scaled / root[:, np.newaxis]
        shift = np.zeros(d) if self.shift is None else self.shift
        offset = (mean - shift) @ U
        buffer = (
            None
            if self.shift is None
            else np.empty((min(self.chunk, self.X.shape[0]), d))
        )
        # Factor-major products ((k x d)(d x c) and (k x c)(c x d)): faster
        # than their transposes for thin U (one BLAS thread, d = 10,000).
        U_t = np.ascontiguousarray(U.T)
        product = np.zeros((k, d))
        qq = np.zeros((k, k))
        q_sum = np.zeros(k)
        zq = 0.0
        for block, wb in self._chunks():
            if buffer is not None:
                block = np.subtract(block, shift, out=buffer[: block.shape[0]])
            z = U_t @ block.T
            z -= offset[:, np.newaxis]
            q = cov._core_inv @ z
            zq_rows = np.einsum("ki,ki->i", z, q)
            if wb is None:
                wq = q
                zq += float(zq_rows.sum())
            else:
                wq = q * wb
                zq += float(wb @ zq_rows)
            product += wq @ block
            qq += wq @ q.T
            q_sum += wq.sum(axis=1)
        product = product.T
        n = self.weight
        # sum w r~ q^T = ((X - s)^T w q - (mu - s) sum w q^T) / sqrt(psi)
        cross = (product - np.outer(mean - shift, q_sum)) / root[:, np.newaxis]
        delta = mean - self.center
        sq_sum = (self.second - 2.0 * delta * self.first + n * delta**2) / (
            cov.noise_variance
        )
        residual_sum = (self.first - n * delta) / root
        value = 0.5 * (n * (d * LOG_2PI + cov.logdet) + float(np.sum(sq_sum)) - zq)
        grads = _gradients_from_moments(
            cov, n, q_sum, cross, 0.5 * (qq + qq.T), sq_sum, residual_sum
        )
        return (value, *grads)


def nll_grad_data(
    X, mean, components, noise_variance, sample_weight=None, chunk_size=None
):
    """Negative log-likelihood and gradients by chunked passes over ``X``.

    See :class:`DataPass` (which keeps the parameter-free moments between
    evaluations).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Complete data.
    mean : ndarray of shape (n_features,)
    components : ndarray of shape (n_features, n_factors)
    noise_variance : ndarray of shape (n_features,)
    sample_weight : ndarray of shape (n_samples,), default=None
    chunk_size : int, default=None

    Returns
    -------
    J, grad_mean, grad_components, grad_noise_variance
        As :func:`nll_grad_stats`.
    """
    return DataPass(X, sample_weight, chunk_size)(mean, components, noise_variance)


# Largest number of factors whose per-row k x k systems are inverted by the
# vectorised sweep (k array operations over all rows) rather than LAPACK.
_SWEEP_MAX = 8


def _spd_inverse_stack(cores):
    """Inverses and log-determinants of a stack of SPD ``k x k`` matrices.

    For small ``k`` the sweep operator on every pivot, vectorised over the
    stack: ``k`` steps of O(n k^2) array operations instead of one LAPACK
    call per matrix. The matrices here are ``I + V_o^T V_o``, whose pivots
    (Schur complements) are all at least 1, so the sweep is stable.
    """
    k = cores.shape[-1]
    if k > _SWEEP_MAX:
        return _chol_inverse(cores)
    a = np.array(cores, dtype=np.float64)
    logdet = np.zeros(a.shape[0])
    for j in range(k):
        piv = a[:, j, j].copy()
        logdet += np.log(piv)
        col = a[:, :, j] / piv[:, np.newaxis]
        row = a[:, j, :].copy()
        a -= col[:, :, np.newaxis] * row[:, np.newaxis, :]
        a[:, :, j] = col
        a[:, j, :] = row / piv[:, np.newaxis]
        a[:, j, j] = -1.0 / piv
    a *= -1.0
    return 0.5 * (a + np.swapaxes(a, 1, 2)), logdet


class PatternObjective:
    """Observed-data negative log-likelihood of per-pattern statistics.

    For a pattern with observed features ``o``, weight ``n_p``, mean ``m_p``
    and scatter ``C_p = R_p^T R_p`` (root rows), the term is the NLL of
    ``N(mu_o, W_o W_o^T + diag(psi_o))``: the seed's formulas on ``S_oo``,
    with ``B_p = C_p + n_p (m_p - mu_o)(m_p - mu_o)^T`` entering through its
    rows (the root rows with weight 1 and the mean row with weight ``n_p``).

    Each pattern's ``M_o = I + V_o^T V_o`` comes from one product of the
    pattern masks with the per-feature outer products ``v_j v_j^T`` (O(d_o
    k^2) per pattern) and is inverted by a vectorised sweep. Every sum over
    rows the gradient needs is a product of the (parameter-free) row or mask
    matrices with a thin matrix: with ``U = diag(psi)^{-1} W``,

    - ``z = R U - mask (mu o U)`` and ``q = M_o^{-1} z`` per row;
    - ``sum w r q^T = R^T (w q) - mu o mask^T (w q)``;
    - ``sum_p w_p [j in o_p] q_p q_p^T = mask^T (w q (x) q)``, the
      ``(V q) o mask`` part of ``y = S_oo^{-1} r``;
    - ``sum w r_j^2`` from column sums of ``R^2`` computed once;

    so no elementwise pass over the ``n_rows x d`` data is made per evaluation.

    Parameters
    ----------
    stats : PatternStats
    """

    def __init__(self, stats, chunk_size=None):
        self.stats = stats
        mask = stats.observed.astype(np.float64)
        self._mask = mask
        wp = np.asarray(stats.pattern_weight, dtype=np.float64)
        self._pattern_weight = wp
        # sum_p n_p [j in o_p]: the weight that sees feature j.
        self._feature_weight = wp @ mask
        self._n_observed = mask.sum(axis=1)
        # The pattern means are kept about the available-case mean ``c`` (so
        # that the sums below do not cancel for data far from the origin);
        # residuals are then ``(m_p - c) - (mu - c)``.
        means = np.asarray(stats.means, dtype=np.float64) * mask
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = np.where(
                self._feature_weight > 0, (wp @ means) / self._feature_weight, 0.0
            )
        self._shift = shift
        means = (means - shift) * mask
        self._means = means
        self._mean_first = wp @ means
        self._mean_second = wp @ (means * means)
        roots = np.asarray(stats.roots, dtype=np.float64)
        self._roots = roots
        self._root_owner = np.asarray(stats.root_pattern, dtype=np.intp)
        self._root_mask = mask[self._root_owner]
        self._root_second = np.einsum("ij,ij->j", roots, roots)

    def __call__(self, mean, components, noise_variance):
        cov = LowRankPlusDiagonal(components, noise_variance)
        d, k = cov.n_features, cov.n_factors
        V, root, psi = cov._scaled, cov._root, cov.noise_variance
        U = V / root[:, np.newaxis]
        mean = np.asarray(mean, dtype=np.float64) - self._shift
        mask, wp, fw = self._mask, self._pattern_weight, self._feature_weight
        outer = (V[:, :, np.newaxis] * V[:, np.newaxis, :]).reshape(d, k * k)
        cores = (mask @ outer).reshape(-1, k, k)
        cores += np.eye(k)
        core_inv, logdet_core = _spd_inverse_stack(cores)
        value = 0.5 * float(
            wp @ (self._n_observed * LOG_2PI + logdet_core) + fw @ np.log(psi)
        )

        # Pattern means: rows (m_p - mu) o mask with weight n_p.
        z = self._means @ U - mask @ (mean[:, np.newaxis] * U)
        q = np.einsum("pkl,pl->pk", core_inv, z)
        wq = q * wp[:, np.newaxis]
        mask_wq = mask.T @ wq
        cross = self._means.T @ wq - mean[:, np.newaxis] * mask_wq  # sum w r q^T
        qq = mask.T @ (wq[:, :, np.newaxis] * q[:, np.newaxis, :]).reshape(-1, k * k)
        second = (
            self._mean_second - 2.0 * mean * self._mean_first + mean**2 * fw
        )  # sum w r_j^2
        zq = float(np.einsum("pk,pk->", wq, z))
        # Scatter roots: rows R with weight 1, already centred.
        if self._roots.shape[0]:
            zr = self._roots @ U
            qr = np.einsum("pkl,pl->pk", core_inv[self._root_owner], zr)
            cross += self._roots.T @ qr
            qq += self._root_mask.T @ (
                qr[:, :, np.newaxis] * qr[:, np.newaxis, :]
            ).reshape(-1, k * k)
            second = second + self._root_second
            zq += float(np.einsum("pk,pk->", qr, zr))
        qq = qq.reshape(d, k, k)
        value += 0.5 * (float(np.sum(second / psi)) - zq)

        # sum_p n_p S_oo^{-1} W_o (rows of o): w_j^T N_j / psi_j with
        # N_j = sum_p n_p M_p^{-1}.
        weighted = (core_inv * wp[:, np.newaxis, np.newaxis]).reshape(-1, k * k)
        N = (mask.T @ weighted).reshape(d, k, k)
        NV = np.einsum("jkl,jl->jk", N, V)
        qqV = np.einsum("jkl,jl->jk", qq, V)
        # sum w y q^T with y = (r~ - (V q) o mask) / sqrt(psi)
        ywq = (cross / root[:, np.newaxis] - qqV) / root[:, np.newaxis]
        # sum w y_j^2
        yy = (
            second / psi
            - 2.0 * np.einsum("jk,jk->j", V, cross) / root
            + np.einsum("jk,jk->j", qqV, V)
        ) / psi
        grad_W = NV / root[:, np.newaxis] - ywq
        grad_psi = 0.5 * ((fw - np.einsum("jk,jk->j", NV, V)) / psi - yy)
        # -sum_p n_p S_oo^{-1} (m_p - mu)_o
        grad_mean = (
            -((self._mean_first - mean * fw) / root - np.einsum("jk,jk->j", V, mask_wq))
            / root
        )
        return value, grad_mean, grad_W, grad_psi


def nll_grad_patterns(stats, mean, components, noise_variance):
    """Observed-data negative log-likelihood and gradients (see
    :class:`PatternObjective`)."""
    return PatternObjective(stats)(mean, components, noise_variance)


# ---------------------------------------------------------------------------
# Standalone fit (L-BFGS-B in standardised coordinates)
# ---------------------------------------------------------------------------


class FactorFit:
    """Result of :func:`fit_factor_model` (original units, canonical ``W``)."""

    def __init__(
        self,
        mean,
        components,
        noise_variance,
        objective,
        n_iter,
        converged,
        heywood,
        grad_norm,
        message,
    ):
        self.mean = mean
        self.components = components
        self.noise_variance = noise_variance
        self.objective = objective
        self.n_iter = n_iter
        self.converged = converged
        self.heywood = heywood
        self.grad_norm = grad_norm
        self.message = message

    @property
    def covariance(self):
        return LowRankPlusDiagonal(self.components, self.noise_variance)


# Columns of the start's subspace iteration beyond the factors, its largest
# number of products after the first and the relative change of the top
# Ritz values at which it stops.
_OVERSAMPLE = 10
_SUBSPACE_ITER = 4
_RITZ_RTOL = 1e-2


def start_probe(n_features, n_factors, random_state=0):
    """The Gaussian matrix ``G`` whose product ``C G`` starts the subspace iteration."""
    rng = np.random.default_rng(random_state)
    width = min(n_features, n_factors + _OVERSAMPLE)
    return rng.standard_normal((n_features, width))


def _top_subspace(matvec, d, k, random_state, first=None):
    """Top-``k`` eigenpairs of a PSD operator by randomised subspace iteration.

    From ``Y = C G`` for ``G =`` :func:`start_probe` (``first``, computed
    here unless given with the right shape), each step orthonormalises
    ``Q = orth(Y)`` and computes ``Y = C Q``; the Rayleigh-Ritz values of
    ``Q^T Y`` come with it, and the iteration stops once the top ``k`` change by at most
    ``_RITZ_RTOL`` (relative) between steps, after ``_SUBSPACE_ITER`` steps at
    most. A clear gap between the factors' eigenvalues and the rest (the case
    the factor model is for) takes two steps.
    """
    if first is None or first.shape != (d, min(d, k + _OVERSAMPLE)):
        first = matvec(start_probe(d, k, random_state))
    Y = first
    previous = None
    for _ in range(_SUBSPACE_ITER):
        basis, _ = np.linalg.qr(Y)
        Y = matvec(basis)
        small = basis.T @ Y
        eigval, eigvec = np.linalg.eigh(0.5 * (small + small.T))
        order = np.argsort(eigval)[::-1][:k]
        top = eigval[order]
        if previous is not None and np.all(
            np.abs(top - previous) <= _RITZ_RTOL * np.abs(top)
        ):
            break
        previous = top
    return top, basis @ eigvec[:, order]


def ppca_start(matvec, diag, n_factors, random_state=0, floor=MIN_NOISE, first=None):
    """Probabilistic-PCA start on a covariance given by products.

    ``matvec(Q)`` returns ``C Q`` for the (standardised) covariance ``C`` whose
    diagonal is ``diag``; ``first`` is optionally ``C G`` for ``G =``
    :func:`start_probe` (computed with other quantities in one pass). The top
    eigenpairs ``(l_i, u_i)`` come from a randomised subspace iteration (no
    ``d x d`` factorisation); ``W = U (L - s^2)^{1/2}`` with ``s^2`` the mean of
    the other eigenvalues, ``psi = diag - rowsum(W^2)`` floored.
    """
    d = diag.shape[0]
    k = n_factors
    eigval, eigvec = _top_subspace(matvec, d, k, random_state, first)
    rest = max(float(np.sum(diag) - np.sum(eigval)), 0.0) / max(d - k, 1)
    rest = max(rest, 1e-3 * float(np.mean(diag)))
    W = eigvec * np.sqrt(np.clip(eigval - rest, 1e-3 * rest, None))
    psi = np.maximum(diag - np.sum(W**2, axis=1), np.maximum(floor, 0.1 * rest))
    return W, psi


# Closed-form profile steps of a restart (see :func:`profile_start`): they
# stop once no noise variance moves by more than _PROFILE_RTOL of its
# feature's variance in a step, after _PROFILE_STEPS steps at most. The steps
# are EM steps, slow along weak factors: a fixed count of 100 left some
# restarts in the basin of a Heywood point below the maximum the steps lead to
# (k = 5 on rank-2 data, tests/test_factor.py).
_PROFILE_STEPS = 1000
_PROFILE_RTOL = 1e-4


def profile_start(
    matvec,
    diag,
    noise_variance,
    n_factors,
    lower,
    n_steps=_PROFILE_STEPS,
    rtol=_PROFILE_RTOL,
):
    """Profile-likelihood (closed-form) iterations of the factor model.

    For fixed noise variances ``psi`` the loadings maximising the likelihood
    of a covariance ``C`` come from the top eigenpairs ``(l_i, u_i)`` of
    ``Psi^{-1/2} C Psi^{-1/2}``: ``W = Psi^{1/2} U (L - 1)_+^{1/2}``; then
    ``psi = diag(C) - rowsum(W^2)``, bounded below by ``lower``. Each step
    takes one subspace-iteration step (products ``matvec(Q) = C Q``, no
    ``d x d`` factorisation) warm-started at the previous subspace, so a step
    costs two products with ``C``. These iterations follow the profile
    likelihood, which from a start with large noise variances tends to stay
    off Heywood boundaries where the gradient fit may end. They stop once no
    ``psi_j`` moves by more than ``rtol diag_j`` in a step, after ``n_steps``
    steps at most.

    Returns
    -------
    W : ndarray of shape (n_features, n_factors)
    psi : ndarray of shape (n_features,)
    """
    d = diag.shape[0]
    k = n_factors
    psi = np.maximum(noise_variance, lower)
    basis = None
    for _ in range(n_steps):
        root = np.sqrt(psi)
        if basis is None:
            Y = matvec(start_probe(d, k) / root[:, np.newaxis]) / root[:, np.newaxis]
        else:
            Y = matvec(basis / root[:, np.newaxis]) / root[:, np.newaxis]
        basis, _ = np.linalg.qr(Y)
        Y = matvec(basis / root[:, np.newaxis]) / root[:, np.newaxis]
        small = basis.T @ Y
        eigval, eigvec = np.linalg.eigh(0.5 * (small + small.T))
        order = np.argsort(eigval)[::-1]
        basis = basis @ eigvec[:, order]
        top, U = eigval[order][:k], basis[:, :k]
        W = root[:, np.newaxis] * U * np.sqrt(np.maximum(top - 1.0, 0.0))
        new_psi = np.maximum(diag - np.sum(W**2, axis=1), lower)
        change = np.max(np.abs(new_psi - psi) / diag)
        psi = new_psi
        if change <= rtol:
            break
    return W, psi


def _problem(X, stats, sample_weight, path, max_stats_features):
    """The data form, its centre and scales, and covariance products."""
    from ._missing import PatternStats, compute_stats

    if stats is None:
        X = np.asarray(X)
        use_stats = path == "stats" or (
            path == "auto" and X.shape[1] <= max_stats_features
        )
        if use_stats:
            stats = compute_stats(X, sample_weight)
        elif np.isnan(X).any():
            stats = PatternStats.from_array(X, sample_weight)
    if isinstance(stats, PatternStats):
        center, cov_avail, _ = stats.available_case()
        var = np.diag(cov_avail).copy()
        scaled = cov_avail / np.sqrt(np.outer(var, var))
        return (
            "patterns",
            PatternObjective(stats),
            center,
            var,
            stats.weight_sum,
            lambda Q: scaled @ Q,
        )
    if stats is not None:
        weight = stats.weight_sum
        var = np.diag(stats.scatter) / weight
        scale = np.sqrt(var)

        def products(Q):
            return (stats.scatter @ (Q / scale[:, np.newaxis])) / (
                weight * scale[:, np.newaxis]
            )

        def evaluate(mu, W, psi):
            return nll_grad_stats(stats, mu, W, psi)

        return "stats", evaluate, stats.mean, var, weight, products
    data = DataPass(X, sample_weight)
    scale = np.sqrt(data.variance)

    def products(Q):
        return data.covariance_products(Q / scale[:, np.newaxis]) / scale[:, np.newaxis]

    return "data", data, data.center, data.variance, data.weight, products


class _RootFactor:
    """A square factor ``T`` of ``W W^T + diag(psi)`` applied in O(d k).

    ``T = D^{1/2} (I + Q (G - I) Q^T)`` with ``D = diag(psi)``, ``V = D^{-1/2}
    W = Q Sigma R^T`` (thin SVD) and ``G = (I + Sigma^2)^{1/2}``, so that
    ``T T^T = D^{1/2} (I + V V^T) D^{1/2}``.
    """

    def __init__(self, components, noise_variance):
        self.root = np.sqrt(noise_variance)
        basis, sigma, _ = np.linalg.svd(
            components / self.root[:, np.newaxis], full_matrices=False
        )
        self.basis = basis
        self.gain = np.sqrt(1.0 + sigma**2)

    def _inner(self, vector, gain):
        coef = (gain - 1.0).reshape((-1,) + (1,) * (vector.ndim - 1))
        return vector + self.basis @ (coef * (self.basis.T @ vector))

    def _root(self, vector):
        return self.root if vector.ndim == 1 else self.root[:, np.newaxis]

    def apply(self, vector):
        """``T vector`` (a vector or the columns of a matrix)."""
        return self._root(vector) * self._inner(vector, self.gain)

    def apply_t(self, vector):
        """``T^T vector``."""
        return self._inner(self._root(vector) * vector, self.gain)

    def solve(self, vector):
        """``T^{-1} vector``."""
        return self._inner(vector / self._root(vector), 1.0 / self.gain)


def fit_factor_model(
    X=None,
    n_factors=1,
    *,
    stats=None,
    sample_weight=None,
    path="auto",
    tol=1e-8,
    max_iter=1000,
    min_noise=MIN_NOISE,
    random_state=0,
    init=None,
    max_stats_features=2048,
):
    """Maximum-likelihood factor model by L-BFGS-B (standalone).

    The start is probabilistic PCA on the data standardised by their mean
    ``c`` and standard deviations ``s`` (available-case ones with missing
    values); the optimiser works in coordinates in which the Fisher
    information is about the identity (see :func:`run_cycles`). The objective
    is the negative log-likelihood per unit
    weight. ``psi_j / s_j^2`` is bounded below by ``min_noise``: a feature
    reaching it is a Heywood case. With complete data the mean is the
    weighted mean (the optimum whatever the covariance) and is not optimised.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), default=None
        Data (NaN = missing, which uses per-pattern statistics).
    n_factors : int
    stats : SufficientStats or PatternStats, default=None
        Statistics instead of ``X``.
    sample_weight : ndarray of shape (n_samples,), default=None
    path : {'auto', 'stats', 'data'}
        Complete data: the ``d x d`` scatter ('stats') or chunked passes
        ('data'); 'auto' picks 'stats' for ``d <= max_stats_features``.
    tol : float
        Gradient tolerance (largest entry) in standardised coordinates.
    max_iter : int
    min_noise : float
        Lower bound of ``psi_j / s_j^2``.
    random_state : int
        Seed of the randomised start.
    init : tuple (mean, components, noise_variance), default=None
        Starting point in original units.
    max_stats_features : int
        See ``path``.

    Returns
    -------
    result : FactorFit
    """
    mode, evaluate, center, var, weight, products = _problem(
        X, stats, sample_weight, path, max_stats_features
    )
    scale = np.sqrt(var)
    d = center.shape[0]
    k = int(n_factors)
    if init is None:
        W0, psi0 = ppca_start(products, np.ones(d), k, random_state, min_noise)
        mu0 = np.zeros(d)
    else:
        mu0 = (np.asarray(init[0]) - center) / scale
        W0 = np.asarray(init[1]) / scale[:, np.newaxis]
        psi0 = np.maximum(np.asarray(init[2]) / var, min_noise)
    fit_mean = mode == "patterns"
    mu, W, psi = center + scale * mu0, scale[:, np.newaxis] * W0, var * psi0
    mu, W, psi, value, n_iter, grad_norm, message = run_cycles(
        evaluate,
        weight,
        center,
        var,
        mu,
        W,
        psi,
        fit_mean,
        max_iter,
        tol,
        min_noise * var,
    )
    res_message = f"{message} [{mode}]"
    W = canonical_rotation(W, psi)
    heywood = heywood_features(psi / var, min_noise)
    return FactorFit(
        np.array(mu, dtype=np.float64),
        W,
        psi,
        value,
        n_iter,
        bool(grad_norm <= 100 * tol),
        heywood,
        grad_norm,
        res_message,
    )


def run_cycles(
    evaluate,
    weight,
    center,
    var,
    mu,
    W,
    psi,
    fit_mean,
    max_iter,
    tol,
    psi_lower,
    history=None,
    tail=None,
):
    """Preconditioned L-BFGS-B cycles from ``(mu, W, psi)`` (original units).

    Each cycle is preconditioned at the point where the previous one stopped
    (see :func:`_lbfgs_cycle`) and runs at most ``_CYCLE_ITER`` iterations;
    cycling stops at ``tol`` (``100 tol`` after a cycle that stopped on its
    own), at ``max_iter`` iterations in all, when a
    cycle does not decrease the objective, or after ``_MAX_CYCLES`` cycles
    that stopped short of the tolerance on their own.

    ``tail`` (e.g. the t's degrees of freedom) is an optional block of further
    parameters: an object with a ``value`` (updated in place to the value at
    the end) and ``coordinates()`` returning, for coordinates centred at
    ``value``, ``(size, unpack, gradient, lower, upper)``: ``unpack(theta)``
    the parameter, ``gradient(g, value)`` the gradient in the coordinates and
    their bounds. With a tail, ``evaluate(mu, W, psi, value)`` returns the
    tail's gradient fifth.

    Returns
    -------
    mu, W, psi, value, n_iter, grad_norm, message
    """
    n_iter = 0
    n_fev = 0
    value = None
    stops = 0
    psi = np.maximum(psi, psi_lower)
    while True:
        budget = min(max_iter - n_iter, _CYCLE_ITER)
        fun, nit, nfev, cycle_message, mu, W, psi, grad_norm = _lbfgs_cycle(
            evaluate,
            weight,
            center,
            var,
            mu,
            W,
            psi,
            fit_mean,
            budget,
            tol,
            psi_lower,
            history,
            tail,
        )
        n_iter += nit
        n_fev += nfev
        improved = value is None or fun < value - 1e-15 * abs(value)
        value = fun
        # A cycle that stopped before its budget (not converged) counts; a
        # gradient within 100 tol is accepted from such a cycle only (the
        # line search stalled at the objective's rounding).
        stopped = nit < budget
        stops += stopped
        if (
            grad_norm <= tol
            or (stopped and grad_norm <= 100 * tol)
            or n_iter >= max_iter
            or not improved
            or stops >= _MAX_CYCLES
        ):
            break
    message = f"{cycle_message} ({n_fev} evaluations)"
    return mu, W, psi, value, n_iter, grad_norm, message


# L-BFGS-B runs are preconditioned at the point the previous one stopped (the
# scalings of a Heywood feature change by orders of magnitude as its noise
# variance reaches the bound, and from a poor start all of them change): a
# run stops after this many iterations, and cycling ends after this many runs
# that stopped on their own short of the tolerance.
_CYCLE_ITER = 25
_MAX_CYCLES = 5


# Near the optimum the objective's rounding (sums of large terms that cancel,
# worst at a Heywood case) exceeds the decrease a step can make, and a line
# search on computed values fails. So the value L-BFGS-B sees is the last
# accepted one plus the trapezoidal integral of the gradient along the step,
# ``(g_0 + g_1)^T p / 2`` (exact for a quadratic; the gradient has no such
# cancellation), as long as that agrees with the computed change to this
# relative accuracy; beyond it (a long step, where the quadratic model may be
# off) the computed change is used.
_MODEL_AGREEMENT = 1e-8


def _factor_scales(components, noise_variance):
    """Coordinates in which the Fisher information of ``(W, psi)`` is about one.

    Per sample, the Fisher information of ``W`` is ``tr(dW^T S^{-1} dW A)``
    plus a term of the same size, with ``A = W^T S^{-1} W = I - M^{-1}``; that
    of ``psi_j`` is ``p_j^2 / 2`` with ``p_j = (S^{-1})_jj`` (plus smaller
    couplings between features). So ``W = W_0 + T B A^{-1/2}``, with ``T`` a
    square factor of ``S_0`` (:class:`_RootFactor`, O(d k^2)), and ``psi_j =
    psi_0j + sqrt(2) / p_j tau_j`` have curvatures about one whatever the
    features' communalities and the factors' strengths; in particular the
    coherent stretches ``dW = W G`` of the loadings, which a row-wise scaling
    leaves ``sigma^2 h`` times too flat (``sigma^2`` a factor's whitened
    strength, ``h`` the features' uniqueness), are as curved as the rest.

    Returns
    -------
    root : _RootFactor
        ``T``.
    col_scale : ndarray of shape (n_factors, n_factors)
        ``A^{-1/2}``.
    psi_scale : ndarray of shape (n_features,)
        ``sqrt(2) / p``.
    """
    cov = LowRankPlusDiagonal(components, noise_variance)
    V, core_inv = cov._scaled, cov._core_inv
    uniq = 1.0 - np.einsum("jk,jk->j", V @ core_inv, V)
    prec_diag = np.clip(uniq, _MIN_UNIQUENESS, 1.0) / cov.noise_variance
    eigval, eigvec = np.linalg.eigh(np.eye(V.shape[1]) - core_inv)
    eigval = np.clip(eigval, _MIN_UNIQUENESS, None)
    col_scale = (eigvec / np.sqrt(eigval)) @ eigvec.T
    root = _RootFactor(components, noise_variance)
    # Far below its optimum a noise variance's curvature exceeds the Fisher
    # information by orders of magnitude (the residual variance over psi^3):
    # a step of at most _PSI_STEP psi_j keeps the line search in range.
    psi_scale = np.minimum(np.sqrt(2.0) / prec_diag, _PSI_STEP * cov.noise_variance)
    return root, col_scale, psi_scale


# Floor of the uniqueness h_j and of the eigenvalues of A in the scalings, and
# the largest unit of tau_j relative to psi_j.
_MIN_UNIQUENESS = 1e-12
_PSI_STEP = 100.0


def _lbfgs_cycle(
    evaluate,
    weight,
    center,
    var,
    mu,
    W,
    psi,
    fit_mean,
    max_iter,
    tol,
    psi_lower,
    history=None,
    tail=None,
):
    """One L-BFGS-B run preconditioned at ``(mu, W, psi)`` (original units).

    Coordinates (see :func:`_factor_scales`): ``mu = mu_0 + s T_0 u`` with
    ``T_0`` a square factor of the standardised ``S_0`` (the mean's curvature
    is ``S^{-1}``), ``W = W_0 + T B A^{-1/2}`` and ``psi = psi_0 + sqrt(2) /
    p tau``, in which the Fisher information is about the identity: L-BFGS-B
    takes unit steps from the first iterations on. ``psi`` enters linearly,
    so that at a Heywood case its gradient stays away from zero and the
    bound ``psi_j >= psi_lower_j`` becomes active (a log scale would make it
    vanish there).

    The values passed to L-BFGS-B follow the gradient where the computed
    ones cannot resolve a step (see ``_MODEL_AGREEMENT``), so that its line
    search keeps working below the objective's rounding: no evaluations are
    lost to a line search that cannot succeed. The value returned is the
    computed one. ``tail``: further parameters (see :func:`run_cycles`),
    their coordinates appended; ``tail.value`` is set to the final value.

    Returns
    -------
    value, n_iter, n_fev, message, mu, W, psi, grad_norm
    """
    d, k = W.shape
    scale = np.sqrt(var)
    root_mean = _RootFactor(W / scale[:, np.newaxis], psi / var)
    # A noise variance within rounding of its bound starts on it.
    psi = np.where(psi <= psi_lower * (1.0 + 1e-12), psi_lower, psi)
    mu_start, W_start, psi_start = mu, W, psi
    root_w, col_scale, psi_scale = _factor_scales(W, psi)
    tau_lower = (psi_lower - psi) / psi_scale
    n_mu = d if fit_mean else 0
    n_w = d * k
    n_psi = n_mu + n_w + d
    if tail is None:
        n_tail, tail_lower, tail_upper = 0, np.empty(0), np.empty(0)
    else:
        n_tail, tail_unpack, tail_grad, tail_lower, tail_upper = tail.coordinates()
    lower = np.concatenate([np.full(n_mu + n_w, -np.inf), tau_lower, tail_lower])
    upper = np.concatenate([np.full(n_psi, np.inf), tail_upper])

    def unpack(theta):
        mean = mu_start + scale * root_mean.apply(theta[:n_mu]) if fit_mean else mu
        B = theta[n_mu : n_mu + n_w].reshape(d, k)
        comp = W_start + root_w.apply(B @ col_scale)
        tau = theta[n_mu + n_w : n_psi]
        # On its bound (where L-BFGS-B puts it exactly) psi is the bound.
        noise = np.where(tau <= tau_lower, psi_lower, psi_start + psi_scale * tau)
        if tail is None:
            return mean, comp, noise
        return mean, comp, noise, tail_unpack(theta[n_psi:])

    # A noise variance within rounding of its bound counts as on it.
    near = np.concatenate(
        [np.zeros(n_mu + n_w), 1e-12 * psi_lower / psi_scale, np.zeros(n_tail)]
    )

    def projected_norm(theta, grad):
        proj = grad.copy()
        proj[(theta <= lower + near) & (grad > 0)] = 0.0
        proj[(theta >= upper) & (grad < 0)] = 0.0
        return float(np.max(np.abs(proj))) if proj.size else 0.0

    # The last evaluation and the last accepted iterate, as (theta, computed
    # value, grad, projected norm, value seen by L-BFGS-B): only these (a
    # record of every evaluation would grow with the run).
    state = {"last": None, "accepted": None, "n_fev": 0}

    def fun(theta):
        params = unpack(theta)
        # Evaluated in the canonical rotation (orthogonal columns of
        # diag(psi)^{-1/2} W, a diagonal core M): the value is invariant, but
        # at a Heywood case M's condition number is ~1 / min(psi / var) and
        # in another rotation its inverse's rounding costs the value digits.
        rotation = canonical_basis(params[1], params[2])
        value, g_mu, g_W, g_psi, *g_tail = evaluate(
            params[0], params[1] @ rotation, *params[2:]
        )
        g_W = g_W @ rotation.T
        parts = [
            (root_w.apply_t(g_W) @ col_scale).ravel(),
            g_psi * psi_scale,
        ]
        if fit_mean:
            parts.insert(0, root_mean.apply_t(g_mu * scale))
        if tail is not None:
            parts.append(tail_grad(g_tail[0], params[3]))
        grad = np.concatenate(parts) / weight
        value = value / weight
        state["n_fev"] += 1
        # Values relative to the start, so that small decreases are not lost
        # to the resolution of a large value.
        state.setdefault("origin", value)
        seen = value - state["origin"]
        accepted = state["accepted"]
        if accepted is not None:
            step = theta - accepted[0]
            model = 0.5 * float((accepted[2] + grad) @ step)
            computed = value - accepted[1]
            if abs(computed - model) <= _MODEL_AGREEMENT * max(abs(value), 1.0):
                seen = accepted[4] + model
            else:
                seen = accepted[4] + computed
        point = (theta.copy(), value, grad, projected_norm(theta, grad), seen)
        state["last"] = point
        if accepted is None:
            state["accepted"] = point  # the starting point
        return seen, grad

    def callback(theta):
        last = state["last"]
        if last is not None and np.array_equal(theta, last[0]):
            state["accepted"] = last
            if history is not None:
                history.append((last[1], float(np.max(np.abs(last[2])))))

    theta0 = np.zeros(n_psi + n_tail)
    bounds = [
        (None if np.isinf(lo) else lo, None if np.isinf(hi) else hi)
        for lo, hi in zip(lower, upper, strict=True)
    ]
    res = lbfgsb(fun, theta0, bounds, max_iter=max_iter, tol=tol, callback=callback)
    # The point returned and its gradient (after an abnormal line search
    # ``res.jac`` may belong to a rejected trial point); evaluated again only
    # if it is neither the last evaluation nor the last iterate.
    point = None
    for store in (state["last"], state["accepted"]):
        if store is not None and np.array_equal(res.x, store[0]):
            point = store
            break
    if point is None:
        fun(res.x)
        point = state["last"]
    theta, value, _, grad_norm, _ = point
    mean, comp, noise, *rest = unpack(theta)
    if tail is not None:
        tail.value = rest[0]
    return (
        float(value),
        int(res.nit),
        state["n_fev"],
        str(res.message),
        np.array(mean, dtype=np.float64),
        comp,
        noise,
        grad_norm,
    )
