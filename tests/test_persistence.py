"""Parallel model selection, thread safety, pickling and cloning."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.validation import check_is_fitted

from sklearn_mvn import GradientGaussian

FITTED_ATTRIBUTES = [
    "mean_",
    "covariance_",
    "precision_",
    "factor_",
    "n_iter_",
    "converged_",
    "objective_",
    "history_",
    "n_features_in_",
]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    A = rng.randn(4, 4)
    return rng.multivariate_normal(rng.randn(4), A @ A.T + np.eye(4), size=400)


def test_grid_search_parallel_equals_serial(data):
    grid = {
        "covariance_type": ["full", "diag", "spherical"],
        "shrinkage": [0.0, 0.1],
        "reg_covar": [0.0, 1e-2],
    }
    cv = KFold(5, shuffle=True, random_state=0)
    serial = GridSearchCV(GradientGaussian(), grid, cv=cv, n_jobs=1).fit(data)
    parallel = GridSearchCV(GradientGaussian(), grid, cv=cv, n_jobs=2).fit(data)
    assert serial.cv_results_["params"] == parallel.cv_results_["params"]
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{i}_test_score" for i in range(5)
    ]:
        assert_allclose(parallel.cv_results_[key], serial.cv_results_[key], rtol=1e-12)
    assert parallel.best_params_ == serial.best_params_
    assert_allclose(
        parallel.best_estimator_.covariance_, serial.best_estimator_.covariance_
    )


def test_concurrent_score_samples(data):
    model = GradientGaussian().fit(data)
    rng = np.random.RandomState(1)
    batches = [rng.randn(int(rng.randint(1, 3000)), 4) * 3 for _ in range(24)]
    serial = [model.score_samples(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(model.score_samples, batches))
        distances = list(pool.map(model.mahalanobis, batches))
    for got, expected, batch, dist in zip(
        threaded, serial, batches, distances, strict=True
    ):
        assert_array_equal(got, expected)
        assert_array_equal(dist, model.mahalanobis(batch))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_pickle_round_trip(data, covariance_type):
    model = GradientGaussian(covariance_type=covariance_type, shrinkage=0.1).fit(data)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params() == model.get_params()
    for name in FITTED_ATTRIBUTES:
        assert_array_equal(getattr(restored, name), getattr(model, name))
    assert_array_equal(restored.score_samples(data), model.score_samples(data))
    assert_array_equal(
        restored.sample(5, random_state=0), model.sample(5, random_state=0)
    )


def test_joblib_round_trip(data, tmp_path):
    model = GradientGaussian(reg_covar=1e-3).fit(data)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    restored = joblib.load(path)
    assert restored.get_params() == model.get_params()
    for name in FITTED_ATTRIBUTES:
        assert_array_equal(getattr(restored, name), getattr(model, name))
    assert_array_equal(restored.score_samples(data), model.score_samples(data))
    assert_array_equal(restored.mahalanobis(data), model.mahalanobis(data))


def test_unfitted_pickle_round_trip():
    model = GradientGaussian(covariance_type="diag", tol=1e-6)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(restored)


def test_clone(data):
    params = dict(
        covariance_type="spherical",
        n_factors=None,
        shrinkage=0.25,
        reg_covar=1e-4,
        max_iter=50,
        tol=1e-7,
        verbose=0,
        warm_start=True,
    )
    model = GradientGaussian(**params).fit(data)
    copy = clone(model)
    assert copy.get_params() == params
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert not any(hasattr(copy, name) for name in FITTED_ATTRIBUTES)
    # The clone fits to the same model, independently of the original.
    copy.fit(data[:200])
    assert not np.allclose(copy.mean_, model.mean_)
    assert_allclose(clone(model).fit(data).covariance_, model.covariance_, rtol=1e-12)
