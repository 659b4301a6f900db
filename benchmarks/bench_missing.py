"""Benchmark: maximum likelihood with missing values (MCAR), versus EM.

Prints a Markdown table. Cases:

- n = 1e5, d = 20, 10% of the entries missing completely at random: time of
  ``GradientGaussian().fit`` (target: under 5 s) and of an EM reference run to
  the same tolerance (target: slower than the gradient fit);
- n = 2e4, d = 200, 5% missing: time and iterations (target: it works).

The EM reference works on the same per-pattern statistics: its E-step is the
expected complete-data statistics (``MissingObjective.expected_stats``, the
cheapest E-step available here), its M-step their moments. It stops when the
largest entry of the gradient of the mean negative log-likelihood, in the
coordinates whitened by the same pilot as the gradient fit and computed from
the E-step's statistics at no extra cost, is at most ``tol`` (the gradient
fit's criterion; ``tol`` is the gradient the fit actually reached, when its
line search stops at the objective's round-off floor above 1e-8), or after
5000 iterations. Both start from the same pilot
(available-case moments repaired to positive definite). Timings include
building the statistics from ``X``; a second pair of timings starts both from
statistics built beforehand (the optimisation alone).

An E-step (the expected statistics at one parameter value) is the unit of
work of both methods: the gradient fit spends one per L-BFGS-B evaluation.

Run with ``python benchmarks/bench_missing.py``; on a shared machine set
``OPENBLAS_NUM_THREADS=1`` to avoid thread over-subscription.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import time

import numpy as np
from scipy.linalg import cholesky

from sklearn_mvn import GradientGaussian
from sklearn_mvn._gradients import nll_grad_stats
from sklearn_mvn._missing import MissingObjective, PatternStats


def make_data(n, d, rate, seed=0):
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    cov = (q * np.geomspace(1.0, 100.0, d)) @ q.T
    X = rng.multivariate_normal(rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    return X[~np.isnan(X).all(axis=1)]


def em_reference(X, tol, max_iter=5000, stats=None):
    """EM on the per-pattern statistics, stopped by the gradient criterion."""
    if stats is None:
        stats = PatternStats.from_array(X)
    weight = stats.weight_sum
    ac_mean, ac_cov, _ = stats.available_case()
    scale = np.sqrt(np.diag(ac_cov))
    objective = MissingObjective(stats.standardised(ac_mean, scale), (), 1 / weight)
    eigval, eigvec = np.linalg.eigh(ac_cov / np.outer(scale, scale))
    eigval = np.clip(eigval, 1e-6 * eigval[-1], None)
    mean, cov = np.zeros(X.shape[1]), (eigvec * eigval) @ eigvec.T
    chol = cholesky(cov, lower=True)
    iteration = 0
    while iteration < max_iter:
        factor = cholesky(cov, lower=True)
        total, _ = objective.total_stats(mean, factor)
        # Gradient in the whitened coordinates mean = chol u, factor = chol T.
        u = np.linalg.solve(chol, mean)
        t = np.linalg.solve(chol, factor)
        _, g_u, g_t = nll_grad_stats(total.whitened(np.zeros_like(mean), chol), u, t)
        grad = max(np.abs(g_u).max(), np.abs(np.tril(g_t)).max())
        if grad <= tol:
            break
        mean, cov = total.mean, total.scatter / total.weight_sum
        iteration += 1
    return ac_mean + scale * mean, cov * np.outer(scale, scale), iteration, grad


class count_e_steps:
    """Counts E-steps (objective evaluations) inside a ``with`` block."""

    def __enter__(self):
        self.count = 0
        self._original = MissingObjective.expected_stats
        counter = self

        def counted(objective, mean, factor):
            counter.count += 1
            return counter._original(objective, mean, factor)

        MissingObjective.expected_stats = counted
        return self

    def __exit__(self, *exc):
        MissingObjective.expected_stats = self._original


def timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return time.perf_counter() - start, out


def compare_with_em(n, d, rate, tol):
    X = make_data(n, d, rate)
    t_stats, stats = timed(PatternStats.from_array, X)
    t_fit, model = timed(GradientGaussian(tol=tol).fit, X)
    # EM runs to the tolerance the gradient fit actually reached.
    reached = max(tol, model.history_[-1][1])
    t_em, (em_mean, em_cov, em_iter, em_grad) = timed(em_reference, X, reached)
    # The optimisation alone, from statistics built beforehand.
    with count_e_steps() as fit_steps:
        t_fit_opt, _ = timed(GradientGaussian(tol=tol)._fit_stats, stats)
    with count_e_steps() as em_steps:
        t_em_opt, _ = timed(lambda: em_reference(X, reached, stats=stats))
    sd = np.sqrt(np.diag(model.covariance_))
    diff = max(
        np.abs((model.mean_ - em_mean) / sd).max(),
        np.abs((model.covariance_ - em_cov) / np.outer(sd, sd)).max(),
    )
    return (
        f"n={n:.0e}, d={d}, {rate:.0%} MCAR",
        stats.n_patterns,
        f"{t_stats:.2f}",
        f"{t_fit:.2f}",
        f"{model.n_iter_} (|grad| {model.history_[-1][1]:.1e})",
        fit_steps.count,
        f"{t_em:.2f}",
        f"{em_iter} (|grad| {em_grad:.1e})",
        em_steps.count,
        f"{t_em / t_fit:.1f}",
        f"{t_fit_opt:.2f} / {t_em_opt:.2f} ({t_em_opt / t_fit_opt:.1f})",
        f"{diff:.1e}",
    )


def main():
    tol = 1e-8
    rows = []

    for n, d, rate in [(100_000, 20, 0.10), (20_000, 20, 0.30)]:
        rows.append(compare_with_em(n, d, rate, tol))

    X = make_data(20_000, 200, 0.05)
    t_stats, stats = timed(PatternStats.from_array, X)
    with count_e_steps() as fit_steps:
        t_fit, model = timed(GradientGaussian(tol=tol).fit, X)
    rows.append(
        (
            "n=2e+04, d=200, 5% MCAR",
            stats.n_patterns,
            f"{t_stats:.2f}",
            f"{t_fit:.2f}",
            f"{model.n_iter_} (|grad| {model.history_[-1][1]:.1e}, "
            f"converged: {model.converged_})",
            fit_steps.count,
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        )
    )

    header = (
        "case",
        "patterns",
        "stats (s)",
        "fit (s)",
        "fit L-BFGS-B iterations",
        "fit E-steps",
        "EM (s)",
        "EM iterations",
        "EM E-steps",
        "EM / fit",
        "optimisation only: fit / EM (s) (ratio)",
        "max |fit - EM| (sd units)",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


if __name__ == "__main__":
    main()
