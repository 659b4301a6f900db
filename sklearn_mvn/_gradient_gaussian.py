"""GradientGaussian: maximum-likelihood multivariate normal by gradient descent.

The estimator is declarative: its parameters, their constraints and its
documentation. ``fit`` is the shared one of :class:`~._base.BaseDensity`:
validate, compute statistics (:mod:`._stats`, :mod:`._missing`), solve
(:mod:`._solve` on the normal objective of :mod:`._likelihoods` over a
covariance representation of :mod:`._representations`), set the fitted
attributes from the result.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from ._base import BaseDensity
from ._data.patterns import PatternStats, check_missing, unbounded_likelihood
from ._likelihoods.normal import FactorObjective, RowSource, make_objective
from ._representations import make_representation, singular_error
from ._solve.driver import solve
from ._solve.factor import solve_factor
from ._validation import Integral, Interval, Real, StrOptions, warn_at_caller

# The factor model reads X in chunked passes instead of building the d x d
# scatter when d exceeds this and the scatter would take more than a quarter
# of X's float64 size (see ``GradientGaussian``).
_FACTOR_STATS_FEATURES = 2048


# Conditional standard deviation (relative to the standard deviation) below
# which an unconverged missing-value fit is taken to collapse.
_COLLAPSED = 1e-5


def _factor_uses_rows(n_samples, n_features):
    """Whether ``fit`` of the factor model reads X in passes (no d x d scatter)."""
    return n_features > _FACTOR_STATS_FEATURES and 4 * n_features > n_samples


def _check_collapsed(factor, stats):
    """Raise when an unconverged missing-value fit drives a feature's
    conditional variance (given the features before it) towards zero.

    The likelihood is then unbounded: the feature is an exact linear
    combination of others on every row that observes them all (e.g. a
    duplicated column), and rows missing some of them keep the likelihood
    finite while the covariance becomes singular. A model returned there
    would score and impute with a singular covariance.
    """
    ratio = np.abs(np.diag(factor)) / np.linalg.norm(factor, axis=1)
    collapsed = np.flatnonzero(ratio < _COLLAPSED)
    if collapsed.size:
        raise singular_error(
            stats.n_samples,
            stats.n_features,
            f"the likelihood of these data is unbounded: feature(s) "
            f"{collapsed[:10].tolist()} are exact linear combinations of earlier "
            "features on every row that observes them all, and the fit drives "
            f"their conditional standard deviation to {ratio.min():.1e} of their "
            "standard deviation",
        )


class GradientGaussian(BaseDensity):
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

    ``covariance_type='factor'`` fits the factor model ``S = W W^T +
    diag(psi)`` with ``n_factors`` columns in ``W`` (the model of
    :class:`~sklearn.decomposition.FactorAnalysis`) through the Woodbury
    identity: no ``d x d`` matrix is inverted or factorised, an iteration
    costs O(d^2 k) on the statistics, and when a ``d x d`` scatter is not
    affordable (``n_features > 2048`` and ``4 n_features > n_samples``)
    ``fit`` reads ``X`` in chunked passes instead, O(n d k) per iteration
    (see the user guide's "factor model" section).

    Missing values (NaN, assumed missing at random) are supported: ``fit``
    maximises the likelihood of each row's observed entries (the marginal
    normal of those entries) with the same gradients, working on statistics
    per missingness pattern; ``score_samples`` and ``score`` use the same
    marginal densities, and :meth:`impute` fills each missing entry with its
    conditional expectation given the row's observed entries.

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical', 'factor'}, default='full'
        Structure of ``Lambda``: lower triangular (any covariance), diagonal
        (independent features), ``c * I`` (one variance for all features), or
        the factor model ``S = W W^T + diag(psi)`` with ``W`` of shape
        ``(n_features, n_factors)`` (the rectangular ``Lambda = [W |
        diag(sqrt(psi))]``; see the user guide's "factor model" section).
        ``covariance_`` is the full ``(n_features, n_features)`` matrix for
        every type (for ``'factor'`` computed on access; fitting and scoring
        never form it).

    n_factors : int, default=None
        Number of factors ``k`` of ``covariance_type='factor'``, in
        ``[1, n_features - 1]``; ``None`` means ``min(10, n_features - 1)``.
        Ignored by the other types. Choose it by cross-validated
        log-likelihood (``GridSearchCV`` over ``n_factors``) or by
        :meth:`bic`. It must stay below the rank of the data (``n_samples -
        1``): an error says so otherwise.

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
        round-off only: when the line search stalls at its noise floor (or
        makes slow progress), Newton steps, which need no objective values,
        take the gradient below ``tol``; only then has the fit converged.

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
        Lower-triangular factor ``Lambda`` with positive diagonal (not for
        ``'factor'``).

    components_ : ndarray of shape (n_factors, n_features)
        ``'factor'`` only: the loadings ``W^T``, as
        :class:`~sklearn.decomposition.FactorAnalysis` names them, in a
        canonical rotation: the columns of ``diag(psi)^{-1/2} W`` are
        orthogonal and ordered by decreasing norm, and each one's largest
        entry is positive.

    noise_variance_ : ndarray of shape (n_features,)
        ``'factor'`` only: the noise variances ``psi``.

    n_iter_ : int
        Number of iterations run (at most ``max_iter``; with missing values
        they include the EM steps at the start and the value-free and Newton
        steps at the end). When the factor
        model restarts out of a Heywood or weak-factor basin, each run may
        take ``max_iter`` iterations and ``n_iter_`` is the winning run's, as
        for the initialisations of :class:`~sklearn.mixture.GaussianMixture`.

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
        "covariance_type": [StrOptions({"full", "diag", "spherical", "factor"})],
        "n_factors": [Interval(Integral, 1, None, closed="left"), None],
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
        n_factors=None,
        shrinkage=0.0,
        reg_covar=0.0,
        max_iter=200,
        tol=1e-8,
        verbose=0,
        warm_start=False,
    ):
        self.covariance_type = covariance_type
        self.n_factors = n_factors
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start

    def _representation(self, n_features):
        if self.covariance_type == "factor":
            return make_representation(
                "factor", n_features, self._n_factors_for(n_features)
            )
        return make_representation(self.covariance_type, n_features)

    def _covariance_params(self):
        if "components_" in self.__dict__:
            return self.components_.T, self.noise_variance_
        return self.factor_

    # -- covariance_ and precision_ (computed on access for 'factor') ----------

    def _dense_on_access(self, name):
        if "components_" not in self.__dict__:
            return super()._dense_on_access(name)
        rep = make_representation(
            "factor", self.components_.shape[1], self.components_.shape[0]
        )
        return getattr(rep, name)(self._covariance_params())

    # -- fitting ---------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        # Only fit may read X in passes (partial_fit and Dask keep statistics).
        self._rows_allowed = True
        try:
            return super().fit(X, y, sample_weight)
        finally:
            self.__dict__.pop("_rows_allowed", None)

    fit.__doc__ = BaseDensity.fit.__doc__

    def _validated_stats(self, X, sample_weight, reset, allow_zero_sum=False):
        if (
            self.covariance_type == "factor"
            and self.__dict__.get("_rows_allowed")
            and isinstance(X, np.ndarray)
            and X.ndim == 2
            and _factor_uses_rows(*X.shape)
        ):
            from sklearn.utils.validation import validate_data

            from ._validation import check_numeric_input, check_sample_weight

            X = validate_data(
                self,
                check_numeric_input(X),
                dtype=[np.float64, np.float32],
                reset=reset,
                ensure_all_finite=False,
            )
            sample_weight = check_sample_weight(sample_weight, X.shape[0])
            if check_missing(X):
                return PatternStats.from_array(X, sample_weight)
            return RowSource(X, sample_weight)
        return super()._validated_stats(X, sample_weight, reset, allow_zero_sum)

    def _previous_solution(self, n_features, reason):
        if self.covariance_type != "factor" or "components_" not in self.__dict__:
            return super()._previous_solution(n_features, reason)
        if self.mean_.shape[0] != n_features:
            return super()._previous_solution(n_features, reason)
        return self.mean_, (self.components_.T, self.noise_variance_)

    def _set_fitted(self, result, stats):
        # Attributes of another covariance type from an earlier fit go.
        stale = (
            ("factor_", "_covariance_value_", "_precision_value_")
            if self.covariance_type == "factor"
            else ("components_", "noise_variance_")
        )
        for name in stale:
            self.__dict__.pop(name, None)
        super()._set_fitted(result, stats)
        if isinstance(stats, RowSource):
            # Statistics are not kept for passes over X (it would keep X).
            self.__dict__.pop("_sufficient_stats", None)

    def _solve(self, stats, start, compare_pilot):
        representation = self._representation(stats.n_features)
        if self.covariance_type == "factor":
            return self._solve_factor(representation, stats, start, compare_pilot)
        if start is not None and isinstance(start[1], tuple):
            start = None  # a factor-model solution cannot start another type
        objective = make_objective(
            stats,
            representation,
            shrinkage=self.shrinkage,
            reg_covar=self.reg_covar,
        )
        result = solve(
            objective,
            representation,
            start=start,
            compare_pilot=compare_pilot,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            name=type(self).__name__,
        )
        if (
            not result.converged
            and isinstance(stats, PatternStats)
            and self.covariance_type == "full"
            and not objective.regularised
        ):
            result.advice = unbounded_likelihood(stats)
            if result.advice is None:
                _check_collapsed(result.factor, stats)
        return result

    def _solve_factor(self, representation, stats, start, compare_pilot):
        k = representation.n_factors
        n_samples = stats.n_samples
        if k >= n_samples - 1 and self.shrinkage == 0.0 and self.reg_covar == 0.0:
            raise ValueError(
                f"n_factors={k} is not below the rank of the data (at most "
                f"n_samples - 1 with n_samples={n_samples}): the factors would "
                "reproduce "
                "the sample exactly and the likelihood is unbounded. Set "
                "n_factors below n_samples - 1, or shrinkage > 0."
            )
        if start is not None and not isinstance(start[1], tuple):
            start = None  # a solution of another covariance type
        objective = FactorObjective(
            stats, shrinkage=self.shrinkage, reg_covar=self.reg_covar, n_factors=k
        )
        result = solve_factor(
            objective,
            k,
            start=start,
            compare_pilot=compare_pilot,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            name=type(self).__name__,
        )
        # Constant features are Heywood cases by construction (documented, no
        # warning: within a cross-validation fold the user cannot act on it).
        heywood = np.setdiff1d(result.heywood, objective.constant_features)
        self._warn_heywood(heywood, unbounded_error=True)
        weak = np.flatnonzero(result.factor_scales < 1e-4)
        if weak.size:
            warn_at_caller(
                f"{type(self).__name__}: {weak.size} of the n_factors={k} factors "
                "carry no variance (the data support fewer factors); reduce "
                f"n_factors to {k - weak.size} or fewer.",
                UserWarning,
            )
        return result
