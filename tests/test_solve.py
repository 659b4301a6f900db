"""The solver: preconditioned L-BFGS-B cycles and the convergence rule."""

import numpy as np
from numpy.testing import assert_allclose

from sklearn_mvn._gradients import nll_grad_stats
from sklearn_mvn._representations import TriangularCovariance
from sklearn_mvn._solve import _verdict, minimize_whitened
from sklearn_mvn._stats import SufficientStats


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
