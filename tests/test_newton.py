"""Newton steps of the solver for inexact (missing-data) objectives."""

import numpy as np
from numpy.testing import assert_allclose
from scipy.linalg import cholesky
from test_missing import MISSVALS, _em_by_pattern, _mcar, _random_cov

from sklearn_mvn._data.patterns import PatternStats
from sklearn_mvn._likelihoods.normal import make_objective
from sklearn_mvn._representations import make_representation
from sklearn_mvn._solve.newton import _dense_step, _Whitened, newton_steps


def _setup(X):
    rep = make_representation("full", X.shape[1])
    return make_objective(PatternStats.from_array(X), rep), rep


def _internal_point(objective, mean, cov):
    mean, cov = objective.internal(mean, cov)
    return mean, cholesky(cov, lower=True)


def test_hessian_vector_products_are_symmetric_and_match_central_differences():
    rng = np.random.RandomState(0)
    X = _mcar(rng, 200, 4, 0.3)
    objective, rep = _setup(X)
    mean, factor = _internal_point(
        objective, np.nanmean(X, axis=0), np.diag(np.nanvar(X, axis=0))
    )
    w = _Whitened(objective, rep, mean, factor)
    grad0 = w(w.x0)[1]
    assert np.max(np.abs(grad0)) > 1e-4  # forward differences
    p = grad0.size
    hess = np.column_stack([w.hessian_vector(e, grad0) for e in np.eye(p)])
    h = 1e-5
    central = np.column_stack(
        [(w(w.x0 + h * e)[1] - w(w.x0 - h * e)[1]) / (2 * h) for e in np.eye(p)]
    )
    scale = np.abs(central).max()
    assert_allclose(hess, central, atol=1e-6 * scale)
    assert_allclose(central, central.T, atol=1e-8 * scale)


def test_newton_steps_reach_the_em_optimum():
    """From a point near the maximum (an EM solution perturbed by 1e-3),
    Newton steps reach a whitened gradient below 1e-10 in a few steps, at the
    EM solution."""
    d = MISSVALS.shape[1]
    em_mean, em_cov = _em_by_pattern(MISSVALS, tol=1e-12)
    objective, rep = _setup(MISSVALS)
    rng = np.random.RandomState(1)
    sd = np.sqrt(np.diag(em_cov))
    mean0 = em_mean + 1e-3 * sd * rng.randn(d)
    factor0 = np.tril(cholesky(em_cov, lower=True) * (1 + 1e-3 * rng.randn(d, d)))
    mean, factor = _internal_point(objective, mean0, factor0 @ factor0.T)
    history = []
    mean, factor, value, grad_norm, n_steps = newton_steps(
        objective, rep, mean, factor, 1e-10, record=lambda v, g: history.append(g)
    )
    assert grad_norm <= 1e-10
    assert 1 <= n_steps <= 6 and len(history) == n_steps
    assert_allclose(value, objective(mean, factor)[0], rtol=1e-14)
    mean, factor = objective.to_original(mean, factor)
    assert_allclose(mean / sd, em_mean / sd, atol=1e-7)
    cov = factor @ factor.T
    assert_allclose(cov / np.outer(sd, sd), em_cov / np.outer(sd, sd), atol=1e-7)


def test_newton_steps_do_not_converge_on_an_unbounded_likelihood():
    """The last feature is observed in 4 of 100 rows: no maximum."""
    rng = np.random.RandomState(0)
    d = 6
    X = rng.multivariate_normal(np.zeros(d), _random_cov(rng, d), size=100)
    X[4:, -1] = np.nan
    objective, rep = _setup(X)
    mean, factor = _internal_point(
        objective, np.nanmean(X, axis=0), np.diag(np.nanvar(X, axis=0))
    )
    grad_norm = newton_steps(objective, rep, mean, factor, 1e-8)[3]
    assert grad_norm > 1e-8


class _Quadratic:
    """``hessian_vector`` of a fixed symmetric matrix (the interface of
    ``_Whitened`` that ``_dense_step`` uses)."""

    def __init__(self, hess):
        self.hess = hess

    def hessian_vector(self, v, grad0):
        return self.hess @ v


def test_dense_newton_step_skips_a_flat_null_space():
    """A Hessian with a null space (a parameter the likelihood does not
    depend on): the step solves H s = -g on the complement and moves nothing
    along the null space when the gradient has no component there; with a
    gradient along it, or a negative eigenvalue, there is no step."""
    rng = np.random.RandomState(0)
    q, _ = np.linalg.qr(rng.randn(5, 5))
    eigval = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    hess = (q * eigval) @ q.T
    grad = q[:, 1:] @ rng.randn(4)
    step = _dense_step(_Quadratic(hess), grad, 1e-8)
    assert_allclose(hess @ step, -grad, atol=1e-12)
    assert_allclose(q[:, 0] @ step, 0.0, atol=1e-12)
    assert _dense_step(_Quadratic(hess), grad + 1e-6 * q[:, 0], 1e-8) is None
    eigval[0] = -0.1
    assert _dense_step(_Quadratic((q * eigval) @ q.T), grad, 1e-8) is None
    eigval[0] = 0.1
    step = _dense_step(_Quadratic((q * eigval) @ q.T), grad + q[:, 0], 1e-8)
    assert_allclose(((q * eigval) @ q.T) @ step, -(grad + q[:, 0]), atol=1e-12)
