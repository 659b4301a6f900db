"""GradientGaussian(covariance_type="factor"): the low-rank-plus-diagonal model."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from sklearn_mvn import GradientGaussian
from sklearn_mvn import _gradient_gaussian as gg
from sklearn_mvn._representations.low_rank import MIN_NOISE, LowRankPlusDiagonal
from sklearn_mvn._solve.factor import fit_factor_model


def _factor_data(seed, n, d, k, offset=2.0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, k))
    psi = rng.uniform(0.5, 2.0, d)
    X = rng.standard_normal((n, k)) @ W.T + rng.standard_normal((n, d)) * np.sqrt(psi)
    return X * rng.uniform(0.5, 2.0, d) + offset


def _model(**params):
    return GradientGaussian(covariance_type="factor", **params)


def test_matches_factor_analysis():
    X = _factor_data(1, 1000, 10, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fa = FactorAnalysis(2, svd_method="lapack", tol=1e-12, max_iter=10000).fit(X)
    model = _model(n_factors=2).fit(X)
    assert model.converged_
    assert model.score(X) >= fa.score(X) - 1e-10
    assert abs(model.score(X) - fa.score(X)) <= 1e-6
    assert_allclose(model.covariance_, fa.get_covariance(), rtol=1e-5, atol=1e-6)
    assert_allclose(
        model.precision_, np.linalg.inv(fa.get_covariance()), rtol=1e-4, atol=1e-6
    )
    assert model.components_.shape == (2, 10)
    signs = np.sign(np.sum(model.components_ * fa.components_, axis=1))
    assert_allclose(model.components_ * signs[:, None], fa.components_, atol=1e-4)
    assert_allclose(model.noise_variance_, fa.noise_variance_, rtol=1e-4)
    # objective_ is the mean negative log-likelihood.
    assert_allclose(model.objective_, -model.score(X), rtol=1e-10)


def test_covariance_computed_on_access_and_other_types_unaffected():
    X = _factor_data(2, 300, 6, 2)
    model = _model(n_factors=2).fit(X)
    assert "covariance_" not in vars(model) and "precision_" not in vars(model)
    W, psi = model.components_.T, model.noise_variance_
    assert_allclose(model.covariance_, W @ W.T + np.diag(psi))
    assert not hasattr(model, "factor_")
    full = GradientGaussian().fit(X)
    assert not hasattr(full, "components_")
    assert_allclose(full.covariance_, np.cov(X.T, bias=True), rtol=1e-8)
    # Refitting the same estimator with another type drops the stale attributes.
    model.set_params(covariance_type="full").fit(X)
    assert not hasattr(model, "components_")
    assert_allclose(model.covariance_, full.covariance_)
    with pytest.raises(AttributeError):
        _model().covariance_  # noqa: B018


def test_scores_methods_and_bic():
    X = _factor_data(3, 400, 7, 2)
    model = _model(n_factors=2).fit(X)
    cov = model.covariance_
    from scipy.stats import multivariate_normal

    assert_allclose(
        model.score_samples(X), multivariate_normal(model.mean_, cov).logpdf(X)
    )
    P = np.linalg.inv(cov)
    R = X - model.mean_
    assert_allclose(model.mahalanobis(X), np.einsum("ij,jk,ik->i", R, P, R))
    d, k = 7, 2
    n_params = d + d * k + d - k * (k - 1) // 2
    assert_allclose(model.bic(X), -2 * model.score(X) * 400 + n_params * np.log(400))
    assert_allclose(model.aic(X), -2 * model.score(X) * 400 + 2 * n_params)
    draws = model.sample(50_000, random_state=0)
    assert draws.shape == (50_000, 7)
    assert np.abs(np.cov(draws.T) - cov).max() < 0.05 * np.abs(cov).max()


def test_missing_values_fit_impute_and_score():
    X = _factor_data(4, 800, 8, 2)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    model = _model(n_factors=2).fit(X)
    assert model.converged_
    ref = fit_factor_model(X, 2)
    assert_allclose(model.covariance_, ref.covariance.covariance(), atol=1e-5)
    assert_allclose(model.mean_, ref.mean, atol=1e-5)
    cov = LowRankPlusDiagonal(model.components_.T, model.noise_variance_)
    assert_allclose(model.score_samples(X), cov.marginal_log_density(X, model.mean_))
    filled = model.impute(X)
    assert not np.isnan(filled).any()
    assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])


def test_integer_weights_equal_repeated_rows():
    X = _factor_data(5, 200, 6, 2)
    counts = np.random.default_rng(1).integers(0, 4, 200)
    a = _model(n_factors=2).fit(X, sample_weight=counts.astype(float))
    b = _model(n_factors=2).fit(np.repeat(X, counts, axis=0))
    assert_allclose(a.covariance_, b.covariance_, rtol=1e-6, atol=1e-8)
    assert_allclose(a.mean_, b.mean_, rtol=1e-12)


def test_partial_fit_equals_fit_and_warm_start():
    X = _factor_data(6, 600, 8, 3)
    full = _model(n_factors=3).fit(X)
    stream = _model(n_factors=3)
    for chunk in np.array_split(X, 4):
        stream.partial_fit(chunk)
    assert stream.n_samples_seen_ == 600
    assert_allclose(stream.covariance_, full.covariance_, rtol=1e-6, atol=1e-8)
    warm = _model(n_factors=3, warm_start=True).fit(X)
    warm.fit(X)
    assert warm.n_iter_ <= 2
    assert_allclose(warm.covariance_, full.covariance_, rtol=1e-6, atol=1e-8)


def test_dask_equals_numpy():
    da = pytest.importorskip("dask.array")
    X = _factor_data(7, 500, 6, 2)
    ref = _model(n_factors=2).fit(X)
    model = _model(n_factors=2).fit(da.from_array(X, chunks=(100, 6)))
    assert_allclose(model.covariance_, ref.covariance_, rtol=1e-8, atol=1e-10)
    scores = model.score_samples(da.from_array(X, chunks=(100, 6))).compute()
    assert_allclose(scores, ref.score_samples(X), rtol=1e-10)


def test_chunked_row_path_equals_statistics_path(monkeypatch):
    X = _factor_data(8, 300, 12, 2)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 300)
    ref = _model(n_factors=2, shrinkage=0.05, reg_covar=0.01).fit(X, sample_weight=w)
    monkeypatch.setattr(gg, "_FACTOR_STATS_FEATURES", 4)
    assert gg._factor_uses_rows(40, 12)
    rows = _model(n_factors=2, shrinkage=0.05, reg_covar=0.01)
    # With few samples per feature the path reads X in passes.
    monkeypatch.setattr(gg, "_factor_uses_rows", lambda n, d: True)
    rows.fit(X, sample_weight=w)
    assert not hasattr(rows, "_sufficient_stats")
    assert_allclose(rows.covariance_, ref.covariance_, rtol=1e-6, atol=1e-8)
    assert_allclose(rows.objective_, ref.objective_, rtol=1e-10)


def test_penalties_and_reg_covar_floor():
    X = _factor_data(9, 300, 6, 2)
    model = _model(n_factors=2, reg_covar=0.5).fit(X)
    assert model.converged_
    assert np.all(model.noise_variance_ >= 0.5 - 1e-12)
    shrunk = _model(n_factors=2, shrinkage=0.3).fit(X)
    assert shrunk.converged_
    # Shrinkage towards tau I raises the smallest variances.
    plain = _model(n_factors=2).fit(X)
    assert shrunk.noise_variance_.min() > plain.noise_variance_.min()


def test_heywood_warning_names_the_feature():
    rng = np.random.default_rng(10)
    z = rng.standard_normal((500, 1))
    X = z @ rng.uniform(0.5, 1.5, (1, 6)) + 0.5 * rng.standard_normal((500, 6))
    X[:, 2] = 3.0 * z[:, 0]
    with pytest.warns(UserWarning, match=r"feature\(s\) \[2\].*Heywood"):
        _model(n_factors=1).fit(X)


def _dense_nll_grad(X, W, psi):
    """Mean NLL and its gradient in (W, psi) by dense algebra (the seed)."""
    n, d = X.shape
    C = np.cov(X.T, bias=True)
    S = W @ W.T + np.diag(psi)
    P = np.linalg.inv(S)
    value = 0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + np.sum(P * C))
    G = 0.5 * (P - P @ C @ P)  # dJ/dS
    return value, 2.0 * G @ W, np.diag(G).copy()


def _reference_bounded_fit(X, k, fixed, bound):
    """The optimum with psi_j fixed at ``bound`` for j in ``fixed``.

    Independent of the estimator: FactorAnalysis (EM) gives a start; damped
    Newton steps on the dense likelihood (Hessian by central differences of
    the dense gradient) in the free parameters (W and the other psi) solve
    the stationarity conditions.
    """
    d = X.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fa = FactorAnalysis(k, svd_method="lapack", tol=1e-12, max_iter=10000).fit(X)
    free = np.setdiff1d(np.arange(d), fixed)
    psi_fixed = np.zeros(d)
    psi_fixed[fixed] = bound[fixed]

    def unpack(x):
        psi = psi_fixed.copy()
        psi[free] = x[d * k :]
        return x[: d * k].reshape(d, k), psi

    def value_grad(x):
        W, psi = unpack(x)
        value, gW, gpsi = _dense_nll_grad(X, W, psi)
        return value, np.concatenate([gW.ravel(), gpsi[free]])

    x = np.concatenate([fa.components_.T.ravel(), fa.noise_variance_[free]])
    for _ in range(50):
        value, grad = value_grad(x)
        if np.max(np.abs(grad)) < 1e-12:
            break
        h = 1e-6 * np.maximum(np.abs(x), 1e-3)
        H = np.empty((x.size, x.size))
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = h[i]
            H[:, i] = (value_grad(x + e)[1] - value_grad(x - e)[1]) / (2 * h[i])
        H = 0.5 * (H + H.T)
        eigval, eigvec = np.linalg.eigh(H)
        # The rotations of W are flat: a pseudo-inverse on the rest.
        keep = eigval > 1e-8 * eigval.max()
        step = -eigvec[:, keep] @ ((eigvec[:, keep].T @ grad) / eigval[keep])
        t = 1.0
        while value_grad(x + t * step)[0] > value + 1e-4 * t * (grad @ step):
            t /= 2
        x = x + t * step
    W, psi = unpack(x)
    return value_grad(x)[0], W, psi, np.max(np.abs(value_grad(x)[1]))


@pytest.mark.parametrize("noise", [0.0, 1e-4])
@pytest.mark.parametrize("rows", [False, True])
def test_heywood_fit_converges_at_the_bounded_optimum(monkeypatch, noise, rows):
    # Feature 2 is the factor itself (plus, optionally, noise far below the
    # bound): its noise variance goes to the bound min_noise * var.
    rng = np.random.default_rng(10)
    z = rng.standard_normal((500, 1))
    X = z @ rng.uniform(0.5, 1.5, (1, 6)) + 0.5 * rng.standard_normal((500, 6))
    X[:, 2] = 3.0 * z[:, 0] + noise * rng.standard_normal(500)
    if rows:  # the chunked passes over X
        monkeypatch.setattr(gg, "_factor_uses_rows", lambda n, d: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _model(n_factors=1).fit(X)
    messages = [str(w.message) for w in caught]
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert [m for m in messages if "feature(s) [2]" in m and "Heywood" in m]
    assert model.converged_
    bound = 1e-6 * X.var(axis=0)
    assert_allclose(model.noise_variance_[2], bound[2], rtol=1e-6)
    ref_value, ref_W, ref_psi, ref_grad = _reference_bounded_fit(X, 1, [2], bound)
    assert ref_grad < 1e-9
    # The bound is active at the reference: the NLL decreases towards it.
    assert _dense_nll_grad(X, ref_W, ref_psi)[2][2] > 0
    assert abs(model.objective_ - ref_value) <= 1e-6
    assert model.objective_ <= ref_value + 1e-9
    assert_allclose(model.covariance_, ref_W @ ref_W.T + np.diag(ref_psi), atol=1e-5)


def test_poor_start_reaches_the_same_optimum():
    # Re-preconditioning every few iterations: from random loadings the fit
    # still converges, to the optimum reached from the PCA start.
    from sklearn_mvn._data.patterns import compute_stats
    from sklearn_mvn._likelihoods.normal import FactorObjective
    from sklearn_mvn._solve.factor import solve_factor

    X = _factor_data(13, 400, 30, 3)
    objective = FactorObjective(compute_stats(X, None), n_factors=3)
    ref = solve_factor(objective, 3)
    assert ref.converged
    rng = np.random.default_rng(0)
    scale = np.sqrt(objective.variance)[:, np.newaxis]
    for size in (0.01, 3.0):
        W0 = size * scale * rng.standard_normal((30, 3))
        start = (objective.center, (W0, objective.variance.copy()))
        res = solve_factor(objective, 3, start=start, max_iter=1000)
        assert res.converged, res.message
        assert abs(res.objective - ref.objective) <= 1e-10 * abs(ref.objective)


def test_fit_stopped_early_still_warns():
    X = _factor_data(12, 400, 8, 2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = _model(n_factors=2, max_iter=2).fit(X)
    assert not model.converged_


def test_n_factors_errors():
    X = _factor_data(11, 50, 5, 1)
    with pytest.raises(ValueError, match="n_features - 1"):
        _model(n_factors=5).fit(X)
    with pytest.raises(ValueError, match="rank of the data"):
        _model(n_factors=3).fit(X[:4])
    with pytest.raises(ValueError, match="n_factors"):
        _model(n_factors=0).fit(X)
    # The default is min(10, n_features - 1).
    assert _model().fit(X).components_.shape == (4, 5)


def _rank2_data(seed, n=500, d=12):
    rng = np.random.RandomState(seed)
    W = rng.randn(d, 2)
    return rng.randn(n, 2) @ W.T + rng.randn(n, d) * np.sqrt(0.3 + rng.rand(d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_over_factored_heywood_fit_is_a_certified_stationary_point(seed):
    # k = 4 factors on data of factor rank 2: the extra factors end on a
    # Heywood case. The Woodbury evaluation runs in the canonical rotation
    # (in another rotation the core M, of condition ~1e6 there, costs the
    # value digits and the line search stalls): the fit converges to a point
    # where the dense gradient vanishes (but for the active bounds) and
    # objective_ is the dense objective of the attributes.
    X = _rank2_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        model = _model(n_factors=4).fit(X)
    assert model.converged_
    W, psi = model.components_.T, model.noise_variance_
    C = np.cov(X.T, bias=True)
    S = W @ W.T + np.diag(psi)
    P = np.linalg.inv(S)
    G = 0.5 * (P - P @ C @ P)
    value = 0.5 * (12 * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + np.sum(P * C))
    assert abs(model.objective_ - value) <= 1e-9
    assert np.max(np.abs(2 * G @ W)) <= 1e-7
    at_bound = psi <= 1.001e-6 * X.var(axis=0)
    assert at_bound.any()
    assert np.max(np.abs(np.diag(G)[~at_bound])) <= 1e-7
    assert np.all(np.diag(G)[at_bound] > 0)


def test_over_factored_fit_that_stops_short_says_to_use_fewer_factors():
    # k = 8 > the identified maximum for d = 12 ((d - k)^2 >= d + k gives 7)
    # on data of factor rank 2: the fit cannot be certified, and the warning
    # says what to do instead of "increase max_iter". (Seed 2: on seed 1 the
    # restarts from profile-likelihood steps reach a certified point.)
    X = _rank2_data(2)
    with pytest.warns(ConvergenceWarning) as record:
        model = _model(n_factors=8).fit(X)
    assert not model.converged_
    messages = [str(w.message) for w in record if w.category is ConvergenceWarning]
    assert len(messages) == 1
    assert "over-factored" in messages[0]
    assert "n_factors=8 exceeds" in messages[0]
    assert "fewer n_factors" in messages[0]
    assert "cross-validated log-likelihood" in messages[0]
    assert "Increase max_iter" not in messages[0]
    # A well-specified fit stopped by max_iter keeps the generic advice.
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        _model(n_factors=2, max_iter=2).fit(_rank2_data(1))


@pytest.mark.parametrize(
    "seed, k", [(s, 4) for s in range(5)] + [(2, 3), (3, 3), (5, 5)]
)
def test_over_factored_fit_reaches_the_factor_analysis_maximum(seed, k):
    # k = 4 on data of factor rank 2 has several local maxima; the gradient
    # fit from the PCA start may end at a Heywood point (for k = 3, seed 2,
    # just off one: psi = 1.03 times its bound) below the maximum
    # scikit-learn's FactorAnalysis (EM from unit noise variances) reaches.
    # For k = 3, seed 3 it ends at an interior maximum with a weak third
    # factor (||Psi^{-1/2} w||^2 = 0.24) and no bound near; for k = 5, seed 5
    # 100 profile steps left the restart in the basin of a Heywood point.
    # The restarts from profile-likelihood steps must reach it or higher.
    X = _rank2_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fa = FactorAnalysis(k, svd_method="lapack", tol=1e-12, max_iter=10000).fit(X)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        model = _model(n_factors=k).fit(X)
    assert model.converged_
    assert model.score(X) >= fa.score(X) - 1e-6


def test_constant_feature_is_a_heywood_case():
    """Issue 23: a constant feature (e.g. constant within a CV fold) is a
    Heywood case at a floor set from the other features' variance, as in
    FactorAnalysis, not an error; its held-out log-density stays finite."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 2) @ rng.randn(2, 6) + 0.5 * rng.randn(300, 6)
    X[:, 3] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # documented, so no warning
        model = _model(n_factors=2).fit(X)
    assert model.converged_
    floor = MIN_NOISE * np.mean(np.delete(X.var(axis=0), 3))
    assert_allclose(model.noise_variance_[3], floor, rtol=1e-6)
    assert_allclose(model.mean_[3], 2.0)
    held_out = X[:5].copy()
    held_out[:, 3] = 2.5
    assert np.all(np.isfinite(model.score_samples(held_out)))
    # The other features' fit is that of the data without the constant one.
    rest = _model(n_factors=2).fit(np.delete(X, 3, axis=1))
    assert_allclose(
        np.delete(model.noise_variance_, 3), rest.noise_variance_, rtol=1e-4
    )


def test_digits_grid_search_over_n_factors_is_finite():
    """Issue 23: on load_digits (constant pixels removed), pixels constant
    within a fold no longer make every candidate fail; the search picks a
    model at least as good on held-out data as FactorAnalysis's search."""
    from sklearn.datasets import load_digits
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.model_selection import GridSearchCV

    X = VarianceThreshold().fit_transform(load_digits().data)[::2]
    grid = [1, 5, 10]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = GridSearchCV(_model(), {"n_factors": grid}, cv=3).fit(X)
    scores = ours.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    fa = GridSearchCV(FactorAnalysis(), {"n_components": grid}, cv=3).fit(X)
    assert ours.best_score_ >= fa.best_score_
