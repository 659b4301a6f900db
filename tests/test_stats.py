"""Tests of the chunked sufficient statistics and of the chunked log-density."""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import solve_triangular
from scipy.stats import multivariate_normal

from sklearn_mvn import GradientGaussian, _linalg
from sklearn_mvn._data import stats as _stats
from sklearn_mvn._data.stats import (
    SufficientStats,
    _chunk_stats,
    chunk_rows,
    solve_lower,
)
from sklearn_mvn._linalg import log_density

CHUNK_SIZES = [None, 1, 7, 64, 1000, 10**6]


def _correlated(n_samples, n_features, seed=0, offset=0.0):
    rng = np.random.RandomState(seed)
    mixing = rng.standard_normal((n_features, n_features))
    return rng.standard_normal((n_samples, n_features)) @ mixing + offset


def _reference(X, weights=None):
    """Weight sum, mean and scatter computed by numpy in one go."""
    X = np.asarray(X, dtype=np.float64)
    if weights is None:
        return X.shape[0], np.mean(X, axis=0), np.cov(X.T, bias=True) * X.shape[0]
    total = weights.sum()
    mean = np.average(X, axis=0, weights=weights)
    return total, mean, np.cov(X.T, aweights=weights, bias=True) * total


def _assert_stats_close(stats, weight_sum, mean, scatter, rtol=1e-10, mean_atol=0.0):
    assert stats.scatter.dtype == np.float64
    assert stats.mean.dtype == np.float64
    assert_allclose(stats.weight_sum, weight_sum, rtol=1e-13)
    scale = np.max(np.abs(mean)) + np.sqrt(np.max(np.diag(scatter)) / weight_sum)
    assert_allclose(stats.mean, mean, rtol=0, atol=rtol * scale + mean_atol)
    # Relative to the scale of each entry: |C_ij| <= sqrt(C_ii C_jj).
    diag = np.sqrt(np.diag(scatter))
    assert_allclose(
        stats.scatter / np.outer(diag, diag),
        scatter / np.outer(diag, diag),
        rtol=0,
        atol=rtol,
    )
    assert_array_equal(stats.scatter, stats.scatter.T)


# ---------------------------------------------------------------------------
# from_array against numpy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("offset", [0.0, 3.0, 1e4])
def test_from_array_matches_numpy(chunk_size, offset):
    # offset 0 takes the copy-free unshifted path, the others the shifted one.
    X = _correlated(3001, 6, offset=offset)
    stats = SufficientStats.from_array(X, chunk_size=chunk_size)
    _assert_stats_close(stats, *_reference(X))
    assert stats.n_samples == X.shape[0]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_from_array_weighted_matches_numpy(chunk_size):
    rng = np.random.RandomState(1)
    X = _correlated(2000, 5, offset=-7.0)
    weights = rng.uniform(0.0, 3.0, size=X.shape[0])
    stats = SufficientStats.from_array(X, weights, chunk_size=chunk_size)
    _assert_stats_close(stats, *_reference(X, weights))


def test_integer_weights_equal_repeated_rows():
    rng = np.random.RandomState(2)
    X = _correlated(300, 4, offset=2.0)
    weights = rng.randint(0, 4, size=X.shape[0])
    weighted = SufficientStats.from_array(X, weights.astype(float), chunk_size=37)
    repeated = SufficientStats.from_array(np.repeat(X, weights, axis=0))
    _assert_stats_close(
        weighted, repeated.weight_sum, repeated.mean, repeated.scatter, rtol=1e-12
    )


def test_float32_input_is_accumulated_in_float64():
    # float32 accumulation would lose about 4 digits here; the reference is
    # computed in float64 on exactly the same (float32) values.
    X = _correlated(20000, 5, offset=1e3).astype(np.float32)
    for chunk_size in [None, 999]:
        stats = SufficientStats.from_array(X, chunk_size=chunk_size)
        _assert_stats_close(stats, *_reference(X.astype(np.float64)))


@pytest.mark.parametrize("chunk_size", [None, 1, 100, 5000])
def test_large_mean_is_accurate(chunk_size):
    # 1e9 + unit spread: X - 1e9 is exact, so the reference has no cancellation;
    # the naive formula sum(x x^T) - n m m^T would lose all digits.
    Z = _correlated(20000, 4, seed=3)
    X = Z + 1e9
    centred = X - 1e9
    weight_sum, mean, scatter = _reference(centred)
    stats = SufficientStats.from_array(X, chunk_size=chunk_size)
    shifted = SufficientStats(
        stats.weight_sum, stats.mean - 1e9, stats.scatter, stats.n_samples
    )
    # The mean itself is only representable to about 1e-7 around 1e9.
    _assert_stats_close(shifted, weight_sum, mean, scatter, mean_atol=1e-6)
    naive = X.T @ X - len(X) * np.outer(X.mean(axis=0), X.mean(axis=0))
    assert not np.allclose(naive, scatter, rtol=1e-2)


def test_one_pass_for_data_in_random_order(monkeypatch):
    calls = []
    original = _stats._shifted_moments

    def counting(*args, **kwargs):
        calls.append(args[2] is None)
        return original(*args, **kwargs)

    monkeypatch.setattr(_stats, "_shifted_moments", counting)
    SufficientStats.from_array(_correlated(5000, 3), chunk_size=100)
    SufficientStats.from_array(_correlated(5000, 3, offset=1e9), chunk_size=100)
    # Centred float64 data are multiplied in place (no shift), data far from
    # the origin are shifted; each is read once.
    assert calls == [True, False]


def test_unrepresentative_first_chunk_triggers_a_second_pass(monkeypatch):
    # The first rows (small weight, far away, more than the rows that choose
    # the shift) make a poor shift: the moments about it would lose about 6
    # digits, so they are recomputed.
    X = _correlated(4000, 3, seed=4)
    X[:1100] += 1e6
    weights = np.ones(X.shape[0])
    weights[:1100] = 1e-6
    calls = []
    original = _stats._shifted_moments

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_stats, "_shifted_moments", counting)
    stats = SufficientStats.from_array(X, weights, chunk_size=100)
    assert len(calls) == 2
    _assert_stats_close(stats, *_reference(X, weights))


def test_zero_weight_rows_do_not_choose_the_shift(monkeypatch):
    # Far-away rows of zero weight first: the shift comes from the rows of
    # positive weight, so one pass is exact.
    X = _correlated(4000, 3, seed=4)
    X[:1500] += 1e9
    weights = np.ones(X.shape[0])
    weights[:1500] = 0.0
    calls = []
    original = _stats._shifted_moments

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_stats, "_shifted_moments", counting)
    stats = SufficientStats.from_array(X, weights, chunk_size=100)
    assert len(calls) == 1
    _assert_stats_close(stats, *_reference(X[1500:]))


def test_zero_weight_chunks():
    X = _correlated(1000, 4, offset=5.0)
    weights = np.ones(X.shape[0])
    weights[200:400] = 0.0
    weights[900:] = 0.0
    stats = SufficientStats.from_array(X, weights, chunk_size=100)
    kept = np.r_[0:200, 400:900]
    _assert_stats_close(stats, *_reference(X[kept]))
    assert stats.n_samples == 1000

    nothing = SufficientStats.from_array(X, np.zeros(X.shape[0]), chunk_size=100)
    assert nothing.weight_sum == 0.0
    assert nothing.n_samples == 1000
    assert_array_equal(nothing.scatter, 0.0)
    merged = nothing.merge(stats)
    assert_allclose(merged.mean, stats.mean, rtol=0, atol=0)
    assert_allclose(merged.scatter, stats.scatter, rtol=0, atol=0)
    assert merged.n_samples == 2000
    assert_allclose(stats.merge(nothing).scatter, stats.scatter, rtol=0, atol=0)


@pytest.mark.parametrize("chunk_size", [None, 1, 100])
@pytest.mark.parametrize("weighted", [False, True])
def test_constant_feature_is_exact(chunk_size, weighted):
    X = _correlated(3000, 4, seed=14, offset=50.0)
    X[:, 1] = 0.1
    X[:, 3] = 0.0
    weights = np.random.RandomState(0).uniform(0, 2, 3000) if weighted else None
    stats = SufficientStats.from_array(X, weights, chunk_size=chunk_size)
    assert stats.mean[1] == 0.1
    assert stats.mean[3] == 0.0
    assert_array_equal(stats.scatter[[1, 3]], 0.0)
    assert_array_equal(stats.scatter[:, [1, 3]], 0.0)


def test_chunk_stats_and_empty():
    X = _correlated(50, 3, offset=1.0)
    _assert_stats_close(_chunk_stats(X, None), *_reference(X))
    weights = np.linspace(0.0, 1.0, 50)
    _assert_stats_close(_chunk_stats(X, weights), *_reference(X, weights))
    empty = SufficientStats.from_array(np.empty((0, 3)))
    assert empty.weight_sum == 0.0
    assert empty.scatter.shape == (3, 3)


def test_chunk_rows():
    for n_features in [1, 10, 50, 500, 5000]:
        rows = chunk_rows(n_features)
        assert rows >= _linalg._MIN_CHUNK_ROWS
        assert rows == _linalg._MIN_CHUNK_ROWS or (
            8 * rows * n_features <= _linalg._CHUNK_BYTES
        )


# ---------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------


def test_merge_is_associative_and_equals_concatenation():
    parts = [
        _correlated(100, 4, seed=5, offset=1e6),
        _correlated(250, 4, seed=6, offset=1e6 + 3.0),
        _correlated(7, 4, seed=7, offset=1e6 - 2.0),
    ]
    weights = [
        np.random.RandomState(i).uniform(0, 2, len(p)) for i, p in enumerate(parts)
    ]
    a, b, c = (
        SufficientStats.from_array(p, w) for p, w in zip(parts, weights, strict=True)
    )
    left = a.merge(b).merge(c)
    right = a.merge(b.merge(c))
    whole = SufficientStats.from_array(np.vstack(parts), np.concatenate(weights))
    for merged in (left, right):
        _assert_stats_close(merged, whole.weight_sum, whole.mean, whole.scatter)
        assert merged.n_samples == 357
    reference = _reference(np.vstack(parts) - 1e6, np.concatenate(weights))
    shifted = SufficientStats(left.weight_sum, left.mean - 1e6, left.scatter)
    _assert_stats_close(shifted, *reference, mean_atol=1e-9)
    empty = SufficientStats.empty(4)
    assert_allclose(empty.merge(a).scatter, a.scatter, rtol=0, atol=0)
    assert_allclose(a.merge(empty).mean, a.mean, rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Triangular solves and the log-density
# ---------------------------------------------------------------------------


def test_solve_lower_matches_scipy():
    rng = np.random.RandomState(8)
    factor = np.tril(rng.standard_normal((6, 6))) + 4.0 * np.eye(6)
    rhs = rng.standard_normal((6, 3))
    for trans in (False, True):
        expected = solve_triangular(factor, rhs, lower=True, trans=int(trans))
        assert_allclose(solve_lower(factor, rhs, trans=trans), expected, rtol=1e-13)
        assert_allclose(
            solve_lower(factor, rhs[:, 0], trans=trans), expected[:, 0], rtol=1e-13
        )


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_density_matches_scipy(chunk_size, dtype):
    X = _correlated(3000, 5, seed=9, offset=1e3).astype(dtype)
    mean = X.astype(np.float64).mean(axis=0) + 0.1
    cov = np.cov(X.astype(np.float64).T) + 0.5 * np.eye(5)
    factor = np.linalg.cholesky(cov)
    result = log_density(X, mean, factor, chunk_size=chunk_size)
    assert result.dtype == np.float64
    expected = multivariate_normal(mean, cov).logpdf(X.astype(np.float64))
    assert_allclose(result, expected, rtol=1e-10)


def test_log_density_ill_conditioned():
    # Scales from 1e-3 to 1e6 and correlation 0.9: the data are built from known
    # whitened rows z, so the exact log-density is known.
    n_features = 4
    scales = np.logspace(-3, 6, n_features)
    corr = np.full((n_features, n_features), 0.9) + 0.1 * np.eye(n_features)
    factor = scales[:, np.newaxis] * np.linalg.cholesky(corr)
    rng = np.random.RandomState(10)
    Z = rng.standard_normal((500, n_features))
    mean = np.full(n_features, 10.0)
    X = mean + Z @ factor.T
    expected = (
        -0.5 * n_features * np.log(2 * np.pi)
        - np.sum(np.log(np.diag(factor)))
        - 0.5 * np.sum(Z**2, axis=1)
    )
    result = log_density(X, mean, factor, chunk_size=64)
    assert_allclose(result, expected, rtol=1e-9)


# ---------------------------------------------------------------------------
# The estimator: memory and the finiteness check folded into the pass
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_fit_peak_memory_is_small(offset):
    X = _correlated(200_000, 20, seed=11, offset=offset)
    GradientGaussian().fit(X[:1000])  # imports and caches outside the trace
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model = GradientGaussian().fit(X)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * X.nbytes
    assert_allclose(model.covariance_, np.cov(X.T, bias=True), rtol=1e-9, atol=0)


def test_float32_fit_equals_float64_fit():
    X = _correlated(5000, 4, seed=12, offset=50.0).astype(np.float32)
    fit32 = GradientGaussian().fit(X)
    fit64 = GradientGaussian().fit(X.astype(np.float64))
    assert_allclose(fit32.mean_, fit64.mean_, rtol=1e-12)
    assert_allclose(fit32.covariance_, fit64.covariance_, rtol=1e-10)
    assert_allclose(
        fit32.score_samples(X), fit64.score_samples(X.astype(np.float64)), rtol=1e-12
    )


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_input_is_rejected(bad):
    # The complete-data path reads X once and searches it only when the
    # statistics (or log-densities) are not finite; infinity is still caught.
    # (NaN marks a missing value, see test_missing.py.)
    X = _correlated(300, 3, seed=13)
    model = GradientGaussian().fit(X)
    X_bad = X.copy()
    X_bad[150, 1] = bad
    message = "infinity"
    with pytest.raises(ValueError, match=message):
        GradientGaussian().fit(X_bad)
    # A zero weight does not hide a non-finite value.
    weights = np.ones(300)
    weights[150] = 0.0
    with pytest.raises(ValueError, match=message):
        GradientGaussian().fit(X_bad, sample_weight=weights)
    with pytest.raises(ValueError, match=message):
        model.score_samples(X_bad)
