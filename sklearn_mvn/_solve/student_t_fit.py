"""The Student-t fit from a pass source: start, penalties, driver, checks.

:func:`fit_student_t` is the whole maximum-likelihood fit of a t (any
representation) as a plain function: the robust start (or a given one), the
shape prior of ``shrinkage``/``reg_covar``, the driver :func:`fit_t` (one
for every representation) and the checks of its answer. It
returns a result with a :class:`~._likelihoods.student_t_model.TModel`
and never touches an estimator, so the trimmed search and the estimator call
it alike.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._data.dask import is_dask_array
from .._likelihoods.student_t import DF_MAX, DF_MIN
from .._likelihoods.student_t_model import TModel, check_scale_range
from .._representations import NotDeterminedError, make_representation
from .._representations.low_rank import MIN_NOISE, heywood_features
from .starts import factor_start, robust_start, start_scale
from .student_t import fit_t

# Starting degrees of freedom when they are estimated.
DF_START = 5.0


class TSpec:
    """The estimator's parameters, resolved for ``n_features`` (``n_factors``
    an integer for the factor model)."""

    def __init__(
        self,
        *,
        covariance_type,
        n_factors,
        df,
        shrinkage,
        reg_covar,
        max_iter,
        tol,
        verbose,
    ):
        self.covariance_type = covariance_type
        self.n_factors = n_factors
        self.df = df
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose

    @property
    def estimate_df(self):
        return isinstance(self.df, str) and self.df == "auto"

    @property
    def is_factor(self):
        return self.covariance_type == "factor"

    def representation(self, n_features):
        if self.is_factor:
            return make_representation("factor", n_features, self.n_factors)
        return make_representation(self.covariance_type, n_features)


def singular_error(n_samples, n_features, detail):
    """The t's error for a scale matrix the data leave singular."""
    return NotDeterminedError(
        f"The scale matrix is singular ({detail}; n_samples={n_samples}, "
        f"n_features={n_features}): this happens with too few samples (the t "
        "needs more samples than features), or constant or collinear "
        "features. Set reg_covar > 0 or shrinkage > 0, or remove the "
        "redundant features."
    )


def robust_scale(source, spec):
    """Robust location and per-feature spread of the start (median and MAD
    of the source's subsample; features seen only outside it from their
    whole column)."""
    n_features = source.X.shape[1]
    rep = spec.representation(n_features)
    if spec.is_factor:
        rep = make_representation("diag", n_features)
    sample, sample_w = source.sample, source.sample_w
    mean0, spread = start_scale(sample, rep, sample_w, max_rows=sample.shape[0])
    unseen = ~(np.isfinite(mean0) & np.isfinite(spread))
    if unseen.any():
        full = source.X[:, np.flatnonzero(unseen)]
        full = np.asarray(full.compute() if is_dask_array(full) else full)
        w = source.sample_weight
        if is_dask_array(w):
            w = w.compute()
        mean0[unseen], spread[unseen] = robust_start(full, w)
        with np.errstate(over="ignore"):
            spread = rep.standardising_scale(spread**2)
    return mean0, spread


def fit_student_t(source, spec, *, start=None, scale=None):
    """Maximum (penalised) likelihood t of a :class:`PassSource`.

    Parameters
    ----------
    source : PassSource
    spec : TSpec
    start : tuple of (mean, params, df), default=None
        Overrides the robust start (a warm start or a concentration step).
    scale : tuple of (location, spread), default=None
        Overrides the robust scale (which sets the penalty's ``tau`` and the
        factor model's noise floor).

    Returns
    -------
    result : TFitResult
        The driver's result plus ``model`` (a :class:`TModel`),
        ``degenerate`` (the likelihood looks unbounded) and ``heywood``
        (features whose noise variance is at its floor; factor model).
    """
    n_samples, n_features = source.n_samples, source.X.shape[1]
    if scale is None:
        scale = robust_scale(source, spec)
    mean0, spread = (np.array(v) for v in scale)
    check_scale_range(spread)
    tau = float(np.mean(spread**2))
    trace_coef = spec.shrinkage * tau + spec.reg_covar
    if not np.all(spread > 0):
        if trace_coef <= 0:
            constant = np.flatnonzero(~(spread > 0))
            raise singular_error(
                n_samples,
                n_features,
                f"zero spread in feature(s) {constant[:10].tolist()}",
            )
        spread = np.where(spread > 0, spread, np.sqrt(trace_coef))
    df0 = DF_START if spec.estimate_df else float(spec.df)
    if start is not None:
        mean0, params0, df0 = start
        df0 = float(np.clip(df0, DF_MIN, DF_MAX)) if spec.estimate_df else df0
    elif spec.is_factor:
        W0, psi0 = factor_start(
            source.sample, source.sample_w, mean0, spread, spec.n_factors
        )
        # The penalty adds about trace_coef to every variance (exactly so for
        # the normal: S + reg_covar I). Far above the data's variances the
        # optimum is there, many decades from the data's scale, where no
        # accelerating step (missing values) would take the cycles.
        params0 = (W0, psi0 + trace_coef)
    else:
        params0 = np.diag(spread)
    options = dict(
        estimate_df=spec.estimate_df,
        data_scale=(1.0 - spec.shrinkage) / source.weight,
        prior_weight=spec.shrinkage,
        trace_coef=trace_coef,
        max_iter=spec.max_iter,
        tol=spec.tol,
        verbose=spec.verbose,
    )
    rep = spec.representation(n_features)
    if spec.is_factor:
        check_factor_rank(source, spec.n_factors, trace_coef)
        # The noise floor in units of the penalised variances (the start's):
        # relative to them a floor set by the data's far smaller variances
        # would let a Heywood feature's Woodbury terms cancel to nothing.
        psi_lower = MIN_NOISE * (spread**2 + trace_coef)
        result = fit_t(
            source.data_pass, rep, mean0, params0, df0, psi_lower=psi_lower, **options
        )
        W, psi = result.factor
        sd = np.sqrt((W**2).sum(axis=1) + psi)
        result.heywood = heywood_features(psi, psi_lower)
    else:
        result = fit_t(source.data_pass, rep, mean0, params0, df0, **options)
        # The features' variances (squared row norms of the factor) must be
        # representable; its diagonal is a conditional spread, which strongly
        # correlated features make far smaller than their variances.
        sd = np.linalg.norm(result.factor, axis=1)
        check_scale_range(sd)
        result.heywood = np.empty(0, dtype=int)
    result.degenerate = _looks_unbounded(result, sd, spread, spec.estimate_df)
    if result.degenerate and result.converged:
        # A maximum at the boundary of an unbounded likelihood is no answer.
        result.converged = False
        result.message = "df or the scale matrix ran to its limit"
    result.model = TModel(rep, result.mean, result.factor, result.df)
    return result


def _looks_unbounded(result, sd, spread, estimate_df):
    """Whether the fit ran into an unbounded likelihood (rows that coincide
    or lie in a subspace): an estimated ``df`` at its lower bound (a fixed
    one is the user's), a feature's scale collapsed far below its robust
    spread, or (triangular) a conditional spread far below it: below
    ``1e-2`` of the robust spread if the fit did not converge, below ``1e-8``
    of the feature's scale (a scale matrix singular to working precision)
    if it did, since strongly correlated features have small conditional
    spreads at a proper maximum."""
    at_floor = estimate_df and result.df <= 1.01 * DF_MIN
    if at_floor or np.any(sd < 1e-2 * spread):
        return True
    if isinstance(result.factor, tuple):
        return False
    conditional = np.abs(np.diag(result.factor))
    if not result.converged:
        return bool(np.any(conditional < 1e-2 * spread))
    return bool(np.any(conditional < 1e-8 * sd))


def check_factor_rank(source, n_factors, trace_coef):
    """Raise if the rows cannot determine the factor t: the normal factor
    model needs ``n_factors < n - 1`` rows of positive weight, the t one row
    more for its degrees of freedom (the full t needs more rows than
    features)."""
    if trace_coef > 0:
        return
    w = source.sample_weight
    if w is None:
        n_rows = source.n_samples
    elif is_dask_array(w):
        return  # counted on the workers would cost a pass; the fit checks
    else:
        n_rows = int(np.count_nonzero(np.asarray(w)))
    if n_factors >= n_rows - 2:
        raise NotDeterminedError(
            f"n_factors={n_factors} is not below n_samples - 2 with "
            f"n_samples={n_rows} rows of positive weight: the factor t "
            "(location, factors and degrees of freedom) would reproduce the "
            "rows exactly and its likelihood is unbounded. Set n_factors "
            "below n_samples - 2, or reg_covar > 0 or shrinkage > 0, or pass "
            "more rows."
        )
