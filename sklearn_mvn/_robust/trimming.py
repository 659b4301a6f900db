"""Maximum trimmed likelihood: supports, deterministic starts, concentration
steps and the consistency correction of a trimmed fit.

A trimmed fit maximises ``sum_{i in H} w_i log f(x_i | theta)`` over the
parameters ``theta`` and over supports ``H`` of total weight ``h`` (Hadi and
Luceno, 1997; the minimum covariance determinant is this estimator for the
normal). Its breakdown point is about ``1 - h / n`` whatever the model, where
a smooth M-estimator such as the t MLE breaks down near ``1 / (d + nu)``.

The search alternates two exact steps (concentration or C-steps, Rousseeuw
and Van Driessen, 1999): the model's MLE on the current support, then the
support of the ``h`` most central rows under that fit. It starts from
deterministic supports (Hubert, Rousseeuw and Verdonck, 2012: robust
correlation matrices of a subsample, their eigenvectors, robust distances),
which need no random subsets.

The fit on ``h`` central rows has too small a scale and too light tails.
:func:`correct_scale` estimates a scale factor ``c`` and ``nu`` from the
support's squared distances by the likelihood of the F law censored where
the support was cut (the consistency factor of MinCovDet generalised to an
unknown ``nu``): the rows left out count as lying beyond the cut, unless they
do not look like the model's tail (outliers), and then the likelihood
truncated at the cut, which ignores them, is used if its model keeps the
support's share of the mass within the cut.

The functions here know nothing of the estimator: :func:`trimmed_fit` takes
the fit on a support as a callable and scores rows with the fitted
:class:`~._likelihoods.student_t_model.TModel` it returns.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy import optimize, special, stats

from .._likelihoods.student_t import DF_MAX, DF_MIN
from .._linalg import row_chunks
from .._representations import NotDeterminedError
from .._solve.starts import robust_start

# Concentration steps from every start before only the best starts go on.
FIRST_STEPS = 3
# Starts that are concentrated until their support no longer changes.
KEEP_STARTS = 3
# Stopping rule of the two-parameter consistency fit.
_TIGHT = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500}
# Upper limit of concentration steps of one start.
MAX_STEPS = 50
# Largest Kolmogorov distance of the left-out rows from the censored model's
# tail before they count as outliers (:func:`_tail_fits`).
_TAIL_MISFIT = 0.28


def support_size(n_rows, n_features, support_fraction):
    """Fraction of the total weight in the support.

    ``support_fraction=None`` is MinCovDet's default ``(n + d + 1) / 2n``
    (``n`` the rows of positive weight), the largest breakdown point.
    """
    if support_fraction is None:
        return min(1.0, (n_rows + n_features + 1) / (2.0 * n_rows))
    return float(support_fraction)


def support_mask(centrality, weights, h):
    """Row multipliers in [0, 1] that keep the most central weight ``h``.

    Rows are taken by decreasing ``centrality`` (ties in row order) until
    their weight reaches ``h``; the row that crosses ``h`` keeps the fraction
    of its weight that is needed, so integer weights select exactly what
    repeated rows would.
    """
    order = np.argsort(-centrality, kind="stable")
    w = weights[order]
    before = np.cumsum(w) - w
    keep = np.clip((h - before) / np.where(w > 0, w, 1.0), 0.0, 1.0)
    keep[w <= 0] = 0.0
    mask = np.empty_like(keep)
    mask[order] = keep
    return mask


def _robust_distances(X, center, spread, basis, Z, sample_w):
    """Squared distances of all rows in the robust coordinates of ``basis``.

    The rows are standardised by ``center`` and ``spread`` (NaN entries at
    the center), projected on ``basis`` (None: the identity); each
    projection is centred and scaled by the weighted median and MAD of the
    standardised subsample ``Z``'s projections.
    """
    loc, scale = robust_start(Z if basis is None else Z @ basis, sample_w)
    # A projection with zero MAD (over half the rows on one value): unit
    # scale, that of the standardised coordinates.
    scale = np.where(scale > 0, scale, 1.0)
    out = np.empty(X.shape[0])
    for rows in row_chunks(X.shape[0], X.shape[1]):
        z = np.nan_to_num((X[rows] - center) / spread, nan=0.0)
        if basis is not None:
            z = z @ basis
        with np.errstate(over="ignore"):
            # Rows beyond 1e154 robust units rank last (inf).
            out[rows] = (((z - loc) / scale) ** 2).sum(axis=1)
    return out


def _weighted_ranks(Z, w):
    """Mid-ranks of each column with row weights ``w`` (tied values share
    the mean of their positions): integer weights rank as repeated rows."""
    ranks = np.empty_like(Z)
    for j in range(Z.shape[1]):
        values, group = np.unique(Z[:, j], return_inverse=True)
        group_w = np.bincount(group, weights=w, minlength=values.size)
        before = np.cumsum(group_w) - group_w
        ranks[:, j] = (before + (group_w + 1.0) / 2.0)[group]
    return ranks


def _weighted_corr(Y, w):
    """Weighted correlation matrix of the columns of ``Y``."""
    centred = Y - (w @ Y) / w.sum()
    cov = (centred * w[:, np.newaxis]).T @ centred
    scale = np.sqrt(np.diag(cov))
    scale = np.where(scale > 0, scale, 1.0)
    return cov / np.outer(scale, scale)


def _correlations(Z, w):
    """Robust correlation-like matrices of standardised rows ``Z`` with
    weights ``w`` (DetMCD's starts): Spearman, hyperbolic tangent, normal
    scores and spatial sign."""
    ranks = _weighted_ranks(Z, w)
    yield 2.0 * np.sin(np.pi / 6.0 * _weighted_corr(ranks, w))
    yield _weighted_corr(np.tanh(Z), w)
    total = w.sum()
    yield _weighted_corr(special.ndtri((ranks - 1.0 / 3.0) / (total + 1.0 / 3.0)), w)
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    signs = Z / np.where(norms > 0, norms, 1.0)[:, np.newaxis]
    yield (signs * w[:, np.newaxis]).T @ signs / total


def start_centralities(X, sample, sample_w, correlations=True):
    """Centralities (higher = more central) of the deterministic starts.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        All rows, NaN allowed (placed at the start's center).
    sample : ndarray of shape (m, n_features)
        Subsample of ``X`` for the robust scatter matrices.
    sample_w : ndarray of shape (m,) or None
        Its weights.
    correlations : bool, default=True
        Whether to add DetMCD's four correlation starts (each a ``d x d``
        matrix); otherwise only the distance to the coordinate-wise median.

    Returns
    -------
    centralities : list of ndarray of shape (n_samples,)
    """
    d = X.shape[1]
    if sample_w is not None:
        sample, sample_w = sample[sample_w > 0], sample_w[sample_w > 0]
    center, spread = robust_start(sample, sample_w)
    spread = np.where(spread > 0, spread, 1.0)
    Z = np.nan_to_num((sample - center) / spread, nan=0.0)
    starts = [-_robust_distances(X, center, spread, None, Z, sample_w)]
    if correlations and d > 1:
        w = np.ones(Z.shape[0]) if sample_w is None else sample_w
        for corr in _correlations(Z, w):
            corr = np.nan_to_num(corr, nan=0.0)
            _, basis = np.linalg.eigh(0.5 * (corr + corr.T))
            starts.append(-_robust_distances(X, center, spread, basis, Z, sample_w))
    return starts


class Candidate:
    """A start's state in the search: fitted state, support, objective."""

    def __init__(self, state, mask, objective, steps, settled):
        self.state = state
        self.mask = mask
        self.objective = objective
        self.steps = steps
        self.settled = settled


def concentrate(fit, score, starts, weights, h):
    """Concentration steps from each start; the best trimmed fit.

    Parameters
    ----------
    fit : callable ``fit(row_weights, warm) -> state``
        The model's MLE with the given row weights (``weights`` times a
        support mask), warm-started from the state ``warm`` (None: cold).
    score : callable ``score(state) -> (centrality, log_density)``
        Per-row centrality (higher = more central; for complete rows the
        order of the log-density) and log-density under a fitted state.
    starts : list of ndarray of shape (n_samples,)
        Centralities of the starting supports.
    weights : ndarray of shape (n_samples,)
        Row weights.
    h : float
        Weight of the support.

    Returns
    -------
    best : Candidate
        The candidate with the largest trimmed log-likelihood
        ``sum(weights * mask * log_density)`` (its ``mask`` is the support
        it was fitted on, ``settled`` whether it stopped changing).
    """

    def steps(mask, warm, count):
        for step in range(count):
            state = fit(weights * mask, warm)
            centrality, log_density = score(state)
            new = support_mask(centrality, weights, h)
            objective = float(np.sum(weights * new * log_density))
            if np.array_equal(new, mask):
                return Candidate(state, mask, objective, step + 1, True)
            mask, warm = new, state
        return Candidate(state, mask, objective, count, False)

    candidates = [steps(support_mask(c, weights, h), None, FIRST_STEPS) for c in starts]
    candidates.sort(key=lambda c: -c.objective)
    finished = []
    for cand in candidates[:KEEP_STARTS]:
        if not cand.settled:
            more = steps(cand.mask, cand.state, MAX_STEPS)
            more.steps += cand.steps
            cand = more
        finished.append(cand)
    return max(finished, key=lambda c: c.objective)


def correct_scale(
    dist, n_obs, row_weight, cut, df, estimate_df, df_bounds, beyond=None
):
    """Scale factor and degrees of freedom of a trimmed fit's support.

    Under a t with scale matrix ``c Sigma`` and ``nu`` degrees of freedom
    ``dist / (c p)`` follows F(p, nu) (``p`` the row's observed entries). The
    support kept the rows with ``dist <= cut`` (per row); the estimate
    maximises the likelihood of that truncated law over the support, or,
    with ``beyond``, of the law censored at the cut.

    Parameters
    ----------
    dist, n_obs, row_weight, cut : ndarray of shape (m,)
        Squared distances (in the trimmed fit's scale matrix), observed
        entries, weights and truncation points of the support's rows.
    df : float
        Starting (or fixed) degrees of freedom.
    estimate_df : bool
        Whether ``nu`` is estimated.
    df_bounds : tuple of float
    beyond : tuple of ndarray (n_obs, row_weight, cut, dist) or None, \
default=None
        The rows left out of the support (observed entries, weights,
        truncation points and squared distances). Given, the estimate
        maximises the *censored* likelihood: the support's densities plus
        ``log P(dist > cut)`` for each row left out, which puts the cut at
        the support's share of the weight, as MinCovDet's consistency factor
        does. The truncated likelihood alone is nearly flat along a curve of
        ``(c, nu)``: on clean data it can end at ``nu`` near its lower bound
        with a far too large scale, or at a normal. If the rows left out do
        not look like the censored model's tail (:func:`_tail_fits`: outliers
        beyond the cut), the truncated estimate, which ignores them, is
        returned if it keeps at least the support's share of the mass within
        the cuts.

    Returns
    -------
    c : float
    df : float
    """
    groups = []
    for p in np.unique(n_obs):
        rows = n_obs == p
        cuts, where = np.unique(cut[rows], return_inverse=True)
        # The truncation term per distinct cut (one for complete data).
        cut_w = np.bincount(where, weights=row_weight[rows], minlength=cuts.size)
        w = row_weight[rows]
        x = np.maximum(dist[rows], 1e-300)  # a row at the center: distance 0
        groups.append((p, x, w, w.sum(), w @ np.log(x), cuts, cut_w))
    censored = []
    if beyond is not None:
        out_obs, out_weight, out_cut, _ = beyond
        for p in np.unique(out_obs):
            rows = out_obs == p
            cuts, where = np.unique(out_cut[rows], return_inverse=True)
            out_w = np.bincount(where, weights=out_weight[rows], minlength=cuts.size)
            censored.append((p, cuts, out_w))

    def nll(theta, censor):
        # The log-density of dist = c p x, x ~ F(p, nu), written out:
        # const + (p/2 - 1) log dist - (p/2) log(c p)
        # - (p + nu)/2 log(1 + dist / (c nu)).
        log_c = theta[0]
        nu = np.exp(theta[1]) if estimate_df else df
        value, total = 0.0, 0.0
        for p, x, w, w_sum, w_log_x, cuts, cut_w in groups:
            const = (
                special.gammaln((p + nu) / 2)
                - special.gammaln(p / 2)
                - special.gammaln(nu / 2)
                + p / 2 * np.log(p / nu)
            )
            log_scale = log_c + np.log(p)
            log_pdf_sum = (
                w_sum * (const - p / 2 * log_scale)
                + (p / 2 - 1) * w_log_x
                - (p + nu) / 2 * (w @ np.log1p(x / (np.exp(log_c) * nu)))
            )
            value -= log_pdf_sum
            total += w_sum
            if not censor:
                # Far steps of the line search can underflow the probability.
                cdf = special.fdtr(p, nu, cuts / (np.exp(log_c) * p))
                value += cut_w @ np.log(np.maximum(cdf, 1e-300))
        for p, cuts, out_w in censored if censor else ():
            sf = special.fdtrc(p, nu, cuts / (np.exp(log_c) * p))
            value -= out_w @ np.log(np.maximum(sf, 1e-300))
            total += out_w.sum()
        return value / total

    def start(nu):
        ratio = np.median(dist / (n_obs * stats.f.median(n_obs, nu)))
        return np.log(max(ratio, 1e-300))

    # log c within 30 of the median-matching value of the starting df.
    c_bounds = (start(df) - 30.0, start(df) + 30.0)

    def maximise(censor):
        if not estimate_df:
            result = optimize.minimize(
                nll,
                [start(df)],
                args=(censor,),
                method="L-BFGS-B",
                bounds=[c_bounds],
                options=_TIGHT,
            )
            return float(np.exp(result.x[0])), float(df)
        # The truncated likelihood is flat in large nu: several starts.
        bounds = [c_bounds, tuple(np.log(df_bounds))]
        best = None
        for nu in (1.0, 5.0, 30.0, df):
            nu = float(np.clip(nu, *df_bounds))
            result = optimize.minimize(
                nll,
                [start(nu), np.log(nu)],
                args=(censor,),
                method="L-BFGS-B",
                bounds=bounds,
                options=_TIGHT,
            )
            if best is None or result.fun < best.fun:
                best = result
        return float(np.exp(best.x[0])), float(np.exp(best.x[1]))

    if not censored:
        return maximise(censor=False)
    c, nu = maximise(censor=True)
    if _tail_fits(beyond, c, nu):
        return c, nu
    # The rows left out are not the censored model's tail (contamination
    # beyond the cut): the truncated estimate, which ignores them, if it
    # keeps at least the support's share of its mass within the cuts (the
    # support holds that share of the rows; contamination beyond the cut
    # leaves more). Less is a model with tails the data do not show: the
    # censored estimate stands.
    c_trunc, nu_trunc = maximise(censor=False)
    within = sum(
        weight @ special.fdtr(p, nu_trunc, cuts / (c_trunc * p))
        for p, cuts, weight in [(g[0], g[5], g[6]) for g in groups] + censored
    )
    if within >= row_weight.sum():
        return c_trunc, nu_trunc
    return c, nu


def _tail_fits(beyond, c, nu):
    """Whether the rows left out look like the model's tail beyond their cut.

    Under the model ``u = P(F > dist / (c p)) / P(F > cut / (c p))`` is
    uniform on (0, 1) for a row beyond its cut. The weighted Kolmogorov
    distance of the ``u`` from the uniform law is an effect size: above
    ``_TAIL_MISFIT`` more than a quarter of the left-out weight sits where the
    model puts none of it, as a cluster of outliers does (on clean t data
    the censored estimate stays well below it).
    """
    n_obs, weight, cut, dist = beyond
    keep = weight > 0
    if not np.any(keep):
        return True
    n_obs, weight, cut, dist = n_obs[keep], weight[keep], cut[keep], dist[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = special.fdtrc(n_obs, nu, dist / (c * n_obs)) / special.fdtrc(
            n_obs, nu, cut / (c * n_obs)
        )
    u = np.clip(np.nan_to_num(u, nan=0.0), 0.0, 1.0)
    order = np.argsort(u)
    u, w = u[order], weight[order] / weight.sum()
    after = np.cumsum(w)
    gap = max(np.max(after - u), np.max(u - (after - w)))
    return bool(gap < _TAIL_MISFIT)


def tail_probability(dist, n_obs, df):
    """``P(F(p, nu) > dist / p)`` for each row (``p`` its observed entries)."""
    return stats.f.sf(dist / n_obs, n_obs, df)


class TrimmedFit:
    """Outcome of :func:`trimmed_fit`.

    Attributes
    ----------
    result : TFitResult
        The support's fit (``model`` replaced by the corrected one).
    model : TModel
        The corrected model (scale times ``c``, corrected ``df``).
    support : ndarray of bool of shape (n_samples,)
        The rows of positive weight in the support.
    n_support : int
        Rows fitted in the final concentration step.
    objective : float
        Mean negative log-likelihood of the support under ``model``.
    n_effective : float
        Effective number of rows of the support, ``(sum w)^2 / sum w^2``
        of its row weights.
    """

    def __init__(self, result, model, support, n_support, objective, n_effective):
        self.result = result
        self.model = model
        self.support = support
        self.n_support = n_support
        self.objective = objective
        self.n_effective = n_effective


def _scores(model, X, n_obs, has_nan):
    """Centralities (higher = more central) and log-densities of rows."""
    dist = model.distance(X)
    if has_nan:
        centrality = stats.f.logsf(dist / n_obs, n_obs, model.df)
    else:
        centrality = -dist
    return centrality, model.log_density(X)


def trimmed_fit(
    fit,
    X,
    weights,
    support_fraction,
    *,
    estimate_df,
    correlations=True,
    start_rows=8192,
    penalised=False,
):
    """Maximum trimmed t likelihood: concentration steps from the starts, then
    the consistency correction.

    Parameters
    ----------
    fit : callable
        ``fit(rows, row_weights, warm) -> result``: the t MLE of ``X[rows]``
        with the given row weights, warm-started from a previous result
        (None: the robust start); ``result.model`` is a :class:`TModel`.
    X : ndarray of shape (n_samples, n_features)
        Validated rows (NaN allowed).
    weights : ndarray of shape (n_samples,)
    support_fraction : float or None
        Fraction of the total weight in the support (None: MinCovDet's
        default, see :func:`support_size`).
    estimate_df : bool
        Whether the correction estimates ``df`` too.
    correlations : bool, default=True
        DetMCD's correlation starts (``d x d`` matrices; off for the factor
        model).
    start_rows : int, default=8192
        Above this many rows the search runs on a strided subsample and its
        best fit starts concentration steps on all rows.
    penalised : bool, default=False
        Whether the fit has a shape prior (``reg_covar`` or ``shrinkage``),
        which determines the t on a support of few effective rows.

    Returns
    -------
    trimmed : TrimmedFit

    Raises
    ------
    ValueError
        If the support would hold at most ``n_features`` rows, the fit on a
        support is singular although ``X`` is not, the fit on the best
        support is not finite (rows that coincide or lie in a subspace), or
        (unpenalised) the support's weights sit on fewer than ``n_features +
        1`` effective rows.
    """
    n_samples, d = X.shape
    n_rows = int(np.count_nonzero(weights))
    fraction = support_size(n_rows, d, support_fraction)
    if fraction * n_rows < d + 1:
        raise ValueError(
            f"support_fraction={support_fraction!r} keeps about "
            f"{fraction * n_rows:.1f} of n_samples = {n_rows} rows, fewer than "
            f"n_features + 1 = {d + 1}; increase support_fraction or pass "
            "more rows."
        )
    # Degenerate supports (rows in a subspace, repeated rows) make the
    # search's numbers infinite; the result is checked at the end instead.
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            trimmed = _search(
                fit, X, weights, fraction, estimate_df, correlations, start_rows
            )
    except NotDeterminedError as exc:
        if _has_constant_feature(X, weights):
            raise  # X itself is singular: the plain fit's message applies
        raise _degenerate_support(
            support_fraction,
            "its scale matrix is singular although that of X is not",
        ) from exc
    model = trimmed.model
    params = model.params if model.is_factor else (model.params,)
    finite = all(np.all(np.isfinite(v)) for v in (model.mean, *params))
    if not (finite and np.isfinite(trimmed.objective)):
        raise _degenerate_support(
            support_fraction,
            f"the t on its {int(trimmed.support.sum())} rows has no finite maximum",
        )
    if not penalised and trimmed.n_effective < d + 1:
        raise _degenerate_support(
            support_fraction,
            f"its weights are concentrated on about {trimmed.n_effective:.2g} "
            f"rows (effective count (sum w)^2 / sum w^2), fewer than "
            f"n_features + 1 = {d + 1}",
        )
    return trimmed


def _has_constant_feature(X, weights):
    """Whether a feature takes one value on the rows of positive weight."""
    rows = X[weights > 0]
    with np.errstate(invalid="ignore"):
        return bool(np.any(~(np.nanmax(rows, axis=0) > np.nanmin(rows, axis=0))))


def _degenerate_support(support_fraction, detail):
    """The error of a trimmed fit whose support cannot determine the t."""
    return ValueError(
        f"The trimmed fit is degenerate: the support of the most central "
        f"rows (support_fraction={support_fraction!r}) cannot determine the "
        f"t ({detail}). The central rows coincide, lie in a subspace, are "
        "constant in a feature that varies in the other rows, or a few rows "
        "carry most of the weight. Increase support_fraction (1.0 is the "
        "untrimmed fit), or set reg_covar > 0 or shrinkage > 0."
    )


def _search(fit, X, weights, fraction, estimate_df, correlations, start_rows):
    """Concentration steps and the correction (see :func:`trimmed_fit`)."""
    n_samples, d = X.shape
    has_nan = bool(np.isnan(X).any())
    n_obs = (~np.isnan(X)).sum(axis=1) if has_nan else np.full(n_samples, d)
    step = max(1, -(-n_samples // start_rows))
    rows = slice(None, None, step)
    w_sub = weights[rows]
    if fraction * np.count_nonzero(w_sub) < d + 1:
        step, rows, w_sub = 1, slice(None), weights

    def steps_on(rows):
        Xr, n_obs_r = X[rows], n_obs[rows]

        def fit_rows(row_weights, warm):
            return fit(rows, row_weights, warm)

        def score(result):
            return _scores(result.model, Xr, n_obs_r, has_nan)

        return fit_rows, score

    fit_rows, score = steps_on(rows)
    starts = start_centralities(X[rows], X[rows], w_sub, correlations=correlations)
    starts.append(score(fit_rows(w_sub, None))[0])
    best = concentrate(fit_rows, score, starts, w_sub, fraction * float(w_sub.sum()))
    if step > 1:
        fit_rows, score = steps_on(slice(None))
        h = fraction * float(weights.sum())
        best = concentrate(fit_rows, score, [score(best.state)[0]], weights, h)
    result = best.state

    # Consistency: the scale and df of the support's distances, from their
    # likelihood under the F law truncated (or censored, see correct_scale)
    # where the support was cut.
    support = (best.mask > 0) & (weights > 0)
    dist = result.model.distance(X)
    if has_nan:
        p_cut = tail_probability(dist[support], n_obs[support], result.df)
        cut = n_obs * stats.f.isf(p_cut.min(), n_obs, result.df)
    else:
        cut = np.full(n_samples, dist[support].max())
    row_weight = (weights * best.mask)[support]
    left = (best.mask < 1) & (weights > 0)
    c, df = correct_scale(
        dist[support],
        n_obs[support],
        row_weight,
        cut[support],
        result.df,
        estimate_df,
        (DF_MIN, DF_MAX),
        beyond=(
            n_obs[left],
            (weights * (1 - best.mask))[left],
            cut[left],
            dist[left],
        ),
    )
    model = result.model.rescaled(c, df)
    objective = -float(row_weight @ model.log_density(X[support]) / row_weight.sum())
    unit = row_weight / row_weight.max()
    n_effective = float(unit.sum() ** 2 / (unit @ unit))
    return TrimmedFit(
        result,
        model,
        support,
        int(np.count_nonzero(best.mask)),
        objective,
        n_effective,
    )
