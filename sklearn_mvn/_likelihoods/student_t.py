"""The multivariate Student-t likelihood: value and gradients in one data pass.

Model: ``x = mu + Lambda z sqrt(nu / g)`` with ``z ~ N(0, I_d)`` and
``g ~ chi^2_nu``, i.e. the ``d``-variate t with location ``mu``, scale matrix
(shape) ``Sigma = Lambda Lambda^T`` and ``nu`` degrees of freedom. With
``z = Lambda^{-1}(x - mu)`` and ``delta = |z|^2``, the log-density is

    log t(x) = lgamma((nu + d) / 2) - lgamma(nu / 2) - d / 2 log(nu pi)
               - log|det Lambda| - (nu + d) / 2 log(1 + delta / nu).

The negative log-likelihood ``J`` of rows with weights ``w_i`` has no
sufficient statistics, but its gradient has the shape of the seed's (J.
Rennie, 2006) with each row's scatter weighted by ``u_i = (nu + d) / (nu +
delta_i)``, while the log-determinant keeps the plain weight sum ``W``:

    dJ/dmu     = -Lambda^{-T} a,             a = sum_i w_i u_i z_i,
    dJ/dLambda = Lambda^{-T} (W I - M),      M = sum_i w_i u_i z_i z_i^T,
    dJ/dnu     = 1/2 sum_i w_i [psi(nu / 2) - psi((nu + d) / 2)
                                + log(1 + delta_i / nu) + u_i - 1].

So one chunked pass over ``X`` (whitened residuals of a chunk written into one
reused buffer, BLAS ``trmm`` and ``syrk`` in place) gives the value and the
whole gradient: :class:`TSums` holds the pass's sums, which merge by addition
(Dask blocks), and :func:`t_objective` turns them into ``J`` and its gradient.

Missing values. The marginal of a t on the observed entries ``o`` of a row is
a t with the same ``nu`` (``d_o = |o|`` in the constants). With ``P = S^{-1}``
and the row's residual ``e`` completed by the conditional offsets ``e_m =
-P_mm^{-1} P_mo e_o``, the observed-data terms are ``delta_o = |Lambda^{-1}
e|^2`` and ``log|S_oo| = log|S| + log|P_mm|``, and the gradient keeps the
form above with ``u_i = (nu + d_o) / (nu + delta_o)`` and an extra
``C = sum_i w_i [P_mm^{-1}]`` (padded to ``d x d``) in the factor gradient,
``Lambda^{-T} (W I - M - Lambda^{-1} C Lambda^{-T})``. Rows are grouped by
pattern within each chunk, so ``P_mm^{-1}`` is factored once per pattern and
chunk.

The fitter (ECME iterations and L-BFGS-B over these passes) is in
:mod:`._solve.student_t`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.linalg.blas import dsyrk, dtrmm
from scipy.special import digamma, gammaln, polygamma

from .._data.patterns import _pattern_keys, check_missing
from .._linalg import (
    chunk_rows,
    inverse_lower,
    precision_from_factor,
    row_chunks,
    solve_lower,
    squared_mahalanobis,
)
from .._representations.conditional import (
    _batches,
    _inverse_pmm,
    _take_rows,
    conditional_blocks,
    conditional_fill,
)

LOG_PI = np.log(np.pi)
# Bounds on the degrees of freedom when they are estimated. Above ``DF_MAX``
# the t is a normal to within O(d^2 / nu) in log-density.
DF_MIN = 1e-2
DF_MAX = 1e6


# ---------------------------------------------------------------------------
# Constants of the density
# ---------------------------------------------------------------------------


# Above this half of ``nu`` the normalising constant is evaluated by Stirling's
# series (three terms: error below 1e-15 from here on): the difference of two
# log-gammas of about ``nu log nu`` each would lose ``log10(nu)`` digits
# (about 1000 nats at ``nu = 1e300``).
_STIRLING_ABOVE = 50.0


def _log1pmx(u):
    """``log(1 + u) - u`` without cancellation for small ``u`` (``u >= 0``)."""
    u = np.asarray(u, dtype=np.float64)
    small = u < 0.05
    out = np.empty_like(u)
    us = u[small]
    # Alternating series -u^2/2 + u^3/3 - ...: 12 terms reach 1e-17 at 0.05.
    acc = np.zeros_like(us)
    power = us * us
    for j in range(2, 14):
        acc += (-1.0) ** (j + 1) * power / j
        power = power * us
    out[small] = acc
    out[~small] = np.log1p(u[~small]) - u[~small]
    return out


def _stirling_tail(z):
    """The series part of ``lgamma(z) - ((z - 1/2) log z - z + log(2 pi) / 2)``."""
    w = 1.0 / np.asarray(z, dtype=np.float64)
    w2 = w * w
    return w * (1.0 / 12.0 - w2 * (1.0 / 360.0 - w2 / 1260.0))


def log_norm_const(df, n_obs):
    """``lgamma((nu + k) / 2) - lgamma(nu / 2) - k / 2 log(nu pi)``.

    For large ``nu`` (``x = nu / 2``, ``a = k / 2``) the log-gamma difference
    is ``a log x + (x + a - 1/2) log1p(a / x) - a`` plus the difference of
    Stirling's series, and ``x log1p(a / x) - a = x (log1p(u) - u)`` with
    ``u = a / x`` is summed without cancellation: the constant tends to
    ``-k / 2 log(2 pi)`` (the normal's) to round-off for every ``nu``.
    """
    n_obs = np.asarray(n_obs, dtype=np.float64)
    x = 0.5 * df
    a = 0.5 * n_obs
    if x < _STIRLING_ABOVE:
        return gammaln(x + a) - gammaln(x) - 0.5 * n_obs * (np.log(df) + LOG_PI)
    u = a / x
    gap = x * _log1pmx(u) + (a - 0.5) * np.log1p(u)
    gap = gap + (_stirling_tail(x + a) - _stirling_tail(x))
    # lgamma(x + a) - lgamma(x) - a log x = gap; and a log x - k/2 log(nu pi)
    # = -a log(2 pi).
    return gap - a * np.log(2.0 * np.pi)


def far_kernel(X, mean, distance, df):
    """``t_kernel`` of complete rows whose squared distance overflows float64.

    The t's log-density stays finite far beyond (about ``-(nu + d) log|x|``):
    the distance is computed on the residuals scaled by ``s`` (their largest
    entry), ``log delta = log delta_s + 2 log s``, and the kernel
    ``(nu + d) / 2 (log delta - log nu + log1p(nu / delta))`` from it.
    ``distance(R)`` gives the squared distances of residual rows ``R``.
    """
    d = X.shape[1]
    s = np.maximum(np.max(np.abs(X), axis=1), np.max(np.abs(mean)))
    scaled = X / s[:, np.newaxis] - mean / s[:, np.newaxis]
    with np.errstate(divide="ignore", over="ignore"):
        log_delta = np.log(distance(scaled)) + 2.0 * np.log(s)
        gap = np.log(df) - log_delta
        return 0.5 * (df + d) * (-gap + np.log1p(np.exp(gap)))


def _rescue_far(out, X, bad, mean, distance, df, const):
    """Finite log-densities of complete rows in ``bad`` whose distance
    overflowed (``out`` is updated in place)."""
    far = bad[~np.isnan(X[bad]).any(axis=1)]
    if far.size:
        out[far] = const - far_kernel(X[far], mean, distance, df)


def t_kernel(delta, df, n_obs):
    """``(nu + k) / 2 log1p(delta / nu)``, also where ``delta / nu`` underflows
    (it tends to ``delta / 2`` as ``nu`` grows)."""
    delta = np.asarray(delta, dtype=np.float64)
    n_obs = np.asarray(n_obs, dtype=np.float64)
    ratio = delta / df
    with np.errstate(invalid="ignore", divide="ignore"):
        # log1p(t) / t, 1 at t = 0 (and for t below the resolution of log1p).
        shrink = np.where(ratio > 1e-8, np.log1p(ratio) / ratio, 1.0 - 0.5 * ratio)
        out = 0.5 * delta * (1.0 + n_obs / df) * shrink
    # Beyond float64 (delta = inf) the kernel is infinite too.
    return np.where(np.isinf(delta), np.inf, out)


def _fisher_log_df(df, n_features):
    """Expected information per observation on ``log nu`` (Lange et al., 1989).

    ``nu^2 I_nu_nu`` with ``I_nu_nu = 1/4 [psi'(nu/2) - psi'((nu+d)/2)] -
    d (nu + d + 4) / (2 nu (nu + d) (nu + d + 2))``.
    """
    d = n_features
    info = 0.25 * (polygamma(1, 0.5 * df) - polygamma(1, 0.5 * (df + d))) - d * (
        df + d + 4.0
    ) / (2.0 * df * (df + d) * (df + d + 2.0))
    return float(df * df * info)


# ---------------------------------------------------------------------------
# One pass over the data
# ---------------------------------------------------------------------------


class TSums:
    """Sums of one pass over weighted rows at ``(mean, factor, df)``.

    Attributes
    ----------
    df : float
        Degrees of freedom the pass used (the weights ``u_i`` depend on it).
    weight_by_nobs : ndarray of shape (n_features + 1,)
        Weight sum of the rows with ``k`` observed entries, at index ``k``.
    log1p_sum : float
        ``sum_i w_i log(1 + delta_i / nu)``.
    value_sum : float
        ``sum_i w_i (nu + d_i) / 2 log(1 + delta_i / nu)``.
    u_sum : float
        ``sum_i w_i u_i``.
    curv_sum : float
        ``sum_i w_i d/dnu [log(1 + delta_i / nu) + u_i]`` (for Newton steps
        on ``nu``).
    first : ndarray of shape (n_features,)
        ``a = sum_i w_i u_i z_i``.
    second : ndarray of shape (n_features, n_features)
        ``M = sum_i w_i u_i z_i z_i^T`` (upper triangle until symmetrised).
    cond : ndarray of shape (n_features, n_features) or None
        ``C = sum_i w_i [P_mm^{-1}]`` over rows with missing entries.
    log_pmm : float
        ``sum_i w_i log|P_mm|``.
    n_samples : int
        Rows summed (any weight).
    """

    __slots__ = (
        "df",
        "weight_by_nobs",
        "log1p_sum",
        "value_sum",
        "u_sum",
        "curv_sum",
        "first",
        "second",
        "cond",
        "log_pmm",
        "n_samples",
    )

    def __init__(self, n_features, df):
        self.df = float(df)
        self.weight_by_nobs = np.zeros(n_features + 1)
        self.log1p_sum = 0.0
        self.value_sum = 0.0
        self.u_sum = 0.0
        self.curv_sum = 0.0
        self.first = np.zeros(n_features)
        self.second = np.zeros((n_features, n_features), order="F")
        self.cond = None
        self.log_pmm = 0.0
        self.n_samples = 0

    @property
    def n_features(self):
        return self.first.shape[0]

    @property
    def weight_sum(self):
        return float(self.weight_by_nobs.sum())

    def merge(self, other):
        """Sums of the union of two sets of rows (same point, same ``df``)."""
        out = TSums(self.n_features, self.df)
        out.weight_by_nobs = self.weight_by_nobs + other.weight_by_nobs
        for name in ("log1p_sum", "value_sum", "u_sum", "curv_sum", "log_pmm"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out.first = self.first + other.first
        out.second = np.triu(self.second) + np.triu(other.second)
        if self.cond is None:
            out.cond = other.cond
        elif other.cond is None:
            out.cond = self.cond
        else:
            out.cond = self.cond + other.cond
        out.n_samples = self.n_samples + other.n_samples
        return out

    def symmetric_second(self):
        upper = np.triu(self.second)
        return upper + np.triu(upper, 1).T


def _complete_missing(resid, nan, weights, precision, sums):
    """Replace the NaN of ``resid`` by the conditional offsets, in place.

    Rows are grouped by missingness pattern; each pattern's ``P_mm^{-1}`` is
    computed once (batched over patterns with the same number of missing
    entries). Adds ``C`` and ``sum w log|P_mm|`` to ``sums``.
    """
    d = resid.shape[1]
    rows = np.flatnonzero(nan.any(axis=1))
    sub_nan = nan[rows]
    resid[rows] = np.where(sub_nan, 0.0, resid[rows])
    keys = _pattern_keys(sub_nan)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    patterns = sub_nan[first]
    n_missing = patterns.sum(axis=1)
    row_weight = weights[rows]
    pattern_weight = np.bincount(inverse, weights=row_weight, minlength=first.size)
    pull = resid[rows] @ precision
    cond = np.zeros(d * d)
    for k in np.unique(n_missing):
        pats = np.flatnonzero(n_missing == k)
        miss = np.nonzero(patterns[pats])[1].reshape(pats.size, k)
        pmm_inv, logdet = _inverse_pmm(precision, miss)
        wp = pattern_weight[pats]
        sums.log_pmm += float(wp @ logdet)
        idx = (miss[:, :, None] * d + miss[:, None, :]).ravel()
        cond += np.bincount(
            idx, weights=(pmm_inv * wp[:, None, None]).ravel(), minlength=d * d
        )
        local = np.full(first.size, -1)
        local[pats] = np.arange(pats.size)
        members = np.flatnonzero(local[inverse] >= 0)
        for part in _batches(members.size, k * (k + 1)):
            sel = members[part]
            owner = local[inverse[sel]]
            offset = -np.einsum(
                "rkl,rl->rk", pmm_inv[owner], _take_rows(pull[sel], miss[owner])
            )
            resid[rows[sel][:, None], miss[owner]] = offset
    sums.cond = (
        cond.reshape(d, d) if sums.cond is None else sums.cond + cond.reshape(d, d)
    )


def _add_chunk(sums, block, weights, mean, inverse, precision, buffer):
    """Add one chunk of rows to ``sums`` (float64 buffer of the chunk's size)."""
    n_rows, d = block.shape
    df = sums.df
    resid = buffer[:n_rows]
    np.subtract(block, mean, out=resid)
    if weights is None:
        weights = np.ones(n_rows)
    n_obs = None
    if precision is not None:
        nan = np.isnan(resid)
        if nan.any():
            n_obs = d - nan.sum(axis=1)
            _complete_missing(resid, nan, weights, precision, sums)
    # resid.T is F-contiguous: trmm overwrites it with z = Lambda^{-1} e.
    z = dtrmm(1.0, inverse, resid.T, lower=1, overwrite_b=1)
    delta = np.einsum("ij,ij->j", z, z)
    if n_obs is None:
        sums.weight_by_nobs[d] += float(weights.sum())
        dfd = df + d
    else:
        sums.weight_by_nobs += np.bincount(n_obs, weights=weights, minlength=d + 1)
        dfd = df + n_obs
    denom = df + delta
    u = dfd / denom
    log1p = np.log1p(delta / df)
    sums.log1p_sum += float(weights @ log1p)
    sums.value_sum += float(weights @ t_kernel(delta, df, dfd - df))
    wu = weights * u
    sums.u_sum += float(wu.sum())
    sums.curv_sum += float(
        weights @ (((delta - (dfd - df)) / denom - delta / df) / denom)
    )
    sums.first += z @ wu
    z *= np.sqrt(wu)
    sums.second = dsyrk(1.0, z, beta=1.0, c=sums.second, overwrite_c=1)
    sums.n_samples += n_rows


def t_sums(X, mean, factor, df, sample_weight=None, chunk_size=None, nan=True):
    """One chunked pass over ``X`` at ``(mean, factor, df)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data; NaN marks a missing entry (each row needs an observed entry).
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Lower-triangular ``Lambda`` with a positive diagonal.
    df : float
        Degrees of freedom ``nu > 0``.
    sample_weight : ndarray of shape (n_samples,), default=None
    chunk_size : int, default=None
        Rows per chunk (about 1 MiB of float64 by default).
    nan : bool, default=True
        Whether ``X`` may hold NaN (False skips the search for them).

    Returns
    -------
    sums : TSums
    """
    n_samples, d = X.shape
    sums = TSums(d, df)
    if chunk_size is None:
        chunk_size = chunk_rows(d)
    chunk_size = max(1, min(int(chunk_size), max(n_samples, 1)))
    mean = np.asarray(mean, dtype=np.float64)
    inverse, precision = precision_from_factor(factor)
    inverse = np.asfortranarray(inverse)
    precision = precision if nan else None
    buffer = np.empty((chunk_size, d))
    for rows in row_chunks(n_samples, d, chunk_size):
        weights = None if sample_weight is None else sample_weight[rows]
        _add_chunk(sums, X[rows], weights, mean, inverse, precision, buffer)
    return sums


def t_objective(sums, factor):
    """Negative log-likelihood and its gradient from the sums of a pass.

    Parameters
    ----------
    sums : TSums
        Sums at ``(mean, factor, sums.df)``.
    factor : ndarray of shape (n_features, n_features)
        The factor of the pass.

    Returns
    -------
    J : float
        ``-sum_i w_i log t(x_i)`` (observed entries only for rows with NaN).
    grad_mean : ndarray of shape (n_features,)
    grad_factor : ndarray of shape (n_features, n_features)
    grad_df : float
    """
    df = sums.df
    d = sums.n_features
    k = np.arange(d + 1)
    wk = sums.weight_by_nobs
    used = wk > 0
    weight = float(wk.sum())
    log_det = float(np.sum(np.log(np.diag(factor))))
    value = (
        -float(wk[used] @ log_norm_const(df, k[used]))
        + weight * log_det
        + 0.5 * sums.log_pmm
        + sums.value_sum
    )
    inner = -sums.symmetric_second()
    if sums.cond is not None:
        half = solve_lower(factor, sums.cond)
        cond_w = solve_lower(factor, half.T)
        inner -= 0.5 * (cond_w + cond_w.T)
    inner[np.diag_indices(d)] += weight
    grad_factor = solve_lower(factor, inner, trans=True)
    grad_mean = -solve_lower(factor, sums.first, trans=True)
    psi_gap = float(wk[used] @ (digamma(0.5 * df) - digamma(0.5 * (df + k[used]))))
    grad_df = 0.5 * (psi_gap + sums.log1p_sum + sums.u_sum - weight)
    return value, grad_mean, grad_factor, grad_df


def t_curvature_df(sums):
    """Second derivative of ``J`` in ``nu`` at the pass's point (mean, factor
    fixed)."""
    df = sums.df
    k = np.arange(sums.n_features + 1)
    wk = sums.weight_by_nobs
    used = wk > 0
    trigamma_gap = float(
        wk[used] @ (polygamma(1, 0.5 * df) - polygamma(1, 0.5 * (df + k[used])))
    )
    return 0.25 * trigamma_gap + 0.5 * sums.curv_sum


def t_nll_grad(X, mean, factor, df, sample_weight=None, chunk_size=None):
    """``J`` and its gradients in ``(mean, factor, df)`` on the data matrix.

    A convenience wrapper: :func:`t_sums` then :func:`t_objective`.
    """
    sums = t_sums(X, mean, factor, df, sample_weight, chunk_size)
    return t_objective(sums, factor)


# ---------------------------------------------------------------------------
# Log-density of rows
# ---------------------------------------------------------------------------


def t_log_density(X, mean, factor, df, chunk_size=None):
    """Log-density of each row under the t (observed entries of NaN rows).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Lower-triangular factor of the scale matrix.
    df : float
    chunk_size : int, default=None

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
    """
    d = X.shape[1]
    delta = squared_mahalanobis(X, mean, factor, chunk_size)
    log_det = float(np.sum(np.log(np.diag(factor))))
    out = log_norm_const(df, d) - log_det - t_kernel(delta, df, d)
    bad = np.flatnonzero(~np.isfinite(delta))
    if bad.size:
        # X is searched only when some row is not complete: infinity and rows
        # without an observed entry raise a ValueError naming the row.
        check_missing(X)
        out[bad] = _marginal_log_density(X[bad], mean, factor, df)
        zero = np.zeros(d)
        _rescue_far(
            out,
            X,
            bad,
            mean,
            lambda R: squared_mahalanobis(R, zero, factor),
            df,
            log_norm_const(df, d) - log_det,
        )
    return out


def _marginal_rows(X, mean, factor, chunk_size=None):
    """``delta_o``, ``log|P_mm|`` and ``d_o`` of rows with NaN, in chunks.

    Each row is completed by its conditional offsets (the normal's
    conditional mean, :func:`~._representations.conditional.conditional_fill`), so
    ``delta_o = |Lambda^{-1}(x_hat - mu)|^2``.
    """
    n, d = X.shape
    inverse = inverse_lower(factor)
    step = chunk_rows(d) if chunk_size is None else int(chunk_size)
    delta, log_pmm, n_obs = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    for start in range(0, n, step):
        part = slice(start, start + step)
        filled, log_det, n_missing = conditional_fill(X[part], mean, factor)
        z = (filled - mean) @ inverse.T
        delta[part] = np.einsum("ij,ij->i", z, z)
        log_pmm[part] = log_det
        n_obs[part] = d - n_missing
    return delta, log_pmm, n_obs


def _marginal_log_density(X, mean, factor, df):
    delta, log_pmm, n_obs = _marginal_rows(X, mean, factor)
    log_det = float(np.sum(np.log(np.diag(factor))))
    return (
        log_norm_const(df, n_obs) - log_det - 0.5 * log_pmm - t_kernel(delta, df, n_obs)
    )


# ---------------------------------------------------------------------------
# Draws
# ---------------------------------------------------------------------------

# Largest magnitude a draw may reach: a quarter of the largest float, so that
# the location can still be added.
_DRAW_MAX = np.finfo(np.float64).max / 4.0


def log_chi2_draws(rng, df, size=None):
    """Logarithms of ``chi^2(df)`` draws (``df`` a float or an array).

    ``rng.chisquare`` underflows to 0 for small ``df`` (below about 0.1 a
    large share of the draws is 0, and a t draw ``z / sqrt(g / df)`` is then
    infinite). For ``df < 2`` the draw is made in log space:
    ``Gamma(a) = Gamma(a + 1) U^{1/a}`` with ``U`` uniform on ``(0, 1]``.
    """
    df = np.asarray(df, dtype=np.float64)
    if np.all(df >= 2.0):
        return np.log(rng.chisquare(df, size))
    a = 0.5 * df
    g = rng.standard_gamma(a + 1.0, size)
    u = 1.0 - rng.random(np.shape(g))
    return np.log(2.0) + np.log(g) + np.log(u) / a


def scale_draws(draws, log_scale):
    """``draws`` (one row per draw) times ``exp(log_scale)`` per row.

    A t with small ``df`` draws values beyond the range of float64 (at
    ``df = 0.01`` the factor ``sqrt(df / g)`` exceeds ``1e308`` for about a
    third of the draws): such rows are shortened along their direction to
    the magnitude ``_DRAW_MAX`` (about ``4e307``), so draws stay finite.
    """
    with np.errstate(divide="ignore"):
        size = np.log(np.max(np.abs(draws), axis=1, initial=0.0))
    log_scale = np.minimum(log_scale, np.log(_DRAW_MAX) - size)
    return draws * np.exp(log_scale)[:, np.newaxis]


def t_conditional_draw(X, mean, factor, df, rng):
    """Draw each row's missing entries from their conditional t law.

    Given its observed entries ``o`` (``d_o`` of them), a row's missing
    entries ``m`` follow a t with ``df + d_o`` degrees of freedom, location
    the conditional mean ``mu_m - P_mm^{-1} P_mo (x_o - mu_o)`` and scale
    matrix ``(df + delta_o) / (df + d_o) P_mm^{-1}`` (``P`` the inverse scale
    matrix, ``delta_o`` the squared distance of the observed entries). A draw
    is the location plus ``C z sqrt((df + delta_o) / g)`` with ``C C^T =
    P_mm^{-1}``, ``z`` standard normal and ``g ~ chi^2(df + d_o)``. Rows with
    the same number of missing entries are processed together, chunk by
    chunk; a row with every entry missing is a draw of the t itself.

    Returns
    -------
    X_drawn : ndarray of shape (n_samples, n_features)
        A float64 copy of ``X`` with the missing entries drawn.
    """
    out = np.array(X, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    inverse, precision = precision_from_factor(factor)
    n_samples, d = out.shape
    for chunk in row_chunks(n_samples, d):
        block = out[chunk]
        for r, miss, resid, offset, pmm_inv, _ in conditional_blocks(
            block, mean, precision
        ):
            k = miss.shape[1]
            np.put_along_axis(resid, miss, offset, axis=1)
            z_o = resid @ inverse.T
            delta = np.einsum("ij,ij->i", z_o, z_o)
            pmm_inv = 0.5 * (pmm_inv + np.swapaxes(pmm_inv, 1, 2))
            chol = np.linalg.cholesky(pmm_inv)
            z = rng.standard_normal((r.size, k))
            log_g = log_chi2_draws(rng, df + d - k, size=r.size)
            draw = scale_draws(
                np.einsum("ikl,il->ik", chol, z), 0.5 * (np.log(df + delta) - log_g)
            )
            block[r[:, None], miss] = mean[miss] + offset + draw
    return out


def t_mahalanobis(X, mean, factor):
    """Squared Mahalanobis distance in the scale matrix (observed entries)."""
    delta = squared_mahalanobis(X, mean, factor)
    bad = np.flatnonzero(~np.isfinite(delta))
    if bad.size:
        delta[bad] = _marginal_rows(X[bad], mean, factor)[0]
    return delta


# ---------------------------------------------------------------------------
# The shape prior
# ---------------------------------------------------------------------------


def shape_penalty(factor, prior_weight, trace_coef):
    """``prior_weight log|det Lambda| + trace_coef / 2 tr(S^{-1})`` and its
    factor gradient ``Lambda^{-T} (prior_weight I - trace_coef Lambda^{-1}
    Lambda^{-T})``: the shape part of an inverse-Wishart prior (shrinkage and
    ``reg_covar``); the location is not penalised.
    """
    d = factor.shape[0]
    value, grad = 0.0, np.zeros((d, d))
    if prior_weight:
        value += prior_weight * float(np.sum(np.log(np.diag(factor))))
        grad += prior_weight * np.eye(d)
    if trace_coef:
        inverse = inverse_lower(factor)
        value += 0.5 * trace_coef * float(np.sum(inverse**2))
        grad -= trace_coef * (inverse @ inverse.T)
    return value, solve_lower(factor, grad, trans=True)
