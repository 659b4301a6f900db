"""GradientGaussian: exactness, scoring, scikit-learn integration, errors."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mvn import GradientGaussian


def hard_data(n=3000, d=30, seed=0):
    """Strongly correlated features (cond(corr) >= 1e5), scales 1e-4..1e4,
    means up to 1e6 and up to 1e6 standard deviations from 0.

    (A mean of 1e6 on a feature of scale 1e-4 could not be represented to
    1e-6 standard deviations in float64: one ulp of 1e6 is 1.2e-10.)"""
    rng = np.random.RandomState(seed)
    basis, _ = np.linalg.qr(rng.randn(d, d))
    cov = basis @ np.diag(np.logspace(0, -6, d)) @ basis.T
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    scales = np.logspace(-4, 4, d)
    means = rng.uniform(-1e6, 1e6, d) * np.minimum(scales, 1.0)
    X = rng.multivariate_normal(np.zeros(d), corr, size=n) * scales + means
    return X, corr


def corr_units_error(model, mean, cov):
    """Largest error of mean and covariance in units of the true scales."""
    sd = np.sqrt(np.diag(cov))
    return max(
        np.max(np.abs(model.mean_ - mean) / sd),
        np.max(np.abs(model.covariance_ - cov) / np.outer(sd, sd)),
    )


@pytest.fixture(scope="module")
def hard():
    return hard_data()


def test_hard_data_is_hard(hard):
    X, corr = hard
    sd = X.std(axis=0)
    assert np.linalg.cond(corr) >= 1e5
    assert sd.max() / sd.min() > 1e7
    assert np.abs(X.mean(axis=0)).max() > 1e5
    assert np.max(np.abs(X.mean(axis=0)) / sd) > 1e5


def test_fit_equals_closed_form_on_hard_data(hard):
    X, _ = hard
    model = GradientGaussian().fit(X)
    assert model.converged_
    err = corr_units_error(model, X.mean(axis=0), np.cov(X.T, bias=True))
    assert err < 1e-6
    assert model.n_iter_ < 50
    # factor_ is lower triangular with a positive diagonal
    assert_array_equal(model.factor_, np.tril(model.factor_))
    assert np.all(np.diag(model.factor_) > 0)
    assert_allclose(model.covariance_, model.factor_ @ model.factor_.T)
    sd = np.sqrt(np.diag(model.covariance_))
    identity = (model.precision_ * np.outer(sd, sd)) @ (
        model.covariance_ / np.outer(sd, sd)
    )
    assert_allclose(identity, np.eye(X.shape[1]), atol=1e-6)


@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_optimiser_converges_from_a_different_start(hard, fraction):
    """Warm start from a fit on a subset: the optimiser must do the work."""
    X, _ = hard
    model = GradientGaussian(warm_start=True).fit(X[: int(fraction * len(X))])
    model.fit(X)
    assert model.converged_
    assert 3 <= model.n_iter_ <= 60  # tens of iterations, not thousands
    err = corr_units_error(model, X.mean(axis=0), np.cov(X.T, bias=True))
    assert err < 1e-6
    values = [value for value, _ in model.history_]
    assert values[-1] < values[0]
    # the gradient is driven to the resolution of the objective
    assert model.history_[-1][1] <= 1e-6


def test_fit_with_weights_equals_weighted_closed_form(hard):
    X, _ = hard
    w = np.random.RandomState(1).uniform(0, 5, size=len(X))
    model = GradientGaussian().fit(X, sample_weight=w)
    mean = np.average(X, axis=0, weights=w)
    cov = np.cov(X.T, aweights=w, bias=True)
    assert corr_units_error(model, mean, cov) < 1e-6


def test_integer_weights_equal_repeated_rows():
    rng = np.random.RandomState(2)
    X = rng.randn(40, 3) @ rng.randn(3, 3)
    w = rng.randint(0, 4, size=40)
    weighted = GradientGaussian().fit(X, sample_weight=w)
    repeated = GradientGaussian().fit(np.repeat(X, w, axis=0))
    assert_allclose(weighted.mean_, repeated.mean_, rtol=1e-10, atol=1e-12)
    assert_allclose(weighted.covariance_, repeated.covariance_, rtol=1e-10)
    assert_allclose(weighted.score_samples(X), repeated.score_samples(X), rtol=1e-10)


def test_score_samples_matches_scipy(hard):
    X, _ = hard
    model = GradientGaussian().fit(X)
    # SciPy's eigendecomposition treats a covariance with condition number
    # 1e16 as singular, so it gets the standardised problem: the log-density
    # of x equals that of (x - m) / sd minus sum(log sd).
    mean, cov = X.mean(axis=0), np.cov(X.T, bias=True)
    # np.mean's rounding (3e-9 sd here) would move the log-densities by 1e-6
    # through the 1e6 condition number; one correction with the mean residual
    # makes the reference mean accurate to 1e-10 sd.
    mean += (X - mean).mean(axis=0)
    sd = np.sqrt(np.diag(cov))
    expected = multivariate_normal(np.zeros(X.shape[1]), cov / np.outer(sd, sd)).logpdf(
        (X - mean) / sd
    ) - np.sum(np.log(sd))
    assert_allclose(model.score_samples(X), expected, rtol=0, atol=1e-6)
    assert model.score(X) == pytest.approx(np.mean(expected), abs=1e-6)


def test_score_is_mean_log_likelihood_per_sample():
    rng = np.random.RandomState(3)
    X = rng.randn(100, 4)
    model = GradientGaussian().fit(X)
    assert isinstance(model.score(X[:10]), float)
    assert model.score(X[:10]) == pytest.approx(model.score_samples(X[:10]).mean())
    # a mean: repeating the evaluation data leaves it unchanged
    assert model.score(np.vstack([X, X])) == pytest.approx(model.score(X))


def test_float32_input():
    rng = np.random.RandomState(4)
    X = rng.randn(500, 5) @ rng.randn(5, 5) + 1e3
    m64 = GradientGaussian().fit(X)
    m32 = GradientGaussian().fit(X.astype(np.float32))
    X32 = X.astype(np.float32).astype(np.float64)
    assert_allclose(m32.covariance_, np.cov(X32.T, bias=True), rtol=1e-9)
    assert_allclose(m32.covariance_, m64.covariance_, rtol=1e-3)


def test_density_estimator_tag_and_mixin_order():
    assert GradientGaussian().__sklearn_tags__().estimator_type == "density_estimator"
    # The shared base class is BaseDensity(DensityMixin, BaseEstimator): the
    # mixin stays on the left of BaseEstimator in the method resolution order.
    names = [cls.__name__ for cls in GradientGaussian.__mro__]
    assert names.index("DensityMixin") < names.index("BaseEstimator")


def test_pipeline_gridsearch_and_cross_val_score():
    rng = np.random.RandomState(5)
    X = rng.randn(200, 6) @ rng.randn(6, 6) * [1, 10, 100, 1e3, 1e4, 1e5]
    pipe = make_pipeline(StandardScaler(), GradientGaussian())
    scores = cross_val_score(pipe, X, cv=4)
    assert scores.shape == (4,) and np.all(np.isfinite(scores))
    grid = GridSearchCV(
        GradientGaussian(),
        {"shrinkage": [0.0, 0.5, 1.0], "covariance_type": ["full", "diag"]},
        cv=4,
    ).fit(X)
    # correlated data: the full, unshrunk model has the best held-out likelihood
    assert grid.best_params_ == {"covariance_type": "full", "shrinkage": 0.0}
    best = GradientGaussian().fit(X)
    assert_allclose(grid.best_estimator_.covariance_, best.covariance_)


def test_anomaly_detection_ranks_outliers_first():
    rng = np.random.RandomState(6)
    cov = np.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.3], [0.0, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=500)
    # outliers that are unremarkable per feature but break the correlation
    outliers = np.array([[1.5, -1.5, 0.0], [-1.4, 1.6, 0.2], [2.0, -1.0, -0.5]])
    model = GradientGaussian().fit(X)
    scores = model.score_samples(np.vstack([X, outliers]))
    lowest = np.argsort(scores)[: len(outliers)]
    assert set(lowest) == set(range(len(X), len(X) + len(outliers)))


def test_pickle_round_trip():
    rng = np.random.RandomState(7)
    X = rng.randn(50, 3)
    model = GradientGaussian(shrinkage=0.1).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    assert_array_equal(restored.score_samples(X), model.score_samples(X))
    assert restored.get_params() == model.get_params()


def test_convergence_warning_when_max_iter_is_reached(hard):
    X, _ = hard
    model = GradientGaussian(warm_start=True, max_iter=2).fit(X[:150])
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model.fit(X)
    assert not model.converged_
    assert model.n_iter_ == 2


def test_verbose_prints_objective_and_gradient(capsys):
    rng = np.random.RandomState(8)
    X = rng.randn(300, 4) @ rng.randn(4, 4)
    model = GradientGaussian(warm_start=True).fit(X[:30])
    model.set_params(verbose=1).fit(X)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Iteration")]
    assert len(lines) == model.n_iter_ + 1
    assert "objective" in lines[0] and "|grad|" in lines[0]


def test_warm_start_with_other_n_features_raises():
    rng = np.random.RandomState(9)
    model = GradientGaussian(warm_start=True).fit(rng.randn(20, 3))
    with pytest.raises(ValueError, match="features"):
        model.fit(rng.randn(20, 4))
    # clone gives a fresh, unfitted estimator
    assert not hasattr(clone(model), "mean_")


@pytest.mark.parametrize(
    "X, reason",
    [
        (np.ones((1, 3)), "n_samples=1"),
        (np.c_[np.random.RandomState(0).randn(10, 2), np.full(10, 3.0)], "feature"),
        (np.random.RandomState(0).randn(10, 2) @ [[1, 2, 3], [4, 5, 6]], "dependent"),
        (np.random.RandomState(0).randn(4, 6), "dependent"),
    ],
    ids=["one-sample", "constant", "collinear", "n<d"],
)
def test_singular_covariance_error_names_the_fix(X, reason):
    with pytest.raises(ValueError, match="singular") as info:
        GradientGaussian().fit(X)
    assert reason in str(info.value)
    assert "reg_covar" in str(info.value) and "shrinkage" in str(info.value)
    # ... and the fix it names works
    model = GradientGaussian(reg_covar=1e-3).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))


def test_nan_inf_and_sparse_input_errors():
    X = np.random.RandomState(0).randn(10, 2)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GradientGaussian().fit(X_inf)
    with pytest.raises(TypeError, match="dense"):
        GradientGaussian().fit(sparse.csr_matrix(X))


def test_reg_covar_is_honoured_next_to_a_large_constant_feature():
    """Issue 14, defect 6: a constant timestamp-like column with reg_covar."""
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(100, 2), np.full(100, 1.7e12)]
    model = GradientGaussian(reg_covar=1e-6).fit(X)
    assert model.covariance_[2, 2] == pytest.approx(1e-6, rel=1e-9)
    expected = np.cov(X[:, :2].T, bias=True) + 1e-6 * np.eye(2)
    assert_allclose(model.covariance_[:2, :2], expected, rtol=1e-9)
    # too small to be represented: the message names a value that works
    with pytest.raises(ValueError, match=r"reg_covar >= ([0-9.e+-]+) works") as info:
        GradientGaussian(reg_covar=1e-12).fit(X)
    works = float(str(info.value).split("reg_covar >= ")[1].split(" ")[0])
    GradientGaussian(reg_covar=works).fit(X)
