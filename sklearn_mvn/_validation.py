"""Input validation helpers, and the one place that imports private scikit-learn.

scikit-learn's declarative parameter validation (``Interval``, ``StrOptions``)
and ``_fit_context`` are private; they are imported here only, so that a change
in scikit-learn touches one module.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = [
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "_fit_context",
    "check_sample_weight",
]


def check_sample_weight(sample_weight, n_samples, allow_zero_sum=False):
    """Validate ``sample_weight`` and return it as a float64 array or None.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Non-negative, finite weights with a positive sum.
    n_samples : int
        Number of rows of ``X``.
    allow_zero_sum : bool, default=False
        Accept weights that sum to zero (a chunk added by ``partial_fit`` to
        statistics that already have a positive weight).

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,) or None
    """
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        sample_weight = np.full(n_samples, sample_weight)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"sample_weight must be an array of numbers; got {exc}."
        ) from exc
    if weights.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D, got an array of shape {weights.shape}."
        )
    if weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has {weights.shape[0]} entries but X has "
            f"{n_samples} samples; pass one weight per row of X."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError(
            "sample_weight contains NaN or infinity; weights must be finite."
        )
    if np.any(weights < 0):
        raise ValueError(
            "sample_weight contains negative values; weights must be >= 0."
        )
    if not allow_zero_sum and not weights.sum() > 0:
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )
    return weights
