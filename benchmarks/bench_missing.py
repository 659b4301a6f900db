"""Benchmark: maximum likelihood with missing values, versus EM.

Two Markdown tables.

1. Versus R's EM implementations (``--peers``, the default): on the same data
   in the same run, ``GradientGaussian().fit`` (default settings; the time
   includes building the statistics), ``norm`` (Schafer's Fortran EM;
   ``prelim.norm`` + ``em.norm``, at most 30 variables here since it breaks
   above 31) and ``norm2`` (``emNorm``), both with criterion ``1e-10`` (largest
   change of a parameter between iterations, in norm's standardised units;
   norm2's relative change). The runs are interleaved (fit, norm, norm2,
   fit, ...) so that changes of the machine's load hit every method alike;
   times are medians over ``--repeats`` rounds, the R ones measured inside R
   (start-up and reading the data excluded), and each ratio is the median of
   the ratios within a round. Each time is given as wall-clock and as CPU time
   (user + system, of the process): on a shared machine the wall-clock time
   includes the waits for a core, the CPU time does not. The
   log-likelihood per sample of every method's estimate is computed by the
   same function (``marginal_log_density``), so the columns compare the
   answers as well as the times. Cases: n = 5000, d = 20, 10% MCAR;
   n = 1e5, d = 20, 10%; n = 2000, d = 40, 20%; n = 2e4, d = 100, 5%; each
   on two kinds of data (``--data``): ``well``, a covariance with
   eigenvalues from 1 to 100 and equal feature scales, and ``ill``, closer
   to what users bring: a correlation matrix whose eigenvalues span four
   decades (condition number 1e4) and feature standard deviations from 0.1
   to 50. The ``ill`` data also have missing-at-random cases (MAR: feature
   0 always observed, the other entries missing more often for large values
   of it) at d = 20.
   R and the packages come from ``install-r-peers.sh`` (the project's
   ``shared/peers``); the library folder is ``--r-lib`` (default: the
   environment variable ``SKLEARN_MVN_R_LIB``, else ``/tmp/r-peers``). Without
   ``Rscript`` or a package the column is skipped with a note.
2. Versus a Python EM on the same statistics (``--python-em``):
   - n = 1e5, d = 20, 10% of the entries missing completely at random: time of
     ``GradientGaussian().fit`` (target: under 5 s) and of an EM reference run
     to the same tolerance (target: slower than the gradient fit);
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

Run with ``python benchmarks/bench_missing.py [--python-em] [--repeats 3]``;
BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1``, set here for Python and
for R unless already set). The load average of the machine is printed before
and after.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.linalg import cholesky  # noqa: E402

from sklearn_mvn import GradientGaussian  # noqa: E402
from sklearn_mvn._data.patterns import PatternStats
from sklearn_mvn._likelihoods.gradients import nll_grad_stats  # noqa: E402
from sklearn_mvn._likelihoods.normal_missing import MissingObjective
from sklearn_mvn._representations.conditional import marginal_log_density

PEER_SCRIPT = Path(__file__).with_name("peers_missing.R")
# EM's stopping criterion for the R peers.
PEER_CRITERION = 1e-10
# norm's Fortran fails above 31 variables.
NORM_MAX_FEATURES = 30


def make_data(n, d, rate, seed=0):
    """Well-conditioned data: covariance eigenvalues from 1 to 100, equal
    feature scales, entries missing completely at random."""
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    cov = (q * np.geomspace(1.0, 100.0, d)) @ q.T
    X = rng.multivariate_normal(rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    return X[~np.isnan(X).all(axis=1)]


def make_ill_data(n, d, rate, mechanism="mcar", seed=0):
    """Ill-conditioned data with mixed scales: a correlation matrix whose
    eigenvalues span four decades (condition number about 1e4, random
    rotation), feature standard deviations from 0.1 to 50 (geometric, in
    random order). ``'mcar'``: each entry missing with probability ``rate``;
    ``'mar'``: feature 0 always observed, every other entry missing with
    probability ``2 rate sigmoid(1.5 z)``, ``z`` the standardised feature 0
    of its row (about ``rate`` on average)."""
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    cov = (q * np.geomspace(1.0, 1e-4, d)) @ q.T
    sd = np.sqrt(np.diag(cov))
    scale = np.geomspace(0.1, 50.0, d)[rng.permutation(d)]
    cov *= np.outer(scale / sd, scale / sd)
    X = rng.multivariate_normal(scale * rng.randn(d), cov, size=n)
    if mechanism == "mcar":
        missing = rng.rand(n, d) < rate
    else:
        z = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
        prob = 2.0 * rate / (1.0 + np.exp(-1.5 * z))
        missing = rng.rand(n, d) < prob[:, np.newaxis]
        missing[:, 0] = False
    X[missing] = np.nan
    return X[~np.isnan(X).all(axis=1)]


# The cases of the table versus R: (data, n, d, rate, mechanism).
PEER_CASES = {
    "well": [
        ("well", 5000, 20, 0.10, "mcar"),
        ("well", 100_000, 20, 0.10, "mcar"),
        ("well", 2000, 40, 0.20, "mcar"),
        ("well", 20_000, 100, 0.05, "mcar"),
    ],
    "ill": [
        ("ill", 5000, 20, 0.10, "mcar"),
        ("ill", 100_000, 20, 0.10, "mcar"),
        ("ill", 5000, 20, 0.10, "mar"),
        ("ill", 100_000, 20, 0.10, "mar"),
        ("ill", 2000, 40, 0.20, "mcar"),
        ("ill", 20_000, 100, 0.05, "mcar"),
    ],
}


def case_data(kind, n, d, rate, mechanism):
    if kind == "well":
        return make_data(n, d, rate)
    return make_ill_data(n, d, rate, mechanism)


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


# ---------------------------------------------------------------------------
# Versus R's norm and norm2
# ---------------------------------------------------------------------------


def r_library(option):
    return option or os.environ.get("SKLEARN_MVN_R_LIB", "/tmp/r-peers")


def peer_status(lib):
    """``{package: None if usable else the reason}`` for norm and norm2."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        reason = "Rscript not found (run install-r-peers.sh)"
        return {"norm": reason, "norm2": reason}
    status = {}
    for package in ("norm", "norm2"):
        code = (
            f".libPaths(c('{lib}', .libPaths())); "
            f"cat(requireNamespace('{package}', quietly = TRUE))"
        )
        out = subprocess.run(
            [rscript, "-e", code], capture_output=True, text=True, check=False
        )
        ok = out.stdout.strip().endswith("TRUE")
        status[package] = None if ok else f"R package {package} not in {lib}"
    return status


def run_peer(method, path, lib, repeats):
    """Median wall-clock and CPU times (s), iterations (or None), mean and
    covariance of a peer."""
    d = int(np.fromfile(path, dtype=np.int32, count=2)[1])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.bin"
        subprocess.run(
            [
                "Rscript",
                str(PEER_SCRIPT),
                lib,
                str(path),
                method,
                repr(PEER_CRITERION),
                str(repeats),
                str(out),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        values = np.fromfile(out)
    iterations = None if values[2] < 0 else int(values[2])
    mean = values[3 : 3 + d]
    cov = values[3 + d :].reshape(d, d)
    return (values[0], values[1]), iterations, mean, cov


def log_likelihood(X, mean, cov):
    """Observed-data log-likelihood per sample (the same code for every
    method)."""
    try:
        factor = cholesky(cov, lower=True)
    except np.linalg.LinAlgError:
        return float("nan")
    return float(np.mean(marginal_log_density(X, mean, factor)))


def time_fit(X):
    """Wall-clock and CPU seconds of ``GradientGaussian().fit(X)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = GradientGaussian().fit(X)
    return (time.perf_counter() - wall, time.process_time() - cpu), model


def compare_with_peers(case, repeats, lib, status):
    """One row: the repeats are interleaved (fit, norm, norm2, fit, ...), so
    a change of the machine's load hits all methods alike; the ratio is the
    median of the ratios within a round."""
    kind, n, d, rate, mechanism = case
    X = case_data(*case)
    n_patterns = PatternStats.from_array(X).n_patterns
    time_fit(X)  # warm-up
    methods = []
    peers = {}
    for method in ("norm", "norm2"):
        if status[method] is not None:
            peers[method] = status[method]
        elif method == "norm" and d > NORM_MAX_FEATURES:
            peers[method] = f"d > {NORM_MAX_FEATURES}"
        else:
            methods.append(method)
    times = {"fit": [], "norm": [], "norm2": []}
    loglik = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.bin"
        with open(path, "wb") as f:
            np.array(X.shape, dtype=np.int32).tofile(f)
            np.ascontiguousarray(X).tofile(f)
        for _ in range(repeats):
            t, model = time_fit(X)
            times["fit"].append(t)
            for method in list(methods):
                try:
                    t, iterations, mean, cov = run_peer(method, path, lib, 1)
                except subprocess.CalledProcessError as exc:
                    peers[method] = f"failed: {exc.stderr.decode()[-200:]!r}"
                    methods.remove(method)
                    continue
                times[method].append(t)
                peers[method] = iterations
                loglik[method] = log_likelihood(X, mean, cov)
    loglik["fit"] = log_likelihood(X, model.mean_, model.covariance_)
    t_fit = np.median(times["fit"], axis=0)
    best = max(v for v in loglik.values() if np.isfinite(v))
    row = [
        kind,
        f"n={n:.0e}, d={d}, {rate:.0%} {mechanism.upper()}",
        n_patterns,
        f"{t_fit[0]:.3f} / {t_fit[1]:.3f}",
        f"{model.n_iter_}",
        f"{loglik['fit']:.10f}",
        f"{loglik['fit'] - best:.1e}",
    ]
    notes = []
    for method in ("norm", "norm2"):
        result = peers[method]
        if isinstance(result, str):
            row += ["-", "-", "-", "-"]
            notes.append(f"{method} skipped at n={n:.0e}, d={d}: {result}")
            continue
        peer = np.array(times[method])
        ratios = np.median(np.array(times["fit"][: len(peer)]) / peer, axis=0)
        t_peer = np.median(peer, axis=0)
        row += [
            f"{t_peer[0]:.3f} / {t_peer[1]:.3f}",
            "-" if result is None else str(result),
            f"{loglik[method] - best:.1e}",
            f"{ratios[0]:.3f} / {ratios[1]:.3f}",
        ]
    return row, notes


def print_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


def load():
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main_peers(repeats, lib, kinds):
    status = peer_status(lib)
    rows, notes = [], []
    for kind in kinds:
        for case in PEER_CASES[kind]:
            row, note = compare_with_peers(case, repeats, lib, status)
            rows.append(row)
            notes += note
    header = (
        "data",
        "case",
        "patterns",
        "fit (s, wall / CPU)",
        "fit iterations",
        "fit log-lik / sample",
        "fit - best",
        "norm (s, wall / CPU)",
        "norm iterations",
        "norm - best",
        "fit / norm (wall / CPU)",
        "norm2 (s, wall / CPU)",
        "norm2 iterations",
        "norm2 - best",
        "fit / norm2 (wall / CPU)",
    )
    print_table(header, rows)
    for note in dict.fromkeys(notes):
        print(f"\nNote: {note}")


def main_python_em():
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
        "fit (s, wall / CPU)",
        "fit L-BFGS-B iterations",
        "fit E-steps",
        "EM (s)",
        "EM iterations",
        "EM E-steps",
        "EM / fit",
        "optimisation only: fit / EM (s) (ratio)",
        "max |fit - EM| (sd units)",
    )
    print_table(header, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-lib", default=None, help="R library of norm, norm2")
    parser.add_argument(
        "--data",
        choices=("well", "ill", "all"),
        default="all",
        help="which data of the table versus R (default: both)",
    )
    parser.add_argument(
        "--python-em", action="store_true", help="also the Python EM table"
    )
    args = parser.parse_args()
    print(
        f"Start: {load()}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}\n"
    )
    kinds = ("well", "ill") if args.data == "all" else (args.data,)
    main_peers(args.repeats, r_library(args.r_lib), kinds)
    if args.python_em:
        print()
        main_python_em()
    print(f"\nEnd: {load()}")


if __name__ == "__main__":
    main()
