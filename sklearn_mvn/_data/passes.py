"""Row passes: the data source of a likelihood without sufficient statistics.

Such a likelihood (the Student-t) reads the data once per evaluation through
a ``data_pass(mean, params, df)`` callable. :func:`pass_source` builds it from
validated NumPy rows (one chunked pass of the likelihood's ``block_pass``) or
from a checked Dask array (the same pass mapped over the blocks on the
workers, :func:`~._data.dask.dask_data_pass`), with the strided
subsample the robust start reads and the weight sum. It knows nothing of the
likelihood beyond its ``block_pass``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import math

import numpy as np
from sklearn.utils import check_array

from .._linalg import row_chunks
from .dask import dask_data_pass, is_dask_array
from .patterns import check_missing


def check_observed(observed_weight):
    """Raise a ValueError for features never observed (with positive weight)."""
    never = np.flatnonzero(~(observed_weight > 0))
    if never.size:
        raise ValueError(
            f"Feature(s) {never[:10].tolist()} are never observed (all NaN, or "
            "only in rows of zero weight); their distribution cannot be "
            "estimated. Drop these features."
        )


class PassSource:
    """What a pass-based fit reads.

    Attributes
    ----------
    data_pass : callable
        ``data_pass(mean, params, df) -> sums`` (with ``merge``): one pass.
    sample, sample_w : ndarray
        A strided subsample of at most ``start_rows`` rows and its weights
        (None: unweighted), for the start.
    weight : float
        The weight sum (weights scaled to a maximum of 1).
    n_samples : int
    X : ndarray or dask.array.Array
        The validated rows.
    sample_weight : ndarray, dask.array.Array or None
        The weights, scaled to a maximum of 1 (any scale gives the same fit;
        no sum over- or underflows).
    """

    def __init__(self, data_pass, sample, sample_w, weight, X, sample_weight):
        self.data_pass = data_pass
        self.sample = sample
        self.sample_w = sample_w
        self.weight = float(weight)
        self.n_samples = X.shape[0]
        self.X = X
        self.sample_weight = sample_weight


def pass_source(X, sample_weight, block_pass, start_rows):
    """The :class:`PassSource` of validated rows ``X`` (NumPy or Dask).

    ``block_pass(X, mean, params, df, weights, nan=...)`` is the likelihood's
    chunked pass over NumPy rows; ``sample_weight`` is validated (NumPy) or a
    Dask array with the row chunks of ``X``.
    """
    step = max(1, math.ceil(X.shape[0] / start_rows))
    if is_dask_array(X):
        return _dask_source(X, sample_weight, block_pass, step)
    if sample_weight is not None:
        sample_weight = sample_weight / np.max(sample_weight)
    has_nan = check_missing(X)
    if has_nan:
        observed = np.zeros(X.shape[1])
        for rows in row_chunks(X.shape[0], X.shape[1]):
            seen = ~np.isnan(X[rows])
            w = None if sample_weight is None else sample_weight[rows]
            observed += seen.sum(axis=0) if w is None else w @ seen
        check_observed(observed)

    def data_pass(mean, params, df):
        return block_pass(X, mean, params, df, sample_weight, nan=has_nan)

    sample = X[::step]
    sample_w = None if sample_weight is None else sample_weight[::step]
    if sample_w is not None and not sample_w.sum() > 0:
        sample, sample_w = X, sample_weight
    weight = X.shape[0] if sample_weight is None else sample_weight.sum()
    return PassSource(data_pass, sample, sample_w, weight, X, sample_weight)


def _dask_source(X, sample_weight, block_pass, step):
    import dask
    import dask.array as da

    data_pass, weights = dask_data_pass(X, block_pass, sample_weight)
    sample = check_array(
        X[::step].compute(),
        dtype=[np.float64, np.float32],
        ensure_all_finite=False,
        input_name="X",
    )
    check_missing(sample)
    seen = ~da.isnan(X)
    if weights is not None:
        seen = seen * weights[:, None]
    check_observed(seen.sum(axis=0).compute())
    if weights is None:
        return PassSource(data_pass, sample, None, X.shape[0], X, None)
    # Weights of any scale give the same fit: scaled to a maximum of 1.
    top = float(dask.compute(weights.max())[0])
    data_pass, weights = dask_data_pass(X, block_pass, weights / top)
    sample_w, weight = dask.compute(weights[::step], weights.sum())
    return PassSource(data_pass, sample, sample_w, weight, X, weights)
