"""The seed's objective and gradients: X-level, statistics-level, penalties."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.gradients import (
    nll,
    nll_grad,
    nll_grad_stats,
    nll_stats,
    penalty_stats,
)
from sklearn_mvn._linalg import log_density


def _problem(seed=0, n=40, d=4, weighted=False, triangular=False):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) @ rng.randn(d, d) + rng.randn(d) * 3
    mean = rng.randn(d)
    factor = rng.randn(d, d) + 3 * np.eye(d)  # full, non-triangular, invertible
    if triangular:
        factor = np.tril(factor)
        factor[np.diag_indices(d)] = np.abs(np.diag(factor)) + 0.5
    weights = rng.uniform(0.1, 3.0, size=n) if weighted else None
    return X, mean, factor, weights


def _seed_formulas(X, mean, factor, weights):
    """Eq. (2), (9) and (7) + (14) written literally with S^{-1} (reference)."""
    n, d = X.shape
    w = np.ones(n) if weights is None else weights
    S = factor @ factor.T
    S_inv = np.linalg.inv(S)
    R = X - mean
    J1 = w.sum() * np.linalg.slogdet(S)[1]
    J2 = np.sum(w * np.einsum("ij,jk,ik->i", R, S_inv, R))
    J = 0.5 * w.sum() * d * np.log(2 * np.pi) + 0.5 * (J1 + J2)
    dJ2_dmu = -2 * S_inv @ (R.T @ w)  # eq. (9)
    dJ1_dL = 2 * w.sum() * S_inv @ factor  # eq. (7)
    dJ2_dL = -2 * S_inv @ (R.T * w) @ R @ S_inv @ factor  # eq. (14)
    return J, 0.5 * dJ2_dmu, 0.5 * (dJ1_dL + dJ2_dL)


def _central_diff(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = h * max(1.0, abs(x[idx]))
        up, down = x.copy(), x.copy()
        up[idx] += step
        down[idx] -= step
        grad[idx] = (f(up) - f(down)) / (2 * step)
    return grad


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("triangular", [False, True])
def test_nll_equals_scipy_log_likelihood(weighted, triangular):
    X, mean, factor, w = _problem(weighted=weighted, triangular=triangular)
    logpdf = multivariate_normal(mean, factor @ factor.T).logpdf(X)
    expected = -np.sum(logpdf if w is None else w * logpdf)
    assert_allclose(nll(X, mean, factor, w), expected, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("triangular", [False, True])
def test_nll_grad_matches_seed_formulas(weighted, triangular):
    X, mean, factor, w = _problem(seed=1, weighted=weighted, triangular=triangular)
    J, g_mean, g_factor = nll_grad(X, mean, factor, w)
    J_ref, g_mean_ref, g_factor_ref = _seed_formulas(X, mean, factor, w)
    assert_allclose(J, J_ref, rtol=1e-12)
    assert_allclose(g_mean, g_mean_ref, rtol=1e-9, atol=1e-9)
    assert_allclose(g_factor, g_factor_ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_grad_matches_finite_differences(weighted):
    X, mean, factor, w = _problem(seed=2, weighted=weighted)
    _, g_mean, g_factor = nll_grad(X, mean, factor, w)
    fd_mean = _central_diff(lambda m: nll(X, m, factor, w), mean)
    fd_factor = _central_diff(lambda f: nll(X, mean, f, w), factor)
    assert_allclose(g_mean, fd_mean, rtol=1e-6, atol=1e-6)
    assert_allclose(g_factor, fd_factor, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("triangular", [False, True])
def test_statistics_form_equals_x_form(weighted, triangular):
    X, mean, factor, w = _problem(seed=3, weighted=weighted, triangular=triangular)
    stats = SufficientStats.from_array(X, w, chunk_size=7)
    J, g_mean, g_factor = nll_grad_stats(stats, mean, factor)
    J_x, g_mean_x, g_factor_x = nll_grad(X, mean, factor, w)
    assert_allclose(J, J_x, rtol=1e-12)
    assert_allclose(g_mean, g_mean_x, rtol=1e-10, atol=1e-10)
    assert_allclose(g_factor, g_factor_x, rtol=1e-10, atol=1e-10)
    assert nll_stats(stats, mean, factor) == J


@pytest.mark.parametrize(
    "kwargs", [{"shrinkage": 0.3}, {"reg_covar": 0.7}, {"shrinkage": 1.0}]
)
def test_penalty_gradients_match_finite_differences(kwargs):
    X, mean, factor, _ = _problem(seed=4, triangular=True)
    stats = SufficientStats.from_array(X)
    (term,) = penalty_stats(stats, **kwargs)
    _, g_mean, g_factor = nll_grad_stats(term, mean, factor)
    fd_mean = _central_diff(lambda m: nll_stats(term, m, factor), mean)
    fd_factor = _central_diff(lambda f: nll_stats(term, mean, f), factor)
    assert_allclose(g_mean, fd_mean, rtol=1e-6, atol=1e-7)
    assert_allclose(g_factor, fd_factor, rtol=1e-6, atol=1e-7)


def test_penalty_terms_are_the_documented_priors():
    X, mean, factor, _ = _problem(seed=5, triangular=True)
    d = X.shape[1]
    stats = SufficientStats.from_array(X)
    tau = np.trace(stats.covariance()) / d
    S_inv = np.linalg.inv(factor @ factor.T)
    (shrink,) = penalty_stats(stats, shrinkage=0.4)
    diff = stats.mean - mean
    expected = 0.4 * (
        0.5 * d * np.log(2 * np.pi)
        + 0.5 * np.linalg.slogdet(factor @ factor.T)[1]
        + 0.5 * tau * np.trace(S_inv)
        + 0.5 * diff @ S_inv @ diff
    )
    assert_allclose(nll_stats(shrink, mean, factor), expected, rtol=1e-12)
    (reg,) = penalty_stats(stats, reg_covar=0.25)
    assert_allclose(nll_stats(reg, mean, factor), 0.125 * np.trace(S_inv), rtol=1e-12)
    assert penalty_stats(stats) == []


def test_singular_factor_is_rejected():
    X, mean, factor, _ = _problem()
    factor[:, 0] = 0.0
    with pytest.raises(ValueError, match="singular"):
        nll(X, mean, factor)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_log_density_matches_scipy(chunk_size):
    X, mean, factor, _ = _problem(seed=6, n=53, triangular=True)
    expected = multivariate_normal(mean, factor @ factor.T).logpdf(X)
    assert_allclose(log_density(X, mean, factor, chunk_size), expected, rtol=1e-12)
