"""Input validation helpers, and the one place that imports private scikit-learn.

scikit-learn's declarative parameter validation (``Interval``, ``StrOptions``,
``HasMethods``), ``_fit_context`` and ``_check_feature_names_in`` are private;
they are imported here only, so that a change in scikit-learn touches one
module.
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
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, validate_data

__all__ = [
    "HasMethods",
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "_check_feature_names_in",
    "_fit_context",
    "check_numeric_input",
    "check_sample_weight",
    "validate_with_nan",
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


_TEXT_ADVICE = (
    "GradientGaussian needs numeric data. Convert numeric strings with "
    "np.asarray(X, dtype=float) (or pandas.to_numeric) and encode categorical "
    "features, e.g. with sklearn.preprocessing.OneHotEncoder."
)


def _text_error(where):
    return ValueError(f"X holds text ({where}); {_TEXT_ADVICE}")


def _time_error(where):
    return TypeError(
        f"X holds dates or durations ({where}); GradientGaussian needs numbers "
        "in a unit you choose, which it cannot guess (days and seconds give "
        "different models). Convert them explicitly, e.g. "
        "(t - t0) / np.timedelta64(1, 'D') for days since t0, or "
        "series.dt.total_seconds() for pandas durations."
    )


def _is_missing_scalar(value):
    """None, NaN, pandas.NA or pandas.NaT (without importing pandas)."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


def _object_to_float(values, where):
    """Float64 array from an object array: NaN for None and pandas.NA.

    Text entries (also numeric strings) raise the text error, as a string
    dtype does, so that a list of strings, an object array of strings and a
    string column of a data frame are treated alike.
    """
    flat = values.ravel()
    out = np.empty(flat.shape[0], dtype=np.float64)
    for i, value in enumerate(flat):
        if isinstance(value, str | bytes):
            raise _text_error(f"{where}, e.g. {value!r}")
        if isinstance(value, np.datetime64 | np.timedelta64) or type(
            value
        ).__name__ in ("Timestamp", "Timedelta", "datetime", "date", "timedelta"):
            raise _time_error(where)
        if _is_missing_scalar(value):
            out[i] = np.nan
            continue
        try:
            out[i] = value
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"X has entries that are not numbers ({where}: {exc}); {_TEXT_ADVICE}"
            ) from exc
    return out.reshape(values.shape)


def check_numeric_input(X):
    """One rule for the element types of ``X``, NumPy or pandas.

    Runs before ``validate_data``, whose own errors for these inputs do not
    say what to do. The rule:

    - numbers (``bool``, integer, float, and pandas' nullable types) are
      accepted; ``None``, ``NaN`` and ``pandas.NA`` mark a missing value;
    - text (string dtypes, and strings in object arrays or columns, numeric
      strings included) raises a ValueError;
    - dates and durations (``datetime64``, ``timedelta64``, pandas timestamps)
      raise a TypeError: their unit must be chosen by the user;
    - complex numbers raise a ValueError.

    Object arrays of numbers are accepted, as scikit-learn's estimators accept
    them.

    Parameters
    ----------
    X : array-like
        Input data; lists and tuples are converted to an ndarray, other
        containers (sparse matrices, array-API arrays) are passed through.

    Returns
    -------
    X : array-like
        ``X``, a float64 array made from a list, tuple or object array, or a
        data frame whose object columns are converted to float64.
    """
    if isinstance(X, list | tuple):
        X = np.asarray(X)
    if isinstance(X, np.ndarray):
        _check_kind(X.dtype, str(X.dtype))
        if X.dtype.kind == "O":
            X = _object_to_float(X, "an object array")
        return X
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a data frame
        converted = None
        for index, (name, dtype) in enumerate(zip(X.columns, X.dtypes, strict=True)):
            where = f"column {name!r} of dtype {dtype}"
            if type(dtype).__name__ == "StringDtype":
                raise _text_error(where)
            kind = getattr(dtype, "kind", "O")
            _check_kind(np.dtype(kind if kind in "MmUSc" else "O"), where)
            if kind == "O":
                if converted is None:
                    converted = X.copy()
                values = np.asarray(X.iloc[:, index], dtype=object)
                converted.isetitem(index, _object_to_float(values, where))
        return X if converted is None else converted
    return X


def _check_kind(dtype, where):
    """Raise on text, dates, durations and complex numbers."""
    kind = dtype.kind
    if kind in "USV":
        raise _text_error(where)
    if kind in "Mm":
        raise _time_error(where)
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: X is {where}, and GradientGaussian "
            "models real-valued data. "
            "Pass X.real, or np.hstack([X.real, X.imag]) to model the real and "
            "imaginary parts jointly."
        )


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
    # Not the sum, which overflows for weights near the largest float; the
    # weights are normalised (their global scale does not matter) later.
    if not allow_zero_sum and not np.any(weights > 0):
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )
    return weights


def validate_with_nan(estimator, X, reset):
    """``X`` checked as numeric (NaN allowed), float64 or float32.

    The one input check of the estimators and meta-estimators: text and
    complex data are rejected by :func:`check_numeric_input` first, then
    ``validate_data`` sets (``reset``) or checks ``n_features_in_`` and the
    feature names.
    """
    return validate_data(
        estimator,
        check_numeric_input(X),
        dtype=[np.float64, np.float32],
        reset=reset,
        ensure_all_finite=False,
    )
