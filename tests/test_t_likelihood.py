"""The multivariate t likelihood: densities, gradients and the ML fit."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar
from scipy.stats import multivariate_t

from sklearn_mvn import GradientStudentT
from sklearn_mvn._likelihoods.student_t import (
    DF_MAX,
    shape_penalty,
    t_log_density,
    t_mahalanobis,
    t_nll_grad,
    t_objective,
    t_sums,
)
from sklearn_mvn._representations import make_representation
from sklearn_mvn._solve.starts import start_point
from sklearn_mvn._solve.student_t import ecme_step, fit_t

# ---------------------------------------------------------------------------
# Data and references
# ---------------------------------------------------------------------------


def _problem(seed=0, n=300, d=4, df=3.5, missing=0.0):
    rng = np.random.RandomState(seed)
    a = rng.randn(d, d)
    shape = a @ a.T / d + np.eye(d)
    mean = rng.randn(d)
    X = multivariate_t(mean, shape, df=df).rvs(n, random_state=rng)
    if missing:
        X[rng.rand(n, d) < missing] = np.nan
        empty = np.isnan(X).all(axis=1)
        X[empty, 0] = rng.randn(int(empty.sum()))
    return X, mean, shape


def _reference_logpdf(X, mean, shape, df):
    """Log-density of each row's observed entries with SciPy."""
    out = np.empty(X.shape[0])
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        out[i] = multivariate_t(mean[o], shape[np.ix_(o, o)], df=df).logpdf(x[o])
    return out


def _fit(X, sample_weight=None, df="auto", covariance_type="full", tol=1e-9):
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    rep = make_representation(covariance_type, X.shape[1])
    mean0, factor0 = start_point(X, rep, sample_weight)
    nan = bool(np.isnan(X).any())

    def data_pass(mean, factor, nu):
        return t_sums(X, mean, factor, nu, sample_weight, nan=nan)

    return fit_t(
        data_pass,
        rep,
        mean0,
        factor0,
        5.0 if df == "auto" else df,
        estimate_df=df == "auto",
        data_scale=1.0 / w.sum(),
        tol=tol,
        max_iter=500,
    )


def _ecme_reference(X, w, n_iter=400):
    """ECME of Liu & Rubin (1995), written independently, with loops over the
    missingness patterns: E-step weights ``tau = (nu + d_o) / (nu + delta_o)``
    and conditional means/covariances of the missing entries, M-step for the
    location and scale (denominator the weight sum), then the observed-data
    likelihood maximised over ``nu`` (one-dimensional, bounded)."""
    n, d = X.shape
    obs = ~np.isnan(X)
    keys = [tuple(row) for row in obs]
    patterns = sorted(set(keys))
    groups = [np.array([k == p for k in keys]) for p in patterns]
    mean = np.nanmean(X, axis=0)
    shape = np.diag(np.nanvar(X, axis=0))
    df = 5.0

    def observed_terms(mean, shape):
        delta, logdet, n_obs = np.empty(n), np.empty(n), np.empty(n)
        for pat, rows in zip(patterns, groups, strict=True):
            o = np.array(pat)
            s_oo = shape[np.ix_(o, o)]
            r = X[rows][:, o] - mean[o]
            delta[rows] = np.einsum("ij,ij->i", r @ np.linalg.inv(s_oo), r)
            logdet[rows] = np.linalg.slogdet(s_oo)[1]
            n_obs[rows] = o.sum()
        return delta, logdet, n_obs

    def loglik(df, delta, logdet, n_obs):
        from scipy.special import gammaln

        terms = (
            gammaln((df + n_obs) / 2)
            - gammaln(df / 2)
            - n_obs / 2 * np.log(df * np.pi)
            - logdet / 2
            - (df + n_obs) / 2 * np.log1p(delta / df)
        )
        return float(w @ terms)

    for _ in range(n_iter):
        delta, logdet, n_obs = observed_terms(mean, shape)
        tau = (df + n_obs) / (df + delta)
        filled = np.where(obs, X, 0.0)
        cond = np.zeros((d, d))
        for pat, rows in zip(patterns, groups, strict=True):
            o = np.array(pat)
            m = ~o
            if not m.any():
                continue
            gain = shape[np.ix_(m, o)] @ np.linalg.inv(shape[np.ix_(o, o)])
            r = X[rows][:, o] - mean[o]
            sub = filled[rows]
            sub[:, m] = mean[m] + r @ gain.T
            filled[rows] = sub
            c_mm = shape[np.ix_(m, m)] - gain @ shape[np.ix_(o, m)]
            cond[np.ix_(m, m)] += w[rows].sum() * c_mm
        wt = w * tau
        mean = wt @ filled / wt.sum()
        resid = filled - mean
        shape = ((resid * wt[:, None]).T @ resid + cond) / w.sum()
        delta, logdet, n_obs = observed_terms(mean, shape)
        terms = (delta, logdet, n_obs)
        res = minimize_scalar(
            lambda s, terms=terms: -loglik(np.exp(s), *terms),
            bounds=(np.log(1e-2), np.log(1e6)),
            method="bounded",
            options={"xatol": 1e-12},
        )
        df = float(np.exp(res.x))
    delta, logdet, n_obs = observed_terms(mean, shape)
    return mean, shape, df, loglik(df, delta, logdet, n_obs) / w.sum()


# ---------------------------------------------------------------------------
# Densities and the objective
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_log_density_matches_scipy(missing):
    X, mean, shape = _problem(missing=missing)
    factor = np.linalg.cholesky(shape)
    got = t_log_density(X, mean, factor, 3.5)
    assert_allclose(got, _reference_logpdf(X, mean, shape, 3.5), rtol=0, atol=1e-11)
    # The squared distance in the shape matrix, on the observed entries.
    dist = t_mahalanobis(X, mean, factor)
    for x, dx in zip(X[:20], dist[:20], strict=True):
        o = ~np.isnan(x)
        r = x[o] - mean[o]
        assert_allclose(dx, r @ np.linalg.solve(shape[np.ix_(o, o)], r), rtol=1e-11)


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_objective_is_weighted_negative_log_likelihood(missing):
    X, mean, shape = _problem(missing=missing)
    w = np.random.RandomState(1).rand(X.shape[0])
    factor = np.linalg.cholesky(shape)
    value = t_nll_grad(X, mean, factor, 3.5, w, chunk_size=37)[0]
    assert_allclose(value, -w @ _reference_logpdf(X, mean, shape, 3.5), rtol=1e-12)


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_gradients_match_finite_differences(missing):
    X, mean, shape = _problem(seed=2, missing=missing)
    d = X.shape[1]
    w = np.random.RandomState(3).rand(X.shape[0]) * 2
    # A point away from the optimum, with a non-symmetric-looking factor.
    factor = np.linalg.cholesky(shape) * 1.3
    mean = mean + 0.2
    df = 2.7

    def value(m, f, nu):
        return t_nll_grad(X, m, f, nu, w, chunk_size=50)[0]

    _, g_mean, g_factor, g_df = t_nll_grad(X, mean, factor, df, w, chunk_size=50)
    h = 1e-6
    num_mean = [
        (value(mean + h * e, factor, df) - value(mean - h * e, factor, df)) / (2 * h)
        for e in np.eye(d)
    ]
    assert_allclose(g_mean, num_mean, rtol=1e-6, atol=1e-6)
    num_factor = np.zeros((d, d))
    for i, j in zip(*np.tril_indices(d), strict=True):
        step = np.zeros((d, d))
        step[i, j] = h
        num_factor[i, j] = (
            value(mean, factor + step, df) - value(mean, factor - step, df)
        ) / (2 * h)
    assert_allclose(np.tril(g_factor), num_factor, rtol=1e-6, atol=1e-6)
    num_df = (value(mean, factor, df + h) - value(mean, factor, df - h)) / (2 * h)
    assert_allclose(g_df, num_df, rtol=1e-6)


def test_sums_merge_like_one_pass():
    X, mean, shape = _problem(missing=0.2)
    factor = np.linalg.cholesky(shape)
    whole = t_sums(X, mean, factor, 4.0)
    head = t_sums(X[:100], mean, factor, 4.0)
    merged = head.merge(t_sums(X[100:], mean, factor, 4.0))
    pairs = zip(t_objective(whole, factor), t_objective(merged, factor), strict=True)
    for a, b in pairs:
        assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_shape_penalty_gradient():
    rng = np.random.RandomState(0)
    factor = np.tril(rng.randn(3, 3)) + 3 * np.eye(3)
    value, grad = shape_penalty(factor, 0.3, 0.7)
    sigma = factor @ factor.T
    assert_allclose(
        value,
        0.3 * 0.5 * np.linalg.slogdet(sigma)[1] + 0.35 * np.trace(np.linalg.inv(sigma)),
    )
    h = 1e-6
    for i, j in zip(*np.tril_indices(3), strict=True):
        step = np.zeros((3, 3))
        step[i, j] = h
        num = (
            shape_penalty(factor + step, 0.3, 0.7)[0]
            - shape_penalty(factor - step, 0.3, 0.7)[0]
        ) / (2 * h)
        assert_allclose(grad[i, j], num, rtol=1e-6)


# ---------------------------------------------------------------------------
# The maximum-likelihood fit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_mle_matches_independent_ecme(missing):
    X, _, _ = _problem(seed=4, n=200, d=3, df=4.0, missing=missing)
    w = np.random.RandomState(5).randint(1, 4, X.shape[0]).astype(float)
    result = _fit(X, w)
    assert result.converged
    mean, shape, df, loglik = _ecme_reference(X, w)
    ours = -result.value
    assert abs(ours - loglik) <= 1e-6
    assert ours >= loglik - 1e-10  # the gradient fit is at least as good
    assert_allclose(result.mean, mean, atol=1e-4)
    assert_allclose(result.factor @ result.factor.T, shape, atol=1e-4)
    assert_allclose(result.df, df, rtol=1e-3)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_fit_is_stationary(covariance_type, missing):
    X, _, _ = _problem(seed=6, n=400, d=4, missing=missing)
    result = _fit(X, covariance_type=covariance_type)
    assert result.converged
    sums = t_sums(X, result.mean, result.factor, result.df)
    _, g_mean, g_factor, g_df = t_objective(sums, result.factor)
    n = X.shape[0]
    # Gradient in coordinates whitened at the solution, per sample.
    assert np.max(np.abs(result.factor.T @ g_mean)) / n < 1e-7
    g_t = result.factor.T @ g_factor / n
    restricted = {
        "full": np.tril(g_t),
        "diag": np.diag(g_t),
        "spherical": np.trace(g_t),
    }[covariance_type]
    assert np.max(np.abs(restricted)) < 1e-7
    assert abs(result.df * g_df / n) < 1e-6
    if covariance_type != "full":
        assert not np.any(np.tril(result.factor, -1))
    if covariance_type == "spherical":
        assert np.ptp(np.diag(result.factor)) == 0


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_affine_equivariance(missing):
    X, _, _ = _problem(seed=7, n=300, d=3, missing=missing)
    rng = np.random.RandomState(8)
    a = rng.randn(3, 3) + 3 * np.eye(3)
    b = rng.randn(3) * 10
    # Missing entries must stay missing: an affine map mixing features would
    # spread NaN, so NaN data get a diagonal map (applied entry-wise).
    if missing:
        a = np.diag(np.diag(a))
        Y = X * np.diag(a) + b
    else:
        Y = X @ a.T + b
    fx, fy = _fit(X), _fit(Y)
    shape_x = fx.factor @ fx.factor.T
    assert_allclose(fy.mean, a @ fx.mean + b, rtol=1e-6, atol=1e-6)
    assert_allclose(fy.factor @ fy.factor.T, a @ shape_x @ a.T, rtol=1e-5, atol=1e-5)
    assert_allclose(fy.df, fx.df, rtol=1e-5)
    n_obs = (~np.isnan(X)).astype(float)
    # log-likelihood per sample shifts by the log-Jacobian of each row's
    # observed entries.
    shift = (
        np.mean(n_obs @ np.log(np.abs(np.diag(a))))
        if missing
        else np.log(abs(np.linalg.det(a)))
    )
    assert_allclose(fy.value, fx.value + shift, rtol=0, atol=1e-8)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_integer_weights_equal_repeated_rows(missing):
    X, _, _ = _problem(seed=9, n=150, d=3, missing=missing)
    w = np.random.RandomState(10).randint(0, 4, X.shape[0])
    weighted = _fit(X, w.astype(float))
    repeated = _fit(np.repeat(X, w, axis=0))
    assert_allclose(weighted.mean, repeated.mean, atol=1e-7)
    assert_allclose(weighted.factor, repeated.factor, atol=1e-7)
    assert_allclose(weighted.df, repeated.df, rtol=1e-6)
    assert_allclose(weighted.value, repeated.value, rtol=1e-10)


def test_large_df_approaches_normal_fit():
    rng = np.random.RandomState(11)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], np.diag([1.0, 4.0, 0.25]), 400)
    X = X @ np.array([[1, 0, 0], [0.5, 1, 0], [0.2, -0.3, 1]]).T
    mean, cov = X.mean(axis=0), np.cov(X.T, bias=True)
    gaps = []
    for df in (1e3, 1e5, 1e7):
        fit = _fit(X, df=df)
        assert fit.df == df
        gaps.append(np.max(np.abs(fit.factor @ fit.factor.T - cov)))
    # The gap to the normal MLE shrinks like 1 / nu.
    assert gaps[0] > 10 * gaps[1] > 100 * gaps[2]
    assert gaps[2] < 1e-5
    fit = _fit(X, df=1e7)
    assert_allclose(fit.mean, mean, atol=1e-6)


def test_gaussian_data_send_df_to_its_bound():
    rng = np.random.RandomState(12)
    X = rng.standard_normal((3000, 3))
    fit = _fit(X)
    assert fit.converged
    assert fit.df > 50
    # For data of known nu the estimate is within sampling error.
    Y = multivariate_t(np.zeros(3), np.eye(3), df=3.0).rvs(3000, random_state=rng)
    fit = _fit(Y)
    assert 2.5 < fit.df < 3.6
    assert fit.df < DF_MAX


def test_ecme_step_increases_likelihood():
    X, mean, shape = _problem(seed=13, missing=0.2)
    factor = np.linalg.cholesky(shape) * 2.0
    df = 10.0
    values = []
    for _ in range(6):
        sums = t_sums(X, mean, factor, df)
        values.append(t_objective(sums, factor)[0])
        rep = make_representation("full", X.shape[1])
        mean, factor, df = ecme_step(sums, mean, factor, rep, estimate_df=False)
    assert np.all(np.diff(values) < 0)


@pytest.mark.parametrize("k", [1, 7, 400])
def test_log_norm_const_is_exact_for_every_df(k):
    """Issue 22 item 1: the normalising constant by Stirling's series agrees
    with the log-gamma difference where that is accurate, and tends to the
    normal's ``-k/2 log(2 pi)`` without cancellation (it was off by up to
    ~1000 nats at df = 1e300)."""
    from scipy.special import gammaln

    from sklearn_mvn._likelihoods.student_t import log_norm_const

    def direct(df):
        return gammaln((df + k) / 2) - gammaln(df / 2) - k / 2 * np.log(df * np.pi)

    for df in [101.0, 500.0, 3e3, 1e4]:
        # log-gamma difference loses about log10(lgamma) digits only.
        assert abs(log_norm_const(df, k) - direct(df)) <= 1e-11 * max(1, direct(df))
    normal = -k / 2 * np.log(2 * np.pi)
    for df in [1e8, 1e12, 1e20, 1e100, 1e300]:
        # The t's constant is the normal's + k (k - 2) / (4 df) + O(k^3 / df^2).
        expected = normal + k * (k - 2) / (4 * df)
        tol = 1e-13 * abs(normal) + k * (k / df) ** 2
        assert abs(log_norm_const(df, k) - expected) <= tol


@pytest.mark.parametrize("covariance_type", ["full", "factor"])
@pytest.mark.parametrize("df", [1e12, 1e20, 1e300])
def test_huge_df_scores_as_the_normal(covariance_type, df):
    """Issue 22 items 1 and 13: at huge df the t log-density (complete and
    NaN rows) and objective_ equal the normal's at the same mean and scale
    matrix to round-off plus O(d^2 / df), without RuntimeWarnings."""
    import warnings

    from scipy.stats import multivariate_normal

    rng = np.random.RandomState(0)
    X = rng.randn(200, 3) @ np.array([[1.0, 0.5, 0.0], [0, 1, 0.3], [0, 0, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = GradientStudentT(
            df=df, covariance_type=covariance_type, n_factors=1
        ).fit(X)
        ref = multivariate_normal(model.mean_, model.shape_).logpdf(X)
        tol = 1e-12 + 20.0 / df
        assert_allclose(model.score_samples(X), ref, rtol=0, atol=tol)
        assert abs(model.objective_ + ref.mean()) <= tol
        Xn = X[:3].copy()
        Xn[0, 1] = np.nan
        keep = [0, 2]
        marginal = multivariate_normal(
            model.mean_[keep], model.shape_[np.ix_(keep, keep)]
        ).logpdf(Xn[0, keep])
        assert abs(model.score_samples(Xn)[0] - marginal) <= tol


@pytest.mark.parametrize("covariance_type", ["full", "diag", "factor"])
def test_far_points_have_finite_t_log_density(covariance_type):
    """Issue 22 item 3: beyond |x| ~ 1e155 the squared distance overflows but
    the t log-density is finite; it is computed from the scaled distance and
    continues the values SciPy gives where the distance is representable."""
    rng = np.random.RandomState(0)
    X = rng.standard_t(4, size=(300, 4))
    model = GradientStudentT(covariance_type=covariance_type, n_factors=1).fit(X)
    scales = np.array([1e100, 1e120, 1e140, 1e155, 1e200, 1e300])
    far = np.zeros((scales.size, 4))
    far[:, 0] = scales
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scores = model.score_samples(far)
    assert np.all(np.isfinite(scores))
    ref = multivariate_t(model.mean_, model.shape_, df=model.df_)
    assert_allclose(scores[:2], ref.logpdf(far[:2]), rtol=1e-12)
    # -(df + d) log|x| + const: equal steps in log|x| give equal decrements.
    steps = np.diff(scores) / np.diff(np.log(scales))
    assert_allclose(steps, -(model.df_ + 4), rtol=1e-9)


def test_factor_far_points_are_outliers_not_nan():
    """Issue 22 item 3: the factor normal scored far finite points NaN
    (inf - inf in Woodbury), which an outlier detector read as inliers."""
    from sklearn_mvn import GaussianOutlierDetector, GradientGaussian

    rng = np.random.RandomState(0)
    X = rng.randn(300, 4)
    far = np.array([[1e155, 0, 0, 0], [1e200, -1e200, 0, 1], [3e307, 0, 0, 0]])
    model = GradientGaussian(covariance_type="factor", n_factors=1).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert not np.any(np.isnan(model.score_samples(far)))
        assert np.all(model.mahalanobis(far) == np.inf)
        detector = GaussianOutlierDetector(
            estimator=GradientGaussian(covariance_type="factor", n_factors=1)
        ).fit(X)
        assert np.all(detector.predict(far) == -1)
