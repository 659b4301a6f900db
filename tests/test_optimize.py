"""The structured, preconditioned optimiser."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_mvn._gradients import nll_grad_stats, nll_stats
from sklearn_mvn._optimize import FactorStructure, minimize_nll
from sklearn_mvn._stats import SufficientStats


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_structure_pack_unpack_and_counts(covariance_type):
    d = 4
    structure = FactorStructure(covariance_type, d)
    theta = np.arange(1.0, structure.n_factor + 1)
    factor = structure.unpack_factor(theta)
    assert_array_equal(structure.pack_factor(factor), theta)
    assert_array_equal(factor, np.tril(factor))
    expected = {"full": d + d * (d + 1) // 2, "diag": 2 * d, "spherical": d + 1}
    assert structure.n_parameters() == expected[covariance_type]
    assert len(structure.bounds()) == d + structure.n_factor


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_restricted_gradient_matches_finite_differences(covariance_type):
    rng = np.random.RandomState(0)
    d = 4
    stats = SufficientStats.from_array(rng.randn(30, d) @ rng.randn(d, d))
    structure = FactorStructure(covariance_type, d)
    theta = np.abs(rng.randn(structure.n_factor)) + 0.5
    mean = rng.randn(d)
    factor = structure.unpack_factor(theta)
    grad = structure.restrict_grad(nll_grad_stats(stats, mean, factor)[2])
    h = 1e-6
    fd = np.array(
        [
            (
                nll_stats(stats, mean, structure.unpack_factor(theta + h * e))
                - nll_stats(stats, mean, structure.unpack_factor(theta - h * e))
            )
            / (2 * h)
            for e in np.eye(structure.n_factor)
        ]
    )
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)


def test_minimize_from_random_starts_reaches_the_optimum():
    """In whitened coordinates the optimum of complete data is (0, I)."""
    rng = np.random.RandomState(1)
    d = 8
    X = rng.randn(500, d)
    X = (X - X.mean(axis=0)) @ np.linalg.inv(
        np.linalg.cholesky(np.cov(X.T, bias=True))
    ).T
    stats = SufficientStats.from_array(X).scaled(1 / 500)
    structure = FactorStructure("full", d)
    for _ in range(3):
        mean0 = 0.5 * rng.randn(d)
        factor0 = np.eye(d) + 0.3 * np.tril(rng.randn(d, d))
        factor0[np.diag_indices(d)] = np.abs(np.diag(factor0))
        history = []
        res = minimize_nll(
            lambda m, f: nll_grad_stats(stats, m, f),
            structure,
            mean0,
            factor0,
            max_iter=200,
            tol=1e-9,
            history=history,
        )
        assert res.status == 0 and res.n_iter < 60
        assert_allclose(res.mean, 0.0, atol=1e-7)
        assert_allclose(res.factor, np.eye(d), atol=1e-7)
        assert len(history) == res.n_iter + 1
