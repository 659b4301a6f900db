"""Shared behaviour of the density estimators.

:class:`BaseDensity` gives every density estimator of the package, for free:
input validation (NumPy, pandas and Dask), ``fit`` that is all-or-nothing (on
any exception the estimator keeps exactly its previous state), ``partial_fit``
bookkeeping (the statistics of every valid chunk are kept), predict-side
validation, ``score``, ``score_samples``, ``mahalanobis``, ``impute``,
``sample``, ``bic`` and ``aic``, and the one method that sets the fitted
attributes from a solver result. A subclass declares its parameters and
implements :meth:`BaseDensity._representation` and :meth:`BaseDensity._solve`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.stats import chi2
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data.dask import dask_score_samples, dask_stats, is_dask_array
from ._data.patterns import PatternStats, check_missing, compute_stats, merge_stats
from ._representations import NotDeterminedError, make_representation
from ._validation import (
    Integral,
    _fit_context,
    check_numeric_input,
    check_sample_weight,
    validate_with_nan,
    warn_at_caller,
)

# Default number of factors of the "factor" type: min(DEFAULT_FACTORS, d - 1).
DEFAULT_FACTORS = 10


def dense_attribute(name, doc):
    """A fitted ``(n_features, n_features)`` attribute ``name_`` that is
    stored when it is cheap and computed on access otherwise (the "factor"
    type, where ``fit`` never forms a ``d x d`` array).

    Assigning stores the array; reading returns the stored array, or
    ``self._dense_on_access(name)``, which raises AttributeError when there
    is nothing to compute from (before fit), so ``hasattr`` stays honest.
    """
    key = f"_{name}_value_"

    def get(self):
        stored = self.__dict__.get(key)
        if stored is None:
            # Pickles of the versions that stored it as a plain attribute.
            stored = self.__dict__.get(f"{name}_")
        if stored is not None:
            return stored
        return self._dense_on_access(name)

    def set(self, value):
        self.__dict__[key] = value

    return property(get, set, doc=doc)


class BaseDensity(DensityMixin, BaseEstimator):
    """Base class of the density estimators (not public).

    Subclasses implement:

    - ``_representation(n_features)``: the covariance representation of the
      hyper-parameters;
    - ``_solve(stats, start, compare_pilot)``: a
      :class:`~._solve.SolveResult` for the statistics, starting
      from ``start`` (a previous mean and covariance, or None);
    - ``_covariance_params()``: the fitted factor the representation's
      methods take;
    - ``_dense_on_access(name)``: ``covariance_`` or ``precision_`` (and
      the t's ``shape_``) when they are not stored (the "factor" type).
    """

    covariance_ = dense_attribute("covariance", "The fitted covariance matrix.")
    precision_ = dense_attribute("precision", "The inverse of ``covariance_``.")

    def _n_factors_for(self, n_features):
        """The number of factors for ``n_features`` features (validated)."""
        k = self.n_factors
        if k is None:
            if n_features < 2:
                raise ValueError(
                    f"covariance_type='factor' needs at least 2 features, got "
                    f"n_features={n_features}: the default n_factors=None "
                    f"resolves to min({DEFAULT_FACTORS}, n_features - 1) = 0 "
                    "factors. Use covariance_type='full' or 'diag' for a single "
                    "feature."
                )
            k = min(DEFAULT_FACTORS, n_features - 1)
        if n_features < 2 or k > n_features - 1:
            raise ValueError(
                f"n_factors={k} needs at least n_factors + 1 = {k + 1} features, "
                f"got n_features={n_features}; set n_factors <= n_features - 1 "
                "or use covariance_type='full'."
            )
        return k

    def _dense_on_access(self, name):
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute '{name}_'"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "mean_")

    def _check_fitted(self):
        """``check_is_fitted``, saying what ``partial_fit`` still needs."""
        if not hasattr(self, "mean_") and hasattr(self, "_sufficient_stats"):
            stats = self._sufficient_stats
            raise NotFittedError(
                f"This {type(self).__name__} has seen {stats.n_samples} rows "
                "through partial_fit, which do not determine a model yet (a "
                f"full covariance needs at least {stats.n_features + 1} rows "
                "of positive weight in general position). Call partial_fit "
                "with more rows, or set reg_covar > 0 or shrinkage > 0."
            )
        check_is_fitted(self)

    # -- fitting ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the model by maximum (penalised) likelihood.

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
        with _AllOrNothing(self):
            stats = self._validated_stats(X, sample_weight, reset=True)
            start = None
            if self.warm_start:
                start = self._previous_solution(stats.n_features, "warm_start=True")
            self._fit_stats(stats, start)
        return self

    def _fit_stats(self, stats, start=None, compare_pilot=False):
        """Solve on statistics and set the fitted attributes."""
        self._set_fitted(self._solve(stats, start, compare_pilot), stats)
        return self

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

        An invalid chunk is rejected with an error and changes nothing. The
        statistics of every valid chunk are kept: while the rows seen so far
        do not yet determine a model (for example fewer rows than features),
        the call warns, the estimator is not fitted, and it fits as soon as
        the rows determine a model.

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
            The estimator (fitted once the rows seen determine a model).

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
        with _AllOrNothing(self):
            previous = getattr(self, "_sufficient_stats", None)
            if previous is None and "mean_" in self.__dict__:
                # fit read wide factor data in passes and kept no statistics
                # (they would hold a d x d scatter): merging is impossible,
                # and refitting the chunk alone would drop the fitted rows.
                raise ValueError(
                    f"partial_fit cannot add to this fit: fit read its "
                    f"{self.n_samples_seen_} rows of {self.n_features_in_} "
                    "features in passes over X and kept no statistics. Call "
                    "partial_fit for every chunk from the first one on, or fit "
                    "on all the rows at once."
                )
            stats = self._validated_stats(
                X,
                sample_weight,
                reset=previous is None,
                allow_zero_sum=previous is not None,
            )
            if previous is not None:
                stats = merge_stats(previous, stats)
            try:
                start = self._previous_solution(stats.n_features, "partial_fit")
                self._fit_stats(stats, start, compare_pilot=True)
            except NotDeterminedError as exc:
                self._keep_undetermined(stats, exc)
        return self

    def _keep_undetermined(self, stats, exc):
        """Keep statistics that do not determine a model yet, and say so."""
        for name in list(vars(self)):
            if name.endswith("_") and name not in (
                "n_features_in_",
                "feature_names_in_",
            ):
                delattr(self, name)
        self._sufficient_stats = stats
        self.n_samples_seen_ = stats.n_samples
        warn_at_caller(
            f"{type(self).__name__}.partial_fit kept the chunk, but the "
            f"{stats.n_samples} rows seen so far do not determine a model yet "
            f"({exc}) The estimator stays unfitted until further chunks "
            "determine one.",
            UserWarning,
        )

    def _validated_stats(self, X, sample_weight, reset, allow_zero_sum=False):
        """Validate ``X`` (NumPy or Dask) and ``sample_weight``; their statistics."""
        if is_dask_array(X):
            stats = dask_stats(
                X,
                sample_weight,
                n_features_in=None if reset else self.n_features_in_,
                name=type(self).__name__,
                allow_zero_sum=allow_zero_sum,
                ensure_all_finite=False,
            )
            if reset:
                self.n_features_in_ = stats.n_features
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            return stats
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

    def _previous_solution(self, n_features, reason):
        """The fitted mean and covariance, or None (the start of a refit)."""
        if not hasattr(self, "mean_"):
            return None
        if self.mean_.shape[0] != n_features:
            raise ValueError(
                f"{reason} but X has {n_features} features while the previous "
                f"fit had {self.mean_.shape[0]}; set warm_start=False to fit "
                "from scratch."
            )
        return self.mean_, self.covariance_

    def _set_fitted(self, result, stats):
        """Set every fitted attribute from a solver result (the one place)."""
        representation = self._representation(result.mean.shape[0])
        self._keep_structure(result.mean.shape[0])
        self.mean_ = result.mean
        for name, value in representation.fitted_attributes(result.factor).items():
            setattr(self, name, value)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.objective_ = result.objective
        self.history_ = result.history
        self._sufficient_stats = stats
        self.n_samples_seen_ = stats.n_samples
        if not result.converged:
            advice = getattr(result, "advice", None) or "Increase max_iter or tol."
            if advice == "Increase max_iter or tol." and isinstance(
                stats, PatternStats
            ):
                advice += (
                    " With missing values, if the covariance becomes "
                    "singular the likelihood may be unbounded (few rows "
                    "observe all features): set shrinkage > 0 or "
                    "reg_covar > 0."
                )
            warn_at_caller(
                f"{type(self).__name__} did not converge: {result.message} after "
                f"{result.n_iter} iterations (largest gradient entry "
                f"{result.grad_norm:.3g}, tol={self.tol:g}). {advice}",
                ConvergenceWarning,
            )

    def _squared_distance_quantile(self, tail):
        """The ``1 - tail`` quantile of :meth:`mahalanobis` under the model."""
        return float(chi2(self.n_features_in_).isf(tail))

    def _n_parameters(self):
        """Number of free parameters of the fitted model."""
        return self._fitted_representation().n_parameters()

    # -- prediction ------------------------------------------------------------

    def _validate_predict_input(self, X):
        """Validated ``X`` for the predict-side methods (NaN allowed)."""
        self._check_fitted()
        return validate_with_nan(self, X, reset=False)

    def _warn_heywood(self, heywood, unbounded_error=False):
        """The one warning for noise variances at their floor (factor model).

        With ``unbounded_error`` (the normal), every noise variance there
        without a penalty is an error: the factors then reproduce the data
        exactly (their rank is at most ``n_factors``), the covariance is
        singular up to the floor and the likelihood unbounded, as the full
        covariance's error says for the same data.
        """
        d = self.n_features_in_
        penalised = self.reg_covar > 0.0 or self.shrinkage > 0.0
        if unbounded_error and heywood.size == d and not penalised:
            raise NotDeterminedError(
                f"The factor model's likelihood is unbounded on these data: the "
                f"noise variance of every feature is at its lower bound, so the "
                f"n_factors={self._n_factors_for(d)} factors reproduce the rows "
                "exactly (rows of positive weight span at most n_factors "
                "dimensions about their mean). Use fewer n_factors, more rows, "
                "or set reg_covar > 0 or shrinkage > 0."
            )
        if heywood.size:
            warn_at_caller(
                f"{type(self).__name__}: the noise variance of feature(s) "
                f"{heywood[:20].tolist()} is at its lower bound (a Heywood "
                "case): these features are (nearly) exact combinations of the "
                "factors. The fit is valid, but consider fewer n_factors, "
                "removing or merging these features, or reg_covar > 0.",
                UserWarning,
            )

    def _fitted_representation(self):
        """The representation of the fitted covariance: the structure the
        model was fitted with, whatever ``set_params`` changed since."""
        structure = self.__dict__.get("_fitted_structure")
        if structure is None:  # a model fitted before the structure was kept
            return self._representation(self.n_features_in_)
        covariance_type, n_factors = structure
        return make_representation(covariance_type, self.n_features_in_, n_factors)

    def _keep_structure(self, n_features):
        """Remember the structure being fitted (for the predict-side methods)."""
        rep = self._representation(n_features)
        self._fitted_structure = (rep.covariance_type, getattr(rep, "n_factors", None))

    def _row_scores(self, X, complete, marginal):
        """Complete-row scores, with the marginal form for rows with NaN.

        ``X`` is searched for NaN (missing entries) or infinity only if the
        complete-row result shows some: complete data are read once.
        """
        rep = self._fitted_representation()
        params = self._covariance_params()
        scores = getattr(rep, complete)(X, self.mean_, params)
        if not np.all(np.isfinite(scores)) and check_missing(X):
            return getattr(rep, marginal)(X, self.mean_, params)
        return scores

    def _log_densities(self, X):
        """Log-densities of validated rows (marginal for rows with NaN)."""
        return self._row_scores(X, "log_density", "marginal_log_density")

    def _score_block(self, X):
        """Log-densities of a NumPy block (validated)."""
        return self._log_densities(self._validate_predict_input(X))

    def score_samples(self, X):
        """Log-density of each sample under the fitted model.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Samples; NaN marks a missing entry (each row needs an observed
            entry).

        Returns
        -------
        log_density : ndarray or dask.array.Array of shape (n_samples,)
            The log-density of each row (higher means more typical), usable
            as an anomaly score. For a row with missing entries (NaN), the
            log-density of its observed entries under the fitted marginal of
            those entries. Lazy (a Dask array computed block by block) when
            ``X`` is a Dask array.
        """
        self._check_fitted()
        if is_dask_array(X):
            if hasattr(self, "feature_names_in_"):
                # Blocks are plain arrays: warn once here, as validate_data
                # would, rather than on the workers.
                warn_at_caller(
                    f"X does not have valid feature names, but "
                    f"{type(self).__name__} was fitted with feature names",
                    UserWarning,
                )
            return dask_score_samples(
                X,
                self._score_block_unnamed,
                n_features_in=self.n_features_in_,
                name=type(self).__name__,
            )
        return self._score_block(X)

    def _score_block_unnamed(self, block):
        """:meth:`_score_block` of a Dask block (its feature names were checked)."""
        X = check_numeric_input(block)
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        return self._log_densities(X)

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

    def mahalanobis(self, X):
        """Squared Mahalanobis distances of samples to the fitted mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; for a row with NaN (missing entries) the distance is taken
            in the marginal of its observed entries.

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
        X = self._validate_predict_input(X)
        return self._row_scores(X, "mahalanobis", "marginal_mahalanobis")

    def impute(self, X):
        """Replace each missing entry by its conditional expectation.

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
        X = self._validate_predict_input(X)
        check_missing(X)
        rep = self._fitted_representation()
        return rep.conditional_mean(X, self.mean_, self._covariance_params())

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw (at least 1).

        random_state : int, RandomState instance or None, default=None
            Seed or generator of the draws; pass an int for reproducible
            output.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The draws, as :meth:`sklearn.neighbors.KernelDensity.sample`
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
        self._check_fitted()
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
        rep = self._fitted_representation()
        # A representation with a rectangular factor draws more normals.
        n_draws = getattr(rep, "n_draws", self.n_features_in_)
        draws = rng.standard_normal((int(n_samples), n_draws))
        return rep.sample(self.mean_, self._covariance_params(), draws)

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
            number of free parameters of the fitted model. Lower is better.

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
            parameters of the fitted model. Lower is better.

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


class _AllOrNothing:
    """Restore an estimator's state if the block raises (anything)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def __enter__(self):
        self.state = dict(vars(self.estimator))

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            vars(self.estimator).clear()
            vars(self.estimator).update(self.state)
        return False


__all__ = ["BaseDensity", "NotFittedError"]
