"""Fitting and scoring Dask arrays: block statistics reduced on the cluster.

A Dask array is never gathered to the client. Its columns are rechunked into
one chunk, each row block's statistics are computed where the block lives
(one delayed :func:`~._data.patterns.compute_stats` per block), and the
statistics are tree-reduced with ``merge_stats`` as delayed tasks, so only one small
statistics object (O(n_features^2) numbers) comes back to the client. Scoring
maps the log-density over row blocks and stays lazy. A likelihood without
sufficient statistics (the t) maps its own block pass the same way
(:func:`dask_data_pass`), once per evaluation.

Dask is an optional dependency: this module imports it inside its functions
only, and :func:`is_dask_array` recognises a Dask array without importing
Dask (an object cannot be a Dask array unless ``dask.array`` is loaded).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import functools
import math
import sys

import numpy as np
from sklearn.utils import check_array

from .._validation import check_sample_weight
from .patterns import check_missing, compute_stats, merge_stats

# Statistics merged per reduction task (the tree's fan-in).
_SPLIT_EVERY = 8


def is_dask_array(X):
    """Whether ``X`` is a ``dask.array.Array`` (never imports Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


# ---------------------------------------------------------------------------
# Validation (what validate_data checks, done lazily or on metadata)
# ---------------------------------------------------------------------------


def _check_dask_X(X, n_features_in, name):
    """Check a Dask array's metadata; return it as float rows x one column chunk.

    Checks the dimension, dtype and, when ``n_features_in`` is not None, the
    number of features; the values themselves are checked by the block tasks
    with the NumPy path's own checks, in the same pass that computes their
    statistics.
    """
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D Dask array, got a {X.ndim}-D array of shape "
            f"{X.shape}; reshape it to (n_samples, n_features)."
        )
    n_features = X.shape[1]
    if math.isnan(n_features):
        raise ValueError(
            "The Dask array has an unknown number of columns; call "
            "X.compute_chunk_sizes() first."
        )
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
            f"of 1 is required by {name}."
        )
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
            f"of 1 is required by {name}."
        )
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError("Complex data not supported; pass a real Dask array.")
    if kind not in "biuf":
        raise ValueError(
            f"X must have a numeric dtype, got a Dask array of dtype {X.dtype}; "
            "convert it with X.astype(float)."
        )
    if n_features_in is not None and n_features != n_features_in:
        raise ValueError(
            f"X has {n_features} features, but {name} is expecting "
            f"{n_features_in} features as input."
        )
    return X.rechunk({1: -1})


def _check_dask_weights(sample_weight, X, allow_zero_sum):
    """Sample weights as a Dask array with the row chunks of ``X``, or None."""
    import dask.array as da

    if sample_weight is None:
        return None
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "sample_weight needs the row chunk sizes of X, which are unknown; "
            "call X.compute_chunk_sizes() first."
        )
    if not is_dask_array(sample_weight):
        weights = check_sample_weight(
            sample_weight, X.shape[0], allow_zero_sum=allow_zero_sum
        )
        return da.from_array(weights, chunks=(X.chunks[0],))
    if sample_weight.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D, got a Dask array of shape "
            f"{sample_weight.shape}."
        )
    if math.isnan(sample_weight.shape[0]):
        raise ValueError(
            "sample_weight has unknown chunk sizes; call "
            "sample_weight.compute_chunk_sizes() first."
        )
    if sample_weight.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight has {sample_weight.shape[0]} entries but X has "
            f"{X.shape[0]} samples; pass one weight per row of X."
        )
    if sample_weight.dtype.kind not in "biuf":
        raise ValueError(
            f"sample_weight must be an array of numbers, got dtype "
            f"{sample_weight.dtype}."
        )
    return sample_weight.astype(np.float64).rechunk((X.chunks[0],))


# ---------------------------------------------------------------------------
# Tasks run on the workers
# ---------------------------------------------------------------------------


def _block_stats(block, weights, ensure_all_finite, row_offset=0):
    """Statistics of one row block, validated as NumPy input is by ``fit``.

    ``row_offset`` is the index of the block's first row in the Dask array:
    error messages name rows by their global index. Rows of zero weight
    (even a block of them) are validated like any row.
    """
    block = check_array(
        block,
        dtype=[np.float64, np.float32],
        ensure_all_finite=ensure_all_finite,
        ensure_min_samples=0,
        input_name="X",
    )
    weights = check_sample_weight(weights, block.shape[0], allow_zero_sum=True)
    return compute_stats(block, weights, row_offset=row_offset)


def _merge_all(*parts):
    """Merge the statistics of several blocks (one node of the reduction tree)."""
    return functools.reduce(merge_stats, parts)


def _block_scores(block, score, block_info=None):
    """``score`` of one row block (Dask allows empty blocks, NumPy does not).

    A block with infinity or rows without an observed entry is checked first
    with its global row numbers (``block_info`` gives its position), so the
    error names the row of ``X``, as for ``fit``.
    """
    if block.shape[0] == 0:
        return np.empty(0)
    values = np.asarray(block)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        offset = 0 if block_info is None else block_info[0]["array-location"][0][0]
        check_missing(values, row_offset=offset)
    return score(block)


# ---------------------------------------------------------------------------
# Entry points used by the estimator
# ---------------------------------------------------------------------------


def dask_stats(
    X,
    sample_weight=None,
    *,
    n_features_in=None,
    name="GradientGaussian",
    allow_zero_sum=False,
    ensure_all_finite=True,
):
    """Validate a Dask array and compute its statistics on the cluster.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Data; its row chunks become the blocks.
    sample_weight : dask.array.Array or array-like of shape (n_samples,)
        Non-negative weights (rechunked to the row chunks of ``X``).
    n_features_in : int, default=None
        The number of features ``X`` must have (None: any).
    name : str, default="GradientGaussian"
        The estimator's name, for messages.
    allow_zero_sum : bool, default=False
        Accept weights summing to zero (a ``partial_fit`` chunk).
    ensure_all_finite : bool or 'allow-nan', default=True
        As in :func:`sklearn.utils.check_array`, applied to every block: pass
        what ``fit`` passes to ``validate_data`` for NumPy input.

    Returns
    -------
    stats : statistics object
        The merged statistics of all blocks, computed with the current Dask
        scheduler (a ``distributed.Client`` if one is active).
    """
    import dask
    from dask import delayed

    X = _check_dask_X(X, n_features_in, name)
    weights = _check_dask_weights(sample_weight, X, allow_zero_sum)
    blocks = X.to_delayed().ravel()
    if weights is None:
        block_weights = [None] * len(blocks)
    else:
        block_weights = weights.to_delayed().ravel()
    if any(math.isnan(c) for c in X.chunks[0]):
        offsets = [0] * len(blocks)  # unknown sizes: block-local row numbers
    else:
        offsets = np.r_[0, np.cumsum(X.chunks[0])[:-1]].tolist()
    parts = [
        delayed(_block_stats, pure=True)(block, w, ensure_all_finite, int(offset))
        for block, w, offset in zip(blocks, block_weights, offsets, strict=True)
    ]
    while len(parts) > 1:
        parts = [
            delayed(_merge_all, pure=True)(*parts[i : i + _SPLIT_EVERY])
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    (stats,) = dask.compute(parts[0])
    if stats.n_samples == 0:
        raise ValueError(
            f"Found array with 0 sample(s) while a minimum of 1 is required by {name}."
        )
    if not allow_zero_sum and not stats.weight_sum > 0:
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )
    return stats


def dask_score_samples(X, score, *, n_features_in, name):
    """Lazy scores of each row of a Dask array (one task per row block).

    Each block is scored by ``score``, the estimator's own NumPy scoring of a
    validated block, so Dask and NumPy input share one scoring path.

    Returns
    -------
    scores : dask.array.Array of shape (n_samples,)
    """
    X = _check_dask_X(X, n_features_in, name)
    return X.map_blocks(
        _block_scores,
        score,
        drop_axis=1,
        dtype=np.float64,
        meta=np.empty((0,), dtype=np.float64),
    )


# ---------------------------------------------------------------------------
# Passes of a likelihood without sufficient statistics (the Student-t)
# ---------------------------------------------------------------------------
#
# Every evaluation is a pass over the data: each maps the likelihood's NumPy
# pass over the row blocks where they live and tree-reduces the small sums
# with ``.merge``; only the reduced sums come back to the client. Persist
# ``X`` (``X.persist()``) when it is expensive to compute: a fit reads it
# once per iteration.


def _block_pass(block_pass, block, weights, mean, factor, df, validate):
    if validate:
        block = check_array(
            block,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=0,
            input_name="X",
        )
        check_missing(block)
        weights = check_sample_weight(weights, block.shape[0], allow_zero_sum=True)
    return block_pass(block, mean, factor, df, weights)


def dask_data_pass(X, block_pass, sample_weight=None):
    """A ``data_pass(mean, factor, df)`` callable over a checked Dask array.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Checked by :func:`sklearn_mvn._data.dask._check_dask_X` (one column chunk).
    block_pass : callable
        ``block_pass(block, mean, factor, df, weights)``: the likelihood's pass
        over one NumPy block, returning sums with a ``merge`` method (e.g.
        :func:`~._likelihoods.student_t.t_sums`).
    sample_weight : dask.array.Array or array-like, default=None

    Returns
    -------
    data_pass : callable
        The first call also validates every block (values, infinity, rows
        without an observed entry), as ``fit`` does for NumPy input.
    weights : dask.array.Array or None
        The weights with the row chunks of ``X``.
    """
    import dask
    from dask import delayed

    weights = _check_dask_weights(sample_weight, X, allow_zero_sum=False)
    blocks = X.to_delayed().ravel()
    block_weights = (
        [None] * len(blocks) if weights is None else weights.to_delayed().ravel()
    )
    state = {"validated": False}

    def data_pass(mean, factor, df):
        parts = [
            delayed(_block_pass, pure=True)(
                block_pass, block, w, mean, factor, df, not state["validated"]
            )
            for block, w in zip(blocks, block_weights, strict=True)
        ]
        while len(parts) > 1:
            parts = [
                delayed(_merge_all, pure=True)(*parts[i : i + _SPLIT_EVERY])
                for i in range(0, len(parts), _SPLIT_EVERY)
            ]
        (sums,) = dask.compute(parts[0])
        state["validated"] = True
        return sums

    return data_pass, weights
