"""Missing values: observed-data maximum likelihood, marginal scoring, imputation."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from sklearn_mvn import GradientGaussian
from sklearn_mvn._data.patterns import (
    PatternStats,
    _pattern_keys,
    compute_stats,
    merge_stats,
)
from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.gradients import penalty_stats
from sklearn_mvn._likelihoods.normal_missing import MissingObjective
from sklearn_mvn._representations import TriangularCovariance
from sklearn_mvn._representations.conditional import (
    _inverse_pmm,
    conditional_blocks,
    marginal_mahalanobis,
)

# ---------------------------------------------------------------------------
# Data and naive references
# ---------------------------------------------------------------------------


def _random_cov(rng, d, cond=10.0):
    q, _ = np.linalg.qr(rng.randn(d, d))
    return (q * np.geomspace(1.0, cond, d)) @ q.T


def _mcar(rng, n, d, rate, cond=10.0, mean_scale=1.0):
    cov = _random_cov(rng, d, cond)
    X = rng.multivariate_normal(mean_scale * rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    # Every row keeps one observed entry, every feature at least two.
    empty = np.isnan(X).all(axis=1)
    X[empty, 0] = rng.randn(int(empty.sum()))
    return X


def _observed_nll(X, mean, cov, sample_weight=None):
    """Mean negative log-likelihood of each row's observed entries (SciPy)."""
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    total = 0.0
    for x, wi in zip(X, w, strict=True):
        o = ~np.isnan(x)
        total -= wi * multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o])
    return total / w.sum()


def _available_case(X, w):
    """Available-case means and pairwise (ML) covariances, by loops."""
    d = X.shape[1]
    obs = ~np.isnan(X)
    mean = np.array(
        [np.average(X[obs[:, j], j], weights=w[obs[:, j]]) for j in range(d)]
    )
    cov = np.zeros((d, d))
    for j in range(d):
        for k in range(d):
            both = obs[:, j] & obs[:, k]
            prod = (X[both, j] - mean[j]) * (X[both, k] - mean[k])
            cov[j, k] = np.average(prod, weights=w[both])
    return mean, cov


def _em(X, sample_weight=None, shrinkage=0.0, reg_covar=0.0, tol=1e-12):
    """EM for the (penalised) observed-data likelihood, written row-wise.

    E-step: each row's missing entries get their conditional mean, and the
    conditional covariance is added to the expected scatter. M-step: the
    maximiser of (1 - a) / W * expected NLL + a * NLL(prior pseudo-observation
    at the available-case mean with scatter tau I) + reg_covar / 2 tr(S^-1).
    """
    n, d = X.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    weight = w.sum()
    obs = ~np.isnan(X)
    ac_mean, ac_cov = _available_case(X, w)
    tau = np.trace(ac_cov) / d if shrinkage else 0.0
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0))
    keys, inverse = np.unique(obs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for _ in range(100000):
        filled = np.where(obs, X, 0.0)
        cond = np.zeros((d, d))
        for p, o in enumerate(keys):
            rows = inverse == p
            m = ~o
            if not m.any():
                continue
            reg = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
            filled[np.ix_(rows, m)] = mean[m] + (X[np.ix_(rows, o)] - mean[o]) @ reg.T
            cond[np.ix_(m, m)] += w[rows].sum() * (
                cov[np.ix_(m, m)] - reg @ cov[np.ix_(o, m)]
            )
        data_mean = w @ filled / weight
        new_mean = (1 - shrinkage) * data_mean + shrinkage * ac_mean
        resid = filled - new_mean
        scatter = (resid * w[:, None]).T @ resid + cond
        prior = tau * np.eye(d) + np.outer(ac_mean - new_mean, ac_mean - new_mean)
        new_cov = (
            (1 - shrinkage) * scatter / weight
            + shrinkage * prior
            + reg_covar * np.eye(d)
        )
        change = max(np.abs(new_mean - mean).max(), np.abs(new_cov - cov).max())
        mean, cov = new_mean, new_cov
        if change < tol:
            return mean, cov
    raise AssertionError("EM reference did not converge")


def _fit(X, **params):
    return GradientGaussian(**params).fit(X)


# ---------------------------------------------------------------------------
# Statistics per pattern
# ---------------------------------------------------------------------------


def test_pattern_stats_match_each_pattern():
    rng = np.random.RandomState(0)
    X = _mcar(rng, 300, 4, 0.3)
    w = rng.uniform(0.5, 2.0, size=300)
    stats = PatternStats.from_array(X, w, chunk_size=37)
    obs = ~np.isnan(X)
    assert stats.n_samples == 300
    assert_allclose(stats.weight_sum, w.sum())
    seen = 0
    for p in range(stats.n_patterns):
        cols, st = stats.pattern(p)
        rows = np.all(obs == stats.observed[p], axis=1)
        seen += rows.sum()
        sub = X[rows][:, cols]
        ref = SufficientStats.from_array(sub, w[rows])
        assert_allclose(st.weight_sum, ref.weight_sum)
        assert_allclose(st.mean, ref.mean, rtol=1e-12, atol=1e-12)
        assert_allclose(st.scatter, ref.scatter, rtol=1e-10, atol=1e-10)
    assert seen == 300
    # Patterns are ordered by their number of missing entries.
    assert np.all(np.diff((~stats.observed).sum(axis=1)) >= 0)


def test_pattern_stats_merge_equals_whole():
    rng = np.random.RandomState(1)
    X = _mcar(rng, 400, 5, 0.2)
    whole = PatternStats.from_array(X)
    halves = PatternStats.from_array(X[:150]).merge(PatternStats.from_array(X[150:]))
    # A complete block merges as plain SufficientStats, from either side
    # (merge_stats, the one function that merges any two statistics).
    complete = ~np.isnan(X).any(axis=1)
    mixed = PatternStats.from_array(X[~complete]).merge(
        SufficientStats.from_array(X[complete])
    )
    mixed_left = merge_stats(
        SufficientStats.from_array(X[complete]), PatternStats.from_array(X[~complete])
    )
    for merged in (halves, mixed, mixed_left):
        assert merged.n_patterns == whole.n_patterns
        assert_array_equal(merged.observed, whole.observed)
        for p in range(whole.n_patterns):
            _, a = whole.pattern(p)
            _, b = merged.pattern(p)
            assert_allclose(a.weight_sum, b.weight_sum)
            assert_allclose(a.mean, b.mean, atol=1e-12)
            assert_allclose(a.scatter, b.scatter, atol=1e-10)
    model = _fit(X)
    assert_allclose(
        GradientGaussian()._fit_stats(halves).covariance_,
        model.covariance_,
        atol=1e-6 * np.abs(model.covariance_).max(),
    )


def test_without_nan_the_plain_path_is_identical():
    rng = np.random.RandomState(2)
    X = rng.randn(200, 4) @ rng.randn(4, 4)
    assert isinstance(compute_stats(X), SufficientStats)
    model = GradientGaussian().fit(X)
    plain = GradientGaussian()._fit_stats(SufficientStats.from_array(X))
    for attr in ("mean_", "covariance_", "factor_", "precision_"):
        assert_array_equal(getattr(model, attr), getattr(plain, attr))
    assert model.n_iter_ == plain.n_iter_ == 0
    assert isinstance(compute_stats(np.where(X > 2, np.nan, X)), PatternStats)


# ---------------------------------------------------------------------------
# Exactness
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e5])
def test_monotone_two_variables_closed_form(scale):
    """Factored likelihood: x1 complete, x2 partly missing (Anderson 1957)."""
    rng = np.random.RandomState(3)
    n = 500
    X = rng.multivariate_normal([1.0, -2.0], [[2.0, 1.2], [1.2, 1.5]], size=n)
    X[:, 1] *= scale
    X[rng.rand(n) < 0.4, 1] = np.nan
    x1, x2 = X[:, 0], X[:, 1]
    cc = ~np.isnan(x2)
    mu1, s11 = x1.mean(), x1.var()
    m1, m2 = x1[cc].mean(), x2[cc].mean()
    beta = np.mean((x1[cc] - m1) * (x2[cc] - m2)) / x1[cc].var()
    alpha = m2 - beta * m1
    resid_var = np.mean((x2[cc] - alpha - beta * x1[cc]) ** 2)
    mean = np.array([mu1, alpha + beta * mu1])
    cov = np.array([[s11, beta * s11], [beta * s11, resid_var + beta**2 * s11]])
    model = _fit(X)
    assert model.converged_
    assert_allclose(model.mean_, mean, rtol=1e-6)
    assert_allclose(model.covariance_, cov, rtol=1e-6)


@pytest.mark.parametrize(
    "n, d, rate, seed",
    [(400, 5, 0.3, 0), (300, 10, 0.2, 1), (300, 30, 0.1, 2), (500, 8, 0.1, 3)],
)
def test_mcar_equals_em_reference(n, d, rate, seed):
    rng = np.random.RandomState(seed)
    X = _mcar(rng, n, d, rate)
    mean, cov = _em(X)
    model = _fit(X)
    assert model.converged_
    assert model.n_iter_ < 60
    assert_allclose(model.mean_, mean, atol=1e-6 * np.abs(mean).max())
    assert_allclose(model.covariance_, cov, atol=1e-6 * np.abs(cov).max())
    ours = _observed_nll(X, model.mean_, model.covariance_)
    reference = _observed_nll(X, mean, cov)
    assert ours <= reference + 1e-12 * abs(reference)
    assert_allclose(model.objective_, ours, rtol=1e-10)


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_ill_conditioned_scales_and_correlation(rate):
    rng = np.random.RandomState(4)
    d, n = 6, 600
    corr = 0.999 * np.ones((d, d)) + 0.001 * np.eye(d)
    scales = np.geomspace(1e-3, 1e6, d)
    X = rng.multivariate_normal(np.zeros(d), corr, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    base = _fit(X)
    scaled = _fit(X * scales + 1e3 * scales)
    mean, cov = _em(X)
    assert base.converged_ and scaled.converged_
    assert base.n_iter_ < 60 and scaled.n_iter_ < 60
    assert_allclose(base.covariance_, cov, atol=1e-6 * np.abs(cov).max())
    assert_allclose(base.mean_, mean, atol=1e-6)
    # Affine equivariance on data 1e-3 .. 1e6 in scale.
    assert_allclose(scaled.mean_, base.mean_ * scales + 1e3 * scales, rtol=1e-6)
    assert_allclose(
        scaled.covariance_, base.covariance_ * np.outer(scales, scales), rtol=1e-6
    )


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


def _sub_block_gradient(X, w, mean, factor, scale):
    """The brief's formula: per row, the seed's gradient G_oo in S_oo of the
    NLL of N(mu_o, S_oo), scattered into d x d; dJ/dLambda = 2 G Lambda."""
    d = X.shape[1]
    cov = factor @ factor.T
    G = np.zeros((d, d))
    g_mean = np.zeros(d)
    for x, wi in zip(X, w, strict=True):
        o = np.flatnonzero(~np.isnan(x))
        inv = np.linalg.inv(cov[np.ix_(o, o)])
        r = inv @ (x[o] - mean[o])
        G[np.ix_(o, o)] += 0.5 * wi * (inv - np.outer(r, r))
        g_mean[o] -= wi * r
    return scale * g_mean, scale * 2.0 * G @ factor


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("shrinkage, reg_covar", [(0.0, 0.0), (0.3, 0.0), (0.2, 0.5)])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_finite_differences(covariance_type, shrinkage, reg_covar, weighted):
    rng = np.random.RandomState(5)
    n, d = 60, 4
    X = _mcar(rng, n, d, 0.3)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    stats = PatternStats.from_array(X, w)
    ac_mean, ac_cov, _ = stats.available_case()
    W = stats.weight_sum
    available = SufficientStats(W, ac_mean, W * ac_cov)
    penalties = penalty_stats(available, shrinkage=shrinkage, reg_covar=reg_covar)
    scale = (1.0 - shrinkage) / W
    objective = MissingObjective(stats, penalties, scale)
    structure = TriangularCovariance(covariance_type, d)
    mean = rng.randn(d)
    factor = structure.project(np.tril(rng.randn(d, d)) + 2.0 * np.eye(d))

    value, g_mean, g_factor = objective(mean, factor)
    # The value is the penalised observed-data NLL, computed with SciPy.
    penalty_value = sum(
        MissingObjective(PatternStats.from_sufficient_stats(t), (), 1.0)(mean, factor)[
            0
        ]
        if t.weight_sum > 0
        else 0.5 * np.trace(np.linalg.solve(factor @ factor.T, t.scatter))
        for t in penalties
    )
    weights = np.ones(n) if w is None else w
    assert_allclose(
        value,
        (1.0 - shrinkage) * _observed_nll(X, mean, factor @ factor.T, weights)
        + penalty_value,
        rtol=1e-10,
    )
    # The seed's sub-block gradients, scattered, equal the objective's.
    ref_mean, ref_factor = _sub_block_gradient(X, weights, mean, factor, scale)
    if not penalties:
        assert_allclose(g_mean, ref_mean, rtol=1e-9, atol=1e-12)
        assert_allclose(np.tril(g_factor), np.tril(ref_factor), rtol=1e-9, atol=1e-12)
    # Central finite differences over the free parameters.
    theta = np.concatenate([mean, structure.pack(factor)])
    grad = np.concatenate([g_mean, structure.restrict_grad(g_factor)])

    def f(t):
        return objective(t[:d], structure.unpack(t[d:]))[0]

    h = 1e-6
    fd = np.array(
        [(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)]
    )
    assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# Composition with weights, penalties and structure
# ---------------------------------------------------------------------------


def test_integer_weights_equal_repeated_rows():
    rng = np.random.RandomState(6)
    X = _mcar(rng, 150, 5, 0.2)
    counts = rng.randint(0, 4, size=150)
    counts[:3] = 1
    weighted = GradientGaussian().fit(X, sample_weight=counts)
    repeated = _fit(np.repeat(X, counts, axis=0))
    assert_allclose(weighted.mean_, repeated.mean_, atol=1e-7)
    assert_allclose(weighted.covariance_, repeated.covariance_, atol=1e-7)


def test_weights_equal_weighted_em():
    rng = np.random.RandomState(7)
    X = _mcar(rng, 200, 4, 0.25)
    w = rng.uniform(0.1, 5.0, size=200)
    mean, cov = _em(X, sample_weight=w)
    model = GradientGaussian().fit(X, sample_weight=w)
    assert_allclose(model.mean_, mean, atol=1e-7)
    assert_allclose(model.covariance_, cov, atol=1e-7)


@pytest.mark.parametrize("shrinkage, reg_covar", [(0.3, 0.0), (0.0, 0.2), (1.0, 0.0)])
def test_penalties_equal_penalised_em(shrinkage, reg_covar):
    rng = np.random.RandomState(8)
    X = _mcar(rng, 250, 5, 0.2)
    mean, cov = _em(X, shrinkage=shrinkage, reg_covar=reg_covar)
    model = _fit(X, shrinkage=shrinkage, reg_covar=reg_covar)
    assert model.converged_
    assert_allclose(model.mean_, mean, atol=1e-6)
    assert_allclose(model.covariance_, cov, atol=1e-6)
    # objective_ is the penalised objective in the data's units.
    stats = PatternStats.from_array(X)
    ac_mean, ac_cov, _ = stats.available_case()
    available = SufficientStats(stats.weight_sum, ac_mean, stats.weight_sum * ac_cov)
    penalties = penalty_stats(available, shrinkage=shrinkage, reg_covar=reg_covar)
    objective = MissingObjective(stats, penalties, (1 - shrinkage) / stats.weight_sum)
    assert_allclose(
        model.objective_, objective(model.mean_, model.factor_)[0], rtol=1e-10
    )


def test_shrinkage_fits_fewer_rows_than_features():
    rng = np.random.RandomState(9)
    X = _mcar(rng, 8, 12, 0.2)
    mean, cov = _em(X, shrinkage=0.5)
    model = _fit(X, shrinkage=0.5)
    assert_allclose(model.covariance_, cov, atol=1e-6)
    assert_allclose(model.mean_, mean, atol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_structured_covariances_closed_form(covariance_type):
    """With independent features the likelihood factorises per feature."""
    rng = np.random.RandomState(10)
    X = _mcar(rng, 300, 5, 0.3)
    X[:, 2] *= 100.0
    mean = np.nanmean(X, axis=0)
    if covariance_type == "diag":
        cov = np.diag(np.nanvar(X, axis=0))
    else:
        cov = np.nanmean((X - mean) ** 2) * np.eye(5)
    model = _fit(X, covariance_type=covariance_type)
    # The mean is determined to within the model's standard deviations.
    sd = np.sqrt(np.diag(cov))
    assert_allclose(model.mean_ / sd, mean / sd, rtol=0, atol=1e-6)
    assert_allclose(model.covariance_, cov, rtol=1e-6, atol=1e-12)


def test_warm_start_with_missing_values():
    rng = np.random.RandomState(11)
    X = _mcar(rng, 300, 6, 0.2)
    model = GradientGaussian(warm_start=True).fit(X)
    cov = model.covariance_.copy()
    model.fit(X)
    assert model.n_iter_ <= 2
    assert_allclose(model.covariance_, cov, atol=1e-6)


# ---------------------------------------------------------------------------
# Scoring and imputation
# ---------------------------------------------------------------------------


def test_score_samples_is_the_marginal_density():
    rng = np.random.RandomState(12)
    X = _mcar(rng, 300, 6, 0.2)
    model = _fit(X)
    test = _mcar(rng, 50, 6, 0.4)
    scores = model.score_samples(test)
    for x, s in zip(test, scores, strict=True):
        o = ~np.isnan(x)
        ref = multivariate_normal(
            model.mean_[o], model.covariance_[np.ix_(o, o)]
        ).logpdf(x[o])
        assert_allclose(s, ref, rtol=1e-10)
    assert_allclose(model.score(test), scores.mean())
    maha = marginal_mahalanobis(test, model.mean_, model.factor_)
    for x, m in zip(test, maha, strict=True):
        o = ~np.isnan(x)
        r = x[o] - model.mean_[o]
        assert_allclose(m, r @ np.linalg.solve(model.covariance_[np.ix_(o, o)], r))
    # Complete rows still take the plain path and agree with SciPy.
    full = rng.randn(5, 6)
    assert_allclose(
        model.score_samples(full),
        multivariate_normal(model.mean_, model.covariance_).logpdf(full),
        rtol=1e-10,
    )


def test_impute_is_the_conditional_expectation():
    rng = np.random.RandomState(13)
    X = _mcar(rng, 300, 6, 0.2)
    model = _fit(X)
    test = _mcar(rng, 40, 6, 0.4)
    filled = model.impute(test)
    assert not np.isnan(filled).any()
    S, mu = model.covariance_, model.mean_
    for x, y in zip(test, filled, strict=True):
        o, m = ~np.isnan(x), np.isnan(x)
        assert_array_equal(y[o], x[o])
        expected = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(
            S[np.ix_(o, o)], x[o] - mu[o]
        )
        assert_allclose(y[m], expected, rtol=1e-9, atol=1e-12)
    # Complete input is returned unchanged, as a copy.
    full = rng.randn(3, 6)
    out = model.impute(full)
    assert_array_equal(out, full)
    assert out is not full


@pytest.mark.parametrize("n_features", [1, 3, 20, 64, 65, 130])
def test_pattern_keys_group_and_sort_like_the_packed_bytes(n_features):
    """Integer keys (up to 64 features) or byte strings: rows with the same
    mask share a key, and np.unique orders the patterns as the packed bytes
    compared lexicographically."""
    rng = np.random.RandomState(n_features)
    observed = rng.uniform(size=(500, n_features)) < 0.7
    observed[250:] = observed[:250]  # every pattern at least twice
    keys = _pattern_keys(observed)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    assert_array_equal(observed[first][inverse.ravel()], observed)
    assert len(first) == len({row.tobytes() for row in observed})
    packed = [bytes(np.packbits(row)) for row in observed[first]]
    assert packed == sorted(packed)


@pytest.mark.parametrize("scale", [1.0, 1e119, 1e-100])
def test_conditional_blocks_match_per_row_algebra(scale):
    """Every k from 1 to d (the vectorised sweep, no size limit): the offset,
    conditional covariance and log|P_mm| of each row against dense per-row
    formulas in S; rows grouped by k in increasing order, each row once. Also
    at scales where products of two precision entries leave float64."""
    rng = np.random.RandomState(3)
    d = 10
    S = _random_cov(rng, d, cond=1e3) * scale**2
    mu = rng.randn(d) * scale
    P = np.linalg.inv(S)
    X = rng.multivariate_normal(mu, S, size=60)
    n_missing = np.r_[np.arange(d + 1), rng.randint(0, d + 1, 49)]
    for row, k in zip(X, n_missing, strict=True):
        row[rng.permutation(d)[:k]] = np.nan
    seen = []
    for r, miss, resid, offset, pmm_inv, log_det in conditional_blocks(X, mu, P):
        k = miss.shape[1]
        assert np.all(n_missing[r] == k) and np.all(np.diff(r) > 0)
        seen.extend(r)
        for i, row in enumerate(r):
            m = np.isnan(X[row])
            o = ~m
            assert_array_equal(miss[i], np.flatnonzero(m))
            assert_array_equal(resid[i, m], 0.0)
            assert_allclose(resid[i, o], X[row, o] - mu[o], rtol=1e-15)
            cond = S[np.ix_(m, m)]
            expected = np.zeros(k)
            if o.any():
                gain = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)]).T
                expected = gain @ (X[row, o] - mu[o])
                cond = cond - gain @ S[np.ix_(o, m)]
            scale = np.sqrt(np.diag(cond))
            assert_allclose(offset[i] / scale, expected / scale, atol=1e-9)
            assert_allclose(pmm_inv[i], cond, rtol=1e-9, atol=1e-12 * S.max())
            assert_allclose(log_det[i], -np.linalg.slogdet(cond)[1], rtol=1e-10)
        # The t's helper gives the same blocks.
        inv, logdet = _inverse_pmm(P, miss)
        assert_allclose(inv, pmm_inv, rtol=1e-12)
        assert_allclose(logdet, log_det, rtol=1e-12)
    assert sorted(seen) == sorted(np.flatnonzero(n_missing > 0))


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_errors():
    rng = np.random.RandomState(14)
    X = _mcar(rng, 100, 4, 0.2)
    bad = X.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"no observed entry.*rows \[7\]"):
        GradientGaussian().fit(bad)
    bad = X.copy()
    bad[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"Feature\(s\) \[2\] are never observed"):
        GradientGaussian().fit(bad)
    bad = X.copy()
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match=r"infinity \(row 5, feature 1\)"):
        GradientGaussian().fit(bad)
    model = GradientGaussian().fit(X)
    row = np.array([[np.nan] * 4, [1.0, np.nan, 0.0, 0.0]])
    for method in (model.score_samples, model.score, model.impute):
        with pytest.raises(ValueError, match=r"rows \[0\]"):
            method(row)
        with pytest.raises(ValueError, match=r"infinity \(row 1, feature 0\)"):
            method(np.array([[0.0] * 4, [-np.inf, 0.0, 0.0, 0.0]]))
    assert GradientGaussian().__sklearn_tags__().input_tags.allow_nan


def test_unbounded_likelihood_warns_and_shrinkage_fixes_it():
    """With few rows observing many features jointly the likelihood is
    unbounded (S can collapse onto those rows); shrinkage makes it bounded."""
    rng = np.random.RandomState(0)
    d, n = 12, 188
    q, _ = np.linalg.qr(rng.randn(d, d))
    cov = (q * np.geomspace(1.0, 1e3, d)) @ q.T
    X = rng.multivariate_normal(3.0 * rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < 0.33] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    # At most one complete row: S can collapse onto the rows that observe
    # a large set of features jointly.
    assert (~np.isnan(X)).all(axis=1).sum() <= 1
    with pytest.warns(ConvergenceWarning, match="shrinkage > 0"):
        GradientGaussian().fit(X)
    model = GradientGaussian(shrinkage=0.1).fit(X)
    assert model.converged_
    mean, cov = _em(X, shrinkage=0.1)
    assert_allclose(model.covariance_, cov, atol=1e-6 * np.abs(cov).max())


# ---------------------------------------------------------------------------
# The objective against row-wise references; the likelihood against EM
# ---------------------------------------------------------------------------


def _mar(rng, n, d, rate):
    """Missing at random: feature 0 is always observed and the other entries
    go missing with a probability increasing in it."""
    X = rng.multivariate_normal(rng.randn(d), _random_cov(rng, d), size=n)
    z = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
    prob = 2 * rate / (1.0 + np.exp(-2.0 * z))
    mask = rng.rand(n, d) < prob[:, None]
    mask[:, 0] = False
    X[mask] = np.nan
    return X


def _monotone(rng, n, d, rate):
    """Monotone pattern: each row observes its first ``c`` features (``c >= 1``),
    about a fraction ``rate`` of the entries missing."""
    X = rng.multivariate_normal(rng.randn(d), _random_cov(rng, d), size=n)
    drop = rng.binomial(d - 1, 2 * rate * d / (d - 1) * 0.5, size=n)
    for i, k in enumerate(drop):
        if k:
            X[i, d - k :] = np.nan
    return X


def _rowwise_e_step(X, w, mean, cov):
    """Expected complete-data weight, mean and scatter, and the weighted
    entropy of the missing entries, one row at a time."""
    filled = np.where(np.isnan(X), 0.0, X)
    cond = np.zeros_like(cov)
    entropy = 0.0
    for i, x in enumerate(X):
        m = np.isnan(x)
        if not m.any():
            continue
        o = ~m
        reg = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
        filled[i, m] = mean[m] + reg @ (x[o] - mean[o])
        c = cov[np.ix_(m, m)] - reg @ cov[np.ix_(o, m)]
        cond[np.ix_(m, m)] += w[i] * c
        entropy += w[i] * 0.5 * np.linalg.slogdet(2 * np.pi * np.e * c)[1]
    weight = w.sum()
    exp_mean = w @ filled / weight
    resid = filled - exp_mean
    return weight, exp_mean, (resid * w[:, None]).T @ resid + cond, entropy


def _repeated_patterns(rng, n, d, rate):
    """MCAR data whose patterns repeat (scatter roots) with every number of
    missing entries from 0 to d - 1."""
    X = _mcar(rng, n, d, rate)
    k = rng.randint(0, d, size=n // 3)
    for i, ki in enumerate(k):
        X[i] = rng.randn(d)
        X[i, rng.permutation(d)[:ki]] = np.nan
    return np.vstack([X, X[: n // 4] + rng.randn(n // 4, d)])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch_entries", [None, 40])
def test_expected_stats_equal_rowwise_e_step(weighted, batch_entries, monkeypatch):
    """The batched E-step (all k, several batches per k, scatter roots)
    equals the row-wise conditional moments."""
    import sklearn_mvn._representations.conditional as missing

    if batch_entries is not None:
        monkeypatch.setattr(missing, "_BATCH_ENTRIES", batch_entries)
    rng = np.random.RandomState(7)
    d = 7
    X = _repeated_patterns(rng, 300, d, 0.3)
    w = rng.uniform(0.2, 3.0, X.shape[0]) if weighted else np.ones(X.shape[0])
    stats = PatternStats.from_array(X, sample_weight=w if weighted else None)
    assert (stats.root_pattern.size > 0) and stats.n_patterns > 50
    mean = rng.randn(d)
    cov = _random_cov(rng, d, cond=30.0)
    objective = MissingObjective(stats)
    expected, entropy = objective.expected_stats(mean, np.linalg.cholesky(cov))
    weight, ref_mean, ref_scatter, ref_entropy = _rowwise_e_step(X, w, mean, cov)
    assert_allclose(expected.weight_sum, weight, rtol=1e-13)
    assert_allclose(expected.mean, ref_mean, rtol=1e-12, atol=1e-12)
    assert_allclose(
        expected.scatter, ref_scatter, rtol=0, atol=1e-12 * np.abs(ref_scatter).max()
    )
    assert_allclose(entropy, ref_entropy, rtol=1e-12)
    # The objective is the observed-data NLL (SciPy, row by row).
    value = objective(mean, np.linalg.cholesky(cov))[0]
    assert_allclose(value, weight * _observed_nll(X, mean, cov, w), rtol=1e-12)


@pytest.mark.parametrize(
    "make, n, d, rate, seed",
    [
        (_mcar, 400, 5, 0.3, 0),
        (_mcar, 300, 12, 0.15, 1),
        (_mar, 400, 6, 0.3, 2),
        (_mar, 300, 10, 0.2, 3),
        (_monotone, 300, 8, 0.3, 4),
        (_monotone, 500, 5, 0.4, 5),
    ],
)
def test_log_likelihood_equals_em_to_1e9_per_sample(make, n, d, rate, seed):
    """The fit's observed-data log-likelihood equals that of a plain EM run to
    a change below 1e-12, to 1e-9 per sample, and the fit does not warn."""
    rng = np.random.RandomState(seed)
    X = make(rng, n, d, rate)
    X = X[~np.isnan(X).all(axis=1)]
    assert np.isnan(X).any()
    mean, cov = _em(X, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = _fit(X)
    ours = _observed_nll(X, model.mean_, model.covariance_)
    reference = _observed_nll(X, mean, cov)
    assert abs(ours - reference) <= 1e-9
    assert_allclose(model.objective_, ours, rtol=1e-11)


# ---------------------------------------------------------------------------
# Convergence: no warning at the optimum, a warning when really short
# ---------------------------------------------------------------------------

# Two classic small data sets with missing values, as shipped with the CRAN
# package mvnmle (data/apple.rda, data/missvals.rda, version 0.1-11.2).
# apple: hundreds of apples on 18 trees and the percentage of wormy apples
# (12 trees), from Snedecor and Cochran (1972), Statistical Methods, 6th ed.,
# via Little and Rubin (1987), Statistical Analysis with Missing Data.
APPLE = np.array(
    [[8, 59], [6, 58], [11, 56], [22, 53], [14, 50], [17, 45], [18, 43]]
    + [[24, 42], [19, 39], [23, 38], [26, 30], [40, 27]]
    + [[4, np.nan], [4, np.nan], [5, np.nan], [6, np.nan], [8, np.nan]]
    + [[10, np.nan]],
    dtype=float,
)
# missvals: 13 rows, 5 variables (Hald's cement data) with entries removed,
# from Draper and Smith (1966), Applied Regression Analysis, via Little and
# Rubin (1987).
_ = np.nan
MISSVALS = np.array(
    [
        [7, 26, 6, 60, 78.5],
        [1, 29, 15, 52, 74.3],
        [11, 56, 8, 20, 104.3],
        [11, 31, 8, 47, 87.6],
        [7, 52, 6, 33, 95.9],
        [11, 55, 9, 22, 109.2],
        [3, 71, 17, _, 102.7],
        [1, 31, 22, _, 72.5],
        [2, 54, 18, _, 93.1],
        [_, _, 4, _, 115.9],
        [_, _, 23, _, 83.8],
        [_, _, 9, _, 113.3],
        [_, _, 8, _, 109.4],
    ]
)


def _sparse_column(rng, n, d, rate):
    """MCAR data whose last feature is observed in about 2% of the rows."""
    X = _mcar(rng, n, d, rate, cond=100.0)
    X[rng.rand(n) > 0.02, -1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    return X


def em_step(groups, n, mean, cov):
    """One EM step for the normal from per-pattern sums: ``groups`` holds
    (observed mask, row count, sum of rows, sum of products) of each
    missingness pattern, on its observed entries. Returns the new mean and
    (symmetrised) covariance."""
    d = mean.shape[0]
    first = np.zeros(d)
    second = np.zeros((d, d))
    for o, count, s1, s2 in groups:
        m = ~o
        reg = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
        shift = mean[m] - reg @ mean[o]
        # E[x_m | x_o] = shift + reg x_o, summed over the pattern's rows.
        e1 = np.empty(d)
        e1[o], e1[m] = s1, count * shift + reg @ s1
        e2 = np.empty((d, d))
        e2[np.ix_(o, o)] = s2
        e2[np.ix_(m, o)] = np.outer(shift, s1) + reg @ s2
        e2[np.ix_(o, m)] = e2[np.ix_(m, o)].T
        e2[np.ix_(m, m)] = (
            count * np.outer(shift, shift)
            + np.outer(shift, reg @ s1)
            + np.outer(reg @ s1, shift)
            + reg @ s2 @ reg.T
            + count * (cov[np.ix_(m, m)] - reg @ cov[np.ix_(o, m)])
        )
        first += e1
        second += e2
    new_mean = first / n
    new_cov = second / n - np.outer(new_mean, new_mean)
    return new_mean, 0.5 * (new_cov + new_cov.T)


def _em_by_pattern(X, tol=1e-12, max_iter=200000):
    """Plain EM on per-pattern sums (the E-step of a pattern is linear in its
    rows' sum and sum of products), stopped when no parameter changes by more
    than ``tol``."""
    obs = ~np.isnan(X)
    keys, inverse = np.unique(obs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    groups = []
    for p, o in enumerate(keys):
        rows = X[np.ix_(inverse == p, o)]
        groups.append((o, rows.shape[0], rows.sum(axis=0), rows.T @ rows))
    n = X.shape[0]
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0))
    for _ in range(max_iter):
        new_mean, new_cov = em_step(groups, n, mean, cov)
        change = max(np.abs(new_mean - mean).max(), np.abs(new_cov - cov).max())
        mean, cov = new_mean, new_cov
        if change < tol:
            return mean, cov
    raise AssertionError("EM reference did not converge")


def test_em_by_pattern_equals_rowwise_em():
    X = _mcar(np.random.RandomState(3), 150, 4, 0.3)
    for a, b in zip(_em_by_pattern(X), _em(X), strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def _assert_fit_is_the_mle(X):
    """No ConvergenceWarning, and the log-likelihood of plain EM (run to a
    change below 1e-12) to 1e-10 per sample, or better."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = _fit(X)
    assert model.converged_
    mean, cov = _em_by_pattern(X, tol=1e-12)
    ours = _observed_nll(X, model.mean_, model.covariance_)
    assert ours <= _observed_nll(X, mean, cov) + 1e-10
    return model


@pytest.mark.parametrize("name", ["apple", "missvals"])
def test_mvnmle_data_sets_converge_without_warning(name):
    X = {"apple": APPLE, "missvals": MISSVALS}[name]
    model = _assert_fit_is_the_mle(X)
    # The gradient at the solution is far below tol (Newton steps finish).
    assert model.history_[-1][1] <= 1e-8


@pytest.mark.parametrize(
    "make, n, d, rate, seed",
    [
        (_mcar, 120, 8, 0.3, 0),
        (_mcar, 200, 12, 0.25, 1),
        (_mar, 300, 10, 0.2, 2),
        (_monotone, 200, 5, 0.3, 3),
        (_monotone, 300, 8, 0.3, 4),
        (_monotone, 400, 20, 0.05, 5),
        (_sparse_column, 2000, 4, 0.05, 6),
    ],
)
def test_random_data_sets_converge_without_warning(make, n, d, rate, seed):
    rng = np.random.RandomState(seed)
    X = make(rng, n, d, rate)
    X = X[~np.isnan(X).all(axis=1)]
    _assert_fit_is_the_mle(X)


def test_max_iter_far_from_the_optimum_warns():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = GradientGaussian(max_iter=3).fit(MISSVALS)
    assert not model.converged_
    assert model.n_iter_ <= 3


def test_unbounded_monotone_likelihood_warns():
    """Monotone data whose last feature is observed in fewer rows than there
    are features: the likelihood has no maximum."""
    rng = np.random.RandomState(0)
    d = 8
    X = rng.multivariate_normal(np.zeros(d), _random_cov(rng, d), size=200)
    X[5:, -1] = np.nan
    with pytest.warns(ConvergenceWarning, match="shrinkage > 0"):
        model = GradientGaussian().fit(X)
    assert np.linalg.eigvalsh(model.covariance_)[0] < 1e-6
