"""GaussianOutlierDetector: outlier detection by a fitted multivariate density.

The detector wraps one of the package's density estimators and uses only its
public API (``fit`` and ``score_samples``; ``mean_`` and ``mahalanobis`` for
``contamination='auto'``): the outlier score is the fitted log-density,
thresholded at ``offset_`` as scikit-learn's outlier detectors threshold their
scores.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.stats import chi2
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._base import _AllOrNothing
from ._imputer import _estimator_to_fit, _fitted_density
from ._validation import (
    HasMethods,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    validate_with_nan,
)

# contamination="auto": tail probability of the squared Mahalanobis distance
# beyond which a point is an outlier (the 97.5% chi-square cut-off of
# Rousseeuw and Van Zomeren, also used by MinCovDet's reweighting step).
AUTO_TAIL = 0.025


def _auto_offset(estimator, n_features):
    """Log-density at the ``1 - AUTO_TAIL`` quantile of the squared distance.

    The estimator's ``_squared_distance_quantile(tail)`` gives the quantile of
    its own :meth:`mahalanobis` (chi-square for the normal; a scaled F for the
    Student-t); estimators without it are treated as normal. The point
    ``mean_ + c e_1``, scaled so that its distance is that quantile, is found
    with ``mahalanobis`` alone (quadratic in ``c``), so no covariance matrix is
    formed; an elliptical density takes one value on that ellipsoid.
    """
    if not hasattr(estimator, "mean_"):
        raise ValueError(
            f"contamination='auto' needs the fitted attribute mean_, which "
            f"{type(estimator).__name__} does not have: pass a float "
            "contamination, or one of sklearn-mvn's density estimators."
        )
    hook = getattr(estimator, "_squared_distance_quantile", None)
    if hook is None:
        squared_distance = chi2(n_features).isf(AUTO_TAIL)
    else:
        squared_distance = hook(AUTO_TAIL)
    mean = np.asarray(estimator.mean_, dtype=np.float64)
    step = np.zeros(n_features)
    step[0] = max(1.0, 1e-3 * abs(mean[0]))
    base = float(estimator.mahalanobis((mean + step)[None, :])[0])
    point = mean + step * np.sqrt(squared_distance / base)
    return float(estimator.score_samples(point[None, :])[0])


class GaussianOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection with a fitted multivariate density.

    ``fit`` fits a clone of ``estimator`` (by default a
    :class:`~sklearn_mvn.GradientGaussian`, the exact maximum-likelihood
    normal) and sets the threshold ``offset_`` on its log-density.
    ``score_samples`` is the log-density (higher means more normal),
    ``decision_function`` is ``score_samples - offset_`` (negative for
    outliers) and ``predict`` returns +1 for inliers and -1 for outliers, as
    :class:`~sklearn.covariance.EllipticEnvelope`,
    :class:`~sklearn.ensemble.IsolationForest` and
    :class:`~sklearn.neighbors.LocalOutlierFactor` do. Missing entries (NaN)
    are accepted in ``fit`` and at prediction time: a row is scored by the
    marginal density of its observed entries.

    Parameters
    ----------
    estimator : estimator instance, default=None
        Density estimator to fit: anything with ``fit`` and ``score_samples``,
        such as the package's estimators (``contamination='auto'`` also needs
        ``mahalanobis`` and the fitted attribute ``mean_``), or a search over
        one such as ``GridSearchCV(GradientGaussian(), {"shrinkage": [0.0,
        0.1]})``, whose ``best_estimator_`` then scores (it needs
        ``refit=True``). ``None`` means ``GradientGaussian()``. It is cloned
        by ``fit``. To tune its parameters as ``estimator__<name>``, pass an
        estimator instance. The first parameter, and the only one that may be
        passed by position, as in scikit-learn's meta-estimators.

    contamination : 'auto' or float, default=0.1
        Proportion of outliers in the training data, as in scikit-learn's
        outlier detectors; the default is that of
        :class:`~sklearn.covariance.EllipticEnvelope`, the other detector
        built on a normal model.

        - float in (0, 0.5]: ``offset_`` is that quantile of the training
          log-densities (as :class:`~sklearn.covariance.EllipticEnvelope` and
          :class:`~sklearn.ensemble.IsolationForest` set it), so ``predict``
          flags that fraction of the training rows (within ``1/n``).
        - 'auto': the threshold is set by the model, not by the training
          scores (as ``'auto'`` of :class:`~sklearn.ensemble.IsolationForest`
          and :class:`~sklearn.neighbors.LocalOutlierFactor`): ``offset_`` is
          the fitted log-density at squared Mahalanobis distance
          ``chi2(n_features).isf(0.025)`` from ``mean_``, in the metric of
          the fitted covariance (the estimator's ``mahalanobis``). The points
          beyond
          are the 2.5% least likely under a fitted normal (the 97.5%
          chi-square cut-off of robust covariance estimation, also used by
          :class:`~sklearn.covariance.MinCovDet`).

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted clone of ``estimator`` (for a search, the fitted search; the
        scores come from its ``best_estimator_``).

    offset_ : float
        Threshold on the log-density: ``decision_function = score_samples -
        offset_``.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    GradientGaussian : The default density estimator.
    GaussianImputer : Imputation with the same estimators.
    sklearn.covariance.EllipticEnvelope : Outlier detection with a robust
        covariance estimate.
    sklearn.ensemble.IsolationForest : Outlier detection by random partitions.
    sklearn.neighbors.LocalOutlierFactor : Outlier detection by local density.

    Notes
    -----
    The scores of rows with missing entries are log-densities of fewer
    features (their marginal densities), compared with the same ``offset_``.
    A marginal density is on another scale than the full density (it lacks
    the conditional density of the missing entries), so the fraction of such
    rows flagged need not equal ``contamination``. ``score_samples`` itself
    is exact, so the ranking of rows with the same missing entries is exact.

    ``fit`` is all-or-nothing: on any exception (also ``KeyboardInterrupt``)
    the detector keeps its previous state (``estimator_`` and ``offset_``
    together), or stays unfitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mvn import GaussianOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.multivariate_normal([0, 0], [[1.0, 0.9], [0.9, 1.0]], size=200)
    >>> detector = GaussianOutlierDetector(contamination=0.05).fit(X)
    >>> float((detector.predict(X) == -1).mean())
    0.05
    >>> detector.predict([[0.0, 0.0], [2.0, -2.0], [np.nan, 5.0]])
    array([ 1, -1, -1])

    The density estimator comes first and may be a search over its parameters:

    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_mvn import GradientGaussian
    >>> search = GridSearchCV(GradientGaussian(), {"shrinkage": [0.0, 0.5]})
    >>> detector = GaussianOutlierDetector(search, contamination="auto").fit(X)
    >>> detector.estimator_.best_params_
    {'shrinkage': 0.0}
    >>> detector.predict([[0.0, 0.0], [2.0, -2.0]])
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        # fit checks the other methods (_estimator_to_fit), on the estimator a
        # search such as GridSearchCV tunes.
        "estimator": [HasMethods(["fit"]), None],
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0.0, 0.5, closed="right"),
        ],
    }

    def __init__(self, estimator=None, *, contamination=0.1):
        self.estimator = estimator
        self.contamination = contamination

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _validate(self, X, reset):
        return validate_with_nan(self, X, reset)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the density estimator and set the threshold ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN marks a missing entry.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : GaussianOutlierDetector
            The fitted detector.
        """
        with _AllOrNothing(self):
            auto = self.contamination == "auto"
            needs = ["score_samples", "mahalanobis"] if auto else ["score_samples"]
            estimator = _estimator_to_fit(self, needs)
            X = self._validate(X, reset=True)
            fitted = clone(estimator).fit(X)
            density = _fitted_density(fitted)
            if auto:
                offset = _auto_offset(density, self.n_features_in_)
            else:
                scores = density.score_samples(X)
                offset = float(np.percentile(scores, 100.0 * self.contamination))
            # Set together: an interrupted refit keeps the old pair.
            self.estimator_, self.offset_ = fitted, offset
        return self

    def score_samples(self, X):
        """Log-density of each sample under the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry (each row needs an observed
            entry).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The estimator's ``score_samples``: the log-density (of the
            observed entries, for a row with NaN). The lower, the more
            abnormal.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return _fitted_density(self.estimator_).score_samples(X)

    def decision_function(self, X):
        """Shifted log-density: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each sample as an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        labels : ndarray of int of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, +1 elsewhere.
        """
        decision = self.decision_function(X)
        return np.where(decision < 0.0, -1, 1)
