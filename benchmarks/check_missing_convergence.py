"""Check: the missing-data fit converges without a warning at the maximum.

Fits ``GradientGaussian()`` (default settings) to mvnmle's ``apple`` and
``missvals`` data sets and to random data sets with entries missing
completely at random (MCAR), at random (MAR: the probability depends on an
always observed feature) or in a monotone pattern, with d = 5, 10, 15, 20, and
compares each fit's log-likelihood per sample with R's ``norm`` and ``norm2``
(EM, criterion 1e-10) when they are installed (see ``bench_missing.py``).
Ill-conditioned sets (correlation matrices of condition number 1e6 to 1e9,
feature scales e^-3 to e^3, MCAR or MAR masks, a third of the rows complete so
that the likelihood is bounded; ``tests/test_missing_conditioning.py``) are
also compared with the test's plain EM (on standardised data, to a parameter
change below 1e-13); R's peers only up to d = 20 (at d = 40 they take many
minutes).
A monotone data set whose likelihood is unbounded (fewer rows observe the
first j features than j, for some j) must warn; a bounded one must not, and
its fit must be within 1e-10 per sample of the best of the three methods.

Run with ``python benchmarks/check_missing_convergence.py [--r-lib DIR]``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench_missing import log_likelihood, peer_status, r_library, run_peer  # noqa: E402
from test_missing import APPLE, MISSVALS, _mar, _mcar, _monotone  # noqa: E402
from test_missing_conditioning import _em, _ill_conditioned  # noqa: E402

from sklearn_mvn import GradientGaussian  # noqa: E402


def bounded(X):
    """Sufficient check for monotone data: rows observing at least the first
    j features outnumber j, for every j (otherwise: unbounded)."""
    observed = (~np.isnan(X)).sum(axis=1)
    return all((observed >= j).sum() > j for j in range(1, X.shape[1] + 1))


def data_sets():
    yield "apple", APPLE, True, True
    yield "missvals", MISSVALS, True, True
    for make in (_mcar, _mar, _monotone):
        for d in (5, 10, 15, 20):
            for seed, (n, rate) in enumerate([(30 * d, 0.1), (100 * d, 0.2)]):
                rng = np.random.RandomState(100 * d + seed)
                X = make(rng, n, d, rate)
                X = X[~np.isnan(X).all(axis=1)]
                name = f"{make.__name__[1:]} n={n} d={d} {rate:.0%}"
                yield name, X, bounded(X) if make is _monotone else True, True
    # Ill-conditioned: 12 masks, or about one mask per four rows.
    for seed, (d, cond, mechanism, n_masks) in enumerate(
        [
            (10, 1e6, "mcar", 12),
            (10, 1e9, "mar", 12),
            (10, 1e9, "mcar", 100),
            (20, 1e7, "mcar", 200),
            (20, 1e9, "mar", 12),
            (20, 1e9, "mar", 200),
            (40, 1e8, "mcar", 400),
            (40, 1e9, "mar", 12),
        ]
    ):
        n = 40 * d
        X, _ = _ill_conditioned(seed, n, d, cond, mechanism, n_masks)
        name = f"ill-conditioned {cond:.0e} {mechanism} n={n} d={d} {n_masks} masks"
        # R's EM at d = 40 and these condition numbers takes many minutes.
        yield name, X, True, d <= 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r-lib", default=None)
    args = parser.parse_args()
    lib = r_library(args.r_lib)
    status = peer_status(lib)
    print(
        "| data | bounded | iterations | warned | fit - best | norm - best | "
        "norm2 - best | EM - best |"
    )
    print("|" + " --- |" * 8)
    failures = 0
    for name, X, is_bounded, peers in data_sets():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = GradientGaussian().fit(X)
        warned = any("did not converge" in str(w.message) for w in caught)
        loglik = {"fit": log_likelihood(X, model.mean_, model.covariance_)}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "X.bin"
            with open(path, "wb") as f:
                np.array(X.shape, dtype=np.int32).tofile(f)
                np.ascontiguousarray(X).tofile(f)
            for method in ("norm", "norm2"):
                if status[method] is None and peers:
                    try:
                        _, _, mean, cov = run_peer(method, path, lib, 1)
                        loglik[method] = log_likelihood(X, mean, cov)
                    except Exception:  # a failing peer is a result, not an error
                        loglik[method] = float("nan")
        if name.startswith("ill-conditioned"):
            loglik["EM"] = log_likelihood(X, *_em(X))
        best = max(v for v in loglik.values() if np.isfinite(v))
        gap = {k: v - best for k, v in loglik.items()}
        ok = warned if not is_bounded else (not warned and gap["fit"] >= -1e-10)
        failures += not ok
        cells = [
            f"{gap.get(k, float('nan')):.1e}" for k in ("fit", "norm", "norm2", "EM")
        ]
        print(
            f"| {name} | {is_bounded} | {model.n_iter_} | {warned} | "
            + " | ".join(cells)
            + " |"
            + ("" if ok else " FAIL")
        )
    print(f"\n{failures} failure(s)")
    return failures


if __name__ == "__main__":
    sys.exit(main())
