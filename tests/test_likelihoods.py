"""The normal likelihood's objectives on each data source."""

import numpy as np
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from sklearn_mvn._data.patterns import PatternStats
from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.normal import (
    PatternObjective,
    StatsObjective,
    make_objective,
)
from sklearn_mvn._representations import TriangularCovariance


def test_stats_objective_is_the_mean_nll():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3) @ rng.randn(3, 3) + 5
    stats = SufficientStats.from_array(X)
    objective = make_objective(stats, TriangularCovariance("full", 3))
    assert isinstance(objective, StatsObjective)
    mean, factor = rng.randn(3), np.tril(rng.randn(3, 3)) + 3 * np.eye(3)
    expected = -multivariate_normal(mean, factor @ factor.T).logpdf(X).mean()
    assert_allclose(objective(mean, factor)[0], expected, rtol=1e-12)


def test_pattern_objective_value_in_original_units():
    """internal/to_original and the constant put the standardised objective on
    the scale of the observed-data mean NLL in the user's units."""
    rng = np.random.RandomState(1)
    X = rng.randn(80, 3) @ rng.randn(3, 3) * [1.0, 100.0, 0.01] + 7
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    objective = make_objective(
        PatternStats.from_array(X), TriangularCovariance("full", 3)
    )
    assert isinstance(objective, PatternObjective)
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0))
    mean_std, cov_std = objective.internal(mean, cov)
    factor_std = np.linalg.cholesky(cov_std)
    value = objective(mean_std, factor_std)[0] + objective.constant
    expected = 0.0
    for row in X:
        o = ~np.isnan(row)
        expected -= multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(row[o])
    assert_allclose(value, expected / X.shape[0], rtol=1e-10)
    back_mean, back_factor = objective.to_original(mean_std, factor_std)
    assert_allclose(back_mean, mean)
    assert_allclose(back_factor @ back_factor.T, cov, rtol=1e-12)
