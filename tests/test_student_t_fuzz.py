"""Property-based fuzz of GradientStudentT.fit on the adversarial problems of
``test_fuzz`` (shapes, scales from 1e-200 to 1e200, offsets, constant
features, missing values, weights over 12 decades, dtypes, memory layouts).

The oracle: ``fit`` raises one of our clear errors (a ValueError or TypeError
whose message says what to do, never a raw NumPy or SciPy exception), or
returns finite parameters whose ``score_samples`` equals SciPy's t
log-density (of the observed entries) where SciPy is reliable. Well-posed
complete data must fit without a ConvergenceWarning.
"""

import warnings

import numpy as np
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import multivariate_t
from sklearn.exceptions import ConvergenceWarning
from test_fuzz import (
    N_EXAMPLES,
    SETTINGS,
    _assert_our_error,
    _scipy_reliable,
    _seeded,
    problems,
)

from sklearn_mvn import GradientStudentT
from sklearn_mvn._likelihoods.student_t import DF_MAX, DF_MIN


def _fit_or_our_error(model, X, weights):
    """Fit, recording every warning; None if fit raised one of our errors."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, sample_weight=weights)
        except (ValueError, TypeError) as exc:
            _assert_our_error(exc)
            event(f"rejected: {type(exc).__name__}: {str(exc)[:40]}")
            return None
    return caught


def _fuzz_one(X, weights, params, well_posed, df):
    model = GradientStudentT(df=df, **params)
    caught = _fit_or_our_error(model, X, weights)
    if caught is None:
        return
    for name in ("mean_", "shape_", "precision_", "factor_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert np.all(np.diag(model.factor_) > 0)
    assert DF_MIN <= model.df_ <= DF_MAX
    observed = ~np.all(np.isnan(X), axis=1)
    rows = np.asarray(X[observed][:10], dtype=np.float64)
    log_density = model.score_samples(rows)
    assert np.all(np.isfinite(log_density))
    if well_posed:
        warned = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        assert not warned, [str(w.message) for w in warned]
    for row, value in zip(rows, log_density, strict=True):
        seen = ~np.isnan(row)
        mean = model.mean_[seen]
        shape = model.shape_[np.ix_(seen, seen)]
        if _scipy_reliable(mean, shape) and model.df_ < 1e5:
            expected = multivariate_t(mean, shape, df=model.df_).logpdf(row[seen])
            assert_allclose(value, expected, rtol=1e-8, atol=1e-8 * seen.sum())
    event("fitted")


@_seeded
@SETTINGS
@given(problems(), st.sampled_from(["auto", "auto", 4.0]))
def test_fuzz_fit_student_t(problem, df):
    X, weights = problem[:2]
    note(f"X ({X.dtype}, strides {X.strides}) = {np.asarray(X).tolist()!r}")
    note(f"weights = {None if weights is None else weights.tolist()!r}")
    _fuzz_one(*problem, df)


@_seeded
@settings(SETTINGS, max_examples=max(1, N_EXAMPLES // 4))  # ~40 t fits each
@given(problems(), st.sampled_from([0.75, None]))
def test_fuzz_trimmed_fit_student_t(problem, support_fraction):
    """The trimmed fit: our error, or finite parameters whose support holds
    the requested weight and whose log-density is finite."""
    X, weights = problem[:2]
    note(f"X ({X.dtype}, strides {X.strides}) = {np.asarray(X).tolist()!r}")
    note(f"weights = {None if weights is None else weights.tolist()!r}")
    model = GradientStudentT(support_fraction=support_fraction)
    caught = _fit_or_our_error(model, X, weights)
    if caught is None:
        return
    # Only our warnings (convergence, Heywood), no NumPy RuntimeWarning.
    leaked = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, [str(w.message) for w in leaked]
    for name in ("mean_", "shape_", "precision_", "factor_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert DF_MIN <= model.df_ <= DF_MAX
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.max()  # weights up to 1e300: no overflow in the sums below
    assert model.support_.shape == (len(X),)
    assert not np.any(model.support_ & (w <= 0))
    if support_fraction is not None:
        # The support holds the fraction of the weight (the boundary row
        # enters with part of its weight).
        kept = w[model.support_].sum() / w.sum()
        assert 0.75 - 1e-9 <= kept <= 0.75 + w.max() / w.sum() + 1e-9
    rows = np.asarray(X[~np.all(np.isnan(X), axis=1)][:10], dtype=np.float64)
    assert np.all(np.isfinite(model.score_samples(rows)))
    event("fitted")
