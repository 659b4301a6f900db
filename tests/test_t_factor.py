"""GradientStudentT(covariance_type='factor'): the t with W W^T + diag(psi).

The references are written here on dense matrices (``S = W W^T +
diag(psi)`` formed, ``numpy.linalg`` solves and log-determinants), with no
code of the package: the log-likelihood, its finite differences, and a
direct ``scipy.optimize`` fit of the same model.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.special import digamma, gammaln
from scipy.stats import multivariate_t

from sklearn_mvn import GradientGaussian, GradientStudentT
from sklearn_mvn._likelihoods.student_t_factor import t_factor_objective, t_factor_sums

# ---------------------------------------------------------------------------
# Dense references
# ---------------------------------------------------------------------------


def _dense_loglik(X, mean, W, psi, df, weights=None):
    """Sum of w_i log t(x_i) on the observed entries of each row (dense S)."""
    S = W @ W.T + np.diag(psi)
    weights = np.ones(X.shape[0]) if weights is None else weights
    total = 0.0
    observed = ~np.isnan(X)
    patterns, owner = np.unique(observed, axis=0, return_inverse=True)
    for p, o in enumerate(patterns):
        rows = owner.ravel() == p
        r = X[rows][:, o] - mean[o]
        S_oo = S[np.ix_(o, o)]
        delta = np.einsum("ij,ij->i", r, np.linalg.solve(S_oo, r.T).T)
        k = o.sum()
        logpdf = (
            gammaln(0.5 * (df + k))
            - gammaln(0.5 * df)
            - 0.5 * k * np.log(df * np.pi)
            - 0.5 * np.linalg.slogdet(S_oo)[1]
            - 0.5 * (df + k) * np.log1p(delta / df)
        )
        total += float(weights[rows] @ logpdf)
    return total


def _factor_t_data(n=400, d=6, k=2, df=4.0, seed=0, missing=0.0):
    rng = np.random.RandomState(seed)
    W = rng.randn(d, k)
    psi = 0.3 + rng.rand(d)
    mean = rng.randn(d)
    X = multivariate_t(mean, W @ W.T + np.diag(psi), df=df).rvs(n, random_state=rng)
    if missing:
        X[rng.rand(n, d) < missing] = np.nan
        empty = np.isnan(X).all(axis=1)
        X[empty, 0] = mean[0]
    return X, mean, W, psi


def _reference_fit(X, k, df=None, weights=None):
    """Direct scipy.optimize (BFGS, numerical gradient) of the dense t
    log-likelihood over (mu, W, log psi[, log df]), from the sample moments."""
    n, d = X.shape
    weights = np.ones(n) if weights is None else weights
    mean0 = np.nanmean(X, axis=0)
    cov0 = np.diag(np.nanvar(X, axis=0))
    vals, vecs = np.linalg.eigh(np.cov(np.where(np.isnan(X), mean0, X).T))
    W0 = vecs[:, -k:] * np.sqrt(vals[-k:] * 0.5)
    psi0 = np.maximum(np.diag(cov0) - np.sum(W0**2, axis=1), 0.1 * np.diag(cov0))
    theta0 = np.concatenate([mean0, W0.ravel(), np.log(psi0)])
    if df is None:
        theta0 = np.append(theta0, np.log(5.0))
    total = weights.sum()

    def unpack(theta):
        mean = theta[:d]
        W = theta[d : d + d * k].reshape(d, k)
        psi = np.exp(theta[d + d * k : 2 * d + d * k])
        nu = np.exp(theta[-1]) if df is None else df
        return mean, W, psi, nu

    def fun(theta):
        return -_dense_loglik(X, *unpack(theta), weights) / total

    res = minimize(fun, theta0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    res = minimize(fun, res.x, method="BFGS", options={"gtol": 1e-10})
    return -res.fun, unpack(res.x)


def _params(model):
    return model.components_.T, model.noise_variance_


# ---------------------------------------------------------------------------
# The data pass: value and gradients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_value_and_gradients_match_dense_finite_differences(missing):
    X, mean, W, psi = _factor_t_data(n=60, d=5, k=2, missing=missing, seed=1)
    rng = np.random.RandomState(2)
    weights = rng.rand(X.shape[0]) + 0.2
    mean = mean + 0.1 * rng.randn(5)
    W = W + 0.1 * rng.randn(5, 2)
    df = 3.7
    sums = t_factor_sums(X, mean, (W, psi), df, weights, chunk_size=7)
    value, g_mu, (g_W, g_psi), g_df = t_factor_objective(sums, (W, psi))

    def J(mu, W_, psi_, nu):
        return -_dense_loglik(X, mu, W_, psi_, nu, weights)

    assert_allclose(value, J(mean, W, psi, df), rtol=1e-12)
    h = 1e-6

    def central(f, x):
        out = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = h
            out[idx] = (f(x + e) - f(x - e)) / (2 * h)
        return out

    assert_allclose(g_mu, central(lambda m: J(m, W, psi, df), mean), atol=2e-6)
    assert_allclose(g_W, central(lambda w: J(mean, w, psi, df), W), atol=2e-6)
    assert_allclose(g_psi, central(lambda p: J(mean, W, p, df), psi), atol=2e-6)
    fd_df = (J(mean, W, psi, df + h) - J(mean, W, psi, df - h)) / (2 * h)
    assert_allclose(g_df, fd_df, atol=2e-6)


@pytest.mark.parametrize("offset", [0.5, 1e4])
def test_direct_pass_equals_centred_pass(offset):
    # Complete rows near the origin are read as they are (no centred copy);
    # far from it (offset 1e4) they are centred first. Both give the sums of
    # the NaN-aware pass.
    X, mean, W, psi = _factor_t_data(n=300, d=7, k=2, seed=13)
    X, mean = X + offset, mean + offset
    w = np.random.RandomState(1).rand(300)
    fast = t_factor_sums(X, mean, (W, psi), 3.0, w, chunk_size=64, nan=False)
    ref = t_factor_sums(X, mean, (W, psi), 3.0, w, chunk_size=64, nan=True)
    a = t_factor_objective(fast, (W, psi))
    b = t_factor_objective(ref, (W, psi))
    assert_allclose(a[0], b[0], rtol=1e-12)
    assert_allclose(a[1], b[1], rtol=1e-8, atol=1e-9 * np.abs(b[1]).max())
    assert_allclose(a[2][0], b[2][0], rtol=1e-8, atol=1e-9 * np.abs(b[2][0]).max())
    assert_allclose(a[2][1], b[2][1], rtol=1e-8, atol=1e-9 * np.abs(b[2][1]).max())
    assert_allclose(a[3], b[3], rtol=1e-10)
    assert_allclose(a[0], -_dense_loglik(X, mean, W, psi, 3.0, w), rtol=1e-12)


def test_sums_merge_like_one_pass():
    X, mean, W, psi = _factor_t_data(n=200, missing=0.2)
    whole = t_factor_sums(X, mean, (W, psi), 3.0)
    merged = t_factor_sums(X[:90], mean, (W, psi), 3.0).merge(
        t_factor_sums(X[90:], mean, (W, psi), 3.0)
    )
    a = t_factor_objective(whole, (W, psi))
    b = t_factor_objective(merged, (W, psi))
    assert_allclose(a[0], b[0], rtol=1e-12)
    assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-12)
    assert_allclose(a[2][0], b[2][0], rtol=1e-10, atol=1e-12)
    assert_allclose(a[3], b[3], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# The fit against the dense reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing, df", [(0.0, "auto"), (0.0, 2.5), (0.2, "auto"), (0.2, 6.0)]
)
def test_fit_matches_direct_optimisation_of_the_dense_likelihood(missing, df):
    X, _, _, _ = _factor_t_data(n=150, d=4, k=1, missing=missing, seed=3)
    model = GradientStudentT(covariance_type="factor", n_factors=1, df=df).fit(X)
    assert model.converged_
    ours = _dense_loglik(X, model.mean_, *_params(model), model.df_) / X.shape[0]
    ref, _ = _reference_fit(X, 1, None if df == "auto" else df)
    # The reference is a maximum too: ours is at least as high, within 1e-6.
    assert ours >= ref - 1e-9
    assert abs(ours - ref) < 1e-6
    assert_allclose(model.score(X), ours, rtol=1e-12)


def test_weighted_fit_matches_reference_and_repeated_rows():
    X, _, _, _ = _factor_t_data(n=80, d=4, k=1, seed=4)
    rng = np.random.RandomState(0)
    counts = rng.randint(0, 4, size=X.shape[0])
    weighted = GradientStudentT(covariance_type="factor", n_factors=1).fit(
        X, sample_weight=counts
    )
    repeated = GradientStudentT(covariance_type="factor", n_factors=1).fit(
        np.repeat(X, counts, axis=0)
    )
    assert_allclose(weighted.df_, repeated.df_, rtol=1e-6)
    assert_allclose(weighted.mean_, repeated.mean_, atol=1e-6)
    assert_allclose(weighted.shape_, repeated.shape_, atol=1e-6)
    ref, _ = _reference_fit(X, 1, weights=counts.astype(float))
    ours = _dense_loglik(
        X, weighted.mean_, *_params(weighted), weighted.df_, counts.astype(float)
    )
    assert abs(ours / counts.sum() - ref) < 1e-6


def test_large_fixed_df_approaches_the_normal_factor_model():
    X, _, _, _ = _factor_t_data(n=500, d=6, k=2, df=50.0, seed=5)
    t = GradientStudentT(covariance_type="factor", n_factors=2, df=1e8).fit(X)
    normal = GradientGaussian(covariance_type="factor", n_factors=2).fit(X)
    assert_allclose(t.mean_, normal.mean_, atol=1e-5)
    assert_allclose(t.shape_, normal.covariance_, rtol=1e-5, atol=1e-6)
    assert_allclose(t.score(X), normal.score(X), rtol=1e-6)
    assert_allclose(np.abs(t.components_), np.abs(normal.components_), atol=1e-5)


def test_penalised_fit_is_stationary_for_the_dense_penalised_objective():
    X, _, _, _ = _factor_t_data(n=121, d=5, k=2, seed=6)
    model = GradientStudentT(
        covariance_type="factor", n_factors=2, shrinkage=0.3, reg_covar=0.05, df=4.0
    ).fit(X)
    assert model.converged_
    # tau: the mean squared robust scale (1.4826 MAD; n odd, so the median is
    # a data value).
    mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    alpha, tau = 0.3, float(np.mean((1.4826 * mad) ** 2))
    c = alpha * tau + 0.05
    n = X.shape[0]

    def objective(W, psi, mean=model.mean_):
        S = W @ W.T + np.diag(psi)
        return (1 - alpha) * -_dense_loglik(X, mean, W, psi, 4.0) / n + 0.5 * (
            alpha * np.linalg.slogdet(S)[1] + c * np.trace(np.linalg.inv(S))
        )

    W, psi = _params(model)
    assert_allclose(model.objective_, objective(W, psi), rtol=1e-10)
    h = 1e-6
    for j in range(5):
        e = np.zeros(5)
        e[j] = h
        fd = (objective(W, psi + e) - objective(W, psi - e)) / (2 * h)
        assert abs(fd) < 1e-6
        E = np.zeros_like(W)
        E[j, 0] = h
        fd = (objective(W + E, psi) - objective(W - E, psi)) / (2 * h)
        assert abs(fd) < 1e-6


# ---------------------------------------------------------------------------
# Fitted attributes and the predict side
# ---------------------------------------------------------------------------


def test_attributes_canonical_rotation_and_parameter_count():
    X, _, _, _ = _factor_t_data(n=300, d=7, k=3, seed=7)
    model = GradientStudentT(covariance_type="factor", n_factors=3).fit(X)
    W, psi = _params(model)
    assert model.components_.shape == (3, 7)
    assert not hasattr(model, "factor_")
    V = W / np.sqrt(psi)[:, None]
    gram = V.T @ V
    assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-8 * gram.max())
    assert np.all(np.diff(np.diag(gram)) <= 0)
    assert_allclose(model.shape_, W @ W.T + np.diag(psi), rtol=1e-12)
    assert_allclose(model.precision_ @ model.shape_, np.eye(7), atol=1e-10)
    assert_allclose(
        model.covariance_, model.df_ / (model.df_ - 2) * model.shape_, rtol=1e-12
    )
    n_params = 7 + 7 * 3 + 7 - 3 + 1
    ll = model.score(X) * X.shape[0]
    assert_allclose(model.bic(X), -2 * ll + n_params * np.log(X.shape[0]))
    assert_allclose(model.aic(X), -2 * ll + 2 * n_params)
    fixed = GradientStudentT(covariance_type="factor", n_factors=3, df=4.0).fit(X)
    ll = fixed.score(X) * X.shape[0]
    assert_allclose(fixed.aic(X), -2 * ll + 2 * (n_params - 1))


def test_scores_distances_imputation_and_draws():
    X, _, _, _ = _factor_t_data(n=300, d=6, k=2, missing=0.15, seed=8)
    model = GradientStudentT(covariance_type="factor", n_factors=2).fit(X)
    S, mu, nu = model.shape_, model.mean_, model.df_
    scores = model.score_samples(X)
    dist = model.mahalanobis(X)
    filled = model.impute(X)
    for i in range(0, 300, 17):
        o = ~np.isnan(X[i])
        S_oo = S[np.ix_(o, o)]
        ref = multivariate_t(mu[o], S_oo, df=nu).logpdf(X[i, o])
        assert_allclose(scores[i], ref, rtol=1e-10)
        r = X[i, o] - mu[o]
        assert_allclose(dist[i], r @ np.linalg.solve(S_oo, r), rtol=1e-10)
        m = ~o
        expected = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(S_oo, r)
        assert_allclose(filled[i, m], expected, rtol=1e-10, atol=1e-12)
    draws = model.sample(50_000, random_state=0)
    assert_allclose(np.median(draws, axis=0), mu, atol=0.05)
    # Conditional draws of one row: their mean is the conditional mean.
    row = np.array([X[0, 0], np.nan, X[0, 2], np.nan, np.nan, 0.5])
    rows = np.repeat(row[None, :], 20_000, axis=0)
    drawn = model._conditional_draw(rows, np.random.RandomState(0))
    assert not np.isnan(drawn).any()
    expected = model.impute(row[None, :])[0]
    spread = np.sqrt(np.diag(model.covariance_))
    assert np.all(np.abs(drawn.mean(axis=0) - expected) < 0.05 * spread)


def test_warm_start_and_n_factors_validation():
    X, _, _, _ = _factor_t_data(n=300, d=6, k=2, seed=9)
    model = GradientStudentT(covariance_type="factor", n_factors=2).fit(X)
    again = GradientStudentT(covariance_type="factor", n_factors=2, warm_start=True)
    again.fit(X)
    first = again.n_iter_
    again.fit(X)
    assert again.n_iter_ <= 2 < first
    assert_allclose(again.score(X), model.score(X), rtol=1e-10)
    again.set_params(n_factors=3)
    with pytest.raises(ValueError, match="warm_start"):
        again.fit(X)
    with pytest.raises(ValueError, match="n_factors"):
        GradientStudentT(covariance_type="factor", n_factors=6).fit(X)
    # From the factor type back to 'full': a fresh start, factor_ again.
    again.set_params(covariance_type="full")
    again.fit(X)
    assert hasattr(again, "factor_") and not hasattr(again, "components_")


def test_dask_matches_numpy():
    da = pytest.importorskip("dask.array")
    X, _, _, _ = _factor_t_data(n=600, d=5, k=2, missing=0.1, seed=10)
    w = np.random.RandomState(0).rand(600)
    a = GradientStudentT(covariance_type="factor", n_factors=2).fit(X, sample_weight=w)
    b = GradientStudentT(covariance_type="factor", n_factors=2).fit(
        da.from_array(X, chunks=(150, 5)), sample_weight=da.from_array(w, chunks=150)
    )
    assert_allclose(a.df_, b.df_, rtol=1e-8)
    assert_allclose(a.shape_, b.shape_, rtol=1e-8, atol=1e-10)
    assert_allclose(
        b.score_samples(da.from_array(X, chunks=(150, 5))).compute(),
        a.score_samples(X),
        rtol=1e-10,
    )


def test_no_warning_on_regular_data():
    X, _, _, _ = _factor_t_data(n=400, d=8, k=2, missing=0.1, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = GradientStudentT(covariance_type="factor", n_factors=2).fit(X)
    assert model.converged_


def test_no_d_by_d_array_in_fit_and_predict():
    import tracemalloc

    rng = np.random.RandomState(12)
    n, d, k = 200, 3000, 2
    W = rng.randn(d, k)
    X = rng.randn(n, k) @ W.T + rng.randn(n, d)
    X /= np.sqrt(rng.chisquare(5.0, size=(n, 1)) / 5.0)
    Xm = X.copy()
    Xm[rng.rand(n, d) < 0.05] = np.nan
    model = GradientStudentT(covariance_type="factor", n_factors=k, max_iter=30)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xm)
        model.score_samples(Xm)
        model.mahalanobis(Xm)
        model.impute(Xm)
        model.sample(10, random_state=0)
        model.bic(Xm)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A d x d float64 array would take 72 MB; the data take 4.8 MB, and a
    # pass keeps a few arrays of one chunk (here all 200 rows) at a time.
    assert peak < 0.5 * d * d * 8


# ---------------------------------------------------------------------------
# A Heywood case: a noise variance at its lower bound at the optimum
# ---------------------------------------------------------------------------


def _dense_t_nll_grad(X, mean, W, psi, df):
    """Mean t NLL and its gradient in (mean, W, psi, df), dense algebra."""
    n, d = X.shape
    S = W @ W.T + np.diag(psi)
    P = np.linalg.inv(S)
    R = X - mean
    PR = R @ P
    delta = np.einsum("ij,ij->i", PR, R)
    u = (df + d) / (df + delta)
    loglik = (
        gammaln(0.5 * (df + d))
        - gammaln(0.5 * df)
        - 0.5 * d * np.log(df * np.pi)
        - 0.5 * np.linalg.slogdet(S)[1]
        - 0.5 * (df + d) * np.log1p(delta / df)
    )
    g_mean = -(u @ PR) / n
    g_S = 0.5 * P - 0.5 * (PR.T * u) @ PR / n  # d(NLL)/dS
    g_df = -np.mean(
        0.5 * digamma(0.5 * (df + d))
        - 0.5 * digamma(0.5 * df)
        - 0.5 * d / df
        - 0.5 * np.log1p(delta / df)
        + 0.5 * (df + d) * delta / (df * (df + delta))
    )
    return -loglik.mean(), g_mean, 2.0 * g_S @ W, np.diag(g_S).copy(), g_df


def _reference_t_bounded_fit(X, fixed, bound):
    """The one-factor t optimum with psi_j fixed at ``bound_j`` (j in ``fixed``).

    Independent of the estimator: L-BFGS-B with the dense analytic gradient
    over (mean, W, log psi_free, log df) from the sample moments, then damped
    Newton steps (Hessian by central differences of that gradient).
    """
    d = X.shape[1]
    free = np.setdiff1d(np.arange(d), fixed)

    def unpack(x):
        psi = np.array(bound, dtype=float)
        psi[free] = np.exp(x[2 * d : 2 * d + free.size])
        return x[:d], x[d : 2 * d].reshape(d, 1), psi, np.exp(x[-1])

    def value_grad(x):
        mean, W, psi, df = unpack(x)
        value, gm, gW, gp, gd = _dense_t_nll_grad(X, mean, W, psi, df)
        grad = np.concatenate([gm, gW.ravel(), (gp * psi)[free], [gd * df]])
        return value, grad

    vals, vecs = np.linalg.eigh(np.cov(X.T))
    W0 = vecs[:, -1] * np.sqrt(vals[-1])
    psi0 = np.maximum(X.var(axis=0) - W0**2, 0.1 * X.var(axis=0))
    x = np.concatenate([X.mean(axis=0), W0, np.log(psi0[free]), [np.log(5.0)]])
    x = minimize(
        value_grad,
        x,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12},
    ).x
    for _ in range(30):
        value, grad = value_grad(x)
        if np.max(np.abs(grad)) < 1e-11:
            break
        h = 1e-6 * np.maximum(np.abs(x), 1e-3)
        H = np.empty((x.size, x.size))
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = h[i]
            H[:, i] = (value_grad(x + e)[1] - value_grad(x - e)[1]) / (2 * h[i])
        step = -np.linalg.lstsq(0.5 * (H + H.T), grad, rcond=1e-12)[0]
        t = 1.0
        while t > 1e-8 and value_grad(x + t * step)[0] > value + 1e-4 * t * (
            grad @ step
        ):
            t /= 2
        x = x + t * step
    value, grad = value_grad(x)
    return value, unpack(x), np.max(np.abs(grad))


def _heywood_t_data(noise, n=400, seed=10):
    # Feature 2 is 3 z exactly (or plus noise far below the bound) in every
    # row, rows scaled by 1 / sqrt(chi2_5 / 5): a t with df 5 whose noise
    # variance of feature 2 goes to its lower bound.
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 1))
    X = z @ rng.uniform(0.5, 1.5, (1, 6)) + 0.5 * rng.standard_normal((n, 6))
    X[:, 2] = 3.0 * z[:, 0] + noise * rng.standard_normal(n)
    return X / np.sqrt(rng.chisquare(5, (n, 1)) / 5)


@pytest.mark.parametrize("noise", [0.0, 1e-4])
def test_heywood_t_converges_at_the_bounded_optimum(noise):
    from sklearn.exceptions import ConvergenceWarning

    X = _heywood_t_data(noise)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GradientStudentT(covariance_type="factor", n_factors=1).fit(X)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if "feature(s) [2]" in m and "Heywood" in m]
    assert model.converged_

    # The bound: 1e-6 times the squared robust spread (1.4826 MAD, lower
    # medians) of the start, computed here from the data.
    def lower_median(a):
        return np.sort(a, axis=0)[(a.shape[0] - 1) // 2]

    spread = 1.4826 * lower_median(np.abs(X - lower_median(X)))
    bound = 1e-6 * spread**2
    assert_allclose(model.noise_variance_[2], bound[2], rtol=1e-10)
    ref_value, (mean, W, psi, df), ref_grad = _reference_t_bounded_fit(X, [2], bound)
    assert ref_grad < 1e-9
    # The bound is active at the reference: the NLL decreases towards it.
    assert _dense_t_nll_grad(X, mean, W, psi, df)[3][2] > 0
    value = -_dense_loglik(X, model.mean_, *_params(model), model.df_) / X.shape[0]
    assert abs(value - ref_value) <= 1e-6
    assert value <= ref_value + 1e-9
    assert_allclose(model.df_, df, rtol=1e-4)
    W_fit, psi_fit = _params(model)
    scale = W_fit @ W_fit.T + np.diag(psi_fit)
    assert_allclose(scale, W @ W.T + np.diag(psi), rtol=1e-4, atol=1e-6)


def test_heywood_t_stopped_early_still_warns():
    from sklearn.exceptions import ConvergenceWarning

    X = _heywood_t_data(0.0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = GradientStudentT(covariance_type="factor", n_factors=1, max_iter=2).fit(
            X
        )
    assert not model.converged_
