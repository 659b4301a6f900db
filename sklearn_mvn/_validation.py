"""Input validation helpers, and the one place that imports private scikit-learn.

scikit-learn's declarative parameter validation (``Interval``, ``StrOptions``)
and ``_fit_context`` are private; they are imported here only, so that a change
in scikit-learn touches one module.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import os
import sys
import warnings
from numbers import Integral, Real

import joblib
import numpy as np
import sklearn
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = [
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "_fit_context",
    "check_numeric_input",
    "check_sample_weight",
    "warn_at_caller",
]

# Frames in these folders are not the user's: a warning skips them.
_LIBRARY_DIRS = tuple(
    os.path.dirname(path) + os.sep
    for path in (__file__, sklearn.__file__, joblib.__file__)
)


def warn_at_caller(message, category=UserWarning):
    """Warn with the file and line of the first caller outside the library.

    Frames of this package, of scikit-learn (meta-estimators such as
    ``Pipeline`` or ``GridSearchCV`` calling ``fit``) and of joblib (which
    runs their fits) are skipped, so the warning points at the user's line
    whatever the call path.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def check_numeric_input(X):
    """Reject complex, text and non-numeric object data with a clear message.

    Runs before ``validate_data``, whose own errors for these inputs do not
    say what to do (and which would parse arrays of numeric strings). Object
    arrays of numbers are accepted, as scikit-learn's estimators accept them.

    Parameters
    ----------
    X : array-like
        Input data; lists and tuples are converted to an ndarray, other
        containers (sparse matrices, array-API arrays) are passed through.

    Returns
    -------
    X : array-like
        ``X``, or the ndarray made from a list or tuple.
    """
    if isinstance(X, list | tuple):
        X = np.asarray(X)
    if isinstance(X, np.ndarray):
        kinds = {X.dtype.kind}
        dtype = X.dtype
    elif hasattr(X, "dtypes") and hasattr(X, "columns"):  # a data frame
        kinds = {getattr(dt, "kind", "O") for dt in X.dtypes}
        dtype = "one column per dtype: " + ", ".join(sorted(map(str, set(X.dtypes))))
    else:
        return X
    if kinds & set("USV"):
        raise ValueError(
            f"X holds text ({dtype}); GradientGaussian needs numeric data. "
            "Convert numeric strings with np.asarray(X, dtype=float) and encode "
            "categorical features, e.g. with sklearn.preprocessing.OneHotEncoder."
        )
    if "c" in kinds:
        raise ValueError(
            f"Complex data not supported: X is {dtype}, and GradientGaussian "
            "models real-valued data. "
            "Pass X.real, or np.hstack([X.real, X.imag]) to model the real and "
            "imaginary parts jointly."
        )
    if "O" in kinds:
        try:
            np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"X has entries that are not numbers ({exc}); GradientGaussian "
                "needs numeric data. Convert or drop the non-numeric entries and "
                "encode categorical features, e.g. with "
                "sklearn.preprocessing.OneHotEncoder."
            ) from exc
    return X


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
