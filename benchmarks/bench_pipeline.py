"""Benchmark: the pipeline tools, GaussianImputer and GaussianOutlierDetector.

Two cases, as in issue 15:

1. Imputation, n = 1e4, d = 20 (a correlated normal, covariance eigenvalues
   from 1 to 20), 20% of the entries missing completely at random:
   ``GaussianImputer().fit_transform`` against
   ``IterativeImputer(max_iter=10, random_state=0).fit_transform``, both
   timed in the same run, interleaved, median of ``--repeats`` runs. Targets:
   time ratio <= 0.1, RMSE of the filled entries no worse.
2. Outlier detection on the breast-cancer set-up of ``examples/quickstart.py``
   (fit on 70% of the benign tumours; malignant against held-out benign):
   the ROC AUC of ``GaussianOutlierDetector.decision_function`` equals that of
   ``GradientGaussian().score_samples``, and ``predict`` flags the requested
   fraction of the training rows within ``1/n``, for several
   ``contamination`` values.

Run with ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_pipeline.py`` from
the repository root (``PYTHONPATH=.`` if the package is not installed).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sklearn_mvn import GaussianImputer, GaussianOutlierDetector, GradientGaussian


def make_data(n, d, rate, seed=0):
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    cov = (q * np.geomspace(1.0, 20.0, d)) @ q.T
    X = rng.multivariate_normal(rng.randn(d), cov, size=n)
    mask = rng.rand(n, d) < rate
    mask[mask.all(axis=1), 0] = False
    return X, mask


def timed(func):
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def bench_imputation(n, d, rate, repeats):
    X, mask = make_data(n, d, rate)
    X_missing = np.where(mask, np.nan, X)
    scale = X.std(axis=0)

    def rmse(filled):
        return float(np.sqrt(np.mean((((filled - X) / scale)[mask]) ** 2)))

    methods = {
        "GaussianImputer": lambda: GaussianImputer().fit_transform(X_missing),
        "IterativeImputer(max_iter=10)": lambda: IterativeImputer(
            max_iter=10, random_state=0
        ).fit_transform(X_missing),
        # The share of GaussianImputer's time spent in the density fit.
        "GradientGaussian().fit alone": lambda: GradientGaussian().fit(X_missing),
    }
    times = {name: [] for name in methods}
    errors = {}
    with warnings.catch_warnings():
        # IterativeImputer warns that 10 rounds are not converged; a warning
        # of GradientGaussian would be an error here.
        warnings.filterwarnings("error", category=ConvergenceWarning)
        warnings.filterwarnings(
            "ignore", category=ConvergenceWarning, module=r"sklearn\.impute"
        )
        for _ in range(repeats):
            for name, method in methods.items():
                seconds, filled = timed(method)
                times[name].append(seconds)
                if isinstance(filled, np.ndarray):
                    errors[name] = rmse(filled)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    g, i, _ = medians.values()
    print(f"\n## Imputation: n = {n}, d = {d}, {rate:.0%} MCAR, median of {repeats}\n")
    print("| method | time (s) | RMSE (std. units) |")
    print("| --- | ---: | ---: |")
    for name in methods:
        error = f"{errors[name]:.4f}" if name in errors else "-"
        print(f"| {name} | {medians[name]:.3f} | {error} |")
    ratio = g / i
    e_g, e_i = errors.values()
    print(
        f"\ntime ratio GaussianImputer / IterativeImputer: {ratio:.3f} "
        f"(target <= 0.1: {'met' if ratio <= 0.1 else 'NOT met'})"
    )
    print(
        f"RMSE GaussianImputer - IterativeImputer: {e_g - e_i:+.4f} "
        f"(target <= 0: {'met' if e_g <= e_i else 'NOT met'})"
    )


def bench_outliers():
    X, y = load_breast_cancer(return_X_y=True)
    benign, malignant = X[y == 1], X[y == 0]
    train, test_benign = train_test_split(benign, test_size=0.3, random_state=0)
    X_test = np.concatenate([test_benign, malignant])
    is_malignant = np.r_[np.zeros(len(test_benign)), np.ones(len(malignant))]
    reference = roc_auc_score(
        is_malignant, -GradientGaussian().fit(train).score_samples(X_test)
    )
    n = len(train)
    print(f"\n## Outlier detection: breast cancer, {n} benign training rows\n")
    print(f"ROC AUC of GradientGaussian().score_samples: {reference:.6f}\n")
    print(
        "| contamination | ROC AUC of decision_function | training rows flagged "
        "| |flagged - contamination| | 1/n | within 1/n |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for contamination in [0.01, 0.05, 0.1, 0.25, 0.5, "auto"]:
        detector = GaussianOutlierDetector(contamination=contamination).fit(train)
        auc = roc_auc_score(is_malignant, -detector.decision_function(X_test))
        flagged = float(np.mean(detector.predict(train) == -1))
        if contamination == "auto":
            gap, within = float("nan"), "(model-based threshold)"
        else:
            gap = abs(flagged - contamination)
            within = "yes" if gap <= 1 / n else "NO"
        print(
            f"| {contamination} | {auc:.6f} | {flagged:.4f} | {gap:.4f} "
            f"| {1 / n:.4f} | {within} |"
        )
        assert auc == reference, (auc, reference)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
        f"{os.getloadavg()[2]:.2f} at start"
    )
    bench_imputation(args.n, args.d, args.rate, args.repeats)
    bench_outliers()
    print(
        f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
        f"{os.getloadavg()[2]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
