"""
==========================================================
Streaming with ``partial_fit``, and fitting a Dask array
==========================================================

:class:`~sklearn_mvn.GradientGaussian` depends on the data only through
sufficient statistics (weight sum, mean and centred scatter, per missingness
pattern when there are missing values), and statistics of two pieces of data
merge *exactly* into the statistics of their union. So
:meth:`~sklearn_mvn.GradientGaussian.partial_fit` is not an approximation:
after any sequence of chunks the model is the one
:meth:`~sklearn_mvn.GradientGaussian.fit` gives on their concatenation. The
same merge lets ``fit`` work on a Dask array block by block, without ever
gathering it.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

# %%
# A stream of correlated data
# ---------------------------
#
# Rows arrive in 40 chunks of 250 from a 6-dimensional normal with strongly
# correlated features on different scales. We also make a second copy of the
# stream in which 10% of the entries are missing (``NaN``).
import numpy as np

rng = np.random.RandomState(0)
n_features, n_chunks, chunk_size = 6, 40, 250
true_factor = np.tril(rng.uniform(0.5, 1.0, (n_features, n_features)))
true_factor *= np.logspace(-1, 2, n_features)[:, np.newaxis]
true_mean = rng.normal(size=n_features)
true_covariance = true_factor @ true_factor.T

X = true_mean + rng.standard_normal((n_chunks * chunk_size, n_features)) @ (
    true_factor.T
)
X_nan = X.copy()
X_nan[rng.uniform(size=X.shape) < 0.1] = np.nan
X_nan = X_nan[~np.isnan(X_nan).all(axis=1)]
chunks = np.array_split(X, n_chunks)
chunks_nan = np.array_split(X_nan, n_chunks)

# %%
# ``partial_fit`` chunk by chunk
# ------------------------------
#
# After each chunk we record the error of the streamed estimate against the
# true covariance, and its difference from ``fit`` on all the rows seen so
# far. Each call merges the chunk's statistics into the ones kept from the
# previous calls and re-optimises from the previous solution; nothing else of
# the earlier chunks is kept.
from sklearn_mvn import GradientGaussian


def relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def stream(chunks):
    model = GradientGaussian()
    rows_seen, error_true, gap_to_fit = [], [], []
    for k, chunk in enumerate(chunks):
        model.partial_fit(chunk)
        batch = GradientGaussian().fit(np.concatenate(chunks[: k + 1]))
        rows_seen.append(model.n_samples_seen_)
        error_true.append(relative(model.covariance_, true_covariance))
        gap_to_fit.append(relative(model.covariance_, batch.covariance_))
    return model, np.array(rows_seen), np.array(error_true), np.array(gap_to_fit)


model, rows_seen, error_true, gap_to_fit = stream(chunks)
model_nan, rows_seen_nan, error_true_nan, gap_to_fit_nan = stream(chunks_nan)
print(f"rows seen: {model.n_samples_seen_} (complete), {model_nan.n_samples_seen_}")
print(f"largest relative gap to fit, complete data: {gap_to_fit.max():.1e}")
print(f"largest relative gap to fit, 10% missing:   {gap_to_fit_nan.max():.1e}")

# %%
# For complete data the streamed and batch estimates agree to rounding error:
# both are the closed-form optimum of the same statistics (merged in a
# different order). With missing values both run the optimiser to its
# tolerance on the same per-pattern statistics, so they agree to the
# optimiser's accuracy (its tolerance is on the gradient, so the estimates
# differ by about 1e-8). Meanwhile the error against the truth falls, on
# average, like :math:`1/\sqrt{n}` as for any maximum-likelihood estimate (a
# single stream fluctuates around that rate); the missing entries cost a
# little accuracy, not the exactness of the stream.
import matplotlib.pyplot as plt

fig, (ax_err, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_err.loglog(rows_seen, error_true, "-o", markersize=3, label="complete stream")
ax_err.loglog(
    rows_seen_nan, error_true_nan, "--s", markersize=3, label="10% missing entries"
)
ax_err.loglog(
    rows_seen,
    error_true[0] * np.sqrt(rows_seen[0] / rows_seen),
    ":",
    color="grey",
    label=r"$\propto 1/\sqrt{n}$",
)
ax_err.set_xlabel("rows seen")
ax_err.set_ylabel("relative error of the covariance")
ax_err.set_title("partial_fit against the true covariance")
ax_err.legend(fontsize="small")

tiny = np.finfo(np.float64).eps / 2  # show exact zeros on the log scale
ax_gap.semilogy(
    rows_seen, np.maximum(gap_to_fit, tiny), "-o", markersize=3, label="complete"
)
ax_gap.semilogy(
    rows_seen_nan,
    np.maximum(gap_to_fit_nan, tiny),
    "--s",
    markersize=3,
    label="10% missing entries",
)
ax_gap.legend(fontsize="small")
ax_gap.set_xlabel("rows seen")
ax_gap.set_ylabel("relative difference")
ax_gap.set_title("partial_fit against fit on the rows seen")
fig.tight_layout()

# %%
# Fitting a Dask array
# --------------------
#
# ``fit`` and ``partial_fit`` also accept a :class:`dask.array.Array`. Each
# row block's statistics are computed by a Dask task, the statistics are
# merged in a tree of tasks, and only the final statistics (a few hundred
# numbers here) reach the fitting process: the array is never gathered. The
# estimate equals the NumPy fit. Dask is an optional dependency
# (``pip install ".[dask]"`` from a checkout), imported only when a Dask array is
# passed.
import dask.array as da

X_dask = da.from_array(X, chunks=(1000, n_features))
model_dask = GradientGaussian().fit(X_dask)
model_numpy = GradientGaussian().fit(X)
print(f"{X_dask.numblocks[0]} row blocks")
print(
    "relative difference of the Dask and NumPy covariances: "
    f"{relative(model_dask.covariance_, model_numpy.covariance_):.1e}"
)

# %%
# ``score_samples`` of a Dask array is lazy: a Dask array of log-densities,
# computed block by block when asked for, so the scores of a larger-than-memory
# array can be reduced (here to their mean, which is ``score``) or written out
# without ever holding them all.
log_density = model_dask.score_samples(X_dask)
print(log_density)
print(f"mean log-density {float(log_density.mean().compute()):.4f}")
print(f"score            {model_dask.score(X_dask):.4f}")

# %%
# With a :class:`distributed.Client`, the same code runs the block tasks on
# the cluster's workers; only the statistics travel back:
#
# .. code-block:: python
#
#    from dask.distributed import Client
#
#    client = Client()  # or Client("scheduler-address:8786")
#    X_dask = da.from_zarr("data.zarr")  # any Dask array, e.g. larger than memory
#    model = GradientGaussian().fit(X_dask)
#
# ``examples/dask_large_fit.py`` in the source tree fits a lazily generated
# array of :math:`2 \cdot 10^8` rows and 20 features (32 GB) this way.
plt.show()
