"""Benchmark GradientStudentT: speed, anomaly detection, estimated df.

Three parts, each printed as a Markdown table, with the load average:

1. fit time on heavy-tailed data (multivariate t, df=3; n = 1e5, d = 50 by
   default) of ``GradientStudentT().fit`` against ``MinCovDet().fit`` in the
   same run (medians over ``--repeats``; MinCovDet once unless
   ``--mcd-repeats``);
2. held-out ROC AUC on contaminated training sets (outliers mixed into the
   training data; mean over ``--splits`` random splits) for GradientStudentT,
   GradientGaussian, EllipticEnvelope, MinCovDet and IsolationForest;
3. df estimated on n = 1e4 samples of a t with known df (3 and 10), with its
   standard error from the observed information (finite differences of the
   analytic gradient) and, over ``--replicates`` samples, the spread of the
   estimates.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_student_t.py
    python benchmarks/bench_student_t.py --quick
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import gc
import os
import time
import warnings

import numpy as np
from scipy.stats import multivariate_t
from sklearn.covariance import EllipticEnvelope, MinCovDet
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from sklearn_mvn import GradientGaussian, GradientStudentT
from sklearn_mvn._t_likelihood import t_objective, t_sums


def _load():
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _random_shape(rng, d, cond=10.0):
    q, _ = np.linalg.qr(rng.randn(d, d))
    return (q * np.geomspace(1.0, cond, d)) @ q.T


# ---------------------------------------------------------------------------
# 1. Speed
# ---------------------------------------------------------------------------


def bench_speed(n, d, repeats, mcd_repeats):
    rng = np.random.RandomState(0)
    X = multivariate_t(np.zeros(d), _random_shape(rng, d), df=3.0).rvs(
        n, random_state=rng
    )
    times = {"GradientStudentT": [], "MinCovDet": []}
    model = None
    for r in range(max(repeats, mcd_repeats)):
        if r < repeats:
            gc.collect()
            start = time.perf_counter()
            model = GradientStudentT().fit(X)
            times["GradientStudentT"].append(time.perf_counter() - start)
        if r < mcd_repeats:
            gc.collect()
            start = time.perf_counter()
            MinCovDet(random_state=0).fit(X)
            times["MinCovDet"].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"\n## Fit time, multivariate t (df=3), n={n:.0e}, d={d} ({_load()})\n")
    print("| method | median time (s) | repeats |")
    print("| --- | ---: | ---: |")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {len(times[k])} |")
    print(
        f"\nratio GradientStudentT / MinCovDet = "
        f"{med['GradientStudentT'] / med['MinCovDet']:.3f} (target <= 0.1); "
        f"GradientStudentT: df_={model.df_:.3f}, n_iter_={model.n_iter_}, "
        f"converged_={model.converged_}"
    )


# ---------------------------------------------------------------------------
# 2. Contaminated anomaly detection
# ---------------------------------------------------------------------------


def _split(inliers, outliers, rng, contamination, train_frac=0.6):
    """Train: a fraction of the inliers plus outliers making up
    ``contamination`` of it; test: the remaining rows of both."""
    inliers = inliers[rng.permutation(len(inliers))]
    outliers = outliers[rng.permutation(len(outliers))]
    n_in = int(train_frac * len(inliers))
    n_out = min(
        int(round(contamination / (1 - contamination) * n_in)), len(outliers) // 2
    )
    train = np.vstack([inliers[:n_in], outliers[:n_out]])
    test = np.vstack([inliers[n_in:], outliers[n_out:]])
    y_test = np.r_[np.zeros(len(inliers) - n_in), np.ones(len(outliers) - n_out)]
    return train, test, y_test


def contaminated_sets():
    """name -> (inliers, outliers, contamination): the gallery's four sets
    (same construction) plus two more."""
    cancer = load_breast_cancer()
    wine = load_wine()
    rng = np.random.RandomState(0)
    d = 10
    q, _ = np.linalg.qr(rng.randn(d, d))
    shape = (q * np.geomspace(1.0, 10.0, d)) @ q.T
    heavy = multivariate_t(np.zeros(d), shape, df=3.0).rvs(2000, random_state=rng)
    box = rng.uniform(-20, 20, size=(1000, d)) * np.sqrt(np.diag(shape))
    direction = rng.randn(d)
    direction /= np.sqrt(direction @ np.linalg.solve(shape, direction))
    cluster = 12.0 * direction + 0.5 * rng.multivariate_normal(np.zeros(d), shape, 1000)
    d2 = 20
    shape2 = _random_shape(rng, d2, cond=100.0)
    normal = rng.multivariate_normal(np.zeros(d2), shape2, 3000)
    scattered = rng.uniform(-6, 6, size=(1500, d2)) * np.sqrt(np.diag(shape2))
    benign, malignant = cancer.data[cancer.target == 1], cancer.data[cancer.target == 0]
    return {
        "breast cancer, 5% malignant in training": (benign, malignant, 0.05),
        "breast cancer, 15% malignant in training": (benign, malignant, 0.15),
        "t(3) d=10 + scattered box, 10%": (heavy, box, 0.10),
        "t(3) d=10 + tight cluster at distance 12, 10%": (heavy, cluster, 0.10),
        "wine (classes 0 and 2 as outliers), 10%": (
            wine.data[wine.target == 1],
            wine.data[wine.target != 1],
            0.10,
        ),
        "normal d=20 + scattered box, 20%": (normal, scattered, 0.20),
    }


def _scores(train, test):
    """Outlier scores (higher = more anomalous) of each method on ``test``."""
    out = {}
    out["GradientStudentT"] = -GradientStudentT().fit(train).score_samples(test)
    out["GradientGaussian"] = (
        -GradientGaussian(reg_covar=1e-9).fit(train).score_samples(test)
    )
    out["EllipticEnvelope"] = (
        -EllipticEnvelope(random_state=0).fit(train).score_samples(test)
    )
    out["MinCovDet"] = MinCovDet(random_state=0).fit(train).mahalanobis(test)
    out["IsolationForest"] = (
        -IsolationForest(random_state=0).fit(train).score_samples(test)
    )
    return out


def bench_auc(splits):
    print(f"\n## Held-out ROC AUC, contaminated training sets ({_load()})\n")
    names = [
        "GradientStudentT",
        "GradientGaussian",
        "EllipticEnvelope",
        "MinCovDet",
        "IsolationForest",
    ]
    print("| data set | " + " | ".join(names) + " | t >= EE and >= GG |")
    print("| --- |" + " ---: |" * (len(names) + 1))
    for name, (inl, outl, contamination) in contaminated_sets().items():
        aucs = {k: [] for k in names}
        for seed in range(splits):
            rng = np.random.RandomState(seed)
            train, test, y = _split(inl, outl, rng, contamination)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = _scores(train, test)
            for k in names:
                aucs[k].append(roc_auc_score(y, scores[k]))
        mean = {k: float(np.mean(v)) for k, v in aucs.items()}
        ok = mean["GradientStudentT"] >= max(
            mean["EllipticEnvelope"], mean["GradientGaussian"]
        )
        print(
            f"| {name} | "
            + " | ".join(f"{mean[k]:.4f}" for k in names)
            + f" | {'yes' if ok else 'no'} |"
        )


# ---------------------------------------------------------------------------
# 3. Estimated degrees of freedom
# ---------------------------------------------------------------------------


def _pack(model):
    d = model.mean_.shape[0]
    rows, cols = np.tril_indices(d)
    return np.concatenate([model.mean_, model.factor_[rows, cols], [np.log(model.df_)]])


def _gradient(X, theta, d):
    rows, cols = np.tril_indices(d)
    mean = theta[:d]
    factor = np.zeros((d, d))
    factor[rows, cols] = theta[d:-1]
    df = np.exp(theta[-1])
    _, gm, gf, gd = t_objective(t_sums(X, mean, factor, df, nan=False), factor)
    return np.concatenate([gm, gf[rows, cols], [df * gd]])


def standard_error_log_df(model, X):
    """Standard error of ``log df_`` from the observed information: the
    Hessian of the total negative log-likelihood by central differences of
    the analytic gradient, inverted."""
    d = model.mean_.shape[0]
    theta = _pack(model)
    k = theta.size
    hess = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = h
        hess[:, j] = (_gradient(X, theta + e, d) - _gradient(X, theta - e, d)) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    return float(np.sqrt(np.linalg.inv(hess)[-1, -1]))


def bench_df(n, d, replicates):
    print(f"\n## Estimated df, n={n:.0e}, d={d} ({_load()})\n")
    print(
        "| true df | estimate (first sample) | SE (observed information) | "
        "z = (estimate - truth) / SE | mean of estimates | sd of estimates | "
        "replicates | within 2 SE (fraction) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for true_df in (3.0, 10.0):
        estimates, within = [], []
        first = None
        for rep in range(replicates):
            rng = np.random.RandomState(100 + rep)
            shape = _random_shape(rng, d)
            X = multivariate_t(rng.randn(d), shape, df=true_df).rvs(n, random_state=rng)
            model = GradientStudentT().fit(X)
            se = model.df_ * standard_error_log_df(model, X)
            estimates.append(model.df_)
            within.append(abs(model.df_ - true_df) <= 2 * se)
            if first is None:
                first = (model.df_, se)
        est, se = first
        print(
            f"| {true_df:g} | {est:.3f} | {se:.3f} | {(est - true_df) / se:+.2f} | "
            f"{np.mean(estimates):.3f} | {np.std(estimates, ddof=1):.3f} | "
            f"{replicates} | {np.mean(within):.2f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=float, default=1e5)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mcd-repeats", type=int, default=1)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.repeats, args.splits, args.replicates = 2e4, 20, 1, 2, 3
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    if not args.skip_speed:
        bench_speed(int(args.n), args.d, args.repeats, args.mcd_repeats)
    bench_auc(args.splits)
    bench_df(10_000, 5, args.replicates)


if __name__ == "__main__":
    main()
