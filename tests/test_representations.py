"""Covariance representations: packing, bounds, restricted gradients."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.gradients import nll_grad_stats, nll_stats
from sklearn_mvn._representations import TriangularCovariance


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_structure_pack_unpack_and_counts(covariance_type):
    d = 4
    structure = TriangularCovariance(covariance_type, d)
    theta = np.arange(1.0, structure.n_theta + 1)
    factor = structure.unpack(theta)
    assert_array_equal(structure.pack(factor), theta)
    assert_array_equal(factor, np.tril(factor))
    expected = {"full": d + d * (d + 1) // 2, "diag": 2 * d, "spherical": d + 1}
    assert structure.n_parameters() == expected[covariance_type]
    assert structure.lower_bounds().shape == (structure.n_theta,)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_restricted_gradient_matches_finite_differences(covariance_type):
    rng = np.random.RandomState(0)
    d = 4
    stats = SufficientStats.from_array(rng.randn(30, d) @ rng.randn(d, d))
    structure = TriangularCovariance(covariance_type, d)
    theta = np.abs(rng.randn(structure.n_theta)) + 0.5
    mean = rng.randn(d)
    factor = structure.unpack(theta)
    grad = structure.restrict_grad(nll_grad_stats(stats, mean, factor)[2])
    h = 1e-6
    fd = np.array(
        [
            (
                nll_stats(stats, mean, structure.unpack(theta + h * e))
                - nll_stats(stats, mean, structure.unpack(theta - h * e))
            )
            / (2 * h)
            for e in np.eye(structure.n_theta)
        ]
    )
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)
