"""GaussianOutlierDetector: thresholds, NaN at predict time, pipelines, pandas."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2, multivariate_normal
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mvn import GaussianOutlierDetector, GradientGaussian


def _random_cov(rng, d, cond=20.0):
    q, _ = np.linalg.qr(rng.randn(d, d))
    return (q * np.geomspace(1.0, cond, d)) @ q.T


def _gaussian(rng, n, d):
    return rng.multivariate_normal(rng.randn(d), _random_cov(rng, d), size=n)


def _marginal_logpdf(X, mean, cov):
    """Log-density of each row's observed entries (SciPy, row by row)."""
    out = []
    for x in X:
        o = ~np.isnan(x)
        out.append(multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o]))
    return np.array(out)


def test_scores_decision_and_labels():
    rng = np.random.RandomState(0)
    X = _gaussian(rng, 300, 4)
    detector = GaussianOutlierDetector().fit(X)
    model = GradientGaussian().fit(X)
    X_test = _gaussian(rng, 50, 4) * 2.0
    scores = detector.score_samples(X_test)
    expected = multivariate_normal(model.mean_, model.covariance_).logpdf(X_test)
    assert_allclose(scores, expected, rtol=1e-10)
    decision = detector.decision_function(X_test)
    assert_allclose(decision, scores - detector.offset_, rtol=1e-12, atol=1e-12)
    assert_array_equal(detector.predict(X_test), np.where(decision < 0, -1, 1))
    assert_array_equal(detector.fit_predict(X), detector.fit(X).predict(X))


@pytest.mark.parametrize("n", [37, 200, 1001])
@pytest.mark.parametrize("contamination", [0.01, 0.1, 0.25, 0.5])
def test_training_fraction_within_one_over_n(n, contamination):
    rng = np.random.RandomState(n)
    X = _gaussian(rng, n, 3)
    X[rng.rand(n) < 0.2, 1] = np.nan  # scores of rows with NaN take part too
    detector = GaussianOutlierDetector(contamination=contamination).fit(X)
    flagged = np.mean(detector.predict(X) == -1)
    assert abs(flagged - contamination) <= 1.0 / n
    scores = detector.score_samples(X)
    assert_allclose(detector.offset_, np.percentile(scores, 100 * contamination))


def test_auto_threshold_is_the_chi_square_cut_off():
    rng = np.random.RandomState(1)
    d = 5
    X = _gaussian(rng, 20_000, d)
    detector = GaussianOutlierDetector(contamination="auto").fit(X)
    model = detector.estimator_
    _, logdet = np.linalg.slogdet(model.covariance_)
    q = chi2(d).isf(0.025)
    expected = -0.5 * (d * np.log(2 * np.pi) + logdet + q)
    assert_allclose(detector.offset_, expected, rtol=1e-12)
    # On data drawn from the fitted normal, 2.5% of the rows are flagged.
    X_new = model.sample(40_000, random_state=0)
    flagged = np.mean(detector.predict(X_new) == -1)
    se = np.sqrt(0.025 * 0.975 / len(X_new))
    assert abs(flagged - 0.025) < 4.5 * se
    # 'auto' depends on the model only: the same for a subset of the rows.
    mahalanobis = model.mahalanobis(X_new)
    assert_array_equal(detector.predict(X_new) == -1, mahalanobis > q * (1 + 1e-12))


def test_nan_at_predict_time():
    """Rows with missing entries are scored by their marginal density."""
    rng = np.random.RandomState(2)
    X = _gaussian(rng, 400, 4)
    detector = GaussianOutlierDetector(contamination=0.05).fit(X)
    model = detector.estimator_
    X_test = _gaussian(rng, 30, 4)
    X_test[rng.rand(30, 4) < 0.4] = np.nan
    X_test[np.isnan(X_test).all(axis=1), 2] = 0.5
    expected = _marginal_logpdf(X_test, model.mean_, model.covariance_)
    assert_allclose(detector.score_samples(X_test), expected, rtol=1e-10)
    assert_array_equal(
        detector.predict(X_test), np.where(expected < detector.offset_, -1, 1)
    )


def test_nan_in_fit_is_the_observed_data_fit():
    rng = np.random.RandomState(3)
    X = _gaussian(rng, 300, 3)
    X[rng.rand(300, 3) < 0.15] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    detector = GaussianOutlierDetector().fit(X)
    model = GradientGaussian().fit(X)
    assert_allclose(detector.estimator_.covariance_, model.covariance_, rtol=1e-10)
    assert_allclose(detector.score_samples(X), model.score_samples(X), rtol=1e-10)


def test_other_estimators_and_cloning():
    rng = np.random.RandomState(4)
    X = _gaussian(rng, 200, 3)
    estimator = GradientGaussian(covariance_type="diag")
    detector = GaussianOutlierDetector(estimator=estimator, contamination="auto")
    detector.fit(X)
    assert not hasattr(estimator, "mean_")
    variances = X.var(axis=0)
    expected = -0.5 * (
        3 * np.log(2 * np.pi) + np.log(variances).sum() + chi2(3).isf(0.025)
    )
    assert_allclose(detector.offset_, expected, rtol=1e-8)


@pytest.mark.parametrize("contamination", [0.0, 0.6, -0.1, "none", None])
def test_invalid_contamination(contamination):
    X = np.random.RandomState(5).randn(20, 2)
    with pytest.raises(ValueError, match="'contamination' parameter"):
        GaussianOutlierDetector(contamination=contamination).fit(X)


def test_bad_input():
    rng = np.random.RandomState(6)
    X = rng.randn(30, 2)
    X_inf = X.copy()
    X_inf[1, 1] = -np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianOutlierDetector().fit(X_inf)
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianOutlierDetector().fit(X + 1j)
    detector = GaussianOutlierDetector().fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        detector.predict(rng.randn(4, 3))
    with pytest.raises(ValueError, match="no observed entry"):
        detector.predict([[np.nan, np.nan]])


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, np.where(y == 1, 1, -1)  # benign as inliers


def test_pipeline_and_grid_search_on_roc_auc():
    X, y = _breast_cancer()
    pipe = make_pipeline(
        StandardScaler(), GaussianOutlierDetector(estimator=GradientGaussian())
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(
        pipe,
        {"gaussianoutlierdetector__estimator__shrinkage": [0.01, 0.3]},
        scoring="roc_auc",
        cv=cv,
    )
    grid.fit(X, y)
    # Each fold's score is the ROC AUC of the decision function, fitted on the
    # training folds.
    train, test = next(cv.split(X, y))
    for params, score in zip(
        grid.cv_results_["params"], grid.cv_results_["split0_test_score"], strict=True
    ):
        shrinkage = params["gaussianoutlierdetector__estimator__shrinkage"]
        scaler = StandardScaler().fit(X[train])
        model = GradientGaussian(shrinkage=shrinkage).fit(scaler.transform(X[train]))
        scores = model.score_samples(scaler.transform(X[test]))
        expected = roc_auc_score(y[test], scores)
        assert_allclose(score, expected, rtol=1e-12)
    best = grid.best_estimator_
    assert_allclose(
        best.decision_function(X),
        best.score_samples(X) - best[-1].offset_,
        rtol=1e-12,
    )


def test_pandas_input():
    X, _ = _breast_cancer()
    X, names = X[:, :10], load_breast_cancer().feature_names[:10]
    frame = pd.DataFrame(X, columns=names, index=np.arange(len(X)) + 1000)
    frame.iloc[::7, 3] = np.nan
    detector = GaussianOutlierDetector(contamination=0.05).fit(frame)
    assert_array_equal(detector.feature_names_in_, names)
    assert_allclose(
        detector.score_samples(frame),
        GaussianOutlierDetector().fit(frame.to_numpy()).score_samples(frame.to_numpy()),
        rtol=1e-10,
    )
    assert abs(np.mean(detector.predict(frame) == -1) - 0.05) <= 1.0 / len(frame)
    with pytest.warns(UserWarning, match="feature names"):
        detector.predict(frame.to_numpy())


# ---------------------------------------------------------------------------
# The estimator: positional, or a search over one
# ---------------------------------------------------------------------------


def test_estimator_is_the_first_positional_parameter():
    estimator = GradientGaussian(shrinkage=0.2)
    detector = GaussianOutlierDetector(estimator, contamination=0.2)
    assert detector.estimator is estimator and detector.contamination == 0.2
    with pytest.raises(TypeError):
        GaussianOutlierDetector(estimator, 0.2)


@pytest.mark.parametrize("contamination", [0.05, "auto"])
def test_wrapping_a_grid_search(contamination):
    """GaussianOutlierDetector(GridSearchCV(...)) tunes the density on held-out
    log-likelihood and thresholds the refitted best model, also for 'auto'
    (which reads mean_ and mahalanobis, which a search lacks)."""
    X, y = _breast_cancer()
    X = StandardScaler().fit_transform(X)[y == 1]
    grid = {"shrinkage": [0.5, 0.01, 0.0]}
    search = GridSearchCV(GradientGaussian(), grid, cv=3)
    detector = GaussianOutlierDetector(search, contamination=contamination).fit(X)
    best = detector.estimator_.best_estimator_
    assert detector.estimator_.best_params_ == clone(search).fit(X).best_params_
    assert detector.estimator_.best_params_["shrinkage"] != 0.5  # not the first
    reference = GaussianOutlierDetector(clone(best), contamination=contamination).fit(X)
    assert_allclose(detector.offset_, reference.offset_, rtol=1e-12)
    assert_allclose(detector.score_samples(X), best.score_samples(X), rtol=1e-12)
    assert_array_equal(detector.predict(X), reference.predict(X))
    assert 0 < np.mean(detector.predict(X) == -1) < 0.2


def test_estimators_that_cannot_serve_are_refused_before_fitting():
    X = np.random.RandomState(7).randn(40, 2)
    search = GridSearchCV(GradientGaussian(), {"shrinkage": [0.0, 0.1]}, refit=False)
    with pytest.raises(ValueError, match="refit=False keeps none: set refit=True"):
        GaussianOutlierDetector(search).fit(X)
    with pytest.raises(ValueError, match="'estimator' parameter of Gaussian"):
        GaussianOutlierDetector(StandardScaler()).fit(X)
    # 'auto' needs mahalanobis and mean_: a kernel density has neither.
    kde = KernelDensity()
    GaussianOutlierDetector(kde).fit(X)  # a quantile threshold only scores
    with pytest.raises(ValueError, match=r"\['mahalanobis'\]"):
        GaussianOutlierDetector(kde, contamination="auto").fit(X)

    class _NoMean(KernelDensity):
        def mahalanobis(self, X):
            return np.zeros(len(X))

    with pytest.raises(ValueError, match="'auto' needs the fitted attribute mean_"):
        GaussianOutlierDetector(_NoMean(), contamination="auto").fit(X)


# ---------------------------------------------------------------------------
# fit is all-or-nothing
# ---------------------------------------------------------------------------


class _InterruptedScore(GradientGaussian):
    """Fits, then is interrupted (as by Ctrl-C) when scoring."""

    def score_samples(self, X):
        raise KeyboardInterrupt


def _assert_same_state(estimator, state):
    """``vars(estimator)`` holds exactly the objects of ``state``."""
    assert sorted(vars(estimator)) == sorted(state)
    for name, value in state.items():
        assert vars(estimator)[name] is value, name


def test_failed_first_fit_leaves_the_detector_unfitted():
    X = np.random.RandomState(8).randn(20, 3)
    X[:, 1] = 2.0  # a constant feature: singular covariance
    detector = GaussianOutlierDetector()
    state = dict(vars(detector))
    with pytest.raises(ValueError, match="singular"):
        detector.fit(X)
    _assert_same_state(detector, state)
    with pytest.raises(NotFittedError):
        detector.predict(X)


@pytest.mark.parametrize("contamination", [0.1, "auto"])
@pytest.mark.parametrize("failure", ["singular", "interrupted"])
def test_failed_refit_keeps_the_previous_model(failure, contamination):
    """estimator_, offset_ and n_features_in_ stay together: an interrupted
    refit used to keep the new estimator_ with the old offset_, a failed one
    the new n_features_in_ with the old model."""
    rng = np.random.RandomState(9)
    X = _gaussian(rng, 100, 3)
    detector = GaussianOutlierDetector(contamination=contamination).fit(X)
    expected = detector.decision_function(X)
    if failure == "singular":
        X_new, error = np.ones((10, 4)), ValueError
    else:
        detector.set_params(estimator=_InterruptedScore())
        X_new, error = _gaussian(rng, 50, 4), KeyboardInterrupt
    state = dict(vars(detector))
    with pytest.raises(error):
        detector.fit(X_new)
    _assert_same_state(detector, state)
    assert detector.n_features_in_ == 3
    assert_array_equal(detector.decision_function(X), expected)


def test_refit_interrupted_by_a_monkeypatched_scorer(monkeypatch):
    """The same with the default estimator, interrupted in its score_samples."""
    rng = np.random.RandomState(10)
    detector = GaussianOutlierDetector().fit(_gaussian(rng, 80, 2))
    state = dict(vars(detector))

    def interrupted(self, X):
        raise KeyboardInterrupt

    monkeypatch.setattr(GradientGaussian, "score_samples", interrupted)
    with pytest.raises(KeyboardInterrupt):
        detector.fit(_gaussian(rng, 80, 2))
    _assert_same_state(detector, state)


# ---------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------

# Sections scikit-learn does not require for every method either: extended
# summary, "See Also" and examples per method, the type of each return value.
_NUMPYDOC_IGNORED = {"ES01", "SA01", "EX01", "RT02"}


@pytest.mark.parametrize(
    "name",
    [""]
    + [
        f".{m}"
        for m in GaussianOutlierDetector.__dict__
        if not m.startswith("_") and callable(getattr(GaussianOutlierDetector, m))
    ],
)
def test_numpydoc(name):
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    result = numpydoc_validate.validate(f"sklearn_mvn.GaussianOutlierDetector{name}")
    errors = [e for e in result["errors"] if e[0] not in _NUMPYDOC_IGNORED]
    assert not errors, errors


def test_fitted_attributes_are_documented():
    model = GaussianOutlierDetector().fit(np.random.RandomState(0).randn(50, 3))
    fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert "estimator_" in fitted
    for name in fitted:
        assert f"{name} :" in GaussianOutlierDetector.__doc__, name


def test_auto_threshold_for_a_student_t_is_its_own_quantile():
    """'auto' with GradientStudentT: the t's 97.5% distance quantile, also for
    df_ <= 2 where covariance_ is not finite."""
    from scipy.stats import f as f_dist

    from sklearn_mvn import GradientStudentT

    rng = np.random.RandomState(3)
    d, n = 3, 4000
    X = rng.standard_normal((n, d)) / np.sqrt(rng.chisquare(1.5, size=(n, 1)) / 1.5)
    detector = GaussianOutlierDetector(
        estimator=GradientStudentT(), contamination="auto"
    ).fit(X)
    model = detector.estimator_
    assert model.df_ < 2.5
    q = d * f_dist(d, model.df_).isf(0.025)
    flagged = detector.predict(X) == -1
    assert_array_equal(flagged, model.mahalanobis(X) > q * (1 + 1e-9))
    assert abs(flagged.mean() - 0.025) < 0.01


def test_detector_on_a_trimmed_t_flags_a_training_cluster():
    # 15% of the training rows form a tight cluster: the plain t absorbs it
    # (its rows are not among the least likely), the trimmed t does not.
    from sklearn_mvn import GradientStudentT

    rng = np.random.RandomState(0)
    d = 6
    inliers = rng.standard_t(3, size=(850, d))
    cluster = 9.0 + 0.3 * rng.randn(150, d) / np.sqrt(d)
    X = np.vstack([inliers, cluster])
    trimmed = GaussianOutlierDetector(
        estimator=GradientStudentT(support_fraction=None), contamination=0.15
    ).fit(X)
    plain = GaussianOutlierDetector(
        estimator=GradientStudentT(), contamination=0.15
    ).fit(X)
    assert np.mean(trimmed.predict(cluster) == -1) == 1.0
    assert np.mean(plain.predict(cluster) == -1) < 0.5
