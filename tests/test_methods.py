"""sample, mahalanobis, bic and aic against scikit-learn's peers and SciPy."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2
from sklearn.covariance import EmpiricalCovariance
from sklearn.mixture import GaussianMixture

from sklearn_mvn import GradientGaussian
from sklearn_mvn._linalg import LOG_2PI, squared_mahalanobis

COVARIANCE_TYPES = ["full", "diag", "spherical"]


def _ill_conditioned(n_samples=400, seed=0):
    """Correlation 0.999 between features on scales from 1e-3 to 1e6."""
    rng = np.random.RandomState(seed)
    corr = np.full((4, 4), 0.999) + 0.001 * np.eye(4)
    scales = np.array([1e-3, 1.0, 1e3, 1e6])
    cov = corr * np.outer(scales, scales)
    return rng.multivariate_normal(scales, cov, size=n_samples)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    A = rng.randn(3, 3)
    return rng.multivariate_normal([1.0, -2.0, 0.5], A @ A.T + np.eye(3), size=300)


# ---------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_is_mean_plus_factor_times_normal_draws(data, covariance_type):
    model = GradientGaussian(covariance_type=covariance_type).fit(data)
    draws = model.sample(7, random_state=3)
    z = np.random.RandomState(3).standard_normal((7, 3))
    assert draws.shape == (7, 3)
    assert_allclose(draws, model.mean_ + z @ model.factor_.T, rtol=1e-14)


def test_sample_random_state(data):
    model = GradientGaussian().fit(data)
    assert_array_equal(model.sample(5, random_state=0), model.sample(5, random_state=0))
    rng = np.random.RandomState(0)
    first, second = model.sample(5, random_state=rng), model.sample(5, random_state=rng)
    assert not np.allclose(first, second)
    assert_array_equal(first, model.sample(5, random_state=0))
    assert model.sample().shape == (1, 3)
    assert model.sample(np.int64(2)).shape == (2, 3)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_moments(data, covariance_type):
    model = GradientGaussian(covariance_type=covariance_type).fit(data)
    n_samples = 200_000
    draws = model.sample(n_samples, random_state=0)
    sd = np.sqrt(np.diag(model.covariance_))
    # 6 standard errors: the mean's is sd / sqrt(n), a covariance entry's at
    # most sqrt(2) sd_i sd_j / sqrt(n) for a normal.
    assert np.all(
        np.abs(draws.mean(axis=0) - model.mean_) < 6 * sd / np.sqrt(n_samples)
    )
    error = np.abs(np.cov(draws.T) - model.covariance_)
    assert np.all(error < 6 * np.sqrt(2) * np.outer(sd, sd) / np.sqrt(n_samples))


def test_sample_refits_to_the_model(data):
    model = GradientGaussian().fit(data)
    refit = GradientGaussian().fit(model.sample(100_000, random_state=1))
    assert_allclose(refit.covariance_, model.covariance_, rtol=0.05, atol=0.05)


# ---------------------------------------------------------------------------
# mahalanobis
# ---------------------------------------------------------------------------


def test_mahalanobis_matches_empirical_covariance(data):
    model = GradientGaussian().fit(data)
    expected = EmpiricalCovariance().fit(data).mahalanobis(data)
    assert_allclose(model.mahalanobis(data), expected, rtol=1e-10)


def test_mahalanobis_ill_conditioned():
    X = _ill_conditioned()
    model = GradientGaussian().fit(X)
    # Reference on standardised features, where the correlation matrix has a
    # condition number of about 4e3 (the covariance's is about 7e20, too large
    # for EmpiricalCovariance's pseudo-inverse, which is off by up to 99% here).
    resid = X - X.mean(axis=0)
    z = resid / resid.std(axis=0)
    corr = z.T @ z / X.shape[0]
    expected = np.einsum("ij,ij->i", z, np.linalg.solve(corr, z.T).T)
    assert_allclose(model.mahalanobis(X), expected, rtol=1e-9)
    # For the maximum-likelihood fit the mean distance over the training
    # data is exactly n_features (trace of S^{-1} S).
    assert_allclose(model.mahalanobis(X).mean(), 4.0, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mahalanobis_is_the_quadratic_form(data, covariance_type):
    model = GradientGaussian(covariance_type=covariance_type).fit(data)
    resid = data - model.mean_
    expected = np.einsum(
        "ij,ij->i", resid, np.linalg.solve(model.covariance_, resid.T).T
    )
    dist = model.mahalanobis(data)
    assert_allclose(dist, expected, rtol=1e-10)
    # log N = -(d log 2 pi + log det S + mahalanobis) / 2
    logdet = np.linalg.slogdet(model.covariance_)[1]
    assert_allclose(
        model.score_samples(data), -0.5 * (3 * LOG_2PI + logdet + dist), rtol=1e-12
    )


def test_mahalanobis_chunks():
    rng = np.random.RandomState(0)
    X = rng.randn(1000, 3)
    factor = np.tril(rng.rand(3, 3)) + np.eye(3)
    whole = squared_mahalanobis(X, X.mean(axis=0), factor)
    assert_allclose(
        squared_mahalanobis(X, X.mean(axis=0), factor, chunk_size=7), whole, rtol=1e-14
    )


def test_mahalanobis_distribution():
    # Distances of fresh draws follow chi-squared(d) (a calibrated outlier
    # threshold); a weak but failing-if-wrong check of the scale.
    rng = np.random.RandomState(0)
    model = GradientGaussian().fit(rng.randn(50_000, 3) @ np.diag([1.0, 5.0, 0.1]))
    dist = model.mahalanobis(model.sample(50_000, random_state=1))
    assert abs(np.mean(dist > chi2(3).ppf(0.99)) - 0.01) < 0.002


# ---------------------------------------------------------------------------
# bic and aic
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("reg_covar", [0.0, 1e-6])
def test_bic_aic_match_gaussian_mixture(data, covariance_type, reg_covar):
    model = GradientGaussian(covariance_type=covariance_type, reg_covar=reg_covar)
    model.fit(data)
    mixture = GaussianMixture(
        n_components=1, covariance_type=covariance_type, reg_covar=reg_covar, tol=1e-12
    ).fit(data)
    assert model._n_parameters() == mixture._n_parameters()
    assert_allclose(model.bic(data), mixture.bic(data), rtol=1e-6)
    assert_allclose(model.aic(data), mixture.aic(data), rtol=1e-6)
    held_out = data[:40] * 1.5
    assert_allclose(model.bic(held_out), mixture.bic(held_out), rtol=1e-6)
    assert_allclose(model.aic(held_out), mixture.aic(held_out), rtol=1e-6)


def test_bic_aic_ill_conditioned():
    X = _ill_conditioned()
    model = GradientGaussian().fit(X)
    mixture = GaussianMixture(n_components=1, reg_covar=0.0, tol=1e-12).fit(X)
    assert_allclose(model.bic(X), mixture.bic(X), rtol=1e-6)
    assert_allclose(model.aic(X), mixture.aic(X), rtol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_aic_definition(data, covariance_type):
    model = GradientGaussian(covariance_type=covariance_type).fit(data)
    n_params = {"full": 3 + 6, "diag": 3 + 3, "spherical": 3 + 1}[covariance_type]
    total = model.score_samples(data).sum()
    assert_allclose(model.bic(data), -2 * total + n_params * np.log(300), rtol=1e-12)
    assert_allclose(model.aic(data), -2 * total + 2 * n_params, rtol=1e-12)


def test_bic_selects_the_true_structure():
    rng = np.random.RandomState(0)
    independent = rng.randn(2000, 4) * [1.0, 2.0, 3.0, 4.0]
    bics = {
        t: GradientGaussian(covariance_type=t).fit(independent).bic(independent)
        for t in COVARIANCE_TYPES
    }
    assert min(bics, key=bics.get) == "diag"
