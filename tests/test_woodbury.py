"""The factor model S = W W^T + diag(psi): Woodbury maths, gradients and fits."""

import warnings

import numpy as np
import pytest
from _factor_reference import fit_factor_model
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from sklearn_mvn._data.patterns import PatternStats
from sklearn_mvn._data.stats import SufficientStats
from sklearn_mvn._likelihoods.normal_factor import (
    DataPass,
    PatternObjective,
    nll_grad_data,
    nll_grad_patterns,
    nll_grad_stats,
)
from sklearn_mvn._linalg import LOG_2PI
from sklearn_mvn._representations.low_rank import (
    LowRankPlusDiagonal,
    canonical_rotation,
    heywood_features,
    n_free_parameters,
)

# ---------------------------------------------------------------------------
# Data and dense references
# ---------------------------------------------------------------------------


def _params(rng, d, k):
    return (
        rng.standard_normal(d),
        rng.standard_normal((d, k)),
        rng.uniform(0.3, 2.0, d),
    )


def _factor_data(rng, n, d, k, scales=None, offset=0.0):
    W = rng.standard_normal((d, k))
    psi = rng.uniform(0.2, 2.0, d)
    X = rng.standard_normal((n, k)) @ W.T + rng.standard_normal((n, d)) * np.sqrt(psi)
    if scales is not None:
        X *= scales
    return X + offset


def _with_missing(rng, X, rate):
    X = X.copy()
    X[rng.random(X.shape) < rate] = np.nan
    empty = np.isnan(X).all(axis=1)
    X[empty, 0] = rng.standard_normal(int(empty.sum()))
    return X


def _dense_seed(X, w, mu, W, psi):
    """NLL and gradients by the seed's formulas with Lambda = [W | diag(sqrt psi)].

    Rows may have NaN: each contributes the seed's terms of its observed block
    (Lambda_o = the observed rows of Lambda), scattered into the full arrays.
    """
    d, k = W.shape
    lam = np.hstack([W, np.diag(np.sqrt(psi))])
    value = 0.0
    grad_mu = np.zeros(d)
    grad_lam = np.zeros_like(lam)
    for x, wi in zip(X, w, strict=True):
        o = ~np.isnan(x)
        lo = lam[o]
        S = lo @ lo.T
        P = np.linalg.inv(S)
        r = x[o] - mu[o]
        value += wi * 0.5 * (o.sum() * LOG_2PI + np.linalg.slogdet(S)[1] + r @ P @ r)
        # eq. (9) and (7) + (14), with J = C + (J1 + J2) / 2
        grad_mu[o] -= wi * P @ r
        Pr = P @ r
        grad_lam[o] += wi * (P @ lo - np.outer(Pr, Pr) @ lo)
    grad_W = grad_lam[:, :k]
    # Lambda_jj = sqrt(psi_j): dJ/dpsi_j = dJ/dLambda_jj / (2 sqrt(psi_j))
    grad_psi = np.diag(grad_lam[:, k:]) / (2.0 * np.sqrt(psi))
    return value, grad_mu, grad_W, grad_psi


def _finite_differences(func, mu, W, psi, eps=1e-6):
    """Central differences of func(mu, W, psi) -> value."""
    out = []
    for which, arr in enumerate((mu, W, psi)):
        grad = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = [mu.copy(), W.copy(), psi.copy()]
            args[which][idx] += eps
            up = func(*args)
            args[which][idx] -= 2 * eps
            down = func(*args)
            grad[idx] = (up - down) / (2 * eps)
        out.append(grad)
    return out


# ---------------------------------------------------------------------------
# The covariance
# ---------------------------------------------------------------------------


def test_dense_forms_and_solves():
    rng = np.random.default_rng(0)
    mu, W, psi = _params(rng, 9, 3)
    cov = LowRankPlusDiagonal(W, psi)
    S = W @ W.T + np.diag(psi)
    assert_allclose(cov.covariance(), S, rtol=1e-14)
    assert_allclose(cov.precision(), np.linalg.inv(S), rtol=1e-10, atol=1e-12)
    assert_allclose(cov.logdet, np.linalg.slogdet(S)[1], rtol=1e-13)
    B = rng.standard_normal((9, 4))
    assert_allclose(cov.solve(B), np.linalg.solve(S, B), rtol=1e-10, atol=1e-12)
    assert_allclose(cov.solve(B[:, 0]), np.linalg.solve(S, B[:, 0]), rtol=1e-10)
    assert cov.n_features == 9 and cov.n_factors == 3


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_log_density_matches_scipy(chunk_size):
    rng = np.random.default_rng(1)
    mu, W, psi = _params(rng, 6, 2)
    X = rng.standard_normal((40, 6)) * 3 + 10
    cov = LowRankPlusDiagonal(W, psi)
    ref = multivariate_normal(mu, cov.covariance()).logpdf(X)
    assert_allclose(cov.log_density(X, mu, chunk_size), ref, rtol=1e-12)
    P = np.linalg.inv(cov.covariance())
    maha = np.einsum("ij,jk,ik->i", X - mu, P, X - mu)
    assert_allclose(cov.squared_mahalanobis(X, mu, chunk_size), maha, rtol=1e-11)


def test_marginal_conditional_and_missing_density():
    rng = np.random.default_rng(2)
    d = 8
    mu, W, psi = _params(rng, d, 3)
    cov = LowRankPlusDiagonal(W, psi)
    S = cov.covariance()
    X = _with_missing(rng, rng.standard_normal((60, d)) * 2 + mu, 0.4)
    obs = np.array([0, 3, 5])
    assert_allclose(cov.marginal(obs).covariance(), S[np.ix_(obs, obs)])
    filled = cov.conditional_mean(X, mu, chunk_size=7)
    dens = cov.marginal_log_density(X, mu, chunk_size=5)
    maha = cov.marginal_squared_mahalanobis(X, mu, chunk_size=11)
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        m = ~o
        r = x[o] - mu[o]
        Soo = S[np.ix_(o, o)]
        expected = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(Soo, r)
        assert_allclose(filled[i, m], expected, rtol=1e-10, atol=1e-12)
        assert_array_equal(filled[i, o], x[o])
        ref = multivariate_normal(mu[o], Soo).logpdf(x[o])
        assert_allclose(dens[i], ref, rtol=1e-11)
        assert_allclose(maha[i], r @ np.linalg.solve(Soo, r), rtol=1e-10)
    # Complete rows are untouched by the conditional mean.
    complete = ~np.isnan(X).any(axis=1)
    assert_array_equal(filled[complete], X[complete])


def test_sample_moments():
    rng = np.random.default_rng(3)
    mu, W, psi = _params(rng, 5, 2)
    cov = LowRankPlusDiagonal(W, psi)
    draws = cov.sample(200_000, mu, 0)
    assert draws.shape == (200_000, 5)
    scale = np.sqrt(np.diag(cov.covariance()))
    # Standard errors of the mean and covariance are about 0.2% of the scale.
    assert_allclose(draws.mean(axis=0), mu, atol=0.02 * scale.max())
    assert_allclose(np.cov(draws.T), cov.covariance(), atol=0.03 * scale.max() ** 2)
    # The same seed gives the same draws.
    assert_array_equal(cov.sample(3, mu, 7), cov.sample(3, mu, 7))


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="positive"):
        LowRankPlusDiagonal(np.ones((3, 1)), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        LowRankPlusDiagonal(np.ones((3, 1)), np.ones(2))


@pytest.mark.parametrize("d, k", [(5, 1), (6, 2), (7, 3), (9, 4)])
def test_free_parameter_count_is_the_rank_of_the_jacobian(d, k):
    # The number of free parameters of W W^T + diag(psi) is the rank of the
    # Jacobian of the map (W, psi) -> S at a generic point.
    rng = np.random.default_rng(d * 10 + k)
    W = rng.standard_normal((d, k))
    rows, cols = np.tril_indices(d)
    columns = []
    for j, a in np.ndindex(d, k):
        dW = np.zeros((d, k))
        dW[j, a] = 1.0
        dS = dW @ W.T + W @ dW.T
        columns.append(dS[rows, cols])
    for j in range(d):
        dS = np.zeros((d, d))
        dS[j, j] = 1.0
        columns.append(dS[rows, cols])
    rank = np.linalg.matrix_rank(np.array(columns).T)
    assert n_free_parameters(d, k) == rank == d * k + d - k * (k - 1) // 2


def test_canonical_rotation():
    rng = np.random.default_rng(4)
    _, W, psi = _params(rng, 10, 3)
    C = canonical_rotation(W, psi)
    assert_allclose(C @ C.T, W @ W.T, rtol=1e-12, atol=1e-12)
    V = C / np.sqrt(psi)[:, None]
    gram = V.T @ V
    norms = np.diag(gram)
    assert_allclose(gram - np.diag(norms), 0.0, atol=1e-10 * norms.max())
    assert np.all(np.diff(norms) < 0)
    # Sign convention: the largest whitened entry of each column is positive.
    assert np.all(V[np.argmax(np.abs(V), axis=0), np.arange(3)] > 0)
    # Any rotation (and reflection) of W has the same canonical form.
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert_allclose(canonical_rotation(W @ Q, psi), C, rtol=1e-10, atol=1e-12)
    assert_allclose(LowRankPlusDiagonal(W, psi).canonical().components, C)


def test_heywood_features():
    psi = np.array([1.0, 1e-6, 0.5, 1.0000001e-6])
    assert_array_equal(heywood_features(psi, 1e-6), [1, 3])
    assert heywood_features(psi, 1e-8).size == 0


# ---------------------------------------------------------------------------
# Gradients: the seed with a rectangular Lambda, and finite differences
# ---------------------------------------------------------------------------


def _three_forms(X, w, mu, W, psi):
    stats = SufficientStats.from_array(X, w)
    return {
        "stats": nll_grad_stats(stats, mu, W, psi),
        "data": nll_grad_data(X, mu, W, psi, w, chunk_size=7),
        "patterns": nll_grad_patterns(PatternStats.from_array(X, w), mu, W, psi),
    }


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_gradients_match_the_seed_with_rectangular_lambda(weighted, offset):
    rng = np.random.default_rng(5)
    n, d, k = 30, 6, 2
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + offset
    w = rng.uniform(0.2, 3.0, n) if weighted else np.ones(n)
    mu, W, psi = _params(rng, d, k)
    mu = mu + offset
    ref = _dense_seed(X, w, mu, W, psi)
    for name, out in _three_forms(X, w if weighted else None, mu, W, psi).items():
        for got, expected in zip(out, ref, strict=True):
            assert_allclose(
                got,
                expected,
                rtol=1e-9,
                atol=1e-9 * np.max(np.abs(expected)),
                err_msg=name,
            )


def test_data_pass_uses_both_shift_branches():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((50, 4))
    assert DataPass(X).shift is None
    assert DataPass(X + 100.0).shift is not None
    mu, W, psi = _params(rng, 4, 2)
    a = DataPass(X)(mu, W, psi)
    b = DataPass(X + 100.0)(mu + 100.0, W, psi)
    for got, expected in zip(b, a, strict=True):
        assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("outlier", [0.0, 1e4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_data_pass_moments_and_probe_product(outlier, weighted, offset):
    # Sums are taken around the first row; an outlying first row (about 20
    # standard deviations from the mean) takes the second, centred pass. The
    # offset makes the products centre each chunk (DataPass.shift).
    rng = np.random.default_rng(14)
    X = _factor_data(rng, 400, 6, 2, scales=rng.uniform(0.1, 10.0, 6), offset=offset)
    X[0] += outlier * X.std(axis=0)
    w = rng.uniform(0.2, 3.0, 400) if weighted else None
    probe = rng.standard_normal((6, 3))
    data = DataPass(X, w, chunk_size=37, probe=probe)
    if outlier == 0.0:
        assert (data.shift is None) == (offset == 0.0)
    weights = np.ones(400) if w is None else w
    mean = weights @ X / weights.sum()
    centred = X - mean
    cov = (centred * weights[:, np.newaxis]).T @ centred / weights.sum()
    assert_allclose(data.center, mean, rtol=1e-12)
    assert_allclose(data.second, weights @ centred**2, rtol=1e-12)
    assert_allclose(data.variance, np.diag(cov), rtol=1e-12)
    assert_allclose(data.first, 0.0, atol=1e-10 * np.abs(X).max() * weights.sum())
    assert_allclose(data.probe_product, cov @ probe, rtol=1e-10, atol=1e-12)
    assert_allclose(data.covariance_products(probe), cov @ probe, rtol=1e-10)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(7)
    n, d, k = 25, 5, 2
    X = rng.standard_normal((n, d)) + 1.0
    Xm = _with_missing(rng, X, 0.3)
    mu, W, psi = _params(rng, d, k)
    stats = SufficientStats.from_array(X)
    pstats = PatternStats.from_array(Xm)
    cases = {
        "stats": lambda *p: nll_grad_stats(stats, *p),
        "data": lambda *p: nll_grad_data(X, *p, chunk_size=4),
        "patterns": lambda *p: nll_grad_patterns(pstats, *p),
    }
    for name, func in cases.items():
        _, *grads = func(mu, W, psi)
        numeric = _finite_differences(lambda *p, func=func: func(*p)[0], mu, W, psi)
        for got, expected in zip(grads, numeric, strict=True):
            assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("offset", [3.0, 1e4])
def test_missing_objective_matches_dense_seed(offset):
    rng = np.random.default_rng(8)
    X = _with_missing(rng, _factor_data(rng, 80, 7, 2, offset=offset), 0.35)
    w = rng.uniform(0.5, 2.0, 80)
    mu, W, psi = _params(rng, 7, 2)
    mu += offset
    ref = _dense_seed(X, w, mu, W, psi)
    # Small chunks: the rows of several chunks and patterns.
    objective = PatternObjective(PatternStats.from_array(X, w), chunk_size=3)
    for got, expected in zip(objective(mu, W, psi), ref, strict=True):
        assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------
# Fits against scikit-learn's FactorAnalysis
# ---------------------------------------------------------------------------


def _loglik(fit, X):
    return float(np.mean(fit.covariance.log_density(X, fit.mean)))


@pytest.mark.parametrize("path", ["stats", "data"])
@pytest.mark.parametrize(
    "n, d, k, seed",
    [
        (400, 8, 1, 1),
        (600, 12, 3, 2),
        (300, 20, 4, 0),
        (1000, 10, 2, 1),
        (500, 30, 2, 0),
    ],
)
def test_fit_matches_factor_analysis(path, n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = _factor_data(rng, n, d, k, scales=rng.uniform(0.5, 2.0, d), offset=3.0)
    with warnings.catch_warnings():
        # FactorAnalysis must reach its tolerance for the comparison.
        warnings.simplefilter("error", ConvergenceWarning)
        fa = FactorAnalysis(k, svd_method="lapack", tol=1e-12, max_iter=10000).fit(X)
    fit = fit_factor_model(X, k, path=path)
    assert fit.converged, fit.message
    ours, theirs = _loglik(fit, X), fa.score(X)
    # As high as FactorAnalysis's (to round-off), and the same to 1e-6.
    assert ours >= theirs - 1e-10
    assert abs(ours - theirs) <= 1e-6
    cov_fa = fa.get_covariance()
    scale = np.sqrt(np.outer(np.diag(cov_fa), np.diag(cov_fa)))
    assert_allclose(fit.covariance.covariance() / scale, cov_fa / scale, atol=1e-5)
    assert_allclose(
        fit.noise_variance / np.diag(cov_fa),
        fa.noise_variance_ / np.diag(cov_fa),
        atol=1e-5,
    )
    # FactorAnalysis's components_ are canonical too (up to the signs).
    signs = np.sign(np.sum(fit.components * fa.components_.T, axis=0))
    unit = np.sqrt(np.diag(cov_fa))[:, None]
    assert_allclose(fit.components * signs / unit, fa.components_.T / unit, atol=1e-4)
    assert_allclose(fit.mean, X.mean(axis=0), rtol=1e-12)


def test_fit_beats_factor_analysis_where_it_stalls():
    # On these data FactorAnalysis's EM has not converged after 10000
    # iterations; the gradient fit converges and its likelihood is higher.
    n, d, k = 400, 8, 1
    rng = np.random.default_rng(0)
    X = _factor_data(rng, n, d, k, scales=rng.uniform(0.5, 2.0, d), offset=3.0)
    with pytest.warns(ConvergenceWarning):
        fa = FactorAnalysis(k, svd_method="lapack", tol=1e-12, max_iter=10000).fit(X)
    fit = fit_factor_model(X, k)
    assert fit.converged, fit.message
    assert _loglik(fit, X) >= fa.score(X) - 1e-10


def test_fit_is_scale_equivariant():
    rng = np.random.default_rng(12)
    X = _factor_data(rng, 300, 7, 2)
    scales = rng.uniform(1e-3, 1e3, 7)
    a = fit_factor_model(X, 2)
    b = fit_factor_model(X * scales + 1e4, 2)
    assert_allclose(b.mean, a.mean * scales + 1e4, rtol=1e-12)
    assert_allclose(b.noise_variance, a.noise_variance * scales**2, rtol=1e-5)
    assert_allclose(b.components / scales[:, None], a.components, atol=1e-5)
    assert_allclose(b.objective, a.objective + np.sum(np.log(scales)), rtol=1e-10)


def test_paths_agree_and_integer_weights_repeat_rows():
    rng = np.random.default_rng(12)
    X = _factor_data(rng, 150, 6, 2)
    counts = rng.integers(0, 4, 150)
    repeated = np.repeat(X, counts, axis=0)
    ref = fit_factor_model(repeated, 2, path="stats")
    assert ref.converged and ref.heywood.size == 0
    for path in ["stats", "data"]:
        fit = fit_factor_model(X, 2, sample_weight=counts.astype(float), path=path)
        assert_allclose(
            fit.covariance.covariance(),
            ref.covariance.covariance(),
            rtol=1e-6,
            atol=1e-7,
        )
        assert_allclose(fit.mean, ref.mean, rtol=1e-10)
        assert_allclose(fit.objective, ref.objective, rtol=1e-10)
    # Complete data given as per-pattern statistics (one pattern) fit the same.
    fit = fit_factor_model(stats=PatternStats.from_array(repeated), n_factors=2)
    assert_allclose(
        fit.covariance.covariance(), ref.covariance.covariance(), rtol=1e-6, atol=1e-7
    )
    assert_allclose(fit.mean, ref.mean, atol=1e-6)


def test_heywood_case_is_detected():
    rng = np.random.default_rng(10)
    n = 500
    z = rng.standard_normal((n, 1))
    X = z @ rng.uniform(0.5, 1.5, (1, 6)) + 0.5 * rng.standard_normal((n, 6))
    X[:, 2] = 3.0 * z[:, 0]  # exactly one factor: no noise
    fit = fit_factor_model(X, 1)
    assert_array_equal(fit.heywood, [2])
    assert fit.converged, fit.message


# ---------------------------------------------------------------------------
# Missing values: an independent EM for factor analysis with missing data
# ---------------------------------------------------------------------------


def _em_step(X, mu, W, psi):
    """One EM step of factor analysis with missing entries (dense, by pattern).

    Hidden: the missing entries and the factors z, jointly normal with the
    observed entries: (x, z) ~ N((mu, 0), [[S, W], [W^T, I]]). The M-step
    regresses x on (z, 1): [W, mu] = E[x z~^T] E[z~ z~^T]^{-1}, and psi is the
    mean expected squared residual.
    """
    n, d = X.shape
    k = W.shape[1]
    S = W @ W.T + np.diag(psi)
    joint = np.block([[S, W], [W.T, np.eye(k)]])
    jmean = np.concatenate([mu, np.zeros(k)])
    sxz = np.zeros((d, k + 1))
    szz = np.zeros((k + 1, k + 1))
    sxx = np.zeros(d)
    observed = ~np.isnan(X)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    for p, o in enumerate(patterns):
        rows = X[inverse.ravel() == p]
        hid = np.concatenate([~o, np.ones(k, dtype=bool)])
        obs = np.concatenate([o, np.zeros(k, dtype=bool)])
        gain = joint[np.ix_(hid, obs)] @ np.linalg.inv(joint[np.ix_(obs, obs)])
        cond_cov = joint[np.ix_(hid, hid)] - gain @ joint[np.ix_(obs, hid)]
        cond_mean = jmean[hid] + (rows[:, o] - mu[o]) @ gain.T
        y = np.zeros((rows.shape[0], d + k))
        y[:, obs] = rows[:, o]
        y[:, hid] = cond_mean
        extra = np.zeros((d + k, d + k))
        extra[np.ix_(hid, hid)] = cond_cov
        second = y.T @ y + rows.shape[0] * extra
        ones = np.ones(rows.shape[0])
        sxz[:, :k] += second[:d, d:]
        sxz[:, k] += ones @ y[:, :d]
        szz[:k, :k] += second[d:, d:]
        szz[:k, k] += ones @ y[:, d:]
        szz[k, k] += rows.shape[0]
        sxx += np.diag(second)[:d]
    szz[k, :k] = szz[:k, k]
    lam = sxz @ np.linalg.inv(szz)
    psi = (sxx - np.sum(lam * sxz, axis=1)) / n
    return lam[:, k], lam[:, :k], psi


def _observed_loglik(X, mu, W, psi):
    return float(np.mean(LowRankPlusDiagonal(W, psi).marginal_log_density(X, mu)))


def test_missing_fit_matches_independent_em():
    rng = np.random.default_rng(11)
    d, k = 6, 2
    X = _with_missing(rng, _factor_data(rng, 300, d, k, offset=2.0), 0.2)
    fit = fit_factor_model(X, k)
    assert fit.converged, fit.message
    ours = _observed_loglik(X, fit.mean, fit.components, fit.noise_variance)
    # Our optimum is a fixed point of the EM map (a stationary point).
    mu, W, psi = _em_step(X, fit.mean, fit.components, fit.noise_variance)
    S_ours = fit.covariance.covariance()
    S_em = W @ W.T + np.diag(psi)
    assert_allclose(mu, fit.mean, atol=1e-6)
    assert_allclose(S_em, S_ours, atol=1e-6)
    # EM from its own start (mean-imputed PPCA-free start: unit loadings)
    # increases the likelihood monotonically towards ours, never above it.
    mu = np.nanmean(X, axis=0)
    W = np.full((d, k), 0.5) + 0.1 * np.arange(d * k).reshape(d, k) / (d * k)
    psi = np.nanvar(X, axis=0)
    previous = -np.inf
    for _ in range(400):
        mu, W, psi = _em_step(X, mu, W, psi)
        current = _observed_loglik(X, mu, W, psi)
        assert current >= previous - 1e-12
        previous = current
    assert current <= ours + 1e-10
    assert abs(current - ours) < 1e-6
    assert_allclose(W @ W.T + np.diag(psi), S_ours, atol=1e-4)


# ---------------------------------------------------------------------------
# Memory: no n x d temporary in the chunked passes
# ---------------------------------------------------------------------------


def test_chunked_passes_allocate_far_less_than_x():
    import tracemalloc

    rng = np.random.default_rng(13)
    X = rng.standard_normal((4000, 300)) + 100.0  # centred into a buffer
    mu, W, psi = _params(rng, 300, 3)
    data = DataPass(X, chunk_size=64)
    assert data.shift is not None
    cov = LowRankPlusDiagonal(W, psi)
    tracemalloc.start()
    try:
        data(mu, W, psi)
        cov.log_density(X, mu, chunk_size=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One chunk is 64 / 4000 = 1.6% of X.
    assert peak < 0.1 * X.nbytes
