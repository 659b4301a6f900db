"""
=======================================================
Fitting a Gaussian to a Dask array larger than memory
=======================================================

:class:`~sklearn_mvn.GradientGaussian` depends on the data only through
mergeable sufficient statistics, so it fits a Dask array exactly, without ever
holding it in memory: each row block's statistics are computed on a Dask worker
and the statistics (not the data) are tree-reduced; only ``d + d^2`` numbers
come back to the client.

This script synthesises rows lazily from a normal distribution with a known
covariance ``L L^T`` (standard normal blocks multiplied by a fixed factor
``L``), fits them, and reports the throughput (rows per second) and the error
of the estimate against the true parameters. The default, 2e8 rows x 20
features of float64, is 32 GB: more than a dense copy this machine could hold.
Run ``python examples/dask_large_fit.py --help`` for the options, e.g.::

    python examples/dask_large_fit.py --rows 2e7 --workers 0   # threads
    python examples/dask_large_fit.py --rows 2e7 --workers 2   # LocalCluster

Install the optional dependencies from a checkout with ``pip install ".[dask]"``
(or ``".[examples]"``, which includes them).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import argparse
import os
import resource
import time

import dask
import dask.array as da
import numpy as np
from threadpoolctl import threadpool_limits

from sklearn_mvn import GradientGaussian


def true_parameters(n_features, seed=0):
    """Mean and lower-triangular factor with correlated features on scales
    from 1e-3 to 1e3."""
    rng = np.random.RandomState(seed)
    corr_factor = np.tril(rng.uniform(0.2, 1.0, (n_features, n_features)))
    corr_factor /= np.linalg.norm(corr_factor, axis=1, keepdims=True)
    scales = np.logspace(-3, 3, n_features)
    factor = scales[:, np.newaxis] * corr_factor
    mean = 10.0 * scales * rng.standard_normal(n_features)
    return mean, factor


def synthetic_rows(n_rows, mean, factor, chunk_rows, seed=0):
    """Lazy Dask array of ``n_rows`` draws from ``N(mean, factor factor^T)``."""
    rng = da.random.default_rng(seed)
    n_features = mean.shape[0]
    z = rng.standard_normal((n_rows, n_features), chunks=(chunk_rows, n_features))
    return z @ factor.T + mean


def correlation_units_error(model, mean, covariance):
    """Largest error of the mean (in standard deviations) and of the
    covariance (in correlation units)."""
    scale = np.sqrt(np.diag(covariance))
    mean_err = np.max(np.abs(model.mean_ - mean) / scale)
    cov_err = np.max(np.abs(model.covariance_ - covariance) / np.outer(scale, scale))
    return mean_err, cov_err


def cpu_seconds():
    """CPU time (user + system, all threads) of the calling process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--rows", type=float, default=2e8, help="number of rows")
    parser.add_argument("--features", type=int, default=20, help="number of columns")
    parser.add_argument(
        "--chunk-rows", type=float, default=5e5, help="rows per Dask block"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="LocalCluster worker processes; 0 uses Dask's threaded scheduler",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per worker (default 1), or in total for the threaded "
        "scheduler (default: one per core)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also time synthesising the rows alone (a column sum), to separate "
        "the cost of the statistics from that of the random numbers",
    )
    args = parser.parse_args(argv)
    n_rows, chunk_rows = int(args.rows), int(args.chunk_rows)

    mean, factor = true_parameters(args.features)
    covariance = factor @ factor.T
    X = synthetic_rows(n_rows, mean, factor, chunk_rows)
    print(
        f"X: {n_rows:.3g} rows x {args.features} features, float64, "
        f"{X.nbytes / 1e9:.1f} GB as a dense array, {X.numblocks[0]} row blocks "
        f"of {chunk_rows:.3g} rows"
    )

    if args.workers > 0:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads or 1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
        where = f"LocalCluster, {args.workers} worker process(es)"
    else:
        client = None
        threads = args.threads or os.cpu_count()
        dask.config.set(scheduler="threads", num_workers=threads)
        # One BLAS thread per Dask thread (distributed does this for its
        # worker processes); nested BLAS threads only compete for the cores.
        threadpool_limits(1, user_api="blas")
        where = f"threaded scheduler, {threads} thread(s)"

    try:
        if args.baseline:
            start = time.perf_counter()
            X.sum(axis=0).compute()
            base = time.perf_counter() - start
            print(
                f"{where}: synthesising the rows alone takes {base:.1f} s "
                f"({n_rows / base:,.0f} rows/s)"
            )

        # CPU time of the processes doing the work (the workers, or this
        # process for the threaded scheduler): a load-independent cost.
        def total_cpu():
            if client is None:
                return cpu_seconds()
            return sum(client.run(cpu_seconds).values())

        cpu = total_cpu()
        start = time.perf_counter()
        model = GradientGaussian().fit(X)
        seconds = time.perf_counter() - start
        cpu = total_cpu() - cpu
    finally:
        if client is not None:
            client.close()
            cluster.close()

    mean_err, cov_err = correlation_units_error(model, mean, covariance)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB
    print(
        f"{where}: fit in {seconds:.1f} s, {n_rows / seconds:,.0f} rows/s; "
        f"peak memory of this (client) process {peak:.2f} GiB"
    )
    print(
        f"CPU time {cpu:.1f} s ({n_rows / cpu:,.0f} rows per CPU-second), "
        f"CPU/wall = {cpu / seconds:.2f} cores busy on average"
    )
    print(
        f"largest error vs the true parameters: mean {mean_err:.2e} standard "
        f"deviations, covariance {cov_err:.2e} (correlation units); sampling "
        f"error is of order 1/sqrt(n) = {1 / np.sqrt(n_rows):.1e}"
    )
    return n_rows / seconds


if __name__ == "__main__":
    main()
