"""Benchmark GradientStudentT: speed, anomaly detection, estimated df.

Six parts, each printed as a Markdown table, with the load average:

1. fit time on heavy-tailed data (multivariate t, df=3; n = 1e5, d = 50 by
   default) of ``GradientStudentT().fit`` against ``MinCovDet().fit`` in the
   same run, and of the trimmed fit ``support_fraction=None`` (medians over
   ``--repeats``; MinCovDet once unless ``--mcd-repeats``);
2. held-out ROC AUC on contaminated training sets (outliers mixed into the
   training data; mean over ``--splits`` random splits) for GradientStudentT,
   the trimmed GradientStudentT(support_fraction=None), GradientGaussian,
   EllipticEnvelope, MinCovDet and IsolationForest;
3. df estimated on n = 1e4 samples of a t with known df (3 and 10), with its
   standard error from the observed information (finite differences of the
   analytic gradient) and, over ``--replicates`` samples, the spread of the
   estimates;
4. why the t misses the AUC target on some sets: the likelihood reached from
   8 other starts (is the default fit the global maximum?), the likelihood of
   the clean solution (the t fitted on the training inliers only), and the
   AUC of df=1, the diagonal scale and the structure chosen by 5-fold
   cross-validated likelihood; then the AUC against the contamination rate
   (the breakdown of the t);
5. the factor scale matrix (``covariance_type='factor'``): fit time and peak
   traced memory against the full t and the normal factor model.

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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler

from sklearn_mvn import GradientGaussian, GradientStudentT
from sklearn_mvn._likelihoods.student_t import t_objective, t_sums


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
    trimmed = "GradientStudentT(support_fraction=None)"
    times = {"GradientStudentT": [], trimmed: [], "MinCovDet": []}
    model = None
    for r in range(max(repeats, mcd_repeats)):
        if r < repeats:
            gc.collect()
            start = time.perf_counter()
            model = GradientStudentT().fit(X)
            times["GradientStudentT"].append(time.perf_counter() - start)
            gc.collect()
            start = time.perf_counter()
            GradientStudentT(support_fraction=None).fit(X)
            times[trimmed].append(time.perf_counter() - start)
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
        f"converged_={model.converged_}; trimmed / MinCovDet = "
        f"{med[trimmed] / med['MinCovDet']:.3f}"
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
    out["GradientStudentT(support_fraction=None)"] = (
        -GradientStudentT(support_fraction=None).fit(train).score_samples(test)
    )
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
    trimmed = "GradientStudentT(support_fraction=None)"
    names = [
        "GradientStudentT",
        trimmed,
        "GradientGaussian",
        "EllipticEnvelope",
        "MinCovDet",
        "IsolationForest",
    ]
    print(
        "| data set | "
        + " | ".join(names)
        + " | t >= EE and >= GG | trimmed t >= EE and >= GG |"
    )
    print("| --- |" + " ---: |" * (len(names) + 2))
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
        peers = max(mean["EllipticEnvelope"], mean["GradientGaussian"])
        ok = mean["GradientStudentT"] >= peers
        ok_trimmed = mean[trimmed] >= peers
        print(
            f"| {name} | "
            + " | ".join(f"{mean[k]:.4f}" for k in names)
            + f" | {'yes' if ok else 'no'} | {'yes' if ok_trimmed else 'no'} |"
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


# ---------------------------------------------------------------------------
# 4. Why the t misses the AUC target on some sets: global maximum, recipes,
#    breakdown
# ---------------------------------------------------------------------------


def _warm_fit(train, start_rows, **params):
    """The t fitted on ``start_rows`` of ``train``, then refitted on all of
    ``train`` from there (``warm_start``, public API): a local search of the
    likelihood of ``train`` from that start."""
    model = GradientStudentT(warm_start=True, max_iter=1000, **params)
    model.fit(train[start_rows])
    model.fit(train)
    return model


def _multistart(train, n_inliers, rng, n_random=5):
    """The default fit and fits from other starts: the training inliers (the
    clean solution), MinCovDet's support, a near-normal fit (df=1e6 fixed) and
    random halves. Returns (default, {start: model}, clean log-likelihood)."""
    n = train.shape[0]
    default = GradientStudentT().fit(train)
    starts = {}
    clean = GradientStudentT(max_iter=1000).fit(train[:n_inliers])
    clean_ll = clean.score(train)
    starts["inliers"] = _warm_fit(train, np.arange(n_inliers))
    support = np.flatnonzero(MinCovDet(random_state=0).fit(train).support_)
    starts["MCD support"] = _warm_fit(train, support)
    near_normal = GradientStudentT(df=1e6).fit(train)
    model = GradientStudentT(warm_start=True, max_iter=1000)
    model.mean_, model.factor_, model.df_ = (
        near_normal.mean_,
        near_normal.factor_,
        near_normal.df_,
    )
    model.n_features_in_ = train.shape[1]
    starts["normal"] = model.fit(train)
    for i in range(n_random):
        rows = rng.choice(n, (n + train.shape[1] + 1) // 2, replace=False)
        starts[f"half {i}"] = _warm_fit(train, rows)
    return default, starts, clean_ll


def _structure_cv(train):
    from sklearn.model_selection import GridSearchCV

    d = train.shape[1]
    grid = [
        {"covariance_type": ["full", "diag"]},
        {
            "covariance_type": ["factor"],
            "n_factors": [k for k in (1, 2, 3, 5) if k < d],
        },
    ]
    search = GridSearchCV(GradientStudentT(), grid, cv=5).fit(train)
    best = search.best_params_
    label = best["covariance_type"]
    if label == "factor":
        label += f" k={best['n_factors']}"
    return search.best_estimator_, label


def bench_recipes(splits):
    print(
        "\n## Is the t at its global maximum, and do other settings help? "
        f"({_load()})\n"
    )
    print(
        "| data set | t (default) | max over 8 starts of ll - ll(default) | "
        "ll(clean fit) - ll(default) | t df=1 | t shrinkage=0.1 | t "
        "shrinkage=0.1, robust-scaled X | t diag | t CV-selected structure "
        "(choices) | GradientGaussian | EllipticEnvelope |"
    )
    print("| --- |" + " ---: |" * 10)
    for name, (inl, outl, contamination) in contaminated_sets().items():
        cols = {
            k: []
            for k in ("t", "gap", "clean", "df1", "shr", "shr_s", "diag", "cv")
            + ("gg", "ee")
        }
        choices = []
        for seed in range(splits):
            rng = np.random.RandomState(seed)
            train, test, y = _split(inl, outl, rng, contamination)
            n_in = int(0.6 * len(inl))

            def auc(model, test=test, y=y):
                return roc_auc_score(y, -model.score_samples(test))

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                default, starts, clean_ll = _multistart(train, n_in, rng)
                ll = default.score(train)
                cols["t"].append(auc(default))
                cols["gap"].append(max(m.score(train) - ll for m in starts.values()))
                cols["clean"].append(clean_ll - ll)
                cols["df1"].append(auc(GradientStudentT(df=1.0).fit(train)))
                cols["shr"].append(auc(GradientStudentT(shrinkage=0.1).fit(train)))
                scaled = make_pipeline(RobustScaler(), GradientStudentT(shrinkage=0.1))
                cols["shr_s"].append(auc(scaled.fit(train)))
                diag = GradientStudentT(covariance_type="diag").fit(train)
                cols["diag"].append(auc(diag))
                best, label = _structure_cv(train)
                cols["cv"].append(auc(best))
                choices.append(label)
                gg = GradientGaussian(reg_covar=1e-9).fit(train)
                cols["gg"].append(auc(gg))
                ee = EllipticEnvelope(random_state=0).fit(train)
                cols["ee"].append(auc(ee))
        mean = {k: float(np.mean(v)) for k, v in cols.items()}
        picked = ", ".join(f"{c} x{choices.count(c)}" for c in sorted(set(choices)))
        print(
            f"| {name} | {mean['t']:.4f} | {max(cols['gap']):.1e} | "
            f"{mean['clean']:+.3f} | {mean['df1']:.4f} | {mean['shr']:.4f} | "
            f"{mean['shr_s']:.4f} | {mean['diag']:.4f} | "
            f"{mean['cv']:.4f} ({picked}) | {mean['gg']:.4f} | {mean['ee']:.4f} |"
        )


def bench_breakdown(splits):
    print(f"\n## AUC against the contamination rate ({_load()})\n")
    print(
        "| data set | contamination | t | t df_ | t df=1 | GradientGaussian | "
        "EllipticEnvelope |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    sets = contaminated_sets()
    for name in (
        "t(3) d=10 + tight cluster at distance 12, 10%",
        "breast cancer, 15% malignant in training",
    ):
        inl, outl, _ = sets[name]
        label = name.rsplit(",", 1)[0]
        for contamination in (0.02, 0.04, 0.06, 0.08, 0.10, 0.15):
            cols = {k: [] for k in ("t", "df", "df1", "gg", "ee")}
            for seed in range(splits):
                rng = np.random.RandomState(seed)
                train, test, y = _split(inl, outl, rng, contamination)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = GradientStudentT().fit(train)
                    models = {
                        "t": t,
                        "df1": GradientStudentT(df=1.0).fit(train),
                        "gg": GradientGaussian(reg_covar=1e-9).fit(train),
                        "ee": EllipticEnvelope(random_state=0).fit(train),
                    }
                for k, m in models.items():
                    cols[k].append(roc_auc_score(y, -m.score_samples(test)))
                cols["df"].append(t.df_)
            mean = {k: float(np.mean(v)) for k, v in cols.items()}
            print(
                f"| {label} | {contamination:.2f} | {mean['t']:.4f} | "
                f"{mean['df']:.2f} | {mean['df1']:.4f} | {mean['gg']:.4f} | "
                f"{mean['ee']:.4f} |"
            )


# ---------------------------------------------------------------------------
# 5. The factor scale matrix
# ---------------------------------------------------------------------------


def bench_factor(n, d, k, repeats):
    """Fit time and peak memory of the factor t against the full t and the
    normal factor model on t(5) data with a k-factor scale matrix."""
    import tracemalloc

    rng = np.random.RandomState(0)
    W = rng.randn(d, k)
    psi = 0.5 + rng.rand(d)
    z = rng.randn(n, k) @ W.T + rng.randn(n, d) * np.sqrt(psi)
    X = z / np.sqrt(rng.chisquare(5.0, size=n) / 5.0)[:, None]
    fits = {
        "GradientStudentT(factor)": lambda: GradientStudentT(
            covariance_type="factor", n_factors=k
        ),
        "GradientGaussian(factor)": lambda: GradientGaussian(
            covariance_type="factor", n_factors=k
        ),
        "GradientStudentT(full)": lambda: GradientStudentT(),
    }
    times = {name: [] for name in fits}
    peaks, models = {}, {}
    for r in range(repeats):
        for name, make in fits.items():
            if name.endswith("(full)") and r > 0:
                continue
            gc.collect()
            start = time.perf_counter()
            models[name] = make().fit(X)
            times[name].append(time.perf_counter() - start)
    for name, make in fits.items():
        if name.endswith("(full)"):
            continue  # its d x d arrays are small next to X at this d
        gc.collect()
        tracemalloc.start()
        make().fit(X)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"\n## Factor scale matrix, t(5) data, n={n:.0e}, d={d}, k={k} ({_load()})\n")
    print(
        "| method | median time (s) | repeats | peak memory / X size | "
        "n_iter_ | converged_ | mean log-likelihood |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in fits:
        m = models[name]
        print(
            f"| {name} | {np.median(times[name]):.2f} | {len(times[name])} | "
            f"{peaks[name] / X.nbytes if name in peaks else float('nan'):.2f} | "
            f"{m.n_iter_} | {m.converged_} | "
            f"{m.score(X):.4f} |"
        )
    t = models["GradientStudentT(factor)"]
    med = {name: float(np.median(v)) for name, v in times.items()}
    factor_t = med["GradientStudentT(factor)"]
    print(
        f"\nfactor t: df_={t.df_:.3f} (truth 5); time ratio factor t / full t = "
        f"{factor_t / med['GradientStudentT(full)']:.3f}; factor t / normal "
        f"factor = {factor_t / med['GradientGaussian(factor)']:.2f}"
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
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated parts: speed, auc, df, recipes, breakdown, factor",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.repeats, args.splits, args.replicates = 2e4, 20, 1, 2, 3
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    parts = {
        "speed": lambda: bench_speed(
            int(args.n), args.d, args.repeats, args.mcd_repeats
        ),
        "auc": lambda: bench_auc(args.splits),
        "df": lambda: bench_df(10_000, 5, args.replicates),
        "recipes": lambda: bench_recipes(args.splits),
        "breakdown": lambda: bench_breakdown(args.splits),
        "factor": lambda: bench_factor(
            20_000, 200 if args.quick else 1000, 5, args.repeats
        ),
    }
    only = None if args.only is None else args.only.split(",")
    for name, run in parts.items():
        if name == "speed" and args.skip_speed:
            continue
        if only is None or name in only:
            run()


if __name__ == "__main__":
    main()
