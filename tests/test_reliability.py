"""Regression tests of issue 14 (reliability): no silent wrong answers, no lost
data, clear errors. Each test starts from the issue's reproducer and asserts
what a user would expect.

Defects 3, 4 and 6 (all-or-nothing fit, partial_fit keeping every chunk,
reg_covar honoured) are tested in ``test_reliability_pending.py``.
"""

import pickle
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_mvn import GradientGaussian
from sklearn_mvn._data import stats as _stats
from sklearn_mvn._data.patterns import PatternStats, compute_stats, unobserved_pairs
from sklearn_mvn._data.stats import SufficientStats


def _weighted_cov(X, w):
    mean = np.average(X, axis=0, weights=w)
    centred = X - mean
    return mean, (centred * w[:, None]).T @ centred / w.sum()


def _correlated(n_samples=300, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    factor = np.tril(rng.uniform(0.3, 1.0, (n_features, n_features)))
    return rng.standard_normal((n_samples, n_features)) @ factor.T + 2.0


# ---------------------------------------------------------------------------
# 1. Zero-weight rows first must not cost the moments their precision
# ---------------------------------------------------------------------------


def _far_zero_weight_rows():
    rng = np.random.RandomState(8)
    X = rng.randn(3000, 2)
    X[:1024] = 1e9
    w = np.r_[np.zeros(1024), np.ones(1976)]
    return X, w


def test_zero_weight_rows_first_give_the_exact_covariance():
    X, w = _far_zero_weight_rows()
    expected = np.cov(X[1024:].T, bias=True)
    model = GradientGaussian().fit(X, sample_weight=w)
    assert_allclose(model.covariance_, expected, rtol=1e-10, atol=1e-14)
    assert_allclose(model.mean_, X[1024:].mean(axis=0), rtol=0, atol=1e-13)
    reg = GradientGaussian(reg_covar=1e4).fit(X, sample_weight=w)
    assert_allclose(reg.covariance_, expected + 1e4 * np.eye(2), rtol=1e-12)


@pytest.mark.parametrize("shift", [1e9, -3e12, 1e15])
def test_detected_loss_of_precision_triggers_the_exact_recompute(monkeypatch, shift):
    # Force the worst shift for the one pass: the variances come out <= 0 or
    # with all digits cancelled; the statistics detect it and recompute the
    # moments about the mean found (two-pass), exact to rounding.
    X = _correlated(5000, 3, seed=1)
    w = np.random.RandomState(2).uniform(0.5, 2.0, X.shape[0])
    monkeypatch.setattr(_stats, "_choose_shift", lambda *args: np.full(3, shift))
    stats = SufficientStats.from_array(X, w)
    mean, cov = _weighted_cov(X, w)
    assert_allclose(stats.mean, mean, rtol=1e-12)
    assert_allclose(stats.covariance(), cov, rtol=1e-9)


def test_zero_weight_rows_first_with_dask_and_partial_fit():
    X, w = _far_zero_weight_rows()
    expected = np.cov(X[1024:].T, bias=True)
    dask_model = GradientGaussian().fit(
        da.from_array(X, chunks=(700, 2)), sample_weight=w
    )
    assert_allclose(dask_model.covariance_, expected, rtol=1e-10)
    stream = GradientGaussian().fit(X[1000:], sample_weight=w[1000:])
    stream.partial_fit(X[:1000], sample_weight=w[:1000])
    assert_allclose(stream.covariance_, expected, rtol=1e-10)


def test_weights_of_very_different_sizes_keep_the_moments_exact():
    # Found by the fuzz: three rows in 3-D (a singular covariance) with
    # weights over seven decades. The shift is the weighted mean of the first
    # rows, so the one pass loses no digits and fit, like partial_fit, sees
    # the singular covariance.
    X = np.array(
        [
            [-1.3423886556645086, 1.7311813619182757, 0.6488398675671744],
            [-1.588264988938869, 1.1473767362579537, 1.9516929114056505],
            [-0.5518879549484194, 0.7091627620261718, -0.6609979966729892],
        ]
    )
    w = np.array([0.007291242324093387, 1.1628070632095922e-05, 60.70874912689816])
    stats = SufficientStats.from_array(X, w)
    mean, cov = _weighted_cov(X, w)
    assert_allclose(stats.mean, mean, rtol=1e-15)
    assert_allclose(stats.covariance(), cov, rtol=1e-13, atol=1e-17)
    with pytest.raises(ValueError, match="linearly dependent"):
        GradientGaussian().fit(X, sample_weight=w)


@pytest.mark.parametrize("weighted", [False, True])
def test_merges_exact_for_means_far_from_the_spread(weighted):
    # Found by the fuzz: means of 1e11 standard deviations. Merging chunks
    # used the difference of their rounded means and lost ~5 digits of the
    # covariance; the statistics keep each mean's rounding residue.
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3) * 0.1 - 1e10
    w = rng.uniform(0.1, 3.0, 60) if weighted else None
    reference = GradientGaussian().fit(X, sample_weight=w)
    stream = GradientGaussian()
    dask_model = GradientGaussian().fit(
        da.from_array(X, chunks=(7, 3)), sample_weight=w
    )
    for rows in np.array_split(np.arange(60), 4):
        stream.partial_fit(X[rows], sample_weight=None if w is None else w[rows])
    sd = np.sqrt(np.diag(reference.covariance_))
    for model in (stream, dask_model):
        assert_allclose(
            model.covariance_ / np.outer(sd, sd),
            reference.covariance_ / np.outer(sd, sd),
            rtol=0,
            atol=1e-12,
        )


# ---------------------------------------------------------------------------
# 2. Data with NaN get the range checks of complete data
# ---------------------------------------------------------------------------


def _with_one_nan(scale):
    X = _correlated(200, 3) * scale
    X[0, 0] = np.nan
    return X


def test_nan_data_too_large_get_the_complete_data_error():
    with pytest.raises(ValueError, match="overflows float64.*Rescale X"):
        GradientGaussian().fit(_with_one_nan(1e155))
    with pytest.raises(ValueError, match="overflows float64.*Rescale X"):
        GradientGaussian().fit(_correlated(200, 3) * 1e155)


def test_nan_data_too_small_get_the_complete_data_error():
    with pytest.raises(ValueError, match="too small to be represented.*Rescale X"):
        GradientGaussian().fit(_with_one_nan(1e-158))
    with pytest.raises(ValueError, match="too small to be represented.*Rescale X"):
        GradientGaussian().fit(_correlated(200, 3) * 1e-158)


@pytest.mark.parametrize("scale", [1e120, 1e-120])
def test_nan_data_at_extreme_but_representable_scales_are_exact(scale):
    X = _with_one_nan(1.0)
    base = GradientGaussian().fit(X)
    scaled = GradientGaussian().fit(X * scale)
    assert np.all(np.isfinite(scaled.precision_))
    assert_allclose(scaled.mean_, base.mean_ * scale, rtol=1e-7)
    assert_allclose(scaled.covariance_, base.covariance_ * scale**2, rtol=1e-7)
    assert_allclose(
        scaled.score_samples(X[:5] * scale),
        base.score_samples(X[:5]) - (~np.isnan(X[:5])).sum(axis=1) * np.log(scale),
        rtol=1e-7,
    )


def test_covariance_whose_inverse_overflows_is_an_error():
    # Found by the fuzz: six rows in 5-D at 1e-151; the variances pass the
    # range check but the precision overflowed to inf (and score_samples gave
    # every row the same value). Rescaled, the data fit.
    X = np.array(
        [
            [5.66004702e-152, -1.82634208e-150, -8.25503079e-151, 3.98622523e-151,
             -1.20178532e-150],
            [-6.04767740e-154, 2.72410437e-151, -4.77121235e-151, 7.79229250e-151,
             2.37870684e-151],
            [-1.23251221e-152, 4.05574432e-151, 1.01667191e-150, -2.10487298e-151,
             1.89053698e-150],
            [2.42988501e-152, -8.57997718e-151, -9.09466317e-151, 6.70549237e-151,
             -1.16632003e-150],
            [-1.24954245e-152, 1.79537636e-151, 9.45732869e-151, -3.94537390e-151,
             1.24567859e-150],
            [-3.50081999e-152, 1.70836100e-150, 2.13569192e-152, -2.00886044e-150,
             -1.67675294e-150],
        ]
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="overflows float64.*Rescale X"):
            GradientGaussian().fit(X)
        model = GradientGaussian().fit(X * 1e150)
    assert np.all(np.isfinite(model.precision_))


# ---------------------------------------------------------------------------
# 5. A global scale of the weights does not change the fit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e300, 1e308, 1.7e308, 1e-300, 1e-320, 5e-324])
def test_uniform_weights_of_any_scale_equal_no_weights(scale):
    X = _correlated()
    reference = GradientGaussian().fit(X)
    model = GradientGaussian().fit(X, sample_weight=np.full(X.shape[0], scale))
    assert_allclose(model.mean_, reference.mean_, rtol=1e-12)
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e300, 1e-310])
def test_scaled_weights_equal_the_weights(scale):
    X = _correlated()
    w = np.random.RandomState(0).uniform(0.1, 3.0, X.shape[0])
    reference = GradientGaussian().fit(X, sample_weight=w)
    model = GradientGaussian().fit(X, sample_weight=w * scale)
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-10)
    mean, cov = _weighted_cov(X, w)
    assert_allclose(model.covariance_, cov, rtol=1e-10)


@pytest.mark.parametrize("with_nan", [False, True])
def test_weight_scale_kept_across_partial_fit_and_dask(with_nan):
    # Chunks whose weights differ in scale: normalising each chunk on its own
    # would be wrong; the statistics keep the unit of their weights.
    X = _correlated(400, 3, seed=3)
    if with_nan:
        X[::7, 1] = np.nan
    w = np.r_[np.full(100, 2.0), np.full(100, 1.0), np.full(200, 1e300)]
    w_small = w / 1e300
    reference = GradientGaussian(tol=1e-10).fit(X, sample_weight=w_small)
    model = GradientGaussian(tol=1e-10)
    for rows in np.split(np.arange(400), [100, 200, 300]):
        model.partial_fit(X[rows], sample_weight=w[rows])
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-7)
    dask_model = GradientGaussian(tol=1e-10).fit(
        da.from_array(X, chunks=(100, 3)), sample_weight=w
    )
    assert_allclose(dask_model.covariance_, reference.covariance_, rtol=1e-7)
    assert model.n_samples_seen_ == dask_model.n_samples_seen_ == 400


def test_messages_about_weights_name_the_weights():
    X = _correlated(10, 2)
    for bad in [np.full(10, np.inf), np.r_[-1.0, np.ones(9)], np.zeros(10)]:
        with pytest.raises(ValueError, match="sample_weight"):
            GradientGaussian().fit(X, sample_weight=bad)
    # a sum that would overflow is not blamed on X
    model = GradientGaussian().fit(X, sample_weight=np.full(10, 1.7e308))
    assert_allclose(model.covariance_, np.cov(X.T, bias=True), rtol=1e-12)


# ---------------------------------------------------------------------------
# 7. Rows of zero weight are validated like any row
# ---------------------------------------------------------------------------


def test_zero_weight_rows_are_validated_by_partial_fit():
    model = GradientGaussian().fit(_correlated(50, 2))
    before = model.covariance_.copy()
    with pytest.raises(ValueError, match="infinity"):
        model.partial_fit([[np.inf, 1], [np.nan, np.nan]], sample_weight=[0, 0])
    with pytest.raises(ValueError, match="no observed entry"):
        model.partial_fit([[1.0, 1.0], [np.nan, np.nan]], sample_weight=[0, 0])
    assert model.n_samples_seen_ == 50
    assert_array_equal(model.covariance_, before)


def test_zero_weight_rows_are_validated_by_fit():
    X = _correlated(50, 2)
    w = np.ones(50)
    w[10] = 0.0
    for value, match in [(np.inf, "infinity"), (-np.inf, "infinity")]:
        bad = X.copy()
        bad[10, 1] = value
        with pytest.raises(ValueError, match=match):
            GradientGaussian().fit(bad, sample_weight=w)
    bad = X.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="no observed entry"):
        GradientGaussian().fit(bad, sample_weight=w)


def test_zero_weight_dask_block_is_validated():
    X = _correlated(600, 2)
    X[555, 1] = np.inf
    w = np.ones(600)
    w[500:] = 0.0
    dX = da.from_array(X, chunks=(100, 2))
    with pytest.raises(ValueError, match=r"infinity \(row 555, feature 1\)"):
        GradientGaussian().fit(dX, sample_weight=w)
    X[555] = np.nan
    with pytest.raises(ValueError, match=r"no observed entry.*rows \[555\]"):
        GradientGaussian().fit(da.from_array(X, chunks=(100, 2)), sample_weight=w)


# ---------------------------------------------------------------------------
# 8. n_samples_seen_ agrees between paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_nan", [False, True])
@pytest.mark.parametrize("chunk_has_nan", [False, True])
def test_n_samples_seen_counts_zero_weight_chunks(with_nan, chunk_has_nan):
    X = _correlated(55, 3, seed=5)
    if with_nan:
        X[:50:7, 1] = np.nan
    if chunk_has_nan:
        X[52, 0] = np.nan
    w = np.r_[np.ones(50), np.zeros(5)]
    streamed = GradientGaussian().fit(X[:50])
    streamed.partial_fit(X[50:], sample_weight=w[50:])
    whole = GradientGaussian().fit(X, sample_weight=w)
    dask_model = GradientGaussian().fit(
        da.from_array(X, chunks=(50, 3)), sample_weight=w
    )
    assert streamed.n_samples_seen_ == whole.n_samples_seen_ == 55
    assert dask_model.n_samples_seen_ == 55
    assert_allclose(streamed.covariance_, whole.covariance_, rtol=1e-7)
    assert_allclose(dask_model.covariance_, whole.covariance_, rtol=1e-7)


def test_statistics_of_zero_weight_rows_keep_their_count():
    X = _correlated(20, 3)
    X[0, 0] = np.nan
    nothing = compute_stats(X, np.zeros(20))
    assert isinstance(nothing, PatternStats)
    assert nothing.n_samples == 20 and nothing.weight_sum == 0.0
    some = compute_stats(X, np.ones(20))
    assert some.merge(nothing).n_samples == 40
    assert nothing.merge(some).n_samples == 40
    complete = compute_stats(X[1:], np.zeros(19))
    assert some.merge(complete).n_samples == 39


# ---------------------------------------------------------------------------
# 9. One rule for NumPy and pandas element types
# ---------------------------------------------------------------------------


def _frame(**extra):
    rng = np.random.RandomState(0)
    columns = {"a": rng.randn(20), "b": rng.randn(20)}
    columns.update(extra)
    return pd.DataFrame(columns)


DATES = pd.date_range("2020-01-01", periods=20, freq="D")


@pytest.mark.parametrize(
    "make_X",
    [
        lambda: _frame(t=DATES),
        lambda: _frame(t=DATES.tz_localize("UTC")),
        lambda: _frame(t=DATES - DATES[0]),
        lambda: np.c_[DATES.values.astype("datetime64[D]")],
        lambda: np.c_[DATES.values.astype("datetime64[s]")],
        lambda: np.c_[(DATES - DATES[0]).values],
        lambda: _frame(t=pd.Series(list(DATES), dtype=object)),
    ],
    ids=["datetime", "tz", "timedelta", "np-days", "np-seconds", "np-td", "obj"],
)
def test_dates_and_durations_are_rejected(make_X):
    with pytest.raises(TypeError, match="dates or durations.*unit"):
        GradientGaussian().fit(make_X())


@pytest.mark.parametrize(
    "make_X",
    [
        lambda: _frame(s=[str(v) for v in range(20)]),
        lambda: _frame(s=pd.array([str(v) for v in range(20)], dtype="string")),
        lambda: [[str(v), 1.0 * v] for v in range(20)],
        lambda: np.array([[str(v), 1.0 * v] for v in range(20)], dtype=object),
        lambda: np.array([[str(v), 1.0 * v] for v in range(20)]),
    ],
    ids=["column", "string-dtype", "list", "object-array", "str-array"],
)
def test_text_is_rejected_alike(make_X):
    with pytest.raises(ValueError, match="X holds text.*to_numeric"):
        GradientGaussian().fit(make_X())


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA], ids=["None", "nan", "NA"])
def test_pandas_na_is_a_missing_value(missing):
    frame = _frame()
    expected = frame.to_numpy().copy()
    expected[3, 0] = np.nan
    column = pd.Series(list(frame["a"]), dtype=object)
    column[3] = missing
    frame["a"] = column
    reference = GradientGaussian().fit(expected)
    model = GradientGaussian().fit(frame)
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-12)
    assert list(model.feature_names_in_) == ["a", "b"]
    nullable = _frame()
    nullable["a"] = pd.array(list(expected[:, 0]), dtype="Float64")
    assert_allclose(
        GradientGaussian().fit(nullable).covariance_,
        reference.covariance_,
        rtol=1e-12,
    )
    as_object = np.array(expected, dtype=object)
    as_object[3, 0] = missing
    assert_allclose(
        GradientGaussian().fit(as_object).covariance_,
        reference.covariance_,
        rtol=1e-12,
    )


def test_numbers_of_any_container_are_accepted():
    frame = _frame(c=np.arange(20) % 3 == 0, d=pd.Categorical(np.arange(20) % 4))
    reference = GradientGaussian().fit(frame.to_numpy(dtype=float))
    model = GradientGaussian().fit(frame)
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-12)


# ---------------------------------------------------------------------------
# 10. Dask messages give global row numbers
# ---------------------------------------------------------------------------


def test_dask_errors_name_global_rows():
    X = _correlated(600, 3)
    X[555, 2] = np.inf
    with pytest.raises(ValueError, match=r"row 555, feature 2"):
        GradientGaussian().fit(da.from_array(X, chunks=(100, 3)))
    X[555, 2] = 0.0
    X[[5, 456]] = np.nan
    with pytest.raises(ValueError, match=r"rows \[5\]"):
        GradientGaussian().fit(da.from_array(X, chunks=(100, 3)))
    X[5] = 0.0
    with pytest.raises(ValueError, match=r"rows \[456\]"):
        GradientGaussian().fit(da.from_array(X, chunks=(50, 3)))


# ---------------------------------------------------------------------------
# 11. Covariances that the data do not determine
# ---------------------------------------------------------------------------


def _never_together(seed=0):
    """Feature 0 and 1 never observed in the same row; 2 always observed."""
    X = _correlated(300, 3, seed=seed)
    X[:150, 0] = np.nan
    X[150:, 1] = np.nan
    return X


def test_unobserved_pairs_found():
    stats = compute_stats(_never_together())
    _, _, pair_weight = stats.available_case()
    assert unobserved_pairs(pair_weight) == [(0, 1)]
    w = np.ones(300)
    X = _correlated(300, 3)
    X[:150, 0] = np.nan
    X[150:, 1] = np.nan
    X[0, 0] = 1.0  # one row observes the pair, with weight 0
    w[0] = 0.0
    _, _, pair_weight = compute_stats(X, w).available_case()
    assert unobserved_pairs(pair_weight) == [(0, 1)]
    w[0] = 1.0
    _, _, pair_weight = compute_stats(X, w).available_case()
    assert unobserved_pairs(pair_weight) == []


def test_unidentified_covariance_warns_at_the_users_line():
    X = _never_together()
    with pytest.warns(UserWarning, match=r"\(0, 1\).*never observed together") as w:
        GradientGaussian().fit(X)
    assert len(w) == 1
    assert w[0].filename == __file__
    assert "shrinkage > 0" in str(w[0].message)
    with pytest.warns(UserWarning, match=r"\(0, 1\)") as w:
        GradientGaussian().partial_fit(X)
    assert w[0].filename == __file__


@pytest.mark.parametrize(
    "params", [{"shrinkage": 0.1}, {"covariance_type": "diag"}, {}]
)
def test_no_warning_when_identified(params):
    X = _never_together()
    if not params:
        X[0, 0] = 1.0  # one row observes both
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GradientGaussian(**params).fit(X)


# ---------------------------------------------------------------------------
# 12. The list of constant features
# ---------------------------------------------------------------------------


def test_constant_feature_message_gives_the_total_and_the_fix():
    X = np.c_[_correlated(50, 2), np.ones((50, 15))]
    with pytest.raises(ValueError) as info:
        GradientGaussian().fit(X)
    message = str(info.value)
    assert "[2, 3, 4, 5, 6, 7, 8, 9, 10, 11]" in message
    assert "15 in total" in message
    assert "sklearn.feature_selection.VarianceThreshold" in message
    with pytest.raises(ValueError, match=r"feature\(s\) \[2\].*VarianceThreshold"):
        GradientGaussian().fit(np.c_[_correlated(50, 2), np.ones(50)])


# ---------------------------------------------------------------------------
# Statistics pickled by an earlier version still merge
# ---------------------------------------------------------------------------


def test_statistics_pickled_without_the_new_slots_load_with_defaults():
    X = _correlated(40, 3)
    stats = compute_stats(X[:20])
    old = SufficientStats.__new__(SufficientStats)
    old.__setstate__(
        (
            None,
            {
                "weight_sum": stats.weight_sum,
                "mean": stats.mean,
                "scatter": stats.scatter,
                "n_samples": stats.n_samples,
            },
        )
    )
    assert old.weight_unit == 1.0
    assert_array_equal(old.mean_low, 0.0)
    merged = old.merge(compute_stats(X[20:]))
    assert_allclose(merged.covariance(), np.cov(X.T, bias=True), rtol=1e-12)
    again = pickle.loads(pickle.dumps(merged))
    assert_array_equal(again.mean_low, merged.mean_low)
    assert again.weight_unit == merged.weight_unit
