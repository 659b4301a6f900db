"""The Student-t with the factor scale matrix ``W W^T + diag(psi)``: data passes.

The t of :mod:`._likelihoods.student_t` with the scale matrix of the factor
model (:mod:`._representations.low_rank`): every quantity of a row is O(d k),
no ``d x d`` array. For a row with residual ``r = x - mu``, ``r~ = r /
sqrt(psi)``, ``z = V^T r~`` (``V = diag(psi)^{-1/2} W``) and ``q = M^{-1} z``
(``M = I + V^T V``), the squared Mahalanobis distance is ``delta = |r~ - V
q|^2 + |q|^2`` and ``log|Sigma| = log|M| + sum log psi``. The negative log-likelihood

    J = sum_i w_i [-c(nu, d_i) + log|Sigma_i| / 2
                   + (nu + d_i) / 2 log(1 + delta_i / nu)]

has the normal's gradient in ``(mu, W, psi)`` with the scatter weighted by
``u_i = (nu + d_i) / (nu + delta_i)`` and the log-determinant by ``w_i``:
``dJ/dSigma = (W Sigma^{-1} - Sigma^{-1} B_u Sigma^{-1}) / 2`` with ``B_u = sum w u r
r^T``. So a pass accumulates the factor model's moments with the weights ``a_i = w_i
u_i`` (``sum a r~ q^T``, ``sum a q q^T``, ``sum a r~^2``, ``sum a r~``, ``sum a q``) and
:func:`~._likelihoods.normal_factor._gradients_from_moments` turns them into
the gradient. ``nu``'s gradient is the one of :mod:`._likelihoods.student_t`
(same sums).

Missing values: the marginal of a t on a row's observed entries ``o`` is a t
with the same ``nu`` and scale ``W_o W_o^T + diag(psi_o)`` (same structure,
``M_o = I + V_o^T V_o``). Rows with NaN keep per-feature sums (``sum a [j in
o] q q^T`` and ``sum w [j in o] M_o^{-1}``, shape ``(d, k, k)``); each pattern's
``M_o`` is inverted once per chunk.

The sums merge by addition (Dask blocks); :func:`t_factor_objective` turns
them into ``J`` and its gradient. The fitter is in :mod:`._solve.student_t`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.special import digamma

from .._data.patterns import _pattern_keys, check_missing
from .._linalg import LOG_2PI, chunk_rows, row_chunks
from .._representations.low_rank import LowRankPlusDiagonal, _distance
from .normal_factor import (
    _gradients_from_moments,
    _spd_inverse_stack,
    nll_grad_diagonal,
)
from .student_t import (
    _rescue_far,
    log_chi2_draws,
    log_norm_const,
    scale_draws,
    t_kernel,
)

# Rows of rows-with-NaN handled at once (their k x k inverses are gathered).
_MISSING_BATCH_BYTES = 2**23
# Largest mu_j^2 / Sigma_jj for which complete rows are read without centring
# (:func:`_add_direct`).
_MAX_KAPPA_DIRECT = 15.0


class TFactorSums:
    """Sums of one pass over weighted rows at ``(mean, (W, psi), df)``.

    The attributes ``df``, ``weight_by_nobs``, ``log1p_sum``, ``value_sum``, ``u_sum``,
    ``curv_sum`` and ``n_samples`` are those of
    :class:`~._likelihoods.student_t.TSums` (so
    :func:`~._likelihoods.student_t.t_curvature_df`
    applies). With ``a_i = w_i u_i``:

    - complete rows: ``cross = sum a r~ q^T`` (d, k), ``qq = sum a q q^T``
      (k, k), ``sq = sum a r~^2``, ``resid = sum a r~`` (d,), ``q_sum = sum a
      q`` (k,), their weight ``weight_c``;
    - rows with NaN (``r~`` zero at the missing entries): ``m_cross``,
      ``m_sq``, ``m_resid`` as above, ``m_qq = sum a [j in o] q q^T`` and
      ``m_cores = sum w [j in o] M_o^{-1}`` (d, k, k), ``m_qmask = sum a [j in
      o] q`` (d, k), ``m_seen = sum w [j in o]`` (d,), ``m_logdet = sum w
      log|M_o|``.
    """

    _ARRAYS = (
        "weight_by_nobs",
        "cross",
        "qq",
        "sq",
        "resid",
        "q_sum",
        "m_cross",
        "m_qq",
        "m_cores",
        "m_qmask",
        "m_sq",
        "m_resid",
        "m_seen",
    )
    _SCALARS = (
        "log1p_sum",
        "value_sum",
        "u_sum",
        "curv_sum",
        "weight_c",
        "m_logdet",
        "n_samples",
    )

    def __init__(self, n_features, n_factors, df):
        d, k = n_features, n_factors
        self.df = float(df)
        self.weight_by_nobs = np.zeros(d + 1)
        self.cross = np.zeros((d, k))
        self.qq = np.zeros((k, k))
        self.sq = np.zeros(d)
        self.resid = np.zeros(d)
        self.q_sum = np.zeros(k)
        self.m_cross = np.zeros((d, k))
        self.m_qq = np.zeros((d, k, k))
        self.m_cores = np.zeros((d, k, k))
        self.m_qmask = np.zeros((d, k))
        self.m_sq = np.zeros(d)
        self.m_resid = np.zeros(d)
        self.m_seen = np.zeros(d)
        for name in self._SCALARS:
            setattr(self, name, 0)

    @property
    def n_features(self):
        return self.cross.shape[0]

    @property
    def weight_sum(self):
        return float(self.weight_by_nobs.sum())

    @property
    def has_missing(self):
        return bool(self.weight_by_nobs[:-1].any())

    def merge(self, other):
        """Sums of the union of two sets of rows (same point, same ``df``)."""
        out = TFactorSums(self.n_features, self.cross.shape[1], self.df)
        for name in self._ARRAYS + self._SCALARS:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out


def _add_complete(sums, r, weights, cov):
    """Add complete rows (whitened residuals ``r``, overwritten) to ``sums``."""
    df, d = sums.df, r.shape[1]
    z = r @ cov._scaled
    q = z @ cov._core_inv
    delta = _distance(r, q, cov._scaled)
    _add_scalars(sums, delta, weights, d)
    a = weights * (df + d) / (df + delta)
    aq = q * a[:, np.newaxis]
    sums.cross += r.T @ aq
    sums.qq += q.T @ aq
    sums.q_sum += aq.sum(axis=0)
    sums.resid += a @ r
    r *= r
    sums.sq += a @ r
    sums.weight_c += float(weights.sum())


def _add_direct(sums, block, weights, mean, cov):
    """:func:`_add_complete` reading the raw rows ``y = x`` twice, no copy.

    With ``U = diag(psi)^{-1} W``: ``z = y U - mu U``, ``|r~|^2 = sum_j y_j^2 /
    psi_j - 2 y.(mu / psi) + mu.(mu / psi)`` (one product ``y [U, mu / psi]``
    and one weighted sum of squares), and the moments from ``y^T [a q, a]`` and
    ``sum_i a_i y_i^2``. Used when every ``mu_j^2`` is at most
    ``_MAX_KAPPA_DIRECT`` times the scale ``Sigma_jj`` (no cancellation to
    speak of); otherwise the rows are centred into a buffer first.
    """
    df, d = sums.df, block.shape[1]
    root, psi = cov._root, cov.noise_variance
    k = cov.n_factors
    inv_psi = 1.0 / psi
    scaled_mean = mean * inv_psi
    U = np.empty((d, k + 1))
    U[:, :k] = cov._scaled / root[:, np.newaxis]
    U[:, k] = scaled_mean
    P = block @ U
    z = P[:, :k] - mean @ U[:, :k]
    q = z @ cov._core_inv
    delta = np.einsum("ij,ij,j->i", block, block, inv_psi)
    delta -= 2.0 * P[:, k]
    delta += float(mean @ scaled_mean)
    delta -= np.einsum("ij,ij->i", z, q)
    np.maximum(delta, 0.0, out=delta)
    _add_scalars(sums, delta, weights, d)
    a = weights * (df + d) / (df + delta)
    A = float(a.sum())
    aq = q * a[:, np.newaxis]
    right = np.empty((q.shape[0], k + 1))
    right[:, :k] = aq
    right[:, k] = a
    H = block.T @ right
    q_sum = aq.sum(axis=0)
    sums.cross += (H[:, :k] - np.outer(mean, q_sum)) / root[:, np.newaxis]
    sums.qq += q.T @ aq
    sums.q_sum += q_sum
    sums.resid += (H[:, k] - A * mean) / root
    sums.sq += (
        np.einsum("i,ij,ij->j", a, block, block) - 2.0 * mean * H[:, k] + A * mean**2
    ) * inv_psi
    sums.weight_c += float(weights.sum())


def _add_scalars(sums, delta, weights, n_obs):
    """The ``nu`` sums of :class:`~._likelihoods.student_t.TSums` for these rows."""
    df = sums.df
    dfd = df + n_obs
    denom = df + delta
    log1p = np.log1p(delta / df)
    sums.log1p_sum += float(weights @ log1p)
    sums.value_sum += float(weights @ t_kernel(delta, df, dfd - df))
    sums.u_sum += float(weights @ (dfd / denom))
    sums.curv_sum += float(
        weights @ (((delta - (dfd - df)) / denom - delta / df) / denom)
    )
    d = sums.n_features
    if np.ndim(n_obs) == 0:
        sums.weight_by_nobs[d] += float(weights.sum())
    else:
        sums.weight_by_nobs += np.bincount(n_obs, weights=weights, minlength=d + 1)
    sums.n_samples += delta.shape[0]


def _masked_cores(cov, observed):
    """``M_o^{-1}`` and ``log|M_o|`` of each distinct row of ``observed``.

    Returns the inverses of the distinct patterns, their log-determinants and
    each row's pattern index.
    """
    keys = _pattern_keys(observed)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    k = cov.n_factors
    V = cov._scaled
    outer = (V[:, :, np.newaxis] * V[:, np.newaxis, :]).reshape(-1, k * k)
    cores = (observed[first].astype(np.float64) @ outer).reshape(-1, k, k)
    cores += np.eye(k)
    core_inv, logdet = _spd_inverse_stack(cores)
    return core_inv, logdet, inverse.ravel()


def _add_missing(sums, r, observed, weights, cov):
    """Add rows with NaN (whitened residuals ``r``, 0 at NaN) to ``sums``."""
    df, k = sums.df, cov.n_factors
    n_obs = observed.sum(axis=1)
    core_inv, logdet, owner = _masked_cores(cov, observed)
    z = r @ cov._scaled
    q = np.einsum("ikl,il->ik", core_inv[owner], z)
    delta = _distance(r, q, cov._scaled, observed)
    _add_scalars(sums, delta, weights, n_obs)
    a = weights * (df + n_obs) / (df + delta)
    aq = q * a[:, np.newaxis]
    mask = observed.astype(np.float64)
    sums.m_cross += r.T @ aq
    sums.m_qq += (
        mask.T @ (aq[:, :, np.newaxis] * q[:, np.newaxis, :]).reshape(-1, k * k)
    ).reshape(-1, k, k)
    sums.m_qmask += mask.T @ aq
    pattern_w = np.bincount(owner, weights=weights, minlength=core_inv.shape[0])
    sums.m_cores += (
        mask.T
        @ (core_inv[owner] * weights[:, np.newaxis, np.newaxis]).reshape(-1, k * k)
    ).reshape(-1, k, k)
    sums.m_logdet += float(pattern_w @ logdet)
    sums.m_seen += weights @ mask
    sums.m_resid += a @ r
    r *= r
    sums.m_sq += a @ r


def t_factor_sums(X, mean, params, df, sample_weight=None, chunk_size=None, nan=True):
    """One chunked pass over ``X`` at ``(mean, (W, psi), df)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data; NaN marks a missing entry (each row needs an observed entry).
    mean : ndarray of shape (n_features,)
    params : tuple (W, psi)
        Loadings of shape (n_features, n_factors) and noise variances.
    df : float
    sample_weight : ndarray of shape (n_samples,), default=None
    chunk_size : int, default=None
    nan : bool, default=True
        Whether ``X`` may hold NaN. Without NaN, and with the location within
        ``sqrt(15)`` scales of the origin in every feature, the rows are read
        as they are (no centred copy, :func:`_add_direct`).

    Returns
    -------
    sums : TFactorSums
    """
    cov = LowRankPlusDiagonal(*params)
    n, d = X.shape
    k = cov.n_factors
    sums = TFactorSums(d, k, df)
    mean = np.asarray(mean, dtype=np.float64)
    step = chunk_size or chunk_rows(d + k)
    step = max(1, min(int(step), max(n, 1)))
    scale_diag = cov.noise_variance + np.einsum(
        "jk,jk->j", cov.components, cov.components
    )
    direct = not nan and bool(np.all(mean**2 <= _MAX_KAPPA_DIRECT * scale_diag))
    buffer = None if direct else np.empty((step, d))
    batch = max(1, _MISSING_BATCH_BYTES // (8 * (2 * k * k + 3 * d)))
    for rows in row_chunks(n, d, step):
        block = X[rows]
        w = np.ones(block.shape[0]) if sample_weight is None else sample_weight[rows]
        if direct:
            _add_direct(sums, block, w, mean, cov)
            continue
        r = cov._whiten_chunk(block, mean, buffer[: block.shape[0]])
        if nan:
            missing = np.isnan(r)
            some = missing.any(axis=1)
            if some.any():
                part = np.flatnonzero(some)
                for start in range(0, part.size, batch):
                    sel = part[start : start + batch]
                    rm = np.where(missing[sel], 0.0, r[sel])
                    _add_missing(sums, rm, ~missing[sel], w[sel], cov)
                keep = np.flatnonzero(~some)
                if keep.size:
                    _add_complete(sums, r[keep], w[keep], cov)
                continue
        _add_complete(sums, r, w, cov)
    return sums


def t_factor_objective(sums, params):
    """Negative log-likelihood and its gradients from the sums of a pass.

    Returns
    -------
    J : float
    grad_mean : ndarray of shape (n_features,)
    grad_params : tuple (grad_W, grad_psi)
    grad_df : float
    """
    cov = LowRankPlusDiagonal(*params)
    df, d = sums.df, sums.n_features
    V, root, psi = cov._scaled, cov._root, cov.noise_variance
    kk = np.arange(d + 1)
    wk = sums.weight_by_nobs
    used = wk > 0
    weight = float(wk.sum())
    log_psi = np.log(psi)
    value = (
        -float(wk[used] @ log_norm_const(df, kk[used]))
        + 0.5 * sums.weight_c * cov.logdet
        + 0.5 * (sums.m_logdet + float(sums.m_seen @ log_psi))
        + sums.value_sum
    )
    g_mu, g_W, g_psi = _gradients_from_moments(
        cov,
        sums.weight_c,
        sums.q_sum,
        sums.cross,
        0.5 * (sums.qq + sums.qq.T),
        sums.sq,
        sums.resid,
    )
    if sums.has_missing:
        # The per-feature forms of the same terms (rows with NaN).
        NV = np.einsum("jkl,jl->jk", sums.m_cores, V)
        qqV = np.einsum("jkl,jl->jk", sums.m_qq, V)
        ywq = (sums.m_cross - qqV) / root[:, np.newaxis]
        yy = (
            sums.m_sq
            - 2.0 * np.einsum("jk,jk->j", V, sums.m_cross)
            + np.einsum("jk,jk->j", qqV, V)
        ) / psi
        g_W = g_W + NV / root[:, np.newaxis] - ywq
        g_psi = g_psi + 0.5 * ((sums.m_seen - np.einsum("jk,jk->j", NV, V)) / psi - yy)
        g_mu = g_mu - (sums.m_resid - np.einsum("jk,jk->j", V, sums.m_qmask)) / root
    psi_gap = float(wk[used] @ (digamma(0.5 * df) - digamma(0.5 * (df + kk[used]))))
    g_df = 0.5 * (psi_gap + sums.log1p_sum + sums.u_sum - weight)
    return value, g_mu, (g_W, g_psi), g_df


def factor_shape_penalty(mean, params, prior_weight, trace_coef):
    """The shape prior of :func:`~._likelihoods.student_t.shape_penalty` for
    ``(W, psi)``: ``prior_weight / 2 log|Sigma| + trace_coef / 2 tr(Sigma^{-1})`` and
    its gradient in ``(W, psi)`` (a diagonal pseudo-scatter of the factor model,
    O(d k^2))."""
    W, psi = params
    d = psi.shape[0]
    value, _, g_W, g_psi = nll_grad_diagonal(
        prior_weight, mean, trace_coef * np.ones(d), mean, W, psi
    )
    value -= 0.5 * prior_weight * d * LOG_2PI
    return value, (g_W, g_psi)


# ---------------------------------------------------------------------------
# Rows under the fitted model
# ---------------------------------------------------------------------------


def t_factor_log_density(X, mean, params, df, chunk_size=None):
    """t log-density of each row (of its observed entries for rows with NaN)."""
    cov = LowRankPlusDiagonal(*params)
    n, d = X.shape
    delta = cov.squared_mahalanobis(X, mean, chunk_size)
    out = log_norm_const(df, d) - 0.5 * cov.logdet - t_kernel(delta, df, d)
    bad = np.flatnonzero(~np.isfinite(delta))
    if bad.size:
        check_missing(X)
        step = chunk_size or chunk_rows(d * max(cov.n_factors, 1))
        for start in range(0, bad.size, step):
            sel = bad[start : start + step]
            observed, _, maha, logdet = cov._observed_terms(X[sel], mean)
            n_obs = observed.sum(axis=1)
            out[sel] = (
                log_norm_const(df, n_obs) - 0.5 * logdet - t_kernel(maha, df, n_obs)
            )
    if bad.size:
        zero = np.zeros(d)
        const = log_norm_const(df, d) - 0.5 * cov.logdet
        _rescue_far(
            out, X, bad, mean, lambda R: cov.squared_mahalanobis(R, zero), df, const
        )
    return out


def t_factor_conditional_draw(X, mean, params, df, rng):
    """Draw each row's missing entries from their conditional t law.

    Given the observed entries ``o`` (``d_o`` of them), the missing entries
    follow a t with ``df + d_o`` degrees of freedom, location ``mu_m + W_m q``
    and scale ``(df + delta_o) / (df + d_o)`` times ``diag(psi_m) + W_m
    M_o^{-1} W_m^T``: a draw adds ``(sqrt(psi_m) e + W_m C z) sqrt((df +
    delta_o) / g)`` with ``C C^T = M_o^{-1}``, ``e``, ``z`` standard normal and
    ``g ~ chi^2(df + d_o)``. O(d k) per row.
    """
    cov = LowRankPlusDiagonal(*params)
    out = np.array(X, dtype=np.float64)
    n, d = out.shape
    k = cov.n_factors
    step = chunk_rows(d * max(k, 1))
    for start in range(0, n, step):
        block = out[start : start + step]
        rows = np.flatnonzero(np.isnan(block).any(axis=1))
        if rows.size == 0:
            continue
        sub = block[rows]
        observed, q, maha, _ = cov._observed_terms(sub, mean)
        core_inv, _, owner = _masked_cores(cov, observed)
        chol = np.linalg.cholesky(core_inv)[owner]
        n_obs = observed.sum(axis=1)
        log_g = log_chi2_draws(rng, df + n_obs)
        log_scale = 0.5 * (np.log(df + np.maximum(maha, 0.0)) - log_g)
        e = rng.standard_normal(sub.shape) * cov._root
        latent = q + np.einsum("ikl,il->ik", chol, rng.standard_normal((rows.size, k)))
        # Location W_m q plus the draw W_m C z + sqrt(psi_m) e, scaled.
        draw = (
            mean
            + (q @ cov.components.T)
            + scale_draws((latent - q) @ cov.components.T + e, log_scale)
        )
        sub[~observed] = draw[~observed]
        block[rows] = sub
    return out
