"""GradientStudentT: maximum-likelihood multivariate Student-t density.

The estimator shares validation, all-or-nothing fitting, the predict-side
methods and ``bic``/``aic`` with :class:`~._base.BaseDensity`, the covariance
representation with :mod:`._representations` and the convergence rule with
:mod:`._solve`. The t likelihood has no sufficient statistics, so ``fit``
reads the data once per iteration (:mod:`._t_likelihood` for NumPy,
:mod:`._t_dask` for Dask; the fitter is :mod:`._t_solve`) and has no
``partial_fit``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import math
import warnings

import numpy as np
from scipy.stats import f as f_dist
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseDensity, _AllOrNothing, dense_attribute
from ._data.dask import _check_dask_X, dask_data_pass, is_dask_array
from ._data.patterns import check_missing
from ._data.stats import check_range
from ._likelihoods.student_t import (
    DF_MAX,
    DF_MIN,
    t_conditional_draw,
    t_log_density,
    t_sums,
)
from ._likelihoods.student_t_factor import (
    t_factor_conditional_draw,
    t_factor_log_density,
    t_factor_sums,
)
from ._linalg import precision_from_factor, row_chunks
from ._representations import NotDeterminedError, make_representation
from ._robust.trimming import (
    concentrate,
    correct_scale,
    start_centralities,
    support_size,
    tail_probability,
)
from ._solve.student_t import (
    factor_start,
    fit_t,
    fit_t_factor,
    robust_start,
    start_scale,
)
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

# Starting degrees of freedom when they are estimated.
_DF_START = 5.0
# Rows of the subsample that gives the robust start.
_START_ROWS = 8192


def _singular_error(n_samples, n_features, detail):
    return NotDeterminedError(
        f"The scale matrix is singular ({detail}; n_samples={n_samples}, "
        f"n_features={n_features}): this happens with too few samples (the t "
        "needs more samples than features), or constant or collinear "
        "features. Set reg_covar > 0 or shrinkage > 0, or remove the "
        "redundant features."
    )


def _check_scale_range(spread):
    """Raise a ValueError if the features' scales are not representable."""
    with np.errstate(over="ignore"):
        check_range(spread**2)


def _check_observed(observed_weight):
    """Raise a ValueError for features never observed (with positive weight)."""
    never = np.flatnonzero(~(observed_weight > 0))
    if never.size:
        raise ValueError(
            f"Feature(s) {never[:10].tolist()} are never observed (all NaN, or "
            "only in rows of zero weight); their distribution cannot be "
            "estimated. Drop these features."
        )


def _covariance_from_shape(shape, df):
    """``df / (df - 2) shape`` for ``df > 2``; else infinite variances and NaN
    covariances."""
    if df > 2.0:
        return df / (df - 2.0) * shape
    d = shape.shape[0]
    out = np.full((d, d), np.nan)
    out[np.diag_indices(d)] = np.inf
    return out


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
        under the F law truncated where the support was cut. There is no
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
        return _covariance_from_shape(shape, self.df_)

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
        if self.support_fraction == 1.0:
            self._fit_likelihood(X, sample_weight)
        else:
            self._fit_trimmed(X, sample_weight)

    def _robust_scale(self, sample, sample_w, X, sample_weight):
        """Robust location and per-feature spread of the start."""
        n_features = self.n_features_in_
        rep = self._representation(n_features)
        if self.covariance_type == "factor":
            rep = make_representation("diag", n_features)
        mean0, spread = start_scale(sample, rep, sample_w, max_rows=sample.shape[0])
        unseen = ~(np.isfinite(mean0) & np.isfinite(spread))
        if unseen.any():
            # Features observed only outside the subsample: their start from
            # the whole column (n numbers each).
            full = X[:, np.flatnonzero(unseen)]
            full = np.asarray(full.compute() if is_dask_array(full) else full)
            w = sample_weight
            if is_dask_array(w):
                w = w.compute()
            mean0[unseen], spread[unseen] = robust_start(full, w)
            with np.errstate(over="ignore"):
                spread = rep.standardising_scale(spread**2)
        return mean0, spread

    def _fit_likelihood(self, X, sample_weight, start=None, scale=None):
        """The MLE; ``start`` = (mean, scale parameters, df) overrides the
        robust start (and ``warm_start``), ``scale`` = (location, spread) the
        robust scale (which sets the penalty's ``tau`` and the factor model's
        noise floor)."""
        source = self._data_source(X, sample_weight)
        data_pass, sample, sample_w, weight, n_samples, X, sample_weight = source
        n_features = self.n_features_in_
        if scale is None:
            scale = self._robust_scale(sample, sample_w, X, sample_weight)
        mean0, spread = (np.array(v) for v in scale)
        _check_scale_range(spread)
        tau = float(np.mean(spread**2))
        trace_coef = self.shrinkage * tau + self.reg_covar
        if not np.all(spread > 0):
            if trace_coef <= 0:
                constant = np.flatnonzero(~(spread > 0))
                raise _singular_error(
                    n_samples,
                    n_features,
                    f"zero spread in feature(s) {constant[:10].tolist()}",
                )
            spread = np.where(spread > 0, spread, np.sqrt(trace_coef))
        estimate_df = self.df == "auto"
        df0 = _DF_START if estimate_df else float(self.df)
        if self.covariance_type == "factor":
            self._fit_factor(
                data_pass,
                sample,
                sample_w,
                mean0,
                spread,
                df0,
                trace_coef,
                weight,
                start,
            )
            return
        factor0 = np.diag(spread)
        if start is not None:
            mean0, factor0, df0 = start
            df0 = float(np.clip(df0, DF_MIN, DF_MAX)) if estimate_df else df0
        elif self.warm_start and "factor_" in self.__dict__:
            if self.factor_.shape[0] != n_features:
                raise ValueError(
                    f"warm_start=True but X has {n_features} features while the "
                    f"previous fit had {self.factor_.shape[0]}; set "
                    "warm_start=False to fit from scratch."
                )
            mean0, factor0 = self.mean_, self.factor_
            if estimate_df:
                df0 = float(np.clip(self.df_, DF_MIN, DF_MAX))
        result = fit_t(
            data_pass,
            self._representation(n_features),
            mean0,
            factor0,
            df0,
            estimate_df=estimate_df,
            data_scale=(1.0 - self.shrinkage) / weight,
            prior_weight=self.shrinkage,
            trace_coef=trace_coef,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
        )
        # Rows that coincide or lie in a subspace can make the likelihood
        # unbounded: the scale collapses far below the robust spread of the
        # start, or df goes to its lower bound.
        _check_scale_range(np.diag(result.factor))
        collapsed = np.diag(result.factor) < 1e-2 * np.diag(factor0)
        degenerate = bool(np.any(collapsed)) or result.df <= 1.01 * DF_MIN
        self._set_solution(result, degenerate)

    def _fit_factor(
        self,
        data_pass,
        sample,
        sample_w,
        mean0,
        spread,
        df0,
        trace_coef,
        weight,
        start=None,
    ):
        """The factor scale matrix: start, :func:`fit_t_factor`, attributes."""
        from ._representations.low_rank import MIN_NOISE, heywood_features

        n_features = self.n_features_in_
        k = self._n_factors_for(n_features)
        estimate_df = self.df == "auto"
        if start is not None:
            mean0, params0, df0 = start
            df0 = float(np.clip(df0, DF_MIN, DF_MAX)) if estimate_df else df0
        elif self.warm_start and self._is_factor():
            if self.components_.shape != (k, n_features):
                raise ValueError(
                    f"warm_start=True but the previous fit has components_ of "
                    f"shape {self.components_.shape} while this one needs "
                    f"{(k, n_features)} (n_factors, n_features); set "
                    "warm_start=False to fit from scratch."
                )
            mean0, params0 = self.mean_, self._covariance_params()
            if estimate_df:
                df0 = float(np.clip(self.df_, DF_MIN, DF_MAX))
        else:
            params0 = factor_start(sample, sample_w, mean0, spread, k)
        psi_lower = MIN_NOISE * spread**2
        result = fit_t_factor(
            data_pass,
            mean0,
            params0,
            df0,
            psi_lower=psi_lower,
            estimate_df=estimate_df,
            data_scale=(1.0 - self.shrinkage) / weight,
            prior_weight=self.shrinkage,
            trace_coef=trace_coef,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
        )
        self._set_solution(result, result.df <= 1.01 * DF_MIN)
        heywood = heywood_features(result.factor[1], psi_lower)
        if heywood.size:
            warn_at_caller(
                f"{type(self).__name__}: the noise variance of feature(s) "
                f"{heywood[:20].tolist()} is at its lower bound (a Heywood "
                "case): these features are (nearly) exact combinations of the "
                "factors. The fit is valid, but consider fewer n_factors, "
                "removing or merging these features, or reg_covar > 0.",
                UserWarning,
            )

    def _fit_trimmed(self, X, sample_weight):
        """Maximum trimmed likelihood (:mod:`._trimming`) with the scale and
        df corrected for the trimming."""
        if is_dask_array(X):
            raise ValueError(
                "support_fraction < 1 selects rows in memory and is not "
                "available for a dask array; compute X into memory (a NumPy "
                "array) or set support_fraction=1.0."
            )
        n_samples, X, sample_weight = self._data_source(X, sample_weight)[4:]
        d = self.n_features_in_
        weights = np.ones(n_samples) if sample_weight is None else sample_weight
        n_rows = int(np.count_nonzero(weights))
        fraction = support_size(n_rows, d, self.support_fraction)
        if fraction * n_rows < d + 1:
            raise ValueError(
                f"support_fraction={self.support_fraction!r} keeps about "
                f"{fraction * n_rows:.1f} of n_samples = {n_rows} rows, fewer than "
                f"n_features + 1 = {d + 1}; increase support_fraction or pass "
                "more rows."
            )
        h = fraction * float(weights.sum())
        # Degenerate supports (rows in a subspace, repeated rows) make the
        # search's numbers infinite; the result is checked below instead.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self._trimmed_search(X, weights, fraction, h)
        params = self._covariance_params()
        params = params if isinstance(params, tuple) else (params,)
        finite = all(np.all(np.isfinite(v)) for v in (self.mean_, *params))
        if not (finite and np.isfinite(self.objective_)):
            raise ValueError(
                f"The trimmed fit is degenerate: the t on its support of "
                f"{int(self.support_.sum())} rows has no finite maximum (rows "
                "that coincide or lie in a subspace). Increase support_fraction, "
                "or set reg_covar > 0 or shrinkage > 0."
            )

    def _trimmed_search(self, X, weights, fraction, h):
        """Concentration steps from the starts, then the consistency
        correction; sets the fitted attributes and ``support_``."""
        n_samples, d = X.shape
        has_nan = check_missing(X)
        n_obs = (~np.isnan(X)).sum(axis=1) if has_nan else np.full(n_samples, d)
        names = self.__dict__.get("feature_names_in_")
        step = max(1, math.ceil(n_samples / _START_ROWS))
        rows = slice(None, None, step)
        scale = self._robust_scale(X[rows], weights[rows], X, weights)
        snapshot = ("mean_", "df_", "factor_", "components_", "noise_variance_")

        def state():
            return {k: v for k, v in vars(self).items() if k.endswith("_")}

        def restore(fitted):
            for name in snapshot:
                self.__dict__.pop(name, None)
            for name in ("_shape_value_", "_covariance_value_", "_precision_value_"):
                self.__dict__.pop(name, None)
            vars(self).update(fitted)

        def steps_on(rows):
            """The fit on a support and the rows' scores, for ``X[rows]``."""
            Xd, n_obs_d = X[rows], n_obs[rows]

            def fit(row_weights, warm):
                start = None
                if warm is not None:
                    restore(warm)
                    start = (self.mean_, self._covariance_params(), self.df_)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    warnings.simplefilter("ignore", UserWarning)
                    self._fit_likelihood(Xd, row_weights, start, scale)
                return state()

            def score(fitted):
                restore(fitted)
                dist = self._row_scores(Xd, "mahalanobis", "marginal_mahalanobis")
                if has_nan:
                    centrality = f_dist.logsf(dist / n_obs_d, n_obs_d, self.df_)
                else:
                    centrality = -dist
                return centrality, self._log_densities(Xd)

            return fit, score

        # The search from every start runs on the strided subsample of the
        # robust start (all rows when n <= _START_ROWS); on larger data its
        # best fit starts the concentration steps on all rows.
        w_sub = weights[rows]
        if fraction * np.count_nonzero(w_sub) < d + 1:
            step, rows, w_sub = 1, slice(None), weights
        fit, score = steps_on(rows)
        starts = start_centralities(
            X[rows], X[rows], w_sub, correlations=self.covariance_type != "factor"
        )
        starts.append(score(fit(w_sub, None))[0])
        best = concentrate(fit, score, starts, w_sub, fraction * float(w_sub.sum()))
        if step > 1:
            fit, score = steps_on(slice(None))
            best = concentrate(fit, score, [score(best.state)[0]], weights, h)
        restore(best.state)
        if names is not None:
            self.feature_names_in_ = names
        if not self.converged_:
            warn_at_caller(
                f"GradientStudentT did not converge on the trimmed support: the "
                f"t fit on its {int(np.count_nonzero(best.mask))} rows stopped "
                f"after {self.n_iter_} iterations (largest gradient entry "
                f"{self.history_[-1][1]:.3g}, tol={self.tol:g}). If many of "
                "these rows coincide or lie in a subspace the likelihood is "
                "unbounded: increase support_fraction, or set reg_covar > 0 or "
                "shrinkage > 0; otherwise increase max_iter.",
                ConvergenceWarning,
            )

        # Consistency: the scale and df of the support's distances, from
        # their likelihood under the F law truncated where the support was cut.
        support = (best.mask > 0) & (weights > 0)
        dist = self._row_scores(X, "mahalanobis", "marginal_mahalanobis")
        if has_nan:
            p_cut = tail_probability(dist[support], n_obs[support], self.df_)
            cut = n_obs * f_dist.isf(p_cut.min(), n_obs, self.df_)
        else:
            cut = np.full(n_samples, dist[support].max())
        row_weight = (weights * best.mask)[support]
        c, df = correct_scale(
            dist[support],
            n_obs[support],
            row_weight,
            cut[support],
            self.df_,
            self.df == "auto",
            (DF_MIN, DF_MAX),
        )
        self._rescale(c, df)
        self.objective_ = -float(
            row_weight @ self._log_densities(X[support]) / row_weight.sum()
        )
        self.support_ = support

    def _rescale(self, c, df):
        """Multiply the fitted scale matrix by ``c`` and set ``df_``."""
        self.df_ = float(df)
        for name in ("_shape_value_", "_covariance_value_", "_precision_value_"):
            self.__dict__.pop(name, None)
        if self._is_factor():
            self.components_ = self.components_ * math.sqrt(c)
            self.noise_variance_ = self.noise_variance_ * c
            with np.errstate(over="ignore"):
                variance = (self.components_**2).sum(axis=0) + self.noise_variance_
            _check_scale_range(np.sqrt(variance))
            return
        self.factor_ = self.factor_ * math.sqrt(c)
        # The corrected variances (squared row norms) must stay in range.
        _check_scale_range(np.linalg.norm(self.factor_, axis=1))
        self.shape_ = self.factor_ @ self.factor_.T
        self.covariance_ = _covariance_from_shape(self.shape_, self.df_)
        self.precision_ = precision_from_factor(self.factor_)[1]

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

    def _data_source(self, X, sample_weight):
        """Validate ``X`` and the weights.

        Returns the pass over the data, a strided subsample and its weights
        for the start, the weight sum, the number of rows, and the validated
        ``X`` and weights (scaled to a maximum of 1).
        """
        factor_model = self.covariance_type == "factor"
        if is_dask_array(X):
            X = _check_dask_X(X, None, type(self).__name__)
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            import dask
            import dask.array as da

            data_pass, weights = dask_data_pass(
                X, t_factor_sums if factor_model else t_sums, sample_weight
            )
            step = max(1, math.ceil(X.shape[0] / _START_ROWS))
            sample = check_array(
                X[::step].compute(),
                dtype=[np.float64, np.float32],
                ensure_all_finite=False,
                input_name="X",
            )
            check_missing(sample)
            seen = ~da.isnan(X)
            if weights is not None:
                seen = seen * weights[:, None]
            _check_observed(seen.sum(axis=0).compute())
            if weights is None:
                sample_w, weight = None, float(X.shape[0])
            else:
                # Weights of any scale give the same fit: scaled to a
                # maximum of 1, no sum over- or underflows.
                top = float(dask.compute(weights.max())[0])
                data_pass, weights = dask_data_pass(
                    X, t_factor_sums if factor_model else t_sums, weights / top
                )
                sample_w, weight = dask.compute(weights[::step], weights.sum())
                weight = float(weight)
            return data_pass, sample, sample_w, weight, X.shape[0], X, weights
        X = check_numeric_input(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=True,
            ensure_all_finite=False,
        )
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        if sample_weight is not None:
            # Weights of any scale give the same fit: scaled to a maximum of
            # 1, no sum over- or underflows.
            sample_weight = sample_weight / np.max(sample_weight)
        has_nan = check_missing(X)
        if has_nan:
            observed = np.zeros(X.shape[1])
            for rows in row_chunks(X.shape[0], X.shape[1]):
                seen = ~np.isnan(X[rows])
                w = None if sample_weight is None else sample_weight[rows]
                observed += seen.sum(axis=0) if w is None else w @ seen
            _check_observed(observed)

        def data_pass(mean, factor, df):
            if factor_model:
                return t_factor_sums(X, mean, factor, df, sample_weight, nan=has_nan)
            return t_sums(X, mean, factor, df, sample_weight, nan=has_nan)

        step = max(1, math.ceil(X.shape[0] / _START_ROWS))
        sample = X[::step]
        sample_w = None if sample_weight is None else sample_weight[::step]
        if sample_w is not None and not sample_w.sum() > 0:
            sample, sample_w = X, sample_weight
        weight = float(X.shape[0] if sample_weight is None else sample_weight.sum())
        return data_pass, sample, sample_w, weight, X.shape[0], X, sample_weight

    def _set_solution(self, result, degenerate=False):
        """Set the fitted attributes; warn if the fit did not converge."""
        for name in (
            "factor_",
            "components_",
            "noise_variance_",
            "_shape_value_",
            "_covariance_value_",
            "_precision_value_",
        ):
            self.__dict__.pop(name, None)
        self.mean_ = result.mean
        self.df_ = float(result.df)
        if isinstance(result.factor, tuple):
            W, psi = result.factor
            self.components_ = np.array(W.T)
            self.noise_variance_ = np.array(psi)
        else:
            factor = np.tril(result.factor)
            self.factor_ = factor
            self.shape_ = factor @ factor.T
            self.covariance_ = _covariance_from_shape(self.shape_, self.df_)
            self.precision_ = precision_from_factor(factor)[1]
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.objective_ = float(result.value)
        self.history_ = result.history
        if not self.converged_:
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

    def _n_parameters(self):
        rep = self._representation(self.n_features_in_)
        return rep.n_parameters() + int(self.df == "auto")

    # -- prediction ----------------------------------------------------------

    def _log_densities(self, X):
        """t log-densities of validated rows (marginal for rows with NaN)."""
        if self._is_factor():
            return t_factor_log_density(
                X, self.mean_, self._covariance_params(), self.df_
            )
        return t_log_density(X, self.mean_, self.factor_, self.df_)

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
        if self._is_factor():
            return t_factor_conditional_draw(
                X, self.mean_, self._covariance_params(), self.df_, rng
            )
        return t_conditional_draw(X, self.mean_, self.factor_, self.df_, rng)

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
            and ``g ~ chi^2(df_)``.

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
            rep = self._representation(d)
            z = rng.standard_normal((int(n_samples), rep.n_draws))
            draws = rep.sample(np.zeros(d), self._covariance_params(), z)
        else:
            draws = rng.standard_normal((int(n_samples), d)) @ self.factor_.T
        g = rng.chisquare(self.df_, size=int(n_samples)) / self.df_
        return self.mean_ + draws / np.sqrt(g)[:, np.newaxis]
