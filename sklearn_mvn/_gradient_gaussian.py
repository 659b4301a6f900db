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

from ._base import BaseDensity
from ._likelihoods import make_objective
from ._representations import make_representation
from ._solve import solve
from ._validation import Integral, Interval, Real, StrOptions


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

    def _representation(self, n_features):
        return make_representation(self.covariance_type, n_features)

    def _covariance_params(self):
        return self.factor_

    def _solve(self, stats, start, compare_pilot):
        representation = self._representation(stats.n_features)
        objective = make_objective(
            stats,
            representation,
            shrinkage=self.shrinkage,
            reg_covar=self.reg_covar,
        )
        return solve(
            objective,
            representation,
            start=start,
            compare_pilot=compare_pilot,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            name=type(self).__name__,
        )
