"""Benchmark: GradientGaussianMixture versus GaussianMixture and an exact EM.

Two Markdown tables, three components, overlapping correlated clusters (so
that EM is slow), every method from the same start (GaussianMixture after two
EM steps on the complete data, its weights, means and precisions passed as
``weights_init``, ``means_init`` and ``precisions_init``):

1. Complete data, n = 1e4, d = 5 and 20: ``GradientGaussianMixture()``
   (default tol) against ``GaussianMixture`` with its default ``tol=1e-3``
   and with ``tol=1e-10`` (``max_iter=10000``).
2. 10% and 30% of the entries missing completely at random, n = 1e4, d = 5
   and 20: ``GradientGaussianMixture()`` against the exact EM of the
   observed-data mixture likelihood written below in plain NumPy (labels and
   missing entries latent: per missingness pattern and component the
   marginal density of the observed entries, the conditional means and
   covariances of the missing ones, closed-form M-step), run until an
   iteration changes it by less than 1e-12 per sample (or 5000
   iterations). Both use ``reg_covar=0`` here: with ``reg_covar > 0`` both
   converge to a stationary point of the *penalised* likelihood, and an EM
   stopped on a change of the unpenalised one can stop short of it at a
   point whose unpenalised value is higher.

Times are CPU seconds (``time.process_time``, single-threaded BLAS), the
median of ``--repeats`` interleaved runs; ratios are GradientGaussianMixture
over the other method within one run (median over runs). Log-likelihoods are
per sample, computed by ``GradientGaussianMixture.score`` at each method's
parameters (the marginal densities with NaN), relative to the best. The load
average is printed before and after.

Run with ``python benchmarks/bench_mixture.py [--repeats 3] [--quick]``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from sklearn_mvn import GradientGaussianMixture  # noqa: E402


def make_data(n, d, seed=0):
    """Three overlapping clusters with random correlated covariances."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(3, d) * 1.2 * np.sqrt(5 / d)  # same overlap for any d
    parts = []
    for k, size in enumerate([n // 2, n // 3, n - n // 2 - n // 3]):
        root = 0.5 * rng.randn(d, d) / np.sqrt(d) + np.eye(d) * (1.0 + 0.3 * k)
        parts.append(centres[k] + rng.randn(size, d) @ root.T)
    return rng.permutation(np.vstack(parts))


def mcar(X, rate, seed=1):
    rng = np.random.RandomState(seed)
    X = X.copy()
    X[rng.rand(*X.shape) < rate] = np.nan
    return X[~np.isnan(X).all(axis=1)]


def common_start(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(3, max_iter=2, random_state=0).fit(X)
    return dict(
        weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_
    )


def exact_em(X, mix, means, covs, reg_covar=1e-6, max_iter=5000, gain=1e-12):
    """Plain EM of a normal mixture with NaN (labels and missing entries latent).

    Per component, all patterns at once: each pattern's covariance with the
    missing rows and columns replaced by the identity has the determinant
    and (on the observed block) the inverse of ``S_oo``. Returns the
    parameters, the number of iterations and the mean log-likelihood.
    """
    n, d = X.shape
    K = len(mix)
    observed = ~np.isnan(X)
    X0 = np.where(observed, X, 0.0)
    patterns, which = np.unique(observed, axis=0, return_inverse=True)
    which = which.ravel()
    o = patterns.astype(float)
    outer = o[:, :, None] * o[:, None, :]
    eye_missing = (1.0 - o)[:, :, None] * np.eye(d)
    n_observed = observed.sum(axis=1)
    mix, means, covs = mix.copy(), means.copy(), covs.copy()
    previous = -np.inf
    for iteration in range(1, max_iter + 1):  # noqa: B007
        log_prob = np.empty((n, K))
        filled, cond = [], []
        for k in range(K):
            S, mu = covs[k], means[k]
            S_p = S * outer + eye_missing
            logdet = 2 * np.log(
                np.diagonal(np.linalg.cholesky(S_p), axis1=1, axis2=2)
            ).sum(axis=1)
            inv_p = np.linalg.inv(S_p) * outer
            diff = (X0 - mu) * observed
            sol = np.einsum("nij,nj->ni", inv_p[which], diff)
            quad = np.sum(diff * sol, axis=1)
            log_prob[:, k] = np.log(mix[k]) - 0.5 * (
                n_observed * np.log(2 * np.pi) + logdet[which] + quad
            )
            filled.append(np.where(observed, X, mu + sol @ S))
            cond.append(S - S @ inv_p @ S)
        norm = logsumexp(log_prob, axis=1)
        ll = float(norm.mean())
        if abs(ll - previous) < gain:
            break
        previous = ll
        resp = np.exp(log_prob - norm[:, None])
        totals = resp.sum(axis=0)
        mix = totals / n
        for k in range(K):
            means[k] = resp[:, k] @ filled[k] / totals[k]
            diff = filled[k] - means[k]
            scatter = (resp[:, k] * diff.T) @ diff
            per_pattern = np.bincount(which, resp[:, k], minlength=len(patterns))
            scatter += np.einsum("p,pij->ij", per_pattern, cond[k])
            covs[k] = scatter / totals[k] + reg_covar * np.eye(d)
    return mix, means, covs, iteration, ll


def ll_at(X, weights, means, covs):
    """Mean log-likelihood per sample at given parameters (marginals with NaN).

    The E-step of :func:`exact_em` at those parameters (one iteration returns
    the log-likelihood before its M-step): independent of the estimator.
    """
    return exact_em(X, weights, means, covs, 0.0, max_iter=1)[4]


def timed(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def complete_case(n, d, repeats):
    X = make_data(n, d)
    start = common_start(X)
    rows = {"ours": [], "gm3": [], "gm10": []}
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            rows["ours"].append(
                timed(lambda: GradientGaussianMixture(3, **start).fit(X))
            )
            rows["gm3"].append(timed(lambda: GaussianMixture(3, **start).fit(X)))
            rows["gm10"].append(
                timed(
                    lambda: GaussianMixture(3, tol=1e-10, max_iter=10_000, **start).fit(
                        X
                    )
                )
            )
    lls = {
        key: ll_at(X, m.weights_, m.means_, m.covariances_)
        for key, m in ((key, runs[0][1]) for key, runs in rows.items())
    }
    best = max(lls.values())
    t = {key: np.median([r[0] for r in runs]) for key, runs in rows.items()}
    ratio = {
        key: np.median(
            [a[0] / b[0] for a, b in zip(rows["ours"], rows[key], strict=True)]
        )
        for key in ("gm3", "gm10")
    }
    it = {key: runs[0][1].n_iter_ for key, runs in rows.items()}
    print(
        f"| n = {n}, d = {d} | {t['ours']:.3f} ({it['ours']}) | "
        f"{t['gm3']:.3f} ({it['gm3']}) | {t['gm10']:.3f} ({it['gm10']}) | "
        f"{ratio['gm3']:.2f} / {ratio['gm10']:.2f} | "
        f"{lls['ours'] - best:.1e} / {lls['gm3'] - best:.1e} / "
        f"{lls['gm10'] - best:.1e} |"
    )


def missing_case(n, d, rate, repeats):
    X = make_data(n, d)
    start = common_start(X)
    Xn = mcar(X, rate)
    covs0 = np.linalg.inv(start["precisions_init"])
    ours, em = [], []
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.append(
                timed(
                    lambda: GradientGaussianMixture(3, reg_covar=0.0, **start).fit(Xn)
                )
            )
        em.append(
            timed(
                lambda: exact_em(
                    Xn, start["weights_init"], start["means_init"], covs0, 0.0
                )
            )
        )
    model = ours[0][1]
    full_covs = np.array([c.covariance_ for c in model.estimators_])
    ll_ours = ll_at(Xn, model.weights_, model.means_, full_covs)
    mix, means, covs, n_em, _ = em[0][1]
    ll_em = ll_at(Xn, mix, means, covs)
    best = max(ll_ours, ll_em)
    t_ours = np.median([r[0] for r in ours])
    t_em = np.median([r[0] for r in em])
    ratio = np.median([a[0] / b[0] for a, b in zip(ours, em, strict=True)])
    n_patterns = len(np.unique(~np.isnan(Xn), axis=0))
    print(
        f"| n = {n}, d = {d}, {rate:.0%} | {n_patterns} | {t_ours:.3f} "
        f"({model.n_iter_}) | {t_em:.3f} ({n_em}) | {ratio:.2f} | "
        f"{ll_ours - best:.1e} / {ll_em - best:.1e} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="n = 2000 only")
    args = parser.parse_args()
    n = 2000 if args.quick else 10_000
    print("load average before:", os.getloadavg())
    print("\nCPU seconds (EM steps); ll per sample relative to the best.\n")
    print(
        "| case | GradientGaussianMixture | GM tol=1e-3 | GM tol=1e-10 | "
        "ratio (1e-3 / 1e-10) | ll - best: ours / 1e-3 / 1e-10 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for d in (5, 20):
        complete_case(n, d, args.repeats)
    print(
        "\n| missing | patterns | GradientGaussianMixture: CPU s (EM steps) | "
        "exact EM: CPU s (iterations) | ratio | ll - best: ours / EM |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for d in (5, 20):
        for rate in (0.1, 0.3):
            missing_case(n, d, rate, args.repeats)
    print("\nload average after:", os.getloadavg())


if __name__ == "__main__":
    main()
