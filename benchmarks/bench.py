"""Benchmark GradientGaussian against the closed-form anchors and the BLAS floor.

Times, in one process and one run, the median over repeats of

- fitting: ``GradientGaussian().fit``, ``scipy.stats.multivariate_normal.fit``,
  ``EmpiricalCovariance().fit``, ``LedoitWolf().fit``,
  ``GaussianMixture(n_components=1).fit`` and the floor, one ``X.T @ X``;
- scoring: ``GradientGaussian.score_samples``, ``GaussianMixture.score_samples``,
  the frozen ``multivariate_normal(mean, cov).logpdf`` and the floor, one
  ``X @ W`` with ``W`` of shape (d, d);

and the peak memory a fit allocates on top of ``X`` (tracemalloc, as a
percentage of ``X.nbytes``). It prints Markdown tables of times and ratios.

Usage::

    python benchmarks/bench.py                    # full grid (a few minutes)
    python benchmarks/bench.py --quick            # small grid
    python benchmarks/bench.py --cases 1e6x50,1e5x500 --repeats 5
    python benchmarks/bench.py --offset 10        # data far from the origin
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import gc
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
import scipy
import sklearn
from scipy.stats import multivariate_normal
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from sklearn_mvn import GradientGaussian

FULL_GRID = [(n, d) for n in (10**4, 10**5, 10**6) for d in (10, 50, 200)] + [
    (10**5, 500)
]
QUICK_GRID = [(n, d) for n in (10**4, 10**5) for d in (10, 50)]


def _median_times(funcs, repeats):
    """Median wall-clock time of each ``funcs[name]()`` over ``repeats`` calls.

    The calls are interleaved (one of each per round), so that every function
    sees the same conditions on a machine whose load varies.
    """
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            gc.collect()
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def _peak_memory(func):
    """Peak memory traced while ``func()`` runs, in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        func()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def _gaussian_mixture():
    # One component: the initial M-step (all responsibilities 1) already gives
    # the maximum-likelihood estimate plus reg_covar (default 1e-6); one EM
    # iteration (max_iter=1) then confirms it. Initialising from random rows
    # avoids a k-means run, which would only slow it down.
    return GaussianMixture(
        n_components=1, max_iter=1, init_params="random_from_data", random_state=0
    )


def run_case(n_samples, n_features, repeats, offset, seed=0):
    """Times (seconds), ratios and memory for one (n, d)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    if offset:
        X += offset
    W = rng.standard_normal((n_features, n_features))
    res = {"n": n_samples, "d": n_features, "repeats": repeats}

    model = GradientGaussian().fit(X)
    res["n_iter"] = model.n_iter_
    frozen = multivariate_normal(model.mean_, model.covariance_)
    with warnings.catch_warnings():
        # max_iter=1 always warns that EM did not converge.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture = _gaussian_mixture().fit(X)
        res.update(
            _median_times(
                {
                    "gg_fit": lambda: GradientGaussian().fit(X),
                    "scipy_fit": lambda: multivariate_normal.fit(X),
                    "emp_fit": lambda: EmpiricalCovariance().fit(X),
                    "lw_fit": lambda: LedoitWolf().fit(X),
                    "gm_fit": lambda: _gaussian_mixture().fit(X),
                    "xtx": lambda: X.T @ X,
                    "gg_score": lambda: model.score_samples(X),
                    "gm_score": lambda: mixture.score_samples(X),
                    "scipy_logpdf": lambda: frozen.logpdf(X),
                    "xw": lambda: X @ W,
                },
                repeats,
            )
        )
    res["gg_mem"] = 100.0 * _peak_memory(lambda: GradientGaussian().fit(X)) / X.nbytes
    res["emp_mem"] = (
        100.0 * _peak_memory(lambda: EmpiricalCovariance().fit(X)) / X.nbytes
    )
    return res


def _ms(seconds):
    return f"{1e3 * seconds:.1f}" if seconds < 1 else f"{1e3 * seconds:.0f}"


def _size(n):
    exponent = int(round(np.log10(n)))
    return f"1e{exponent}" if 10**exponent == n else str(n)


def markdown(results, offset):
    """The Markdown tables of a list of :func:`run_case` results."""
    lines = [
        "Fit (times in ms, median over repeats; ratio = GradientGaussian / other;"
        " memory = peak extra allocation of fit as % of `X.nbytes`):",
        "",
        "| n | d | GradientGaussian | scipy `fit` | EmpiricalCovariance | LedoitWolf"
        " | GaussianMixture(1) | `X.T @ X` | ratio scipy | ratio Empirical"
        " | ratio `X.T @ X` | memory GG | memory Empirical |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {_size(r['n'])} | {r['d']} | {_ms(r['gg_fit'])} "
            f"| {_ms(r['scipy_fit'])} | {_ms(r['emp_fit'])} | {_ms(r['lw_fit'])} "
            f"| {_ms(r['gm_fit'])} | {_ms(r['xtx'])} "
            f"| {r['gg_fit'] / r['scipy_fit']:.2f} "
            f"| {r['gg_fit'] / r['emp_fit']:.2f} "
            f"| {r['gg_fit'] / r['xtx']:.2f} "
            f"| {r['gg_mem']:.1f}% | {r['emp_mem']:.0f}% |"
        )
    lines += [
        "",
        "Scoring (`score_samples`; times in ms; ratio = GradientGaussian / other):",
        "",
        "| n | d | GradientGaussian | GaussianMixture(1) | scipy `logpdf` | `X @ W`"
        " | ratio GaussianMixture | ratio scipy | ratio `X @ W` |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {_size(r['n'])} | {r['d']} | {_ms(r['gg_score'])} "
            f"| {_ms(r['gm_score'])} | {_ms(r['scipy_logpdf'])} | {_ms(r['xw'])} "
            f"| {r['gg_score'] / r['gm_score']:.2f} "
            f"| {r['gg_score'] / r['scipy_logpdf']:.2f} "
            f"| {r['gg_score'] / r['xw']:.2f} |"
        )
    iters = sorted({r["n_iter"] for r in results})
    repeats = sorted({r["repeats"] for r in results})
    lines += [
        "",
        f"Data: standard normal float64{f' + {offset:g}' if offset else ''}, "
        f"C-ordered. Repeats: {', '.join(map(str, repeats))}"
        f"{' (fewer for the largest cases)' if len(repeats) > 1 else ''}, "
        "interleaved across methods. GradientGaussian: "
        "default settings (exact MLE; "
        f"L-BFGS-B iterations after the pilot: {', '.join(map(str, iters))}). "
        "GaussianMixture(n_components=1, max_iter=1, "
        "init_params='random_from_data'), reg_covar=1e-6 (default): its "
        "initial M-step is already the estimate, one EM iteration follows. "
        "scipy `logpdf` is timed on a frozen distribution (its setup excluded). "
        "`X @ W`: W a dense d x d matrix.",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, SciPy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}; BLAS threads "
        "left at their default.",
    ]
    return "\n".join(lines)


def _parse_cases(text):
    cases = []
    for item in text.split(","):
        n, d = item.lower().split("x")
        cases.append((int(float(n)), int(d)))
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument(
        "--quick", action="store_true", help="small grid: n in 1e4, 1e5; d in 10, 50"
    )
    grid.add_argument(
        "--cases",
        type=_parse_cases,
        help="comma-separated cases NxD, e.g. 1e6x50,1e5x500",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats per timing (default 5)"
    )
    parser.add_argument(
        "--large-repeats",
        type=int,
        default=3,
        help="repeats when n * d >= 5e7 (default 3)",
    )
    parser.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="add this constant to X (default 0: centred data)",
    )
    parser.add_argument("--output", help="also write the tables to this file")
    args = parser.parse_args(argv)

    cases = args.cases or (QUICK_GRID if args.quick else FULL_GRID)
    # Warm up libraries and thread pools on small data.
    run_case(1000, 5, 1, args.offset)
    results = []
    for n_samples, n_features in cases:
        repeats = args.repeats
        if n_samples * n_features >= 5 * 10**7:
            repeats = min(repeats, args.large_repeats)
        res = run_case(n_samples, n_features, max(1, repeats), args.offset)
        results.append(res)
        print(
            f"n={_size(n_samples)} d={n_features}: fit {_ms(res['gg_fit'])} ms, "
            f"score {_ms(res['gg_score'])} ms",
            flush=True,
        )
    table = markdown(results, args.offset)
    print()
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
