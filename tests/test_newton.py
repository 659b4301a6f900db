"""Newton steps and the missing-data solver (``_newton``)."""

import numpy as np
from numpy.testing import assert_allclose
from scipy.linalg import cholesky
from test_missing import MISSVALS, _em_by_pattern, _mcar, _random_cov

from sklearn_mvn._missing import MissingObjective, PatternStats
from sklearn_mvn._newton import _Whitened, newton_polish
from sklearn_mvn._optimize import FactorStructure


def _objective(X):
    stats = PatternStats.from_array(X)
    return MissingObjective(stats, (), 1.0 / stats.weight_sum)


def test_hessian_vector_products_match_central_differences():
    """The forward-difference products H v agree with central differences of
    the gradient (a symmetric H)."""
    rng = np.random.RandomState(0)
    X = _mcar(rng, 200, 4, 0.3)
    d = X.shape[1]
    objective = _objective(X)
    structure = FactorStructure("full", d)
    mean = np.nanmean(X, axis=0)
    factor = cholesky(np.diag(np.nanvar(X, axis=0)), lower=True)
    w = _Whitened(objective, structure, mean, factor)
    grad0 = w(w.x0)[1]
    p = grad0.size
    hess = np.column_stack([w.hessian_vector(np.eye(p)[i], grad0) for i in range(p)])
    h = 1e-5
    central = np.column_stack(
        [
            (w(w.x0 + h * np.eye(p)[i])[1] - w(w.x0 - h * np.eye(p)[i])[1]) / (2 * h)
            for i in range(p)
        ]
    )
    assert_allclose(hess, central, atol=1e-6 * np.abs(central).max())
    assert_allclose(hess, hess.T, atol=1e-6 * np.abs(central).max())


def test_newton_polish_reaches_the_em_optimum():
    """From a point near the maximum (an EM solution perturbed by 1e-3),
    Newton steps reach a whitened gradient below 1e-10 in a few steps, at the
    EM solution."""
    X = MISSVALS
    d = X.shape[1]
    mean, cov = _em_by_pattern(X, tol=1e-12)
    rng = np.random.RandomState(1)
    factor0 = cholesky(cov, lower=True) * (1 + 1e-3 * rng.randn(d, d))
    mean0 = mean + 1e-3 * np.sqrt(np.diag(cov)) * rng.randn(d)
    objective = _objective(X)
    out = newton_polish(
        objective, FactorStructure("full", d), mean0, np.tril(factor0), tol=1e-10
    )
    new_mean, new_factor, value, grad_norm, converged, n_steps, _ = out
    assert converged and grad_norm <= 1e-10
    assert 1 <= n_steps <= 6
    sd = np.sqrt(np.diag(cov))
    assert_allclose(new_mean / sd, mean / sd, atol=1e-7)
    assert_allclose(
        new_factor @ new_factor.T / np.outer(sd, sd), cov / np.outer(sd, sd), atol=1e-7
    )
    assert_allclose(value, objective(new_mean, new_factor)[0], rtol=1e-14)


def test_newton_polish_does_not_converge_on_an_unbounded_likelihood():
    rng = np.random.RandomState(0)
    d = 6
    X = rng.multivariate_normal(np.zeros(d), _random_cov(rng, d), size=100)
    X[4:, -1] = np.nan
    objective = _objective(X)
    mean = np.nanmean(X, axis=0)
    factor = cholesky(np.diag(np.nanvar(X, axis=0)), lower=True)
    out = newton_polish(objective, FactorStructure("full", d), mean, factor, 1e-8)
    assert not out[4]
