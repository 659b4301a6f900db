"""GaussianImputer: conditional expectations, posterior draws, pipelines, pandas."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import cholesky
from scipy.stats import chi2
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline

from sklearn_mvn import GaussianImputer, GradientGaussian, GradientStudentT
from sklearn_mvn._imputer import _posterior_draw
from sklearn_mvn._representations.conditional import conditional_draw

# ---------------------------------------------------------------------------
# Data and naive references
# ---------------------------------------------------------------------------


def _random_cov(rng, d, cond=20.0):
    q, _ = np.linalg.qr(rng.randn(d, d))
    return (q * np.geomspace(1.0, cond, d)) @ q.T


def _mcar(rng, n, d, rate):
    cov = _random_cov(rng, d)
    X = rng.multivariate_normal(rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    empty = np.isnan(X).all(axis=1)
    X[empty, 0] = rng.randn(int(empty.sum()))
    return X


def _conditional(x, mean, cov):
    """Conditional mean and covariance of the NaN entries of ``x`` (by solves)."""
    m = np.isnan(x)
    o = ~m
    if not o.any():
        return mean.copy(), cov.copy()
    gain = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
    centre = mean[m] + gain @ (x[o] - mean[o])
    return centre, cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]


class _ClosedFormGaussian:
    """A density estimator written from scratch with the estimators' public API.

    Complete-case maximum likelihood; marginal log-densities and conditional
    expectations by plain solves. Stands in for the package's other
    estimators (Student-t, factor covariance) to show that the imputer needs
    nothing else.
    """

    def __init__(self, ridge=0.0):
        self.ridge = ridge

    def get_params(self, deep=True):
        return {"ridge": self.ridge}

    def set_params(self, **params):
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X, y=None):
        complete = X[~np.isnan(X).any(axis=1)]
        self.mean_ = complete.mean(axis=0)
        self.covariance_ = np.cov(complete.T, bias=True) + self.ridge * np.eye(
            X.shape[1]
        )
        self.factor_ = cholesky(self.covariance_, lower=True)
        return self

    def score_samples(self, X):
        return np.zeros(len(X))

    def impute(self, X):
        out = np.array(X, dtype=float)
        for row in out:
            if np.isnan(row).any():
                row[np.isnan(row)] = _conditional(row, self.mean_, self.covariance_)[0]
        return out


# ---------------------------------------------------------------------------
# Conditional expectation
# ---------------------------------------------------------------------------


def test_transform_is_the_conditional_expectation():
    rng = np.random.RandomState(0)
    X = _mcar(rng, 400, 6, 0.3)
    imputer = GaussianImputer().fit(X)
    model = imputer.estimator_
    filled = imputer.transform(X)
    assert not np.isnan(filled).any()
    observed = ~np.isnan(X)
    assert_array_equal(filled[observed], X[observed])
    for x, row in zip(X[:50], filled[:50], strict=True):
        if np.isnan(x).any():
            centre, _ = _conditional(x, model.mean_, model.covariance_)
            assert_allclose(row[np.isnan(x)], centre, rtol=1e-10, atol=1e-10)
    # The fit is the estimator's own maximum-likelihood fit.
    reference = GradientGaussian().fit(X)
    assert_allclose(model.mean_, reference.mean_, rtol=1e-12, atol=1e-12)
    assert_allclose(model.covariance_, reference.covariance_, rtol=1e-12)


def test_fit_clones_and_keeps_the_estimator_parameters():
    rng = np.random.RandomState(1)
    X = _mcar(rng, 200, 4, 0.2)
    estimator = GradientGaussian(shrinkage=0.3)
    imputer = GaussianImputer(estimator=estimator).fit(X)
    assert imputer.estimator_ is not estimator
    assert not hasattr(estimator, "mean_")
    assert imputer.estimator_.shrinkage == 0.3
    expected = GradientGaussian(shrinkage=0.3).fit(X).impute(X)
    assert_allclose(imputer.transform(X), expected, rtol=1e-12, atol=1e-12)


def test_nan_patterns_not_seen_in_fit():
    """NaN at transform time after a fit on complete data."""
    rng = np.random.RandomState(2)
    cov = _random_cov(rng, 5)
    X = rng.multivariate_normal(np.zeros(5), cov, size=300)
    imputer = GaussianImputer().fit(X)
    X_new = rng.multivariate_normal(np.zeros(5), cov, size=20)
    X_new[:, 1] = np.nan
    X_new[::2, 3] = np.nan
    filled = imputer.transform(X_new)
    model = imputer.estimator_
    for x, row in zip(X_new, filled, strict=True):
        centre, _ = _conditional(x, model.mean_, model.covariance_)
        assert_allclose(row[np.isnan(x)], centre, rtol=1e-10)


def test_rows_without_observed_entries():
    rng = np.random.RandomState(3)
    X = _mcar(rng, 200, 3, 0.2)
    X_empty = np.vstack([X, np.full((2, 3), np.nan)])
    imputer = GaussianImputer().fit(X_empty)
    assert_allclose(imputer.estimator_.mean_, GradientGaussian().fit(X).mean_)
    filled = imputer.transform(X_empty)
    assert_allclose(filled[-2:], np.tile(imputer.estimator_.mean_, (2, 1)))
    with pytest.raises(ValueError, match="no observed entry"):
        GaussianImputer().fit(np.full((4, 3), np.nan))


def test_bad_input_and_parameters():
    rng = np.random.RandomState(4)
    X = _mcar(rng, 50, 3, 0.1)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianImputer().fit(X_inf)
    with pytest.raises(ValueError, match="'estimator' parameter of GaussianImputer"):
        GaussianImputer(estimator=Ridge()).fit(X)
    with pytest.raises(ValueError, match="'sample_posterior' parameter"):
        GaussianImputer(sample_posterior="yes").fit(X)
    with pytest.raises(ValueError, match="X holds text"):
        GaussianImputer().fit(np.array([["a", "b"], ["c", "d"]]))
    imputer = GaussianImputer().fit(X)
    with pytest.raises(ValueError, match="X has 2 features"):
        imputer.transform(X[:, :2])


def test_duck_typed_estimator_plugs_in():
    """Any estimator with the public API works, also for the draws."""
    rng = np.random.RandomState(5)
    X = _mcar(rng, 300, 4, 0.15)
    imputer = GaussianImputer(estimator=_ClosedFormGaussian(ridge=0.1)).fit(X)
    reference = _ClosedFormGaussian(ridge=0.1).fit(X)
    assert_allclose(imputer.transform(X), reference.impute(X), rtol=1e-12)
    drawn = imputer.set_params(sample_posterior=True, random_state=0).transform(X)
    expected = conditional_draw(
        X, reference.mean_, reference.factor_, np.random.RandomState(0)
    )
    assert_allclose(drawn, expected, rtol=1e-12)


# ---------------------------------------------------------------------------
# Posterior draws
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("k_missing", [1, 3, 8])
def test_draws_follow_the_conditional_normal(k_missing):
    """Draws of repeated rows: sample mean and covariance against the closed form.

    The whitened draws ``C^{-1}(x_m - centre)`` (``C C^T`` the closed-form
    conditional covariance) must be standard normal: their mean within 4.5
    standard errors of 0, their covariance within 4.5 standard errors of I,
    and the sum of squared whitened draws within the chi-square 1e-4 tails.
    k = 8 exceeds the sweep operator's block size (LAPACK path).
    """
    rng = np.random.RandomState(6)
    d = 10
    mean, cov = rng.randn(d), _random_cov(rng, d, cond=50.0)
    factor = cholesky(cov, lower=True)
    x = rng.multivariate_normal(mean, cov)
    missing = rng.choice(d, k_missing, replace=False)
    x[missing] = np.nan
    n_draws = 20_000
    X = np.tile(x, (n_draws, 1))
    draws = conditional_draw(X, mean, factor, np.random.RandomState(0))
    assert_array_equal(draws[:, ~np.isnan(x)], X[:, ~np.isnan(x)])
    centre, cond_cov = _conditional(x, mean, cov)
    m = np.isnan(x)
    white = np.linalg.solve(cholesky(cond_cov, lower=True), (draws[:, m] - centre).T).T
    assert np.abs(white.mean(axis=0)).max() < 4.5 / np.sqrt(n_draws)
    # The entries of the sample covariance of standard normals have standard
    # error sqrt(1/n) off the diagonal and sqrt(2/n) on it.
    emp = np.cov(white.T, bias=True).reshape(k_missing, k_missing)
    se = np.sqrt((1.0 + np.eye(k_missing)) / n_draws)
    assert np.abs((emp - np.eye(k_missing)) / se).max() < 4.5
    total = np.sum(white**2)
    dof = n_draws * k_missing
    assert chi2(dof).ppf(1e-4) < total < chi2(dof).isf(1e-4)


def test_draws_over_many_patterns():
    """Mixed patterns (several k, chunked): each row's draw whitened by its own
    closed-form conditional law is standard normal."""
    rng = np.random.RandomState(7)
    d = 6
    mean, cov = rng.randn(d), _random_cov(rng, d)
    factor = cholesky(cov, lower=True)
    X = rng.multivariate_normal(mean, cov, size=3000)
    X[rng.rand(*X.shape) < 0.4] = np.nan
    X[:5] = np.nan  # rows without observed entries: draws from N(mean, S)
    draws = conditional_draw(X, mean, factor, np.random.RandomState(1))
    white = []
    for x, row in zip(X, draws, strict=True):
        m = np.isnan(x)
        if m.any():
            centre, cond_cov = _conditional(x, mean, cov)
            chol = cholesky(cond_cov, lower=True)
            white.append(np.linalg.solve(chol, row[m] - centre))
    white = np.concatenate(white)
    n = white.size
    assert abs(white.mean()) < 4.5 / np.sqrt(n)
    assert chi2(n).ppf(1e-4) < np.sum(white**2) < chi2(n).isf(1e-4)


def test_conditional_draw_depends_only_on_the_covariance():
    """Any factor of S gives the same draws (a non-triangular one included)."""
    rng = np.random.RandomState(8)
    d = 5
    mean, cov = rng.randn(d), _random_cov(rng, d)
    X = rng.multivariate_normal(mean, cov, size=200)
    X[rng.rand(*X.shape) < 0.4] = np.nan
    q, _ = np.linalg.qr(rng.randn(d, d))
    lower = cholesky(cov, lower=True)
    a = conditional_draw(X, mean, lower, np.random.RandomState(0))
    b = conditional_draw(X, mean, lower @ q, np.random.RandomState(0))
    assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    # A rectangular factor, as of a low-rank plus diagonal covariance
    # S = W W^T + diag(psi) written as [W | diag(sqrt(psi))].
    loadings, psi = rng.randn(d, 2), rng.uniform(0.5, 2.0, d)
    wide = np.hstack([loadings, np.diag(np.sqrt(psi))])
    square = cholesky(loadings @ loadings.T + np.diag(psi), lower=True)
    assert_allclose(
        conditional_draw(X, mean, wide, np.random.RandomState(0)),
        conditional_draw(X, mean, square, np.random.RandomState(0)),
        rtol=1e-8,
        atol=1e-10,
    )


def test_other_covariance_types():
    """Independent features: the conditional mean is the mean."""
    rng = np.random.RandomState(13)
    X = _mcar(rng, 200, 4, 0.2)
    imputer = GaussianImputer(estimator=GradientGaussian(covariance_type="diag"))
    filled = imputer.fit(X).transform(X)
    nan = np.isnan(X)
    assert_allclose(filled[nan], np.broadcast_to(np.nanmean(X, axis=0), X.shape)[nan])


def test_sample_posterior_seeds():
    rng = np.random.RandomState(9)
    X = _mcar(rng, 300, 4, 0.2)
    imputer = GaussianImputer(sample_posterior=True, random_state=0).fit(X)
    first = imputer.transform(X)
    assert_array_equal(first, imputer.transform(X))
    assert_array_equal(first, clone(imputer).fit_transform(X))
    expected = conditional_draw(
        X,
        imputer.estimator_.mean_,
        imputer.estimator_.factor_,
        np.random.RandomState(0),
    )
    assert_array_equal(first, expected)
    other = imputer.set_params(random_state=1).transform(X)
    nan = np.isnan(X)
    assert np.all(other[nan] != first[nan])
    assert_array_equal(other[~nan], X[~nan])
    # A RandomState instance continues its stream.
    imputer.set_params(random_state=np.random.RandomState(0))
    assert not np.array_equal(imputer.transform(X), imputer.transform(X))


def test_multiple_imputation_averages_to_the_conditional_mean():
    rng = np.random.RandomState(10)
    X = _mcar(rng, 200, 3, 0.3)
    imputer = GaussianImputer().fit(X)
    mean_fill = imputer.transform(X)
    imputer.set_params(sample_posterior=True)
    draws = [imputer.set_params(random_state=seed).transform(X) for seed in range(200)]
    nan = np.isnan(X)
    spread = np.std([draw[nan] for draw in draws], axis=0)
    error = np.mean(draws, axis=0)[nan] - mean_fill[nan]
    assert np.abs(error / (spread / np.sqrt(len(draws)))).max() < 5.0


def test_estimator_specific_draws_are_used():
    """The adapter prefers the estimator's own ``_conditional_draw``."""

    class _OwnDraw(GradientGaussian):
        def _conditional_draw(self, X, rng):
            return np.where(np.isnan(X), 42.0, X)

    rng = np.random.RandomState(11)
    X = _mcar(rng, 100, 3, 0.2)
    own = _OwnDraw().fit(X)
    assert_array_equal(_posterior_draw(own, X, rng)[np.isnan(X)], 42.0)
    imputer = GaussianImputer(estimator=_OwnDraw(), sample_posterior=True).fit(X)
    assert_array_equal(imputer.transform(X)[np.isnan(X)], 42.0)


# ---------------------------------------------------------------------------
# Pipelines, grid search, pandas and feature names
# ---------------------------------------------------------------------------


def _diabetes_mcar():
    """The diabetes data with 20% of the entries missing."""
    X, y = load_diabetes(return_X_y=True)
    X = X.copy()
    rng = np.random.RandomState(0)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    return X, y


def test_pipeline_and_grid_search():
    X, y = _diabetes_mcar()
    pipe = make_pipeline(
        GaussianImputer(estimator=GradientGaussian()), Ridge(alpha=0.1)
    )
    grid = GridSearchCV(
        pipe, {"gaussianimputer__estimator__shrinkage": [0.1, 0.5]}, cv=KFold(3)
    )
    grid.fit(X, y)
    shrinkage = grid.best_params_["gaussianimputer__estimator__shrinkage"]
    assert shrinkage in (0.1, 0.5)
    # The refitted pipeline equals the steps run by hand.
    filled = GradientGaussian(shrinkage=shrinkage).fit(X).impute(X)
    ridge = Ridge(alpha=0.1).fit(filled, y)
    assert_allclose(grid.predict(X), ridge.predict(filled), rtol=1e-10)
    # Each fold's score is the imputer fitted on the training folds only.
    train, test = next(KFold(3).split(X))
    model = GradientGaussian(shrinkage=0.5).fit(X[train])
    fold = Ridge(alpha=0.1).fit(model.impute(X[train]), y[train])
    score = fold.score(model.impute(X[test]), y[test])
    index = grid.cv_results_["params"].index(
        {"gaussianimputer__estimator__shrinkage": 0.5}
    )
    assert_allclose(grid.cv_results_["split0_test_score"][index], score, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"add_indicator": True},
        {"sample_posterior": True, "random_state": 3},
    ],
)
def test_fit_transform_equals_fit_then_transform(params):
    """fit_transform checks X once but returns what fit().transform() does,
    also with rows without observed entries (filled with the mean)."""
    rng = np.random.RandomState(8)
    X = np.vstack([_mcar(rng, 150, 4, 0.3), np.full((2, 4), np.nan)])
    out = GaussianImputer(**params).fit_transform(X)
    imputer = GaussianImputer(**params).fit(X)
    assert_array_equal(out, imputer.transform(X))
    assert imputer.n_features_in_ == 4 and not np.isnan(out).any()
    if not params:
        assert_allclose(out[-2:], np.tile(imputer.estimator_.mean_, (2, 1)))


def test_pandas_round_trip():
    X, _ = _diabetes_mcar()
    columns = [f"feature {j}" for j in range(X.shape[1])]
    index = pd.Index(np.arange(100, 100 + len(X)) * 3, name="patient")
    frame = pd.DataFrame(X, columns=columns, index=index)
    imputer = GaussianImputer().set_output(transform="pandas")
    out = imputer.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == columns
    assert out.index.equals(index)
    assert_allclose(out.to_numpy(), GaussianImputer().fit(X).transform(X))
    assert_array_equal(imputer.feature_names_in_, columns)
    # A subset of the rows keeps its own index.
    part = imputer.transform(frame.iloc[10:20])
    assert part.index.equals(index[10:20])
    # With indicators: one column per feature with missing values in fit.
    frame.loc[:, "feature 3"] = X[:, 3]
    frame = frame.fillna({"feature 0": 0.0})
    imputer = GaussianImputer(add_indicator=True).set_output(transform="pandas")
    out = imputer.fit_transform(frame)
    missing_cols = [c for c in columns if frame[c].isna().any()]
    assert "feature 0" not in missing_cols
    assert list(out.columns) == columns + [
        f"missingindicator_{c}" for c in missing_cols
    ]
    assert_array_equal(
        out[[f"missingindicator_{c}" for c in missing_cols]].to_numpy(),
        frame[missing_cols].isna().to_numpy().astype(float),
    )
    assert out.index.equals(index)


def test_feature_names_out_without_names():
    rng = np.random.RandomState(12)
    X = _mcar(rng, 100, 3, 0.2)
    X[:, 2] = rng.randn(100)
    imputer = GaussianImputer(add_indicator=True).fit(X)
    assert_array_equal(
        imputer.get_feature_names_out(),
        ["x0", "x1", "x2", "missingindicator_x0", "missingindicator_x1"],
    )
    assert imputer.transform(X).shape == (100, 5)
    assert_array_equal(
        GaussianImputer().fit(X).get_feature_names_out(["a", "b", "c"]),
        ["a", "b", "c"],
    )


# ---------------------------------------------------------------------------
# dtypes and batches without observed entries
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"add_indicator": True},
        {"sample_posterior": True, "random_state": 0},
        {"estimator": GradientStudentT(), "sample_posterior": True, "random_state": 0},
    ],
    ids=repr,
)
def test_float32_in_float32_out(params):
    """As scikit-learn's imputers: float32 stays float32, the values are the
    float64 computation rounded once."""
    rng = np.random.RandomState(14)
    X = _mcar(rng, 200, 4, 0.2)
    X[-1] = np.nan  # a row filled with the mean (or a draw)
    X32 = X.astype(np.float32)
    imputer = GaussianImputer(**params).fit(X32)
    out = imputer.transform(X32)
    assert out.dtype == np.float32
    assert imputer.fit_transform(X32).dtype == np.float32
    assert imputer.transform(X32[-1:]).dtype == np.float32  # all-NaN batch
    reference = GaussianImputer(**params).fit(X32.astype(np.float64))
    expected = reference.transform(X32.astype(np.float64))
    assert expected.dtype == np.float64
    assert_array_equal(out, expected.astype(np.float32))
    observed = ~np.isnan(X32)
    assert_array_equal(out[:, :4][observed], X32[observed])
    # Integer input (no NaN possible) becomes float64.
    assert GaussianImputer().fit(X32).transform(np.ones((2, 4), int)).dtype == float


def test_preserves_dtype_tag():
    tags = GaussianImputer().__sklearn_tags__()
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]


@pytest.mark.parametrize("n_rows", [1, 3])
def test_batch_of_rows_without_observed_entries(n_rows):
    """Every row of the batch all-NaN: the fitted mean, as the docstring says
    (it used to raise "Found array with 0 sample(s)")."""
    rng = np.random.RandomState(15)
    X = _mcar(rng, 200, 3, 0.2)
    empty = np.full((n_rows, 3), np.nan)
    imputer = GaussianImputer().fit(X)
    assert_array_equal(
        imputer.transform(empty), np.tile(imputer.estimator_.mean_, (n_rows, 1))
    )
    with_indicator = GaussianImputer(add_indicator=True).fit(X)
    out = with_indicator.transform(empty)
    assert_array_equal(out[:, :3], imputer.transform(empty))
    assert_array_equal(out[:, 3:], 1.0)
    # Draws: from the fitted N(mean_, covariance_), as conditional_draw does.
    drawn = imputer.set_params(sample_posterior=True, random_state=0).transform(empty)
    assert not np.isnan(drawn).any()
    model = imputer.estimator_
    expected = conditional_draw(
        empty, model.mean_, model.factor_, np.random.RandomState(0)
    )
    assert_array_equal(drawn, expected)


def test_draws_with_a_factor_model():
    """covariance_type='factor' has no factor_: the draws condition
    components_.T @ components_ + diag(noise_variance_) (it used to raise an
    AttributeError)."""
    rng = np.random.RandomState(17)
    loadings = rng.randn(6, 2)
    X = rng.randn(400, 2) @ loadings.T + 0.5 * rng.randn(400, 6)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    estimator = GradientGaussian(covariance_type="factor", n_factors=2)
    imputer = GaussianImputer(
        estimator=estimator, sample_posterior=True, random_state=0
    )
    drawn = imputer.fit_transform(X)
    model = imputer.estimator_
    square = cholesky(model.covariance_, lower=True)
    expected = conditional_draw(X, model.mean_, square, np.random.RandomState(0))
    assert_allclose(drawn, expected, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------------------
# The estimator: positional, or a search over one
# ---------------------------------------------------------------------------


def test_estimator_is_the_first_positional_parameter():
    estimator = GradientGaussian(shrinkage=0.2)
    imputer = GaussianImputer(estimator, add_indicator=True)
    assert imputer.estimator is estimator and imputer.add_indicator
    with pytest.raises(TypeError):
        GaussianImputer(estimator, True)


def test_wrapping_a_grid_search():
    """GaussianImputer(GridSearchCV(...)) tunes on held-out log-likelihood,
    then imputes with the refitted best model."""
    X, _ = _diabetes_mcar()
    search = GridSearchCV(
        GradientGaussian(), {"shrinkage": [0.0, 0.05, 0.9]}, cv=KFold(3)
    )
    imputer = GaussianImputer(search).fit(X)
    best = imputer.estimator_.best_estimator_
    alone = clone(search).fit(X)
    assert imputer.estimator_.best_params_ == alone.best_params_
    assert imputer.estimator_.best_params_["shrinkage"] != 0.9
    assert_allclose(imputer.transform(X), best.impute(X), rtol=1e-12)
    drawn = imputer.set_params(sample_posterior=True, random_state=0).transform(X)
    expected = conditional_draw(X, best.mean_, best.factor_, np.random.RandomState(0))
    assert_allclose(drawn, expected, rtol=1e-12)
    # A search that keeps no refitted model, or over a density estimator that
    # cannot impute, is refused before anything is fitted.
    with pytest.raises(ValueError, match="refit=False keeps none: set refit=True"):
        GaussianImputer(clone(search).set_params(refit=False)).fit(X)
    kde = GridSearchCV(KernelDensity(), {"bandwidth": [0.5, 1.0]})
    with pytest.raises(ValueError, match=r"with the method\(s\) \['impute'\]"):
        GaussianImputer(kde).fit(X)
    with pytest.raises(ValueError, match="'estimator' parameter of GaussianImputer"):
        GaussianImputer(KernelDensity()).fit(X)


# ---------------------------------------------------------------------------
# fit is all-or-nothing
# ---------------------------------------------------------------------------


class _InterruptedFit(GradientGaussian):
    """Interrupted (as by Ctrl-C) during its fit."""

    def fit(self, X, y=None, sample_weight=None):
        raise KeyboardInterrupt


class _InterruptedImpute(GradientGaussian):
    """Fits, then is interrupted while imputing."""

    def impute(self, X):
        raise KeyboardInterrupt


def _assert_same_state(estimator, state):
    """``vars(estimator)`` holds exactly the objects of ``state``."""
    assert sorted(vars(estimator)) == sorted(state)
    for name, value in state.items():
        assert vars(estimator)[name] is value, name


@pytest.mark.parametrize("method", ["fit", "fit_transform"])
def test_failed_first_fit_leaves_the_imputer_unfitted(method):
    """It used to keep n_features_in_, so transform raised an AttributeError
    instead of NotFittedError."""
    X = np.random.RandomState(17).randn(20, 3)
    X[:, 2] = X[:, 0] + X[:, 1]  # singular covariance
    imputer = GaussianImputer()
    state = dict(vars(imputer))
    with pytest.raises(ValueError, match="singular"):
        getattr(imputer, method)(X)
    _assert_same_state(imputer, state)
    with pytest.raises(NotFittedError):
        imputer.transform(X)


def _singular_wider(rng):
    """Singular data with another number of features."""
    return GradientGaussian(), np.ones((5, 4)), ValueError


def _interrupted_fit(rng):
    return _InterruptedFit(), rng.randn(30, 4), KeyboardInterrupt


def _interrupted_impute(rng):
    return _InterruptedImpute(), _mcar(rng, 30, 4, 0.2), KeyboardInterrupt


@pytest.mark.parametrize(
    "method, failure",
    [
        ("fit", _singular_wider),
        ("fit_transform", _singular_wider),
        ("fit", _interrupted_fit),
        ("fit_transform", _interrupted_fit),
        ("fit_transform", _interrupted_impute),  # fit itself does not impute
    ],
)
def test_failed_refit_keeps_the_previous_model(method, failure):
    """The old estimator_, indicator_ and n_features_in_ stay together (a failed
    refit used to leave the new n_features_in_ beside the old model)."""
    rng = np.random.RandomState(18)
    X = _mcar(rng, 100, 3, 0.2)
    imputer = GaussianImputer(add_indicator=True).fit(X)
    expected = imputer.transform(X)
    estimator, X_new, error = failure(rng)
    imputer.set_params(estimator=estimator)
    state = dict(vars(imputer))
    with pytest.raises(error):
        getattr(imputer, method)(X_new)
    _assert_same_state(imputer, state)
    assert imputer.n_features_in_ == 3
    assert_array_equal(imputer.transform(X), expected)


# ---------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------

# Sections scikit-learn does not require for every method either: extended
# summary, "See Also" and examples per method, the type of each return value.
_NUMPYDOC_IGNORED = {"ES01", "SA01", "EX01", "RT02"}


@pytest.mark.parametrize(
    "name",
    [""]
    + [
        f".{m}"
        for m in GaussianImputer.__dict__
        if not m.startswith("_") and callable(getattr(GaussianImputer, m))
    ],
)
def test_numpydoc(name):
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    result = numpydoc_validate.validate(f"sklearn_mvn.GaussianImputer{name}")
    errors = [e for e in result["errors"] if e[0] not in _NUMPYDOC_IGNORED]
    assert not errors, errors


def test_fitted_attributes_are_documented():
    X = _mcar(np.random.RandomState(0), 50, 3, 0.2)
    model = GaussianImputer(add_indicator=True).fit(X)
    fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert "estimator_" in fitted
    for name in fitted:
        assert f"{name} :" in GaussianImputer.__doc__, name
