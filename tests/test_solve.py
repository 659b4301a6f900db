"""The solver: preconditioned L-BFGS-B cycles and the convergence rule."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.gradients import nll_grad_stats
from sklearn_mvn._representations import TriangularCovariance
from sklearn_mvn._solve.driver import (
    _gradient_steps,
    _unit_curvature,
    _verdict,
    minimize_whitened,
)


def test_minimize_from_random_starts_reaches_the_optimum():
    """In whitened coordinates the optimum of complete data is (0, I)."""
    rng = np.random.RandomState(1)
    d = 8
    X = rng.randn(500, d)
    X = (X - X.mean(axis=0)) @ np.linalg.inv(
        np.linalg.cholesky(np.cov(X.T, bias=True))
    ).T
    stats = SufficientStats.from_array(X).scaled(1 / 500)
    structure = TriangularCovariance("full", d)
    for _ in range(3):
        mean0 = 0.5 * rng.randn(d)
        factor0 = np.eye(d) + 0.3 * np.tril(rng.randn(d, d))
        factor0[np.diag_indices(d)] = np.abs(np.diag(factor0))
        history = []
        mean, factor, _, _, n_iter, status, _, first = minimize_whitened(
            lambda m, f: nll_grad_stats(stats, m, f),
            structure,
            mean0,
            factor0,
            max_iter=200,
            tol=1e-9,
            record=lambda value, norm, history=history: history.append((value, norm)),
        )
        assert status == 0 and n_iter < 60
        assert_allclose(mean, 0.0, atol=1e-7)
        assert_allclose(factor, np.eye(d), atol=1e-7)
        assert len([first, *history]) == n_iter + 1


def test_verdict_is_the_one_convergence_rule():
    assert _verdict(1e-9, 1e-8, stalled=False, floor=1e-6) == "converged"
    assert _verdict(1e-7, 1e-8, stalled=True, floor=1e-6) == "floor"
    assert _verdict(1e-7, 1e-8, stalled=False, floor=1e-6) == "short"
    assert _verdict(1e-5, 1e-8, stalled=True, floor=1e-6) == "short"


def _whitened_complete_data(d, seed=0):
    """Statistics of rows whitened exactly: the optimum is (0, I)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(400, d)
    X = (X - X.mean(axis=0)) @ np.linalg.inv(
        np.linalg.cholesky(np.cov(X.T, bias=True))
    ).T
    return SufficientStats.from_array(X).scaled(1 / 400)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_unit_curvature_makes_the_complete_data_hessian_the_identity(
    covariance_type,
):
    """In x = theta / scale the Hessian at the optimum (0, I) of whitened
    complete data is the identity (central differences of the seed's
    gradient)."""
    d = 4
    stats = _whitened_complete_data(d)
    rep = TriangularCovariance(covariance_type, d)
    scale = _unit_curvature(rep, d)
    x0 = np.concatenate([np.zeros(d), rep.pack(np.eye(d))]) / scale

    def grad(x):
        theta = scale * x
        _, g_mean, g_factor = nll_grad_stats(stats, theta[:d], rep.unpack(theta[d:]))
        return scale * np.concatenate([g_mean, rep.restrict_grad(g_factor)])

    assert_allclose(grad(x0), 0.0, atol=1e-12)
    h = 1e-5
    hess = np.column_stack(
        [(grad(x0 + h * e) - grad(x0 - h * e)) / (2 * h) for e in np.eye(x0.size)]
    )
    assert_allclose(hess, np.eye(x0.size), atol=1e-8)


def test_unit_curvature_keeps_the_gradient_tolerance():
    """Convergence is decided on the unscaled whitened gradient: a run from a
    perturbed start ends with every entry of it within tol."""
    d = 6
    stats = _whitened_complete_data(d, seed=2)
    rep = TriangularCovariance("full", d)
    rng = np.random.RandomState(3)
    factor0 = np.eye(d) + 0.2 * np.tril(rng.randn(d, d))
    factor0[np.diag_indices(d)] = np.abs(np.diag(factor0))
    mean, factor, _, grad_norm, _, status, _, _ = minimize_whitened(
        lambda m, f: nll_grad_stats(stats, m, f),
        rep,
        0.3 * rng.randn(d),
        factor0,
        max_iter=200,
        tol=1e-9,
    )
    _, g_mean, g_factor = nll_grad_stats(stats, mean, factor)
    full = np.concatenate([g_mean, rep.restrict_grad(g_factor)])
    assert status == 0
    assert np.max(np.abs(full)) <= 1e-9
    assert_allclose(grad_norm, np.max(np.abs(full)), rtol=1e-12)


def test_value_free_steps_converge_without_resolvable_values():
    """On a quadratic whose value carries no information (a constant, as an
    objective below its rounding error), L-BFGS steps from the curvature pairs
    of a few gradient steps shrink the gradient below tol; a pair-less start
    or a step that would leave the feasible box gives no step."""
    rng = np.random.RandomState(0)
    p = 12
    q, _ = np.linalg.qr(rng.randn(p, p))
    hess = (q * np.linspace(0.3, 1.0, p)) @ q.T
    optimum = rng.randn(p)
    calls = []

    def fun(x):
        calls.append(x)
        return 1.0, hess @ (x - optimum)

    def norm_of(x, grad):
        return float(np.max(np.abs(grad)))

    iterates = []
    x = optimum + rng.randn(p)
    for _ in range(4):
        grad = fun(x)[1]
        iterates.append((x, grad))
        x = x - grad
    lower = np.full(p, -np.inf)
    history = []
    x, value, grad, norm, n_steps = _gradient_steps(
        fun, iterates, lower, norm_of, 1e-10, 50, lambda v, g: history.append(g)
    )
    assert norm <= 1e-10 and n_steps == len(history) <= 15
    assert_allclose(grad, hess @ (x - optimum), rtol=1e-12)
    assert_allclose(x, optimum, atol=1e-9)
    assert np.all(np.diff(history) < 0)
    assert _gradient_steps(fun, iterates[:1], lower, norm_of, 1e-10, 50, None) is None
    bound = np.full(p, np.inf)
    assert _gradient_steps(fun, iterates, bound, norm_of, 1e-10, 50, None) is None


def test_a_new_cycle_reuses_the_last_evaluation(monkeypatch):
    """Inexact objectives re-whiten at the current factor: the first point of
    every later cycle is bitwise the last one evaluated, so the objective's
    cache answers it without an E-step (whitening at the Cholesky factor of
    the covariance gave a point equal only to round-off, and a new E-step)."""
    from sklearn_mvn._data.patterns import PatternStats
    from sklearn_mvn._likelihoods.normal import PatternObjective, make_objective
    from sklearn_mvn._likelihoods.normal_missing import MissingObjective
    from sklearn_mvn._solve import driver as _solve

    rng = np.random.RandomState(0)
    d = 5
    X = rng.randn(300, d) @ np.tril(rng.uniform(0.5, 1.0, (d, d))).T
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    e_steps = []
    original_e_step = MissingObjective.expected_stats

    def counted(self, mean, factor):
        e_steps.append(1)
        return original_e_step(self, mean, factor)

    first_points = []  # E-steps spent on the first point of each cycle
    original_whitened = PatternObjective.whitened

    def whitened(self, shift, chol):
        evaluate = original_whitened(self, shift, chol)
        calls = []

        def wrapped(u, t):
            before = len(e_steps)
            out = evaluate(u, t)
            if not calls:
                first_points.append(len(e_steps) - before)
            calls.append(1)
            return out

        return wrapped

    monkeypatch.setattr(MissingObjective, "expected_stats", counted)
    monkeypatch.setattr(PatternObjective, "whitened", whitened)
    # Short cycles, none of them "slow" (no switch to Newton steps), and no
    # EM steps before them (the start is the first cycle's first point).
    monkeypatch.setattr(_solve, "_CYCLE_ITER", 3)
    monkeypatch.setattr(_solve, "_SLOW", 1.0)
    monkeypatch.setattr(_solve, "_EM_STEPS", 0)
    rep = TriangularCovariance("full", d)
    result = _solve.solve(make_objective(PatternStats.from_array(X), rep), rep)
    assert result.converged and "Newton" not in result.message
    assert len(first_points) >= 4
    assert first_points[0] == 1 and first_points[1:] == [0] * (len(first_points) - 1)
