"""GradientStudentT: maximum-likelihood multivariate Student-t density.

The estimator shares validation, all-or-nothing fitting, the predict-side methods and
``bic``/``aic`` with :class:`~._base.BaseDensity`, the covariance representation with
:mod:`._representations` and the convergence rule with :mod:`._solve`. The t likelihood
has no sufficient statistics, so ``fit`` reads the data once per iteration
(:mod:`._likelihoods.student_t` for NumPy, :mod:`._data.dask` for
Dask; the fitter is :mod:`._solve.student_t`) and has no ``partial_fit``."""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.stats import f as f_dist
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseDensity, _AllOrNothing, dense_attribute
from ._data.dask import _check_dask_X, is_dask_array
from ._data.passes import pass_source
from ._likelihoods.student_t import log_chi2_draws, scale_draws, t_sums
from ._likelihoods.student_t_factor import t_factor_sums
from ._likelihoods.student_t_model import TModel, covariance_from_shape
from ._linalg import precision_from_factor
from ._representations import make_representation
from ._robust.trimming import trimmed_fit
from ._solve.student_t_fit import TSpec, fit_student_t, robust_scale
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_numeric_input,
    check_sample_weight,
    warn_at_caller,
)

# Rows of the subsample that gives the robust start.
_START_ROWS = 8192


class GradientStudentT(BaseDensity):
    """Multivariate Student-t density fitted by maximum likelihood.

    The model is the ``d``-variate t with location ``mean_``, scale matrix
    ``shape_ = Lambda Lambda^T`` and ``df_`` degrees of freedom ``nu``: a
    normal whose scale is divided by an independent ``sqrt(chi^2_nu / nu)``.
    Small ``nu`` means heavy tails, so a few gross outliers barely move the
    fit (each row's pull is weighted by ``(nu + d) / (nu + delta)``, with
    ``delta`` its squared Mahalanobis distance); as ``nu -> inf`` the t
    becomes the normal of :class:`GradientGaussian`. ``score_samples`` is the
    t log-density, a robust anomaly score.

    ``fit`` maximises the likelihood over ``(mean, Lambda, nu)``. The t has
    no sufficient statistics: every iteration is one chunked pass over ``X``
    (no temporary of the size of ``X``) that returns the objective and its
    whole gradient (J. Rennie's gradient of the normal with each row weighted
    by ``(nu + d) / (nu + delta)``, and the digamma gradient in ``nu``). It
    starts at the coordinate-wise median and MAD, runs ECME iterations
    (Liu & Rubin, 1995) while they make fast progress, and finishes with
    L-BFGS-B in coordinates whitened at the last ECME point, until the
    largest gradient entry is below ``tol``.

    Missing values (NaN, missing at random) use the exact observed-data
    likelihood: the marginal of a t on a row's observed entries is a t with
    the same ``nu``. Sample weights multiply each row's log-likelihood
    (integer weights equal repeated rows). A ``dask.array.Array`` is fitted
    block by block on the Dask workers, one pass per iteration (persist it).

    Parameters
    ----------
    df : 'auto' or float, default='auto'
        Degrees of freedom ``nu``: ``'auto'`` estimates them by maximum
        likelihood (within ``[0.01, 1e6]``; ``1e6`` means the data look
        normal), a positive float fixes them (``1`` is the multivariate
        Cauchy).

    covariance_type : {'full', 'diag', 'spherical', 'factor'}, default='full'
        Structure of ``Lambda``: lower triangular, diagonal or ``c * I``;
        or the factor model ``shape_ = W W^T + diag(psi)`` with ``W`` of shape
        ``(n_features, n_factors)``, used through the Woodbury identity (no
        ``d x d`` matrix is formed while fitting or scoring; ``shape_``,
        ``covariance_`` and ``precision_`` are computed on access).

    n_factors : int, default=None
        Number of factors ``k`` of ``covariance_type='factor'``, in
        ``[1, n_features - 1]``; None means ``min(10, n_features - 1)``.
        Ignored by the other types.

    shrinkage : float, default=0.0
        Weight ``alpha`` in [0, 1] of an inverse-Wishart prior on the scale
        matrix centred on ``tau I``, ``tau`` the mean squared robust scale
        (``1.4826 MAD``) of the features: the objective is ``(1 - alpha)``
        times the mean negative log-likelihood plus ``alpha (log|Sigma| / 2 +
        tau / 2 tr(Sigma^{-1}))``. The location is not penalised.

    reg_covar : float, default=0.0
        Non-negative penalty ``reg_covar / 2 tr(Sigma^{-1})`` on the scale
        matrix; set it (or ``shrinkage``) above 0 when the scale matrix is
        singular.

    max_iter : int, default=200
        Maximum number of iterations (ECME and L-BFGS-B together; each is one
        pass over the data).

    tol : float, default=1e-8
        Convergence tolerance on the largest entry of the gradient of the
        mean negative log-likelihood in whitened coordinates (``log nu``
        scaled by the root of its expected information). A line search that
        stalls at the objective's round-off level also counts as converged.

    verbose : int, default=0
        If positive, print the objective and the gradient norm each
        iteration.

    warm_start : bool, default=False
        If True and the estimator is fitted, start from the previous
        solution.

    support_fraction : float in (0, 1] or None, default=1.0
        Fraction of the (weighted) rows in the support of a trimmed fit.
        ``1.0`` is the maximum-likelihood fit described above. Below 1 the fit
        is robust to gross contamination beyond the t's own breakdown point
        (about ``1 / (d + nu)`` of the rows): it maximises the t likelihood of
        the most central ``support_fraction`` of the rows (``support_``),
        searched by concentration steps from deterministic starts as
        :class:`~sklearn.covariance.MinCovDet` does for the normal. The fit on
        a support has too small a scale and too large a ``nu``; both are
        corrected by the likelihood of the support's Mahalanobis distances
        under the F law censored where the support was cut (the rows left
        out count as beyond the cut; if they do not look like the model's
        tail, as outliers do not, the law truncated at the cut). There is no
        reweighting step: a heavy-tailed model would take a tight outlying
        cluster back in. None means MinCovDet's default ``(n + d + 1) / 2n``,
        the largest breakdown point (``n`` the rows of positive weight). Not
        available for Dask arrays.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Location ``mu`` (the mean when ``df_ > 1``).

    shape_ : ndarray of shape (n_features, n_features)
        Scale matrix ``Sigma = factor_ @ factor_.T`` (``components_.T @
        components_ + diag(noise_variance_)`` for ``'factor'``, computed on
        access).

    factor_ : ndarray of shape (n_features, n_features)
        Lower-triangular ``Lambda`` with a positive diagonal (not for
        ``'factor'``).

    components_ : ndarray of shape (n_factors, n_features)
        ``'factor'`` only: the loadings ``W^T`` of the scale matrix, in
        canonical rotation (the columns of ``diag(psi)^{-1/2} W`` orthogonal,
        by decreasing norm), as :class:`GradientGaussian` reports them.

    noise_variance_ : ndarray of shape (n_features,)
        ``'factor'`` only: the diagonal ``psi`` of the scale matrix.

    df_ : float
        Degrees of freedom (estimated, or the fixed ``df``).

    covariance_ : ndarray of shape (n_features, n_features)
        ``df_ / (df_ - 2) * shape_`` when ``df_ > 2``. For ``df_ <= 2`` the
        covariance does not exist: the diagonal is ``inf`` (infinite
        variances) and the off-diagonal entries are NaN.

    precision_ : ndarray of shape (n_features, n_features)
        Inverse of ``shape_`` (the matrix of :meth:`mahalanobis`; by
        Woodbury, on access, for ``'factor'``).

    n_iter_ : int
        Number of iterations run (ECME and L-BFGS-B).

    converged_ : bool
        Whether the gradient tolerance was reached.

    objective_ : float
        Final value of the minimised objective: the mean negative
        log-likelihood per unit weight, plus the penalty terms.

    history_ : list of tuple of (float, float)
        Objective and largest gradient entry at each iteration.

    support_ : ndarray of shape (n_samples,)
        ``support_fraction < 1`` only: mask of the rows in the support of the
        trimmed fit (``objective_`` is then their mean negative
        log-likelihood, without penalty terms; ``n_iter_``, ``converged_``
        and ``history_`` are those of the t MLE on the support).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    GradientGaussian : The normal model (the limit ``df -> inf``).
    sklearn.covariance.MinCovDet : Robust covariance by the minimum
        covariance determinant.
    sklearn.covariance.EllipticEnvelope : Outlier detection with MinCovDet.
    scipy.stats.multivariate_t : Multivariate t distribution.

    References
    ----------
    C. Liu and D. B. Rubin, "ML estimation of the t distribution using EM and
    its extensions, ECM and ECME", Statistica Sinica 5 (1995).

    A. S. Hadi and A. Luceno, "Maximum trimmed likelihood estimators: a
    unified approach, examples, and algorithms", Computational Statistics &
    Data Analysis 25 (1997).

    M. Hubert, P. J. Rousseeuw and T. Verdonck, "A deterministic algorithm for
    robust location and scatter", Journal of Computational and Graphical
    Statistics 21 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_t
    >>> from sklearn_mvn import GradientStudentT
    >>> X = multivariate_t([0, 1], [[1.0, 0.5], [0.5, 2.0]], df=4).rvs(
    ...     2000, random_state=0)
    >>> model = GradientStudentT().fit(X)
    >>> bool(3 < model.df_ < 5.5)
    True
    >>> bool(np.allclose(model.shape_, [[1.0, 0.5], [0.5, 2.0]], atol=0.15))
    True
    >>> model.score_samples(X[:3]).shape
    (3,)

    The factor scale matrix ``W W^T + diag(psi)`` for wide data:

    >>> rng = np.random.RandomState(0)
    >>> W = rng.randn(20, 2)
    >>> Z = rng.randn(1000, 2) @ W.T + 0.5 * rng.randn(1000, 20)
    >>> Z /= np.sqrt(rng.chisquare(4, size=(1000, 1)) / 4)
    >>> fa = GradientStudentT(covariance_type="factor", n_factors=2).fit(Z)
    >>> fa.components_.shape, fa.noise_variance_.shape
    ((2, 20), (20,))
    >>> bool(3 < fa.df_ < 5.5)
    True

    A trimmed fit leaves a tight cluster of 15% outliers out of its
    support:

    >>> cluster = rng.normal([8.0, -8.0], 0.3, size=(350, 2))
    >>> Y = np.vstack([X, cluster])
    >>> trimmed = GradientStudentT(support_fraction=0.75).fit(Y)
    >>> bool(np.allclose(trimmed.mean_, [0, 1], atol=0.15))
    True
    >>> bool(trimmed.support_[-350:].any())
    False
    """

    _parameter_constraints: dict = {
        "df": [StrOptions({"auto"}), Interval(Real, 0.0, None, closed="neither")],
        "covariance_type": [StrOptions({"full", "diag", "spherical", "factor"})],
        "n_factors": [Interval(Integral, 1, None, closed="left"), None],
        "shrinkage": [Interval(Real, 0.0, 1.0, closed="both")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "support_fraction": [Interval(Real, 0.0, 1.0, closed="right"), None],
    }

    def __init__(
        self,
        *,
        df="auto",
        covariance_type="full",
        n_factors=None,
        shrinkage=0.0,
        reg_covar=0.0,
        max_iter=200,
        tol=1e-8,
        verbose=0,
        warm_start=False,
        support_fraction=1.0,
    ):
        self.df = df
        self.covariance_type = covariance_type
        self.n_factors = n_factors
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.support_fraction = support_fraction

    def _representation(self, n_features):
        if self.covariance_type == "factor":
            return make_representation(
                "factor", n_features, self._n_factors_for(n_features)
            )
        return make_representation(self.covariance_type, n_features)

    def _is_factor(self):
        """Whether the fitted scale matrix is the factor model's."""
        return "components_" in self.__dict__

    def _covariance_params(self):
        if self._is_factor():
            return self.components_.T, self.noise_variance_
        return self.factor_

    # -- shape_, covariance_ and precision_ (on access for 'factor') ----------

    def _dense_on_access(self, name):
        if not self._is_factor():
            return super()._dense_on_access(name)
        k, d = self.components_.shape
        params = self._covariance_params()
        rep = make_representation("factor", d, k)
        if name == "precision":
            return rep.precision(params)
        shape = rep.covariance(params)
        if name == "shape":
            return shape
        return covariance_from_shape(shape, self.df_)

    shape_ = dense_attribute("shape", "The fitted scale matrix.")

    def _squared_distance_quantile(self, tail):
        """The ``1 - tail`` quantile of :meth:`mahalanobis` (in ``shape_``):
        ``d F(d, df_)`` for a multivariate t."""
        d = self.n_features_in_
        return float(d * f_dist(d, self.df_).isf(tail))

    # -- fitting -------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit location, scale matrix and degrees of freedom by maximum likelihood.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Training data. NaN marks a missing entry; every row needs an
            observed entry and infinite values are rejected. A Dask array is
            read block by block on the workers, once per iteration.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; each row's log-likelihood is multiplied by
            its weight, so integer weights equal repeating rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        with _AllOrNothing(self):
            self._fit(X, sample_weight)
        return self

    def _fit(self, X, sample_weight):
        self.__dict__.pop("support_", None)
        source = self._source(X, sample_weight)
        spec = self._spec()
        if self.support_fraction == 1.0:
            result = fit_student_t(source, spec, start=self._warm_start_point())
            self._set_solution(result.model, result, degenerate=result.degenerate)
            self._warn_heywood(result.heywood)
            return
        if is_dask_array(source.X):
            raise ValueError(
                "support_fraction < 1 selects rows in memory and is not "
                "available for a dask array; compute X into memory (a NumPy "
                "array) or set support_fraction=1.0."
            )
        self._fit_trimmed(source, spec)

    def _spec(self):
        """The parameters of this fit, resolved for ``n_features_in_``."""
        d = self.n_features_in_
        return TSpec(
            covariance_type=self.covariance_type,
            n_factors=self._n_factors_for(d)
            if self.covariance_type == "factor"
            else None,
            df=self.df,
            shrinkage=self.shrinkage,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
        )

    def _warm_start_point(self):
        """``(mean, params, df)`` of the previous fit with ``warm_start``,
        projected on the structure being fitted (a full scale matrix warm-starts
        'diag' and 'spherical' with its structured M-step); None between the
        factor model and the triangular ones."""
        if not self.warm_start or "mean_" not in self.__dict__:
            return None
        d = self.n_features_in_
        if self.covariance_type == "factor":
            k = self._n_factors_for(d)
            if not self._is_factor():
                return None
            if self.components_.shape != (k, d):
                raise ValueError(
                    f"warm_start=True but the previous fit has components_ of "
                    f"shape {self.components_.shape} while this one needs "
                    f"{(k, d)} (n_factors, n_features); set "
                    "warm_start=False to fit from scratch."
                )
            return self.mean_, self._covariance_params(), self.df_
        if "factor_" not in self.__dict__:
            return None
        if self.factor_.shape[0] != d:
            raise ValueError(
                f"warm_start=True but X has {d} features while the "
                f"previous fit had {self.factor_.shape[0]}; set "
                "warm_start=False to fit from scratch."
            )
        rep = self._representation(d)
        factor = rep.preconditioner(self.factor_ @ self.factor_.T, self.mean_, d + 1)
        return self.mean_, factor, self.df_

    def _fit_trimmed(self, source, spec):
        """Maximum trimmed likelihood
        (:func:`~._robust.trimming.trimmed_fit`)
        with the scale and df corrected for the trimming."""
        X, w = source.X, source.sample_weight
        weights = np.ones(source.n_samples) if w is None else w
        scale = robust_scale(source, spec)  # from the strided subsample

        def fit(rows, row_weights, warm):
            part = pass_source(X[rows], row_weights, self._block_pass(), _START_ROWS)
            start = None if warm is None else (warm.mean, warm.factor, warm.df)
            return fit_student_t(part, spec, start=start, scale=scale)

        trimmed = trimmed_fit(
            fit,
            X,
            weights,
            self.support_fraction,
            estimate_df=spec.estimate_df,
            correlations=not spec.is_factor,
            start_rows=_START_ROWS,
            penalised=spec.shrinkage > 0 or spec.reg_covar > 0,
        )
        model = trimmed.model
        self._set_solution(model, trimmed.result, objective=trimmed.objective)
        self.support_ = trimmed.support
        if not trimmed.result.converged:
            warn_at_caller(
                f"GradientStudentT did not converge on the trimmed support: the "
                f"t fit on its {trimmed.n_support} rows stopped "
                f"after {self.n_iter_} iterations (largest gradient entry "
                f"{self.history_[-1][1]:.3g}, tol={self.tol:g}). If many of "
                "these rows coincide or lie in a subspace the likelihood is "
                "unbounded: increase support_fraction, or set reg_covar > 0 or "
                "shrinkage > 0; otherwise increase max_iter.",
                ConvergenceWarning,
            )

    @available_if(lambda self: False)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Not available: the t likelihood has no mergeable statistics.

        Each iteration of :meth:`fit` reads all the data; use :meth:`fit`
        (with a Dask array for data larger than memory).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Ignored.

        y : Ignored
            Not used.

        sample_weight : array-like of shape (n_samples,), default=None
            Ignored.

        Returns
        -------
        self : object
            Never returns.
        """
        raise AttributeError("GradientStudentT has no partial_fit")

    def _block_pass(self):
        """The likelihood's pass over NumPy rows for this representation."""
        return t_factor_sums if self.covariance_type == "factor" else t_sums

    def _source(self, X, sample_weight):
        """Validate ``X`` and the weights; the :class:`PassSource` of the fit."""
        if is_dask_array(X):
            X = _check_dask_X(X, None, type(self).__name__)
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            X = check_numeric_input(X)
            X = validate_data(
                self,
                X,
                dtype=[np.float64, np.float32],
                reset=True,
                ensure_all_finite=False,
            )
            sample_weight = check_sample_weight(sample_weight, X.shape[0])
        return pass_source(X, sample_weight, self._block_pass(), _START_ROWS)

    def _set_solution(self, model, result, degenerate=False, objective=None):
        """Set the fitted attributes from a :class:`TModel` and the fit's
        result; warn if the fit did not converge."""
        for name in (
            "factor_",
            "components_",
            "noise_variance_",
            "_shape_value_",
            "_covariance_value_",
            "_precision_value_",
        ):
            self.__dict__.pop(name, None)
        self._keep_structure(model.mean.shape[0])
        self._df_estimated = self.df == "auto"
        self.mean_ = model.mean
        self.df_ = float(model.df)
        if model.is_factor:
            W, psi = model.params
            self.components_ = np.array(W.T)
            self.noise_variance_ = np.array(psi)
        else:
            factor = np.tril(model.params)
            self.factor_ = factor
            self.shape_ = factor @ factor.T
            self.covariance_ = covariance_from_shape(self.shape_, self.df_)
            self.precision_ = precision_from_factor(factor)[1]
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.objective_ = float(result.value if objective is None else objective)
        self.history_ = result.history
        # Read by GaussianImputer: conditional expectations are arbitrary.
        self._likelihood_unbounded = bool(degenerate)
        if not self.converged_ and objective is None:
            self._warn_not_converged(result, degenerate)

    def _warn_not_converged(self, result, degenerate):
        hint = (
            " The likelihood looks unbounded (df_ at its lower bound or a "
            "nearly singular scale matrix): many rows coincide or lie in a "
            "subspace. Fix df (e.g. df=1.0), or set reg_covar > 0 or "
            "shrinkage > 0."
            if degenerate
            else " Increase max_iter or tol; if the scale matrix becomes "
            "singular, set reg_covar > 0 or shrinkage > 0."
        )
        warn_at_caller(
            f"GradientStudentT did not converge: {result.message} after "
            f"{result.n_iter} iterations (largest gradient entry "
            f"{result.grad_norm:.3g}, tol={self.tol:g}).{hint}",
            ConvergenceWarning,
        )

    def _model(self):
        """The fitted t as a :class:`TModel`."""
        rep = self._fitted_representation()
        return TModel(rep, self.mean_, self._covariance_params(), self.df_)

    def _n_parameters(self):
        return self._fitted_representation().n_parameters() + int(self._df_estimated)

    # -- prediction ----------------------------------------------------------

    def _log_densities(self, X):
        """t log-densities of validated rows (marginal for rows with NaN)."""
        return self._model().log_density(X)

    def score_samples(self, X):
        """Log-density of each sample under the fitted t.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Samples; NaN marks a missing entry (each row needs an observed
            entry).

        Returns
        -------
        log_density : ndarray or dask.array.Array of shape (n_samples,)
            ``log t(x | mean_, shape_, df_)`` of each row (for a row with NaN,
            the log-density of its observed entries under the marginal t of
            those entries, which has the same ``df_``). Lazy for a Dask ``X``.
        """
        return super().score_samples(X)

    def mahalanobis(self, X):
        """Squared Mahalanobis distances to ``mean_`` in the scale matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; for a row with NaN the distance of its observed entries
            in the marginal scale matrix of those entries.

        Returns
        -------
        dist : ndarray of shape (n_samples,)
            ``(x - mean_)^T precision_ (x - mean_)``, with ``precision_`` the
            inverse of ``shape_`` (not of ``covariance_``). The t log-density
            decreases in it, so it ranks complete rows as
            :meth:`score_samples` does.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientStudentT
        >>> rng = np.random.RandomState(0)
        >>> X = rng.standard_t(5, size=(500, 2))
        >>> model = GradientStudentT().fit(X)
        >>> dist = model.mahalanobis(X[:3])
        >>> d = X[:3] - model.mean_
        >>> np.allclose(dist, np.einsum("ij,jk,ik->i", d, model.precision_, d))
        True
        """
        return super().mahalanobis(X)

    def impute(self, X):
        """Replace each missing entry by its conditional expectation.

        Given a row's observed entries ``o``, the missing entries ``m`` of a t
        follow a t with ``df_ + |o|`` degrees of freedom and location
        ``mean_m + S_mo S_oo^{-1} (x_o - mean_o)`` (``S = shape_``): the same
        linear predictor as for the normal, and the conditional mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples with NaN at the missing entries; every row needs at least
            one observed entry.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A float64 copy of ``X`` without NaN.
        """
        return super().impute(X)

    def _conditional_draw(self, X, rng):
        """``X`` with each row's missing entries drawn from their conditional
        t law given its observed entries (used by
        :class:`~sklearn_mvn.GaussianImputer` with ``sample_posterior=True``).
        """
        return self._model().conditional_draw(X, rng)

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted t.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw (at least 1).

        random_state : int, RandomState instance or None, default=None
            Seed or generator; pass an int for reproducible output.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            ``mean_ + factor_ z / sqrt(g / df_)`` with ``z`` standard normal
            and ``g ~ chi^2(df_)`` (drawn in log space for small ``df_``).
            Draws beyond the range of float64 (a t with ``df_`` near 0.01
            has such tails) are shortened along their direction to a
            magnitude of about ``4e307``, so every draw is finite.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_mvn import GradientStudentT
        >>> rng = np.random.RandomState(0)
        >>> model = GradientStudentT().fit(rng.standard_t(5, size=(500, 2)))
        >>> model.sample(3, random_state=0).shape
        (3, 2)
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
        d = self.mean_.shape[0]
        if self._is_factor():
            rep = self._fitted_representation()
            z = rng.standard_normal((int(n_samples), rep.n_draws))
            draws = rep.sample(np.zeros(d), self._covariance_params(), z)
        else:
            draws = rng.standard_normal((int(n_samples), d)) @ self.factor_.T
        log_g = log_chi2_draws(rng, self.df_, size=int(n_samples))
        return self.mean_ + scale_draws(draws, 0.5 * (np.log(self.df_) - log_g))
