"""The normal likelihood of the factor model ``S = W W^T + diag(psi)``:
value and gradients on three data forms (complete-data statistics, a
chunked pass over the rows, statistics per missingness pattern).

The algebra (Woodbury, the determinant lemma) is that of
:class:`~._representations.low_rank.LowRankPlusDiagonal`.

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
- per-pattern missing-data statistics (:class:`~._data.patterns.PatternStats`):
  the exact observed-data likelihood, each pattern's ``M_o`` from one product
  of the pattern mask with the per-feature outer products ``v_j v_j^T``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._linalg import LOG_2PI
from .._representations.low_rank import (
    _PASS_CHUNK_BYTES,
    LowRankPlusDiagonal,
    _chol_inverse,
    _chunk_rows,
)

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


# Columns beyond n_factors in the randomised subspace iteration of the start.
_OVERSAMPLE = 10


def start_probe(n_features, n_factors, random_state=0):
    """The Gaussian matrix ``G`` whose product ``C G`` starts the subspace iteration."""
    rng = np.random.default_rng(random_state)
    width = min(n_features, n_factors + _OVERSAMPLE)
    return rng.standard_normal((n_features, width))
