"""GradientGaussian: maximum-likelihood multivariate normal by gradient descent."""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import warnings
from functools import reduce

import numpy as np
from scipy.linalg import cholesky
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._dask import dask_score_samples, dask_stats, is_dask_array
from ._gradients import (
    log_density,
    nll_grad_stats,
    penalty_stats,
    squared_mahalanobis,
)
from ._missing import (
    MissingObjective,
    PatternStats,
    check_missing,
    conditional_fill,
    marginal_log_density,
    marginal_mahalanobis,
    warn_unobserved_pairs,
    whitened_objective,
)
from ._optimize import FactorStructure, minimize_nll
from ._stats import (
    SufficientStats,
    compute_stats,
    inverse_lower,
    multiply_lower,
    solve_lower,
)
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_numeric_input,
    check_sample_weight,
)

_EPS = np.finfo(np.float64).eps
# L-BFGS-B iterations between re-whitenings of the missing-data problem.
_CYCLE_ITER = 10
# EM steps at most that polish a missing-data fit below round-off.
_POLISH_STEPS = 30


# ---------------------------------------------------------------------------
# Pilot covariance and preconditioner
# ---------------------------------------------------------------------------


def _singular_error(n_samples, n_features, detail):
    return ValueError(
        f"The covariance is singular ({detail}; n_samples={n_samples}, "
        f"n_features={n_features}): this happens with a single sample, fewer "
        "samples than features, or constant or collinear features. Set "
        "reg_covar > 0 or shrinkage > 0 (shrinkage needs at least one "
        "non-constant feature), or remove the redundant features."
    )


# Variances below this are subnormal or close to it: their square roots and
# inverses lose precision or overflow.
_TINY_VARIANCE = 1e4 * np.finfo(np.float64).tiny


def _check_stats_range(stats):
    """Raise a ValueError if the statistics over- or underflowed float64.

    The covariance of data whose magnitude is beyond about 1e150 (or whose
    spread is below about 1e-151) is not representable in float64.
    """
    if not (np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.scatter))):
        raise ValueError(
            "The mean or covariance of X overflows float64: the values of X are "
            "too large in magnitude (the squared spread must stay below 1e308). "
            "Rescale X, e.g. divide it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )
    variances = np.diag(stats.scatter) / stats.weight_sum
    tiny = np.flatnonzero((variances > 0) & (variances < _TINY_VARIANCE))
    if tiny.size:
        raise ValueError(
            f"The variance of feature(s) {tiny[:10].tolist()} is below "
            f"{_TINY_VARIANCE:.0e}, too small to be represented accurately in "
            "float64. Rescale X, e.g. multiply it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )


def _preconditioner(pilot, mean, structure, n_samples):
    """Lower-triangular ``chol`` with the structure of the model.

    ``chol chol^T`` is the pilot covariance restricted to the structure; it is
    computed from the correlation matrix so that feature scales do not affect
    its accuracy. Raises a ValueError when the pilot is singular.
    """
    n_features = structure.n_features
    variances = np.diag(pilot).copy()
    # The statistics give a constant feature a variance of 0 (with weights, a
    # residue of order eps^2 (n eps mean)^2, far below the floor); the floor
    # also flags spreads within a few units in the last place of the mean,
    # which carry no information and cannot be whitened accurately.
    floor = (8.0 * _EPS * np.abs(mean)) ** 2
    if structure.covariance_type == "spherical":
        var = float(np.mean(variances))
        if not var > float(np.mean(floor)):
            raise _singular_error(n_samples, n_features, "all features are constant")
        return np.sqrt(var) * np.eye(n_features)
    constant = np.flatnonzero(~(variances > floor))
    if constant.size:
        detail = f"zero variance in feature(s) {constant[:10].tolist()}"
        if constant.size > 10:
            detail += f" and {constant.size - 10} more, {constant.size} in total"
        detail += (
            "; sklearn.feature_selection.VarianceThreshold removes constant features"
        )
        magnitude = np.abs(mean[constant])
        if np.all((magnitude > 0) & (magnitude < 1e-150)):
            detail += " (values below 1e-154 square to 0 in float64: rescale X)"
        raise _singular_error(n_samples, n_features, detail)
    scale = np.sqrt(variances)
    if structure.covariance_type == "diag":
        return np.diag(scale)
    corr = pilot / np.outer(scale, scale)
    try:
        chol_corr = cholesky(corr, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        chol_corr = None
    if chol_corr is None or np.min(np.diag(chol_corr)) ** 2 <= (
        1e3 * n_features * _EPS
    ):
        raise _singular_error(
            n_samples, n_features, "the features are linearly dependent"
        )
    return scale[:, np.newaxis] * chol_corr


def _polish(objective, structure, mean, factor, tol, factorize):
    """EM steps on the missing-data objective until the gradient meets ``tol``.

    The E-step is the objective's expected statistics merged with the
    penalties; the M-step their moments restricted to the structure (the
    optimum of the penalised complete-data objective). The gradient is taken
    in coordinates whitened at the current point, as the optimiser's.
    Returns the last point, its objective value and whether ``tol`` was met.
    """
    converged = False
    for _ in range(_POLISH_STEPS):
        total, entropy = objective.total_stats(mean, factor)
        whitened = total.whitened(mean, factor)
        value, grad_mean, grad_factor = nll_grad_stats(
            whitened, np.zeros_like(mean), np.eye(mean.shape[0])
        )
        grad = max(
            np.max(np.abs(grad_mean)),
            np.max(np.abs(structure.restrict_grad(grad_factor))),
        )
        # whitened value + log|det factor| * weight = value at (mean, factor)
        value += total.weight_sum * np.sum(np.log(np.diag(factor))) - entropy
        if grad <= tol:
            converged = True
            break
        mean = total.mean
        factor = factorize(total.scatter / total.weight_sum, mean)
    return mean, factor, value, converged


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------


class GradientGaussian(DensityMixin, BaseEstimator):
    """Multivariate normal density fitted by gradient-based maximum likelihood.

    The model is ``N(mean, S)`` with ``S = Lambda Lambda^T``. ``fit`` minimises
    the mean negative log-likelihood (plus the optional penalties) over the mean
    and the factor ``Lambda`` with L-BFGS-B, using the analytic gradients of
    J. Rennie's note "Gradient Calculations for the Mean, Covariance Matrix
    Parameterization of the Multivariate Normal" (2006). The data enter only
    through their sufficient statistics (weight sum, weighted mean, weighted
    scatter), computed in one chunked pass, so each optimiser iteration costs
    O(d^3) whatever the number of samples.

    ``Lambda`` is lower triangular with a positive diagonal (identifiable). The
    optimiser works in coordinates whitened by the Cholesky factor of a pilot
    covariance (the regularised moment estimate), so its convergence does not
    depend on feature scales or on correlation between features. It starts at
    the pilot (or, with ``warm_start``, at the previous solution); for complete
    data the pilot is already the stationary point, which the optimiser
    certifies (``n_iter_`` is then 0).

    Because the statistics merge exactly, :meth:`partial_fit` streams chunks
    of rows into the same model that :meth:`fit` gives on their
    concatenation, and :meth:`fit` and :meth:`partial_fit` accept a
    ``dask.array.Array``, whose statistics are computed block by block on the
    Dask workers (install the ``dask`` extra).

    Missing values (NaN, assumed missing at random) are supported: ``fit``
    maximises the likelihood of each row's observed entries (the marginal
    normal of those entries) with the same gradients, working on statistics
    per missingness pattern; ``score_samples`` and ``score`` use the same
    marginal densities, and :meth:`impute` fills each missing entry with its
    conditional expectation given the row's observed entries.

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical'}, default='full'
        Structure of ``Lambda``: lower triangular (any covariance), diagonal
        (independent features) or ``c * I`` (one variance for all features).
        ``covariance_`` is the full ``(n_features, n_features)`` matrix for
        every type.

    shrinkage : float, default=0.0
        Weight ``alpha`` in [0, 1] of a conjugate (normal-inverse-Wishart) prior
        centred on the scaled identity ``tau I``, ``tau = tr(S_ML) / d``: the
        objective is ``(1 - alpha)`` times the mean negative log-likelihood plus
        ``alpha`` times the negative log-likelihood of one pseudo-observation
        with the data's mean and covariance ``tau I``. Its optimum is
        ``(1 - alpha) S_ML + alpha tau I``, the estimate of
        :class:`~sklearn.covariance.ShrunkCovariance`. With ``alpha > 0`` the
        fit works with fewer samples than features.

    reg_covar : float, default=0.0
        Non-negative penalty ``reg_covar / 2 * tr(S^{-1})`` (the trace part of
        an inverse-Wishart prior). Its optimum adds ``reg_covar`` to the
        diagonal of the covariance, as ``reg_covar`` of
        :class:`~sklearn.mixture.GaussianMixture` does (whose default is 1e-6).
        The default 0 gives the exact maximum-likelihood estimate, which is
        invariant to feature scales; set it (or ``shrinkage``) above 0 when
        the covariance is singular.

    max_iter : int, default=200
        Maximum number of L-BFGS-B iterations.

    tol : float, default=1e-8
        Convergence tolerance on the largest entry of the gradient of the mean
        negative log-likelihood in whitened coordinates (where it is free of
        the data's units, and where the error of the estimate in units of the
        data's standard deviations is of the order of the gradient). A line
        search that can no longer decrease the objective within floating-point
        resolution also counts as converged if the gradient is within
        ``100 * tol``. With missing values the objective is accurate to
        round-off only: when the line search stalls at its noise floor,
        ``10 sqrt(eps |J|)``, EM steps (which need no objective values) polish
        the solution until the gradient meets ``tol``.

    verbose : int, default=0
        If positive, print the objective and the gradient norm at every
        iteration.

    warm_start : bool, default=False
        If True and the estimator is already fitted, start from the previous
        solution.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Estimated mean.

    covariance_ : ndarray of shape (n_features, n_features)
        Estimated covariance ``factor_ @ factor_.T``.

    precision_ : ndarray of shape (n_features, n_features)
        Inverse of ``covariance_``, computed from the inverse of ``factor_``.

    factor_ : ndarray of shape (n_features, n_features)
        Lower-triangular factor ``Lambda`` with positive diagonal.

    n_iter_ : int
        Number of L-BFGS-B iterations run.

    converged_ : bool
        Whether the gradient tolerance was reached.

    objective_ : float
        Final value of the minimised objective: the mean negative
        log-likelihood per unit weight, plus the penalty terms.

    history_ : list of tuple of (float, float)
        Objective (in whitened coordinates, where it differs from
        ``objective_`` by a constant) and largest gradient entry at the
        starting point and after every iteration.

    n_samples_seen_ : int
        Number of rows (of any weight) in the statistics the model was fitted
        on: those of the last :meth:`fit` plus any later :meth:`partial_fit`
        chunks.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.covariance.EmpiricalCovariance : Closed-form maximum-likelihood
        covariance.
    sklearn.covariance.ShrunkCovariance : Covariance with shrinkage.
    sklearn.mixture.GaussianMixture : Mixture of Gaussians fitted by EM.
    scipy.stats.multivariate_normal : Multivariate normal distribution.
    sklearn.neighbors.KernelDensity : Non-parametric density estimator with the
        same ``score_samples`` and ``sample`` interface.
    sklearn.impute.IterativeImputer : Imputation by chained regressions.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mvn import GradientGaussian
    >>> rng = np.random.RandomState(0)
    >>> X = rng.standard_normal((500, 2)) @ [[1.0, 0.8], [0.0, 1.2]] + [0.0, 1.0]
    >>> model = GradientGaussian().fit(X)
    >>> model.mean_.round(2)
    array([-0.07,  0.92])
    >>> np.allclose(model.covariance_, np.cov(X.T, bias=True))
    True
    >>> model.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "covariance_type": [StrOptions({"full", "diag", "spherical"})],
        "shrinkage": [Interval(Real, 0.0, 1.0, closed="both")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        covariance_type="full",
        shrinkage=0.0,
        reg_covar=0.0,
        max_iter=200,
        tol=1e-8,
        verbose=0,
        warm_start=False,
    ):
        self.covariance_type = covariance_type
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the mean and covariance by maximum (penalised) likelihood.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Training data. NaN marks a missing entry; every row needs an
            observed entry, every feature an observed value, and infinite
            values are rejected. A Dask array's statistics are computed on the
            Dask workers, block by block, and never gathered.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; each row's log-likelihood is multiplied by
            its weight, so integer weights equal repeating rows. With a Dask
            ``X`` it may be a Dask array (rechunked to ``X``'s row chunks).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if hasattr(self, "_sufficient_stats"):
            del self._sufficient_stats  # fit starts over, even if it fails
        stats = self._validated_stats(X, sample_weight, reset=True)
        return self._fit_and_keep(stats)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Add a chunk of rows to the data and refit: exact streaming.

        The chunk's statistics are merged into those of all rows seen so far
        (by :meth:`fit` and earlier calls to :meth:`partial_fit`; the first
        call starts from none) with a numerically stable pairwise update, and
        the model is re-optimised from the previous solution, or from the new
        statistics' pilot when that is better, whatever ``warm_start``. After
        any sequence of chunks the model equals :meth:`fit` on their
        concatenation. :meth:`fit` discards the statistics and starts over.

        If the chunk is invalid or the refit fails (for example because the
        rows seen so far have a singular covariance), the chunk is not added:
        the statistics stay as before the call.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            A chunk of training data, with the number of features of the
            previous calls.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the chunk's rows, as in :meth:`fit`; they
            may sum to zero after the first call.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 1], [[1.0, 0.8], [0.8, 2.0]], size=500)
        >>> model = GradientGaussian()
        >>> for chunk in np.array_split(X, 5):
        ...     model = model.partial_fit(chunk)
        >>> model.n_samples_seen_
        500
        >>> np.allclose(model.covariance_, GradientGaussian().fit(X).covariance_)
        True
        """
        first_call = not hasattr(self, "_sufficient_stats")
        stats = self._validated_stats(
            X, sample_weight, reset=first_call, allow_zero_sum=not first_call
        )
        if first_call:
            return self._fit_and_keep(stats)
        return self._fit_and_keep(self._sufficient_stats.merge(stats), continuing=True)

    def _fit_and_keep(self, stats, continuing=False):
        """Fit on the data's statistics, then keep them for ``partial_fit``."""
        self._fit_stats(stats, continuing=continuing)
        self._sufficient_stats = stats
        self.n_samples_seen_ = stats.n_samples
        return self

    def _validated_stats(self, X, sample_weight, reset, allow_zero_sum=False):
        """Validate ``X`` (NumPy or Dask) and ``sample_weight``; their statistics."""
        if is_dask_array(X):
            return dask_stats(
                self,
                X,
                sample_weight,
                reset=reset,
                allow_zero_sum=allow_zero_sum,
                ensure_all_finite=False,
            )
        X = check_numeric_input(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=reset,
            ensure_all_finite=False,
        )
        sample_weight = check_sample_weight(
            sample_weight, X.shape[0], allow_zero_sum=allow_zero_sum
        )
        return compute_stats(X, sample_weight)

    # -- the core: statistics -> objective -> optimiser ----------------------

    def _objective_terms(self, stats):
        """Data term (per unit weight) and penalty terms, as statistics."""
        data = stats.scaled((1.0 - self.shrinkage) / stats.weight_sum)
        penalties = penalty_stats(
            stats, shrinkage=self.shrinkage, reg_covar=self.reg_covar
        )
        return [data, *penalties]

    def _fit_stats(self, stats, continuing=False):
        if isinstance(stats, PatternStats):
            return self._fit_missing(stats, continuing)
        _check_stats_range(stats)
        n_features = stats.n_features
        structure = FactorStructure(self.covariance_type, n_features)
        # The objective is linear in the statistics, so its terms are merged
        # into one set of pseudo-statistics: one O(d^3) evaluation per step.
        total = reduce(SufficientStats.merge, self._objective_terms(stats))
        pilot = total.scatter / total.weight_sum
        chol = _preconditioner(pilot, stats.mean, structure, stats.n_samples)
        shift = stats.mean
        whitened = total.whitened(shift, chol)

        def objective(mean, factor):
            return nll_grad_stats(whitened, mean, factor)

        mean0, factor0 = self._initial_point(
            shift, chol, structure, objective if continuing else None
        )
        self.history_ = []
        result = minimize_nll(
            objective,
            structure,
            mean0,
            factor0,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            history=self.history_,
        )
        # Affine equivariance: the objective in the original coordinates is the
        # whitened one plus W log|det chol| (no O(d^3) re-evaluation).
        return self._set_solution(
            shift + chol @ result.mean,
            multiply_lower(chol, result.factor),
            n_iter=result.n_iter,
            converged=result.status == 0,
            objective=result.value + total.weight_sum * np.sum(np.log(np.diag(chol))),
            result=result,
        )

    def _set_solution(self, mean, factor, *, n_iter, converged, objective, result):
        """Set the fitted attributes; warn if the optimiser did not converge."""
        factor = np.tril(factor)
        self.mean_ = mean
        self.factor_ = factor
        self.covariance_ = factor @ factor.T
        inv = inverse_lower(factor)
        self.precision_ = inv.T @ inv
        self.n_iter_ = n_iter
        self.converged_ = bool(converged)
        self.objective_ = float(objective)
        if not self.converged_:
            warnings.warn(
                f"GradientGaussian did not converge: {result.message} after "
                f"{n_iter} iterations (largest gradient entry "
                f"{result.grad_norm:.3g}, tol={self.tol:g}). Increase max_iter "
                "or tol. With missing values, if the covariance becomes "
                "singular the likelihood may be unbounded (few rows observe all "
                "features): set shrinkage > 0 or reg_covar > 0.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return self

    def _fit_missing(self, stats, continuing=False):
        """Fit on :class:`PatternStats` (data with missing entries).

        The objective is the observed-data likelihood (``_missing``), with the
        penalties built from the available-case moments. It is evaluated in
        feature-wise standardised coordinates (which keep each pattern's
        sub-block apart) and optimised by L-BFGS-B in coordinates whitened by
        the Cholesky factor of a pilot: the available-case (pairwise) moments
        repaired to positive definite.
        """
        n_features = stats.n_features
        structure = FactorStructure(self.covariance_type, n_features)
        weight = stats.weight_sum
        ac_mean, ac_cov, pair_weight = stats.available_case()
        if self.covariance_type == "full" and self.shrinkage == 0.0:
            warn_unobserved_pairs(pair_weight)
        available = SufficientStats(weight, ac_mean, weight * ac_cov, stats.n_samples)
        penalties = penalty_stats(
            available, shrinkage=self.shrinkage, reg_covar=self.reg_covar
        )
        data_scale = (1.0 - self.shrinkage) / weight
        pilot = reduce(
            SufficientStats.merge, [available.scaled(data_scale), *penalties]
        )
        pilot = pilot.scatter / pilot.weight_sum
        diag = FactorStructure("diag", n_features)
        scale = np.diag(
            _preconditioner(np.diag(np.diag(pilot)), ac_mean, diag, stats.n_samples)
        )
        if self.covariance_type == "spherical":
            # One scale for all features keeps c * I spherical.
            scale = np.full(n_features, np.sqrt(np.mean(scale**2)))
        to_std = np.diag(scale)
        objective = MissingObjective(
            stats.standardised(ac_mean, scale),
            [term.whitened(ac_mean, to_std) for term in penalties],
            data_scale,
        )
        # Pairwise moments need not be positive definite: clip the spectrum of
        # the standardised pilot. The gradient optimiser does the rest.
        eigval, eigvec = np.linalg.eigh(pilot / np.outer(scale, scale))
        eigval = np.clip(eigval, 1e-6 * max(eigval[-1], _EPS), None)
        cov_std = (eigvec * eigval) @ eigvec.T
        mean_std = np.zeros(n_features)
        previous_fit = getattr(self, "factor_", None)
        if self.warm_start and previous_fit is not None:
            if previous_fit.shape[0] == n_features:
                mean_std = (self.mean_ - ac_mean) / scale
                cov_std = self.covariance_ / np.outer(scale, scale)
        total_weight = data_scale * weight + sum(t.weight_sum for t in penalties)
        self.history_ = []
        n_iter, previous = 0, np.inf

        def factorize(cov, mean):
            return _preconditioner(cov, mean, structure, stats.n_samples)

        # Cycles of at most _CYCLE_ITER L-BFGS-B iterations, each in
        # coordinates whitened at the current estimate: the pilot of
        # pairwise moments can be a poor preconditioner (strong correlation),
        # and refreshing it keeps the problem near-isotropic. A cycle also
        # ends when L-BFGS-B stops early (e.g. after a trial step to a
        # numerically singular covariance); cycles go on while they make
        # progress.
        for cycle in range(self.max_iter + 1):
            try:
                chol_std = factorize(cov_std, mean_std)
            except (ValueError, np.linalg.LinAlgError):
                if cycle == 0:
                    raise
                break
            shift = ac_mean + scale * mean_std
            chol = scale[:, np.newaxis] * chol_std
            evaluate = whitened_objective(objective, mean_std, chol_std)
            if cycle == 0:
                mean0, factor0 = self._initial_point(
                    shift, chol, structure, evaluate if continuing else None
                )
            else:
                mean0, factor0 = np.zeros(n_features), np.eye(n_features)
            result = minimize_nll(
                evaluate,
                structure,
                mean0,
                factor0,
                max_iter=min(self.max_iter - n_iter, _CYCLE_ITER),
                tol=self.tol,
                verbose=self.verbose,
                history=self.history_,
            )
            n_iter += result.n_iter
            # The observed-data objective is only accurate to round-off, so a
            # line search that stalls with the gradient at its noise floor has
            # converged; a cycle that used up its iterations has not.
            floor = 10.0 * np.sqrt(_EPS * max(1.0, abs(result.value)))
            stalled = result.status != 1
            converged = result.grad_norm <= self.tol or (
                stalled and result.grad_norm <= floor
            )
            # The objective in standardised units, comparable across cycles.
            value = result.value + total_weight * np.sum(np.log(np.diag(chol_std)))
            mean_std = mean_std + chol_std @ result.mean
            factor_std = chol_std @ result.factor
            cov_std = factor_std @ factor_std.T
            if converged or n_iter >= self.max_iter or not value < previous:
                break
            previous = value
        if converged and result.grad_norm > self.tol:
            # The line search stalled at the objective's round-off floor.
            # EM steps need no objective values: they polish the solution
            # until the gradient meets tol.
            mean_std, factor_std, value, converged = _polish(
                objective, structure, mean_std, factor_std, self.tol, factorize
            )
        # Back to original units: for the data, each pattern's observed
        # features' scales; for the penalties, all of them.
        log_scale = np.log(scale)
        penalty_weight = sum(term.weight_sum for term in penalties)
        return self._set_solution(
            ac_mean + scale * mean_std,
            scale[:, np.newaxis] * factor_std,
            n_iter=n_iter,
            converged=converged,
            objective=value
            + data_scale * float(stats.pattern_weight @ (stats.observed @ log_scale))
            + penalty_weight * float(np.sum(log_scale)),
            result=result,
        )

    def _initial_point(self, shift, chol, structure, objective=None):
        """Starting mean and factor in whitened coordinates.

        The pilot, or with ``warm_start`` the previous solution. ``partial_fit``
        passes the ``objective`` of the merged statistics: it continues from
        the previous solution unless the pilot has a lower objective (for
        complete data the pilot is the optimum).
        """
        n_features = structure.n_features
        pilot = np.zeros(n_features), np.eye(n_features)
        continuing = objective is not None
        if (self.warm_start or continuing) and hasattr(self, "factor_"):
            if self.factor_.shape[0] != n_features:
                raise ValueError(
                    f"warm_start=True but X has {n_features} features while the "
                    f"previous fit had {self.factor_.shape[0]}; set "
                    "warm_start=False to fit from scratch."
                )
            mean0 = solve_lower(chol, self.mean_ - shift)
            factor0 = structure.project(np.tril(solve_lower(chol, self.factor_)))
            if continuing and objective(*pilot)[0] < objective(mean0, factor0)[0]:
                return pilot
            return mean0, factor0
        # The pilot itself: whitened mean 0 and factor I.
        return pilot

    def _n_parameters(self):
        """Number of free parameters of the fitted structure."""
        return FactorStructure(self.covariance_type, self.n_features_in_).n_parameters()

    # -- prediction ----------------------------------------------------------

    def score_samples(self, X):
        """Log-density of each sample under the fitted normal.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Samples; NaN marks a missing entry (each row needs an observed
            entry).

        Returns
        -------
        log_density : ndarray or dask.array.Array of shape (n_samples,)
            ``log N(x | mean_, covariance_)`` of each row: a true log-density
            (higher means more typical), usable as an anomaly score. For a row
            with missing entries (NaN), the log-density of its observed
            entries under the fitted marginal normal of those entries. Lazy (a
            Dask array computed block by block) when ``X`` is a Dask array.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return dask_score_samples(self, X)
        X = self._validate_predict_input(X)
        log_dens = log_density(X, self.mean_, self.factor_)
        # X is searched for NaN (missing entries) or infinity only if the
        # result shows some: complete data are read once.
        if not np.all(np.isfinite(log_dens)) and check_missing(X):
            return marginal_log_density(X, self.mean_, self.factor_)
        return log_dens

    def _validate_predict_input(self, X):
        """Validated ``X`` for the predict-side methods (NaN allowed)."""
        X = check_numeric_input(X)
        return validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=False,
            ensure_all_finite=False,
        )

    def impute(self, X):
        """Replace each missing entry by its conditional expectation.

        Under the fitted normal, the missing entries ``m`` of a row given its
        observed entries ``o`` have the mean
        ``mean_m + S_mo S_oo^{-1} (x_o - mean_o)`` (the best linear predictor,
        and the conditional expectation). Observed entries are returned
        unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with NaN at the missing entries; every row needs at least
            one observed entry.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A float64 copy of ``X`` without NaN.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 0], [[1.0, 0.9], [0.9, 1.0]], size=500)
        >>> X[rng.rand(500) < 0.2, 1] = np.nan
        >>> model = GradientGaussian().fit(X)
        >>> filled = model.impute([[2.0, np.nan]])
        >>> expected = model.mean_[1] + (
        ...     model.covariance_[1, 0] / model.covariance_[0, 0]
        ... ) * (2.0 - model.mean_[0])
        >>> bool(np.isclose(filled[0, 1], expected))
        True
        """
        check_is_fitted(self)
        X = self._validate_predict_input(X)
        check_missing(X)
        return conditional_fill(X, self.mean_, self.factor_)[0]

    def score(self, X, y=None):
        """Mean log-likelihood per sample of ``X``.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Samples.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples` (as
            :meth:`sklearn.mixture.GaussianMixture.score`), so scores of folds
            of different sizes compare fairly. A number also for a Dask ``X``
            (the mean is computed by Dask).
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted normal.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw (at least 1).

        random_state : int, RandomState instance or None, default=None
            Seed or generator of the standard normal draws ``Z``; pass an int
            for reproducible output.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            ``mean_ + Z @ factor_.T``, as :meth:`sklearn.neighbors.KernelDensity.sample`
            returns an array (not a tuple like
            :meth:`sklearn.mixture.GaussianMixture.sample`).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 1], [[1.0, 0.8], [0.8, 2.0]], size=500)
        >>> model = GradientGaussian().fit(X)
        >>> model.sample(3, random_state=0).shape
        (3, 2)
        >>> draws = model.sample(100_000, random_state=0)
        >>> bool(np.abs(np.cov(draws.T) - model.covariance_).max() < 0.05)
        True
        """
        check_is_fitted(self)
        if (
            not isinstance(n_samples, Integral)
            or isinstance(n_samples, bool)
            or n_samples < 1
        ):
            raise ValueError(
                f"n_samples must be an integer >= 1, got {n_samples!r}; pass the "
                "number of samples to draw."
            )
        rng = check_random_state(random_state)
        draws = rng.standard_normal((int(n_samples), self.mean_.shape[0]))
        return self.mean_ + draws @ self.factor_.T

    def mahalanobis(self, X):
        """Squared Mahalanobis distances of samples to the fitted mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; for a row with NaN (missing entries) the distance is taken
            in the marginal normal of its observed entries.

        Returns
        -------
        dist : ndarray of shape (n_samples,)
            ``(x - mean_)^T covariance_^{-1} (x - mean_)`` for each row (squared,
            as :meth:`sklearn.covariance.EmpiricalCovariance.mahalanobis`),
            computed by a triangular solve with ``factor_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.covariance import EmpiricalCovariance
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 1], [[1.0, 0.8], [0.8, 2.0]], size=500)
        >>> model = GradientGaussian().fit(X)
        >>> dist = model.mahalanobis(X)
        >>> np.allclose(dist, EmpiricalCovariance().fit(X).mahalanobis(X))
        True
        >>> round(float(dist.mean()), 6)  # the MLE's mean is exactly n_features
        2.0
        """
        check_is_fitted(self)
        X = self._validate_predict_input(X)
        dist = squared_mahalanobis(X, self.mean_, self.factor_)
        # As in score_samples: X is searched for NaN or infinity only if the
        # result shows some, so complete data are read once.
        if not np.all(np.isfinite(dist)) and check_missing(X):
            return marginal_mahalanobis(X, self.mean_, self.factor_)
        return dist

    def bic(self, X):
        """Bayesian information criterion of the fitted model on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        bic : float
            ``-2 * score(X) * n_samples + n_parameters * log(n_samples)``, the
            definition of :meth:`sklearn.mixture.GaussianMixture.bic`, with the
            number of free parameters of the fitted ``covariance_type``
            (``n_features`` for the mean plus ``n_features * (n_features + 1) / 2``,
            ``n_features`` or 1 for the covariance). Lower is better.

        See Also
        --------
        aic : Akaike information criterion.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 1], [[1.0, 0.8], [0.8, 2.0]], size=500)
        >>> full = GradientGaussian().fit(X)
        >>> diag = GradientGaussian(covariance_type="diag").fit(X)
        >>> bool(full.bic(X) < diag.bic(X))  # the correlation is worth its parameter
        True
        """
        log_density = self.score_samples(X)
        n_samples = log_density.shape[0]
        return -2.0 * float(np.mean(log_density)) * n_samples + (
            self._n_parameters() * np.log(n_samples)
        )

    def aic(self, X):
        """Akaike information criterion of the fitted model on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        aic : float
            ``-2 * score(X) * n_samples + 2 * n_parameters``, the definition of
            :meth:`sklearn.mixture.GaussianMixture.aic`, with the number of free
            parameters of the fitted ``covariance_type``. Lower is better.

        See Also
        --------
        bic : Bayesian information criterion.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_mvn import GradientGaussian
        >>> rng = np.random.RandomState(0)
        >>> X = rng.multivariate_normal([0, 1], [[1.0, 0.8], [0.8, 2.0]], size=500)
        >>> model = GradientGaussian().fit(X)
        >>> mixture = GaussianMixture(n_components=1, reg_covar=0).fit(X)
        >>> bool(np.isclose(model.aic(X), mixture.aic(X), rtol=1e-10))
        True
        """
        log_density = self.score_samples(X)
        n_samples = log_density.shape[0]
        return -2.0 * float(np.mean(log_density)) * n_samples + (
            2.0 * self._n_parameters()
        )
