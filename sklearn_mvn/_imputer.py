"""GaussianImputer: fill missing entries from a fitted multivariate density.

The transformer wraps one of the package's density estimators and uses only
its public API (``fit``, ``impute``, ``mean_`` and ``factor_``), so any of them
fits in: the imputation is the conditional expectation (or a draw from the
conditional law) of each row's missing entries given its observed entries.

The helpers under "Wrapping a density estimator" are shared with
:class:`~sklearn_mvn.GaussianOutlierDetector`: which estimator to clone, the
fitted density behind a search such as ``GridSearchCV``, and all-or-nothing
``fit``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._base import _AllOrNothing
from ._gradient_gaussian import GradientGaussian
from ._linalg import row_chunks
from ._representations.conditional import conditional_draw
from ._validation import (
    HasMethods,
    _check_feature_names_in,
    _fit_context,
    validate_with_nan,
    warn_at_caller,
)

# ---------------------------------------------------------------------------
# Wrapping a density estimator (shared with GaussianOutlierDetector)
# ---------------------------------------------------------------------------


def _search_parts(estimator):
    """``(tuned estimator, refit)`` of a search such as ``GridSearchCV``.

    A search is recognised by its ``estimator`` and ``refit`` parameters, as
    scikit-learn's ``GridSearchCV``, ``RandomizedSearchCV`` and successive-
    halving searches have them; for any other estimator, ``(estimator,
    None)``.
    """
    get_params = getattr(estimator, "get_params", None)
    params = get_params(deep=False) if callable(get_params) else {}
    if "estimator" in params and "refit" in params:
        return params["estimator"], params["refit"]
    return estimator, None


def _estimator_to_fit(wrapper, methods):
    """The estimator ``wrapper.fit`` clones, checked before any fitting.

    ``wrapper.estimator``, or ``GradientGaussian()`` for None. A search over
    a density estimator (e.g. ``GridSearchCV(GradientGaussian(), ...)``)
    is accepted: the wrapper then uses its ``best_estimator_``, so it must
    refit, and the estimator it tunes must have ``methods``.
    """
    if wrapper.estimator is None:
        return GradientGaussian()
    owner = type(wrapper).__name__
    tuned, refit = _search_parts(wrapper.estimator)
    if refit is False:
        raise ValueError(
            f"{owner} uses the best model of {type(wrapper.estimator).__name__}, "
            "but refit=False keeps none: set refit=True (or a scoring name, "
            "with several scorings)."
        )
    missing = [name for name in methods if not callable(getattr(tuned, name, None))]
    if missing:
        raise ValueError(
            f"The 'estimator' parameter of {owner} must be a density estimator "
            f"with the method(s) {missing} (one of sklearn-mvn's estimators, or a "
            f"search such as GridSearchCV over one); got {tuned!r}."
        )
    return wrapper.estimator


def _fitted_density(estimator):
    """The fitted density of ``estimator_``: a search's ``best_estimator_``."""
    return getattr(estimator, "best_estimator_", estimator)


# ---------------------------------------------------------------------------
# Helpers on arrays
# ---------------------------------------------------------------------------


def _nan_rows(X):
    """Which rows of ``X`` have some, and which have only, NaN entries.

    Chunked, so no boolean array of the size of ``X`` is created.

    Returns
    -------
    some : ndarray of bool of shape (n_samples,)
    every : ndarray of bool of shape (n_samples,)
    """
    n_samples, n_features = X.shape
    some = np.zeros(n_samples, dtype=bool)
    every = np.zeros(n_samples, dtype=bool)
    for rows in row_chunks(n_samples, n_features):
        nan = np.isnan(X[rows])
        some[rows] = nan.any(axis=1)
        every[rows] = nan.all(axis=1)
    return some, every


# Shrinkage of the refit of an estimator whose likelihood is unbounded.
_FALLBACK_SHRINKAGE = 0.1


def _bounded_refit(estimator, X):
    """Refit, with ``shrinkage``, an estimator whose likelihood is unbounded.

    Such a fit (``df_`` at its lower bound, a collapsed scale matrix) has a
    nearly singular scale matrix, and conditional expectations through it
    can lie orders of magnitude outside the data. An unpenalised estimator
    with a ``shrinkage`` parameter is refitted with ``shrinkage=0.1`` (its
    scale matrix then has a positive floor, so the imputations are bounded),
    with a warning; a penalised one already has that floor.
    """
    params = estimator.get_params()
    if params.get("shrinkage", 1.0) > 0 or params.get("reg_covar", 0.0) > 0:
        return estimator
    warn_at_caller(
        f"GaussianImputer: the likelihood of {type(estimator).__name__} is "
        "unbounded on these data (many rows coincide or lie in a subspace): "
        "its conditional expectations are not determined and can lie far "
        "outside the data. The imputer refits it with "
        f"shrinkage={_FALLBACK_SHRINKAGE}; set shrinkage > 0 or reg_covar > 0 "
        "on the estimator (or a fixed df) to choose the regularisation.",
        UserWarning,
    )
    return clone(estimator).set_params(shrinkage=_FALLBACK_SHRINKAGE).fit(X)


def _posterior_draw(estimator, X, rng):
    """Missing entries of ``X`` drawn from the fitted conditional laws.

    The one place where the imputer needs more than the estimators' common
    public API: an estimator that knows its own conditional laws (e.g. a
    non-normal family) provides ``_conditional_draw(X, rng)``; otherwise the
    fitted normal ``N(mean_, factor_ @ factor_.T)`` (or, for a factor model
    without ``factor_``, ``N(mean_, components_.T @ components_ +
    diag(noise_variance_))``) is conditioned by
    :func:`~._representations.conditional.conditional_draw`.
    """
    if hasattr(estimator, "_conditional_draw"):
        return estimator._conditional_draw(X, rng)
    factor = getattr(estimator, "factor_", None)
    if factor is None:
        # covariance_type='factor': S = W^T W + diag(psi) = F F^T with the
        # rectangular F = [W^T | diag(sqrt(psi))].
        factor = np.hstack(
            [estimator.components_.T, np.diag(np.sqrt(estimator.noise_variance_))]
        )
    return conditional_draw(X, estimator.mean_, factor, rng)


# ---------------------------------------------------------------------------
# The transformer
# ---------------------------------------------------------------------------


class GaussianImputer(TransformerMixin, BaseEstimator):
    """Impute missing values from a multivariate density fitted with NaN.

    ``fit`` fits a clone of ``estimator`` (by default a
    :class:`~sklearn_mvn.GradientGaussian`) by maximum likelihood on the
    observed entries, without imputing first. ``transform`` replaces each
    missing entry (NaN) by its conditional expectation given the observed
    entries of its row under the fitted model,
    ``mean_m + S_mo S_oo^{-1} (x_o - mean_o)`` for a normal, or, with
    ``sample_posterior=True``, by a draw from the conditional law of the
    row's missing entries, for multiple imputation. Unlike the chained
    regressions of :class:`~sklearn.impute.IterativeImputer`, which
    approximate this conditioning, the fit is the exact observed-data
    maximum-likelihood estimate and the imputation one closed-form step.

    Parameters
    ----------
    estimator : estimator instance, default=None
        Density estimator to fit, one of the package's estimators (anything
        with ``fit``, ``score_samples`` and ``impute`` and the fitted
        attribute ``mean_``), or a search over one such as
        ``GridSearchCV(GradientGaussian(), {"shrinkage": [0.0, 0.1]})``, whose
        ``best_estimator_`` then imputes (it needs ``refit=True``). ``None``
        means ``GradientGaussian()``. It is cloned by ``fit``. To tune its
        parameters as ``estimator__<name>`` (e.g. ``estimator__shrinkage``),
        pass an estimator instance. The first parameter, and the only one that
        may be passed by position, as in scikit-learn's meta-estimators. An
        unpenalised estimator whose likelihood turns out unbounded on the data
        (a :class:`GradientStudentT` with ``df_`` at its lower bound or a
        collapsed scale matrix, whose conditional expectations would be
        arbitrary) is refitted with ``shrinkage=0.1``, with a warning.

    sample_posterior : bool, default=False
        If True, draw each row's missing entries from their conditional
        distribution given the row's observed entries and the fitted
        parameters (as ``sample_posterior`` of
        :class:`~sklearn.impute.IterativeImputer`), instead of filling in the
        conditional expectation. Repeat with different ``random_state`` for
        multiple imputation. The draws do not reflect the uncertainty of the
        fitted parameters.

    random_state : int, RandomState instance or None, default=None
        Seed of the draws when ``sample_posterior=True``. With an int, every
        call to ``transform`` gives the same draws (so ``fit_transform`` equals
        ``fit`` then ``transform``); with a ``RandomState`` instance, each call
        continues its stream.

    add_indicator : bool, default=False
        If True, append the binary indicators of a
        :class:`~sklearn.impute.MissingIndicator` (one column per feature with
        missing values in ``fit``) to the output, as ``add_indicator`` of
        :class:`~sklearn.impute.SimpleImputer`.

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted clone of ``estimator`` (for a search, the fitted search; the
        imputations come from its ``best_estimator_``).

    indicator_ : :class:`~sklearn.impute.MissingIndicator`
        Indicator of missing values, fitted when ``add_indicator=True``, else
        None.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    GradientGaussian : The default density estimator; its ``impute`` method
        is the conditional expectation used here.
    GaussianOutlierDetector : Outlier detection with the same estimators.
    sklearn.impute.IterativeImputer : Imputation by chained regressions.
    sklearn.impute.KNNImputer : Imputation from nearest neighbours.
    sklearn.impute.SimpleImputer : Imputation by a column statistic.

    Notes
    -----
    Rows with every entry missing carry no information: ``fit`` skips them,
    and ``transform`` fills them with the fitted mean (or a draw from the
    fitted distribution), also when every row of the batch is such a row. A
    feature that is never observed in ``fit`` makes the estimator's ``fit``
    raise a ``ValueError``.

    The output has the floating-point type of the input (float32 stays
    float32, as in scikit-learn's imputers; other input becomes float64); the
    fit itself is computed in float64.

    ``fit`` and ``fit_transform`` are all-or-nothing: on any exception (also
    ``KeyboardInterrupt``) the imputer keeps its previous state, or stays
    unfitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mvn import GaussianImputer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.multivariate_normal([0, 0], [[1.0, 0.9], [0.9, 1.0]], size=500)
    >>> X[rng.rand(500) < 0.2, 1] = np.nan
    >>> imputer = GaussianImputer().fit(X)
    >>> imputer.transform([[2.0, np.nan]]).round(2)
    array([[2.  , 1.84]])
    >>> draws = GaussianImputer(sample_posterior=True, random_state=0).fit_transform(X)
    >>> bool(np.isnan(draws).any())
    False

    The density estimator comes first and may be a search over its parameters:

    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_mvn import GradientGaussian
    >>> search = GridSearchCV(GradientGaussian(), {"shrinkage": [0.0, 0.5]})
    >>> imputer = GaussianImputer(search).fit(X)
    >>> imputer.estimator_.best_params_
    {'shrinkage': 0.0}
    >>> imputer.transform(np.array([[2.0, np.nan]], dtype=np.float32)).dtype
    dtype('float32')
    """

    _parameter_constraints: dict = {
        # fit checks the other methods (_estimator_to_fit): on the estimator a
        # search such as GridSearchCV tunes, which has no ``impute`` itself.
        "estimator": [HasMethods(["fit"]), None],
        "sample_posterior": ["boolean"],
        "random_state": ["random_state"],
        "add_indicator": ["boolean"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        sample_posterior=False,
        random_state=None,
        add_indicator=False,
    ):
        self.estimator = estimator
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.add_indicator = add_indicator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X, reset):
        return validate_with_nan(self, X, reset)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the density estimator on the observed entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, NaN at the missing entries. Rows without any
            observed entry are skipped.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : GaussianImputer
            The fitted imputer.
        """
        with _AllOrNothing(self):
            self._fit(self._validate(X, reset=True))
        return self

    def _fit(self, X):
        """Fit on validated ``X``; return which rows have no observed entry.

        The fitted attributes are set together at the end; the callers
        restore the previous state if anything raises.
        """
        estimator = _estimator_to_fit(self, ["score_samples", "impute"])
        _, empty = _nan_rows(X)
        if empty.all():
            raise ValueError(
                "X has no observed entry (every entry is NaN); GaussianImputer "
                "needs observed values to fit the distribution."
            )
        rows = X[~empty] if empty.any() else X
        fitted = clone(estimator).fit(rows)
        if getattr(fitted, "_likelihood_unbounded", False):
            fitted = _bounded_refit(fitted, rows)
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(error_on_new=False).fit(X)
        self.estimator_, self.indicator_ = fitted, indicator
        return empty

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None):
        """Fit to ``X``, then fill each of its missing entries.

        The same result as ``fit(X).transform(X)``, with ``X`` checked once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, NaN at the missing entries.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            As :meth:`transform` returns for ``X``.
        """
        with _AllOrNothing(self):
            X = self._validate(X, reset=True)
            empty = self._fit(X)
            return self._transform(X, empty)

    def transform(self, X):
        """Fill each missing entry of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN at the missing entries.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            A copy of ``X`` (float32 for float32 input, else float64) with
            every NaN replaced by its conditional expectation given the row's
            observed entries (or a draw from the conditional law, if
            ``sample_posterior``), followed by the missing indicators if
            ``add_indicator``. Rows with every entry missing get the fitted
            mean (or a draw from the fitted distribution). A data frame with
            ``X``'s index after ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        return self._transform(self._validate(X, reset=False))

    def _transform(self, X, every=None):
        """Fill validated ``X`` (``every``: its rows without observed entry,
        computed if None)."""
        density = _fitted_density(self.estimator_)
        if self.sample_posterior:
            rng = check_random_state(self.random_state)
            X_imputed = np.asarray(_posterior_draw(density, X, rng), dtype=X.dtype)
        else:
            X_imputed = self._impute(density, X, every)
        if self.indicator_ is not None:
            X_imputed = np.hstack(
                [X_imputed, self.indicator_.transform(X).astype(X.dtype)]
            )
        return X_imputed

    @staticmethod
    def _impute(density, X, every=None):
        """Conditional expectations in ``X``'s dtype; rows without observed
        entries get the mean."""
        if every is None:
            _, every = _nan_rows(X)
        if not every.any():
            # One call on X itself: no copy of X besides the output.
            X_imputed = np.asarray(density.impute(X), dtype=X.dtype)
            return X_imputed.copy() if np.may_share_memory(X_imputed, X) else X_imputed
        X_imputed = np.empty(X.shape, dtype=X.dtype)
        X_imputed[every] = density.mean_
        if not every.all():
            X_imputed[~every] = density.impute(X[~every])
        return X_imputed

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_``, or
            ``x0, x1, ...`` if ``fit`` saw no names.

        Returns
        -------
        feature_names_out : ndarray of str
            The input names, then ``missingindicator_<name>`` for each
            indicator column if ``add_indicator``.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if self.indicator_ is None:
            return names
        return np.concatenate([names, self.indicator_.get_feature_names_out(names)])
