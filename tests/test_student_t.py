"""GradientStudentT: the estimator's behaviour."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import multivariate_t
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mvn import GradientGaussian, GradientStudentT


def _t_data(seed=0, n=1000, d=3, df=4.0, missing=0.0):
    rng = np.random.RandomState(seed)
    a = rng.randn(d, d)
    shape = a @ a.T / d + np.eye(d)
    mean = rng.randn(d) * 3
    X = multivariate_t(mean, shape, df=df).rvs(n, random_state=rng)
    if missing:
        X[rng.rand(n, d) < missing] = np.nan
        empty = np.isnan(X).all(axis=1)
        X[empty, 0] = mean[0]
    return X, mean, shape


def _scipy_score(model, X):
    out = np.empty(X.shape[0])
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        dist = multivariate_t(model.mean_[o], model.shape_[np.ix_(o, o)], df=model.df_)
        out[i] = dist.logpdf(x[o])
    return out


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_fit_and_score_samples(missing):
    X, mean, shape = _t_data(missing=missing)
    model = GradientStudentT().fit(X)
    assert model.converged_
    assert 3.0 < model.df_ < 5.5
    assert_allclose(model.mean_, mean, atol=0.2)
    assert_allclose(model.shape_, model.factor_ @ model.factor_.T)
    assert_allclose(model.precision_ @ model.shape_, np.eye(3), atol=1e-10)
    assert_allclose(
        model.covariance_, model.df_ / (model.df_ - 2) * model.shape_, rtol=1e-12
    )
    assert_allclose(
        model.score_samples(X[:50]), _scipy_score(model, X[:50]), atol=1e-10
    )
    assert_allclose(model.score(X), np.mean(model.score_samples(X)))
    assert_allclose(model.objective_, -model.score(X), rtol=1e-12)


def test_covariance_undefined_for_small_df():
    X, _, _ = _t_data()
    model = GradientStudentT(df=1.5).fit(X)
    assert model.df_ == 1.5
    assert np.all(np.isinf(np.diag(model.covariance_)))
    assert np.all(np.isnan(model.covariance_[~np.eye(3, dtype=bool)]))


def test_mahalanobis_and_impute_use_the_shape_matrix():
    X, _, _ = _t_data(missing=0.2)
    model = GradientStudentT().fit(X)
    Z = X[:40]
    dist = model.mahalanobis(Z)
    filled = model.impute(Z)
    for x, dx, fx in zip(Z, dist, filled, strict=True):
        o = ~np.isnan(x)
        s = model.shape_
        r = x[o] - model.mean_[o]
        assert_allclose(dx, r @ np.linalg.solve(s[np.ix_(o, o)], r), rtol=1e-10)
        pred = model.mean_[~o] + s[np.ix_(~o, o)] @ np.linalg.solve(s[np.ix_(o, o)], r)
        assert_allclose(fx[~o], pred, rtol=1e-10, atol=1e-12)
        assert_allclose(fx[o], x[o])


def test_sample_follows_the_fitted_t():
    X, _, _ = _t_data(n=500)
    model = GradientStudentT(df=6.0).fit(X)
    draws = model.sample(40000, random_state=0)
    assert draws.shape == (40000, 3)
    refit = GradientStudentT(df=6.0).fit(draws)
    assert_allclose(refit.mean_, model.mean_, atol=0.05)
    assert_allclose(refit.shape_, model.shape_, atol=0.05 * np.abs(model.shape_).max())
    with pytest.raises(ValueError, match="n_samples must be an integer"):
        model.sample(0)


def test_bic_aic_count_estimated_df():
    X, _, _ = _t_data()
    auto = GradientStudentT().fit(X)
    fixed = GradientStudentT(df=auto.df_).fit(X)
    n = X.shape[0]
    assert_allclose(auto.bic(X) - fixed.bic(X), np.log(n), rtol=1e-6)
    assert_allclose(auto.aic(X) - fixed.aic(X), 2.0, rtol=1e-6)
    assert_allclose(auto.aic(X), -2 * auto.score(X) * n + 2 * (3 + 6 + 1))


def test_large_df_approaches_gaussian():
    rng = np.random.RandomState(0)
    X = rng.multivariate_normal(
        [1, 2, 3], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1]], 500
    )
    gauss = GradientGaussian().fit(X)
    t = GradientStudentT(df=1e9).fit(X)
    assert_allclose(t.mean_, gauss.mean_, atol=1e-6)
    assert_allclose(t.covariance_, gauss.covariance_, atol=1e-6)
    assert_allclose(t.score_samples(X), gauss.score_samples(X), atol=1e-5)
    # Normal data: the estimated df is large and the fit close to the normal.
    auto = GradientStudentT().fit(X)
    assert auto.df_ > 30
    assert abs(auto.score(X) - gauss.score(X)) < 0.01


@pytest.mark.parametrize("df", ["auto", 5.0])
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_integer_weights_equal_repeated_rows(df, missing):
    X, _, _ = _t_data(n=200, missing=missing)
    w = np.random.RandomState(1).randint(0, 3, X.shape[0])
    a = GradientStudentT(df=df, tol=1e-10).fit(X, sample_weight=w)
    b = GradientStudentT(df=df, tol=1e-10).fit(np.repeat(X, w, axis=0))
    assert_allclose(a.mean_, b.mean_, atol=1e-7)
    assert_allclose(a.shape_, b.shape_, atol=1e-7)
    assert_allclose(a.df_, b.df_, rtol=1e-6)


def test_robust_to_gross_outliers():
    X, mean, shape = _t_data(n=1000, df=30.0)
    rng = np.random.RandomState(2)
    X[:100] = mean + 50 + 10 * rng.randn(100, 3)
    t = GradientStudentT().fit(X)
    gauss = GradientGaussian().fit(X)
    assert np.max(np.abs(t.mean_ - mean)) < 0.3
    assert np.max(np.abs(gauss.mean_ - mean)) > 3


@pytest.mark.parametrize("df", ["auto", 3.0])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_covariance_types_and_regularisation(covariance_type, df):
    X, _, _ = _t_data(missing=0.1)
    model = GradientStudentT(covariance_type=covariance_type, shrinkage=0.1, df=df)
    model.fit(X)
    assert model.converged_
    if df != "auto":
        assert model.df_ == df
    if covariance_type != "full":
        assert not np.any(model.shape_[~np.eye(3, dtype=bool)])
    reg = GradientStudentT(covariance_type=covariance_type, reg_covar=1.0, df=df)
    plain = GradientStudentT(covariance_type=covariance_type, df=df).fit(X)
    reg.fit(X)
    assert np.trace(reg.shape_) > np.trace(plain.shape_)


def test_warm_start_continues_from_solution():
    X, _, _ = _t_data()
    model = GradientStudentT(warm_start=True).fit(X)
    first = model.n_iter_
    model.fit(X)
    assert model.n_iter_ <= 1 < first


def test_pickle_roundtrip():
    X, _, _ = _t_data(missing=0.1)
    model = GradientStudentT().fit(X)
    clone = pickle.loads(pickle.dumps(model))
    assert_allclose(clone.score_samples(X), model.score_samples(X))


def test_dask_fit_equals_numpy():
    da = pytest.importorskip("dask.array")
    X, _, _ = _t_data(n=600, missing=0.1)
    w = np.random.RandomState(3).rand(X.shape[0])
    ref = GradientStudentT().fit(X, sample_weight=w)
    got = GradientStudentT().fit(
        da.from_array(X, chunks=(150, 3)), sample_weight=da.from_array(w, chunks=100)
    )
    # The start subsample is the same, so the iterations are the same up to
    # the order of the sums.
    assert_allclose(got.mean_, ref.mean_, rtol=1e-7, atol=1e-9)
    assert_allclose(got.shape_, ref.shape_, rtol=1e-7, atol=1e-9)
    assert_allclose(got.df_, ref.df_, rtol=1e-7)
    lazy = ref.score_samples(da.from_array(X, chunks=(150, 3)))
    assert isinstance(lazy, da.Array)
    assert_allclose(lazy.compute(), ref.score_samples(X))


def test_errors_say_what_to_do():
    X, _, _ = _t_data(n=50)
    with pytest.raises(InvalidParameterError):
        GradientStudentT(df=0.0).fit(X)
    with pytest.raises(InvalidParameterError):
        GradientStudentT(df="normal").fit(X)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GradientStudentT().fit(bad)
    bad[3, :] = np.nan
    with pytest.raises(ValueError, match="no observed entry"):
        GradientStudentT().fit(bad)
    with pytest.raises(ValueError, match="reg_covar > 0"):
        GradientStudentT().fit(np.random.RandomState(0).randn(3, 5))
    const = X.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match="zero spread in feature"):
        GradientStudentT().fit(const)
    # With regularisation the singular cases fit.
    model = GradientStudentT(reg_covar=0.1).fit(const)
    assert model.converged_


def test_docstrings_are_valid_numpydoc():
    validate = pytest.importorskip("numpydoc.validate").validate
    ignored = {"SA01", "EX01", "ES01", "RT02", "GL08"}
    names = [
        "",
        ".fit",
        ".score_samples",
        ".score",
        ".mahalanobis",
        ".impute",
        ".sample",
        ".bic",
        ".aic",
    ]
    for name in names:
        errors = validate("sklearn_mvn.GradientStudentT" + name)["errors"]
        assert [e for e in errors if e[0] not in ignored] == [], name


def test_fitted_attributes_are_documented():
    X, _, _ = _t_data(n=200)
    model = GradientStudentT().fit(X)
    doc = GradientStudentT.__doc__
    # Stored attributes and those computed on access (shape_, covariance_,
    # precision_ are properties, for the factor type's sake).
    fitted = [
        a
        for a in dir(model)
        if a.endswith("_") and not a.startswith("_") and hasattr(model, a)
    ]
    assert len(fitted) >= 11
    for attr in fitted:
        assert f"{attr} :" in doc, attr


def test_unbounded_likelihood_warns_with_advice():
    # 60% of the rows on one point: the t likelihood grows without bound as
    # df falls and the scale collapses onto the point.
    rng = np.random.RandomState(0)
    X = np.vstack([np.zeros((60, 2)), rng.randn(40, 2)])
    with pytest.warns(ConvergenceWarning, match="unbounded"):
        GradientStudentT().fit(X)
    # With df fixed large enough the likelihood is bounded.
    model = GradientStudentT(df=5.0).fit(X)
    assert model.converged_


def test_verbose_history_and_iteration_limit(capsys):
    X, _, _ = _t_data(n=300, missing=0.1)
    model = GradientStudentT(verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Iteration 1:" in out and "GradientStudentT converged" in out
    assert len(model.history_) == model.n_iter_ + 1
    values = [v for v, _ in model.history_]
    assert_allclose(values[-1], model.objective_, rtol=1e-12)
    assert model.history_[-1][1] <= model.tol or model.converged_
    with pytest.warns(ConvergenceWarning, match="did not converge") as record:
        GradientStudentT(max_iter=1).fit(X)
    # The warning points at this file (the caller's line).
    assert record[0].filename == __file__


def test_partial_fit_is_not_offered():
    assert not hasattr(GradientStudentT(), "partial_fit")


def test_failed_fit_keeps_the_previous_state():
    X, _, _ = _t_data(n=200)
    model = GradientStudentT().fit(X)
    before = {k: np.copy(v) for k, v in vars(model).items() if k.endswith("_")}
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.fit(bad)
    fewer = X[:, :2].copy()
    fewer[:, 1] = 1.0  # a constant feature: fails after validation
    with pytest.raises(ValueError, match="reg_covar"):
        model.fit(fewer)
    assert set(before) == {k for k in vars(model) if k.endswith("_")}
    for name, value in before.items():
        assert_allclose(getattr(model, name), value)


def test_pandas_input_and_feature_names():
    pd = pytest.importorskip("pandas")
    X, _, _ = _t_data(n=200, missing=0.1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = GradientStudentT().fit(frame)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert_allclose(
        model.score_samples(frame), GradientStudentT().fit(X).score_samples(X)
    )


@pytest.mark.parametrize("dask", [False, True])
def test_feature_observed_only_outside_the_start_subsample(dask):
    # 20000 rows: the start uses every third row; feature 2 is observed only
    # on rows the subsample skips.
    rng = np.random.RandomState(0)
    X = rng.standard_t(5, size=(20000, 3))
    X[np.arange(20000) % 3 == 0, 2] = np.nan
    ref = GradientStudentT().fit(X[np.arange(20000) % 3 != 0])
    if dask:
        da = pytest.importorskip("dask.array")
        X = da.from_array(X, chunks=(5000, 3))
    model = GradientStudentT().fit(X)
    assert model.converged_
    assert abs(model.shape_[2, 2] - ref.shape_[2, 2]) < 0.1
    never = np.asarray(X).copy() if not dask else X.compute()
    never[:, 1] = np.nan
    if dask:
        never = da.from_array(never, chunks=(5000, 3))
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] are never observed"):
        GradientStudentT().fit(never)


def test_conditional_draws_follow_the_conditional_t():
    model = GradientStudentT(df=5.0).fit(_t_data(n=300)[0])
    x_o = np.array([1.0, -2.0])
    X = np.tile([x_o[0], np.nan, x_o[1]], (200_000, 1))
    draws = model._conditional_draw(X, np.random.RandomState(0))
    assert_allclose(draws[:, [0, 2]], X[:, [0, 2]])
    s, mu, o = model.shape_, model.mean_, [0, 2]
    s_oo_inv = np.linalg.inv(s[np.ix_(o, o)])
    r = x_o - mu[o]
    centre = mu[1] + s[1, o] @ s_oo_inv @ r
    delta = r @ s_oo_inv @ r
    cond_var = s[1, 1] - s[1, o] @ s_oo_inv @ s[o, 1]
    dof = 5.0 + 2
    # Var of a t with dof degrees of freedom and scale (5 + delta) / dof * c.
    expected_var = dof / (dof - 2) * (5.0 + delta) / dof * cond_var
    assert abs(np.median(draws[:, 1]) - centre) < 0.01 * np.sqrt(expected_var)
    assert_allclose(np.var(draws[:, 1]), expected_var, rtol=0.03)


def test_gaussian_imputer_draws_from_the_t():
    from sklearn_mvn import GaussianImputer

    X, _, _ = _t_data(n=300, missing=0.2)
    imputer = GaussianImputer(
        estimator=GradientStudentT(), sample_posterior=True, random_state=0
    ).fit(X)
    filled = imputer.transform(X)
    assert not np.isnan(filled).any()
    assert_allclose(filled[~np.isnan(X)], X[~np.isnan(X)])


def test_score_samples_rejects_rows_without_observed_entries():
    X, _, _ = _t_data(n=100)
    model = GradientStudentT().fit(X)
    Z = X[:5].copy()
    Z[3] = np.nan
    with pytest.raises(ValueError, match="no observed entry"):
        model.score_samples(Z)
    Z[3] = X[3]
    Z[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.score_samples(Z)
