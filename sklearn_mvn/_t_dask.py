"""Passes of the Student-t likelihood over a Dask array, block by block.

The t likelihood has no sufficient statistics: every evaluation is a pass
over the data. Each pass maps :func:`~sklearn_mvn._t_likelihood.t_sums` (or
:func:`~sklearn_mvn._t_factor.t_factor_sums` for the factor scale matrix) over
the row blocks where they live and tree-reduces the small sums (O(n_features^2)
numbers, O(n_features n_factors^2) for the factor model) with ``.merge``; only
the reduced sums come back to the client. Persist ``X`` (``X.persist()``) when
it is expensive to compute: a fit reads it once per iteration.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from sklearn.utils import check_array

from ._dask import _SPLIT_EVERY, _check_dask_weights
from ._missing import check_missing
from ._t_factor import t_factor_sums
from ._t_likelihood import t_sums
from ._validation import check_sample_weight


def _block_sums(block, weights, mean, factor, df, validate, factor_model=False):
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
    if factor_model:
        return t_factor_sums(block, mean, factor, df, weights)
    return t_sums(block, mean, factor, df, weights)


def _merge_all(*parts):
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def dask_data_pass(X, sample_weight=None, factor_model=False):
    """A ``data_pass(mean, factor, df)`` callable over a checked Dask array.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Checked by :func:`sklearn_mvn._dask._check_dask_X` (one column chunk).
    sample_weight : dask.array.Array or array-like, default=None
    factor_model : bool, default=False
        Whether ``factor`` is the pair ``(W, psi)`` of the factor model.

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
            delayed(_block_sums, pure=True)(
                block, w, mean, factor, df, not state["validated"], factor_model
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
