"""Shrinkage, reg_covar and covariance structures against scikit-learn."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.covariance import ShrunkCovariance
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_mvn import GradientGaussian


def _data(n, d, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d) @ rng.randn(d, d) * np.logspace(-1, 1, d) + rng.randn(d)


def _corr_units(a, b):
    sd = np.sqrt(np.diag(b))
    return np.max(np.abs(a - b) / np.outer(sd, sd))


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("n_samples", [200, 20, 5], ids=["n>d", "n<d", "n<<d"])
def test_shrinkage_equals_shrunk_covariance(alpha, n_samples):
    X = _data(n_samples, 30)
    model = GradientGaussian(shrinkage=alpha).fit(X)
    ref = ShrunkCovariance(shrinkage=alpha).fit(X)
    assert model.converged_
    assert _corr_units(model.covariance_, ref.covariance_) < 1e-6
    assert_allclose(model.mean_, ref.location_, rtol=1e-10, atol=1e-12)
    # same held-out score (both are mean log-likelihoods per sample)
    X_test = _data(50, 30, seed=1)
    assert model.score(X_test) == pytest.approx(ref.score(X_test), abs=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("reg_covar", [1e-6, 1e-2, 1.0])
def test_reg_covar_and_structure_equal_gaussian_mixture(covariance_type, reg_covar):
    X = _data(300, 6, seed=2)
    model = GradientGaussian(covariance_type=covariance_type, reg_covar=reg_covar)
    model.fit(X)
    gm = GaussianMixture(1, covariance_type=covariance_type, reg_covar=reg_covar)
    gm.fit(X)
    d = X.shape[1]
    cov = {
        "full": lambda c: c[0],
        "diag": lambda c: np.diag(c[0]),
        "spherical": lambda c: c[0] * np.eye(d),
    }[covariance_type](gm.covariances_)
    assert model.converged_
    assert _corr_units(model.covariance_, cov) < 1e-6
    assert_allclose(model.mean_, gm.means_[0], rtol=1e-10, atol=1e-12)
    assert_allclose(model.score_samples(X), gm.score_samples(X), rtol=1e-8)
    assert model._n_parameters() == gm._n_parameters()
    if covariance_type != "full":
        assert np.count_nonzero(model.factor_ - np.diag(np.diag(model.factor_))) == 0


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_structure_composes_with_shrinkage_and_weights(covariance_type):
    X = _data(100, 5, seed=3)
    w = np.random.RandomState(3).randint(0, 4, size=100)
    model = GradientGaussian(covariance_type=covariance_type, shrinkage=0.3)
    model.fit(X, sample_weight=w)
    shrunk = ShrunkCovariance(shrinkage=0.3).fit(np.repeat(X, w, axis=0)).covariance_
    expected = np.diag(np.diag(shrunk))
    if covariance_type == "spherical":
        expected = np.mean(np.diag(shrunk)) * np.eye(5)
    assert _corr_units(model.covariance_, expected) < 1e-6


def test_optimiser_reaches_penalised_optimum_from_a_different_start():
    """Warm start from the unpenalised fit: the optimiser must move."""
    X = _data(60, 10, seed=4)
    model = GradientGaussian(warm_start=True).fit(X)
    model.set_params(shrinkage=0.4, reg_covar=0.05).fit(X)
    assert model.converged_ and model.n_iter_ >= 3
    expected = ShrunkCovariance(shrinkage=0.4).fit(X).covariance_ + 0.05 * np.eye(10)
    assert _corr_units(model.covariance_, expected) < 1e-6


def test_gridsearch_over_shrinkage_matches_shrunk_covariance():
    """scikit-learn's "Shrinkage covariance estimation: LedoitWolf vs OAS and
    max-likelihood" set-up: 40 features, 20 samples, a colouring matrix."""
    n_features, n_samples = 40, 20
    rng = np.random.RandomState(42)
    coloring = rng.normal(size=(n_features, n_features))
    X_train = rng.normal(size=(n_samples, n_features)) @ coloring
    X_test = rng.normal(size=(n_samples, n_features)) @ coloring
    shrinkages = np.logspace(-2, 0, 30)
    cv = KFold(5)
    ours = GridSearchCV(GradientGaussian(), {"shrinkage": shrinkages}, cv=cv)
    theirs = GridSearchCV(ShrunkCovariance(), {"shrinkage": shrinkages}, cv=cv)
    ours.fit(X_train)
    theirs.fit(X_train)
    assert ours.best_params_ == theirs.best_params_
    assert_allclose(
        ours.cv_results_["mean_test_score"],
        theirs.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-6,
    )
    for split in range(5):
        key = f"split{split}_test_score"
        assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], atol=1e-6)
    assert ours.score(X_test) == pytest.approx(theirs.score(X_test), abs=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {"shrinkage": -0.1},
        {"shrinkage": 1.5},
        {"shrinkage": "auto"},
        {"reg_covar": -1e-3},
        {"covariance_type": "tied"},
        {"max_iter": -1},
        {"max_iter": 2.5},
        {"tol": -1.0},
        {"warm_start": "yes"},
    ],
)
def test_invalid_parameters_raise(params):
    X = _data(20, 3)
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        GradientGaussian(**params).fit(X)


def test_shrinkage_one_with_a_single_sample_is_singular_without_spread():
    # alpha = 1 needs tr(S_ML) > 0: one sample has no spread at all
    with pytest.raises(ValueError, match="singular"):
        GradientGaussian(shrinkage=1.0).fit(np.ones((1, 4)))
    # with two samples it works although n < d
    model = GradientGaussian(shrinkage=1.0).fit(np.eye(2, 4))
    tau = np.trace(np.cov(np.eye(2, 4).T, bias=True)) / 4
    assert_allclose(model.covariance_, tau * np.eye(4), rtol=1e-10)
