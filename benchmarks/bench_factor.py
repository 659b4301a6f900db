"""Benchmarks of the factor model S = W W^T + diag(psi) (issue 12 targets).

Run from the repository root, with the same BLAS threads for both sides
(printed with each section)::

    OPENBLAS_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_factor.py [section ...]

Sections (all by default):

- ``fa``: n = 1e5, d = 500, k = 10, data from a factor model: fit time against
  ``FactorAnalysis()`` (scikit-learn's default, randomized SVD) and the
  log-likelihoods (target: <= 0.25 x the time, log-likelihood at least as
  high).
- ``wide``: n = 2e4, d = 10,000, k = 20: fit by chunked passes (no d x d
  array); time against ``FactorAnalysis()`` (target <= 1.0 x; the two
  interleaved over ``--repeat`` runs) and, in a separate run, peak memory
  beyond X by ``tracemalloc`` (target <= 25% of X).
- ``score``: ``score_samples`` (log-density of every row) at d = 10,000,
  k = 20 against one ``X @ W`` (target <= 3 x).
- ``mcar``: 30% of the entries missing completely at random, n = 2e4,
  d = 200, k = 5: exact fit time (target <= 10 s) and held-out marginal
  log-likelihood against SimpleImputer(mean) + FactorAnalysis and
  IterativeImputer + FactorAnalysis (target: higher than both).

Every figure is the median of ``--repeat`` runs (default 1 for the slow
sections) and is printed with the load average of the machine.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from sklearn_mvn import GradientGaussian
from sklearn_mvn._representations.low_rank import LowRankPlusDiagonal


def fit_factor_model(X, k):
    """The estimator's fit (defaults: tol=1e-8, max_iter=200)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return GradientGaussian(covariance_type="factor", n_factors=k).fit(X)


def blas_threads():
    from threadpoolctl import threadpool_info

    counts = {
        info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"
    }
    return "/".join(str(c) for c in sorted(counts))


def load():
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def factor_data(rng, n, d, k, missing=0.0):
    W = rng.standard_normal((d, k))
    psi = rng.uniform(0.2, 2.0, d)
    X = rng.standard_normal((n, k)) @ W.T
    X += rng.standard_normal((n, d)) * np.sqrt(psi)
    if missing:
        X[rng.random((n, d)) < missing] = np.nan
        empty = np.isnan(X).all(axis=1)
        X[empty, 0] = 0.0
    return X


def timed(func, repeat=1):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def fa_loglik(fa, X):
    model = LowRankPlusDiagonal(fa.components_.T, fa.noise_variance_)
    return float(np.mean(model.log_density(X, fa.mean_)))


def ours_loglik(fit, X):
    return float(fit.score(X))


def describe(fit):
    return f"{fit.n_iter_} it, converged={fit.converged_}"


def section_fa(repeat):
    rng = np.random.default_rng(0)
    n, d, k = 100_000, 500, 10
    X = factor_data(rng, n, d, k)
    print(f"[fa] n={n} d={d} k={k}  ({load()})")
    t_ours, fit = timed(lambda: fit_factor_model(X, k), repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_fa, fa = timed(lambda: FactorAnalysis(k).fit(X), repeat)
    ll_ours, ll_fa = ours_loglik(fit, X), fa_loglik(fa, X)
    print(
        f"  ours {t_ours:.2f} s ({describe(fit)})  "
        f"FactorAnalysis() {t_fa:.2f} s ({fa.n_iter_} it)  "
        f"ratio {t_ours / t_fa:.3f} (target <= 0.25)"
    )
    print(
        f"  mean log-likelihood ours {ll_ours:.10f}  FA {ll_fa:.10f}  "
        f"difference {ll_ours - ll_fa:+.2e} (target >= 0)  ({load()})"
    )


def section_wide(repeat, with_fa, fa_memory=False):
    rng = np.random.default_rng(1)
    n, d, k = 20_000, 10_000, 20
    X = factor_data(rng, n, d, k)
    size = X.nbytes
    print(
        f"[wide] n={n} d={d} k={k}, X is {size / 2**20:.0f} MiB, "
        f"{blas_threads()} BLAS thread(s)  ({load()})"
    )
    # Times without tracemalloc, ours and FactorAnalysis interleaved.
    t_fit, t_fa, fit, fa = [], [], None, None
    for _ in range(repeat):
        start = time.perf_counter()
        fit = fit_factor_model(X, k)
        t_fit.append(time.perf_counter() - start)
        print(f"  ours {t_fit[-1]:.2f} s ({describe(fit)})  ({load()})", flush=True)
        if with_fa:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                fa = FactorAnalysis(k).fit(X)
                t_fa.append(time.perf_counter() - start)
            print(
                f"  FactorAnalysis() {t_fa[-1]:.2f} s ({fa.n_iter_} it)  ({load()})",
                flush=True,
            )
    # Peak memory in separate runs (tracemalloc slows allocations).
    tracemalloc.start()
    fit_factor_model(X, k)
    _, peak_fit = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    fit.score_samples(X)
    t_score = time.perf_counter() - start
    _, peak_score = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  ours fit median {np.median(t_fit):.2f} s of {len(t_fit)} "
        f"({describe(fit)}), peak memory beyond X {peak_fit / 2**20:.0f} MiB = "
        f"{100 * peak_fit / size:.1f}% of X (target <= 25%)"
    )
    print(
        f"  score_samples {t_score:.2f} s, peak {peak_score / 2**20:.0f} MiB "
        f"= {100 * peak_score / size:.1f}% of X  ({load()})"
    )
    if with_fa:
        ratio = np.median(t_fit) / np.median(t_fa)
        print(
            f"  FactorAnalysis() median {np.median(t_fa):.2f} s of {len(t_fa)} "
            f"({fa.n_iter_} it); time ratio of medians {ratio:.3f} (target <= 1.0); "
            f"per repeat {np.round(np.array(t_fit) / np.array(t_fa), 3).tolist()}"
        )
        print(
            f"  mean log-likelihood ours {ours_loglik(fit, X):.8f}  "
            f"FA {fa_loglik(fa, X):.8f}  ({load()})"
        )
        if fa_memory:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                tracemalloc.start()
                FactorAnalysis(k).fit(X)
                _, peak_fa = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            print(f"  FactorAnalysis() peak memory {peak_fa / 2**20:.0f} MiB")


def section_score(repeat):
    rng = np.random.default_rng(2)
    n, d, k = 20_000, 10_000, 20
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, k))
    model = GradientGaussian(covariance_type="factor", n_factors=k)
    model.n_features_in_ = d
    model.mean_ = rng.standard_normal(d)
    model.components_ = W.T.copy()
    model.noise_variance_ = rng.uniform(0.5, 1.5, d)
    t_score, _ = timed(lambda: model.score_samples(X), repeat)
    t_prod, _ = timed(lambda: X @ W, repeat)
    print(
        f"[score] n={n} d={d} k={k}: score_samples {t_score:.3f} s, X @ W "
        f"{t_prod:.3f} s, ratio {t_score / t_prod:.2f} (target <= 3)  ({load()})"
    )


def section_mcar(repeat):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, SimpleImputer

    rng = np.random.default_rng(3)
    n, d, k = 20_000, 200, 5
    X = factor_data(rng, 2 * n, d, k, missing=0.3)
    train, test = X[:n], X[n:]
    print(f"[mcar] n={n} d={d} k={k}, 30% missing  ({load()})")
    t_ours, fit = timed(lambda: fit_factor_model(train, k), repeat)
    ll_ours = fit.score(test)
    print(
        f"  exact fit {t_ours:.2f} s ({describe(fit)}) "
        f"(target <= 10 s); held-out marginal log-likelihood {ll_ours:.5f}"
    )
    for name, imputer in [
        ("SimpleImputer(mean)", SimpleImputer()),
        # 30 nearest features per regression: the default (all 199) takes
        # many minutes at this size on a busy machine.
        (
            "IterativeImputer(n_nearest_features=30)",
            IterativeImputer(n_nearest_features=30, random_state=0),
        ),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            filled = imputer.fit_transform(train)
            fa = FactorAnalysis(k).fit(filled)
            elapsed = time.perf_counter() - start
        model = LowRankPlusDiagonal(fa.components_.T, fa.noise_variance_)
        ll = float(np.mean(model.marginal_log_density(test, fa.mean_)))
        print(
            f"  {name} + FactorAnalysis: {elapsed:.1f} s, held-out marginal "
            f"log-likelihood {ll:.5f} (ours - this = {ll_ours - ll:+.4f}, "
            "target > 0)"
        )
    print(f"  ({load()})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", default=["fa", "wide", "score", "mcar"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--no-fa-wide",
        action="store_true",
        help="skip FactorAnalysis at d = 10,000 (it takes many minutes)",
    )
    parser.add_argument(
        "--fa-memory",
        action="store_true",
        help="also measure FactorAnalysis's peak memory at d = 10,000",
    )
    args = parser.parse_args()
    for section in args.sections:
        if section == "fa":
            section_fa(args.repeat)
        elif section == "wide":
            section_wide(args.repeat, not args.no_fa_wide, args.fa_memory)
        elif section == "score":
            section_score(args.repeat)
        elif section == "mcar":
            section_mcar(args.repeat)
        else:
            parser.error(f"unknown section {section!r}")


if __name__ == "__main__":
    main()
