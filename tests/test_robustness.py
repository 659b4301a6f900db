"""Bad input gets a clear error; extreme but valid data get the exact answer.

Each row of the bad-input tables is one test: the error type and a message
that names the problem and, where there is one, the fix. The README's table
"What it does with bad input" summarises the same rows.
"""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal, norm
from sklearn.exceptions import NotFittedError

from sklearn_mvn import GradientGaussian
from sklearn_mvn._data.stats import SufficientStats

COVARIANCE_TYPES = ["full", "diag", "spherical"]


def _data(n_samples=60, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    A = rng.randn(n_features, n_features)
    cov = A @ A.T + np.eye(n_features)
    return rng.multivariate_normal(rng.randn(n_features), cov, size=n_samples)


def _closed_form(X, covariance_type="full"):
    """Maximum-likelihood mean and covariance of each structure."""
    mean = X.mean(axis=0)
    cov = np.cov(X.T, bias=True).reshape(X.shape[1], X.shape[1])
    if covariance_type == "diag":
        cov = np.diag(np.diag(cov))
    elif covariance_type == "spherical":
        cov = np.trace(cov) / X.shape[1] * np.eye(X.shape[1])
    return mean, cov


@pytest.fixture(scope="module")
def fitted():
    return GradientGaussian().fit(_data())


# ---------------------------------------------------------------------------
# Bad X, at fit time and at score time
# ---------------------------------------------------------------------------


def _with(value):
    def make():
        X = _data()
        X[3, 1] = value
        return X

    return make


def _object_with(value):
    def make():
        X = _data().astype(object)
        X[0, 0] = value
        return X

    return make


# (factory of X, exception, message pattern): the pattern names the problem
# and, where there is one, the fix.
BAD_X = [
    pytest.param(_with(np.inf), ValueError, "contains infinity", id="inf"),
    pytest.param(_with(-np.inf), ValueError, "contains infinity", id="-inf"),
    pytest.param(
        lambda: np.empty((0, 3)),
        ValueError,
        r"0 sample\(s\).*minimum of 1",
        id="0-rows",
    ),
    pytest.param(
        lambda: np.empty((5, 0)),
        ValueError,
        r"0 feature\(s\).*minimum of 1",
        id="0-columns",
    ),
    pytest.param(
        lambda: _data()[:, 0],
        ValueError,
        r"(?s)Expected 2D array, got 1D array.*reshape\(-1, 1\)",
        id="1-D",
    ),
    pytest.param(
        lambda: np.float64(1.0),
        ValueError,
        "Expected 2D array, got scalar",
        id="scalar",
    ),
    pytest.param(
        lambda: _data() + 1j,
        ValueError,
        r"Complex data not supported.*real-valued.*X\.real",
        id="complex",
    ),
    pytest.param(
        _object_with("a"),
        ValueError,
        r"X holds text \(an object array, e.g. 'a'\).*OneHotEncoder",
        id="object-with-string",
    ),
    pytest.param(
        _object_with({"foo": "bar"}),
        TypeError,
        r"entries that are not numbers.*argument must be a string.*number",
        id="object-with-dict",
    ),
    pytest.param(
        lambda: _data().astype(str),
        ValueError,
        r"X holds text \(<U.*needs numeric data.*dtype=float",
        id="str-dtype",
    ),
    pytest.param(
        lambda: _data().astype("S8"),
        ValueError,
        r"X holds text \(\|S8\).*needs numeric data",
        id="bytes-dtype",
    ),
    pytest.param(
        lambda: [["a", 1.0, 0.0], ["b", 2.0, 1.0], ["c", 0.5, 3.0]],
        ValueError,
        r"X holds text.*OneHotEncoder",
        id="list-of-strings",
    ),
    pytest.param(
        lambda: sp.csr_matrix(_data()),
        TypeError,
        r"Sparse data was passed.*dense data is required.*toarray",
        id="csr_matrix",
    ),
    pytest.param(
        lambda: sp.csc_array(_data()),
        TypeError,
        r"Sparse data was passed.*dense data is required.*toarray",
        id="csc_array",
    ),
    pytest.param(
        lambda: sp.coo_array(_data()),
        TypeError,
        r"Sparse data was passed.*dense data is required.*toarray",
        id="coo_array",
    ),
]


@pytest.mark.parametrize("make_X, error, match", BAD_X)
def test_bad_X_at_fit(make_X, error, match):
    with pytest.raises(error, match=match):
        GradientGaussian().fit(make_X())


@pytest.mark.parametrize("method", ["score_samples", "score", "mahalanobis", "bic"])
@pytest.mark.parametrize("make_X, error, match", BAD_X)
def test_bad_X_at_score(fitted, method, make_X, error, match):
    with pytest.raises(error, match=match):
        getattr(fitted, method)(make_X())


def test_data_frame_with_text_column():
    frame = pd.DataFrame({"a": ["x", "y", "z", "w"], "b": [1.0, 2.0, 3.0, 0.0]})
    with pytest.raises(ValueError, match="X holds text \\(column 'a'"):
        GradientGaussian().fit(frame)


def test_object_array_of_numbers_is_accepted():
    X = _data()
    model = GradientGaussian().fit(X.astype(object))
    assert_allclose(model.covariance_, np.cov(X.T, bias=True), rtol=1e-12)


# ---------------------------------------------------------------------------
# Singular covariance without regularisation
# ---------------------------------------------------------------------------


def _constant_feature():
    X = _data()
    X[:, 1] = 5.0
    return X


def _collinear():
    X = _data()
    X[:, 2] = 2.0 * X[:, 0] - X[:, 1]
    return X


SINGULAR = [
    pytest.param(lambda: _data()[:1], "zero variance in feature", id="one-sample"),
    pytest.param(_constant_feature, r"zero variance in feature\(s\) \[1\]", id="const"),
    pytest.param(_collinear, "the features are linearly dependent", id="collinear"),
    pytest.param(lambda: _data(3, 5), "the features are linearly dependent", id="n<d"),
    pytest.param(lambda: _data(5, 5), "the features are linearly dependent", id="n=d"),
]


@pytest.mark.parametrize("make_X, detail", SINGULAR)
def test_singular_covariance_names_the_fix(make_X, detail):
    X = make_X()
    with pytest.raises(ValueError, match=rf"singular \({detail}.*reg_covar.*shrinkage"):
        GradientGaussian().fit(X)
    # ... and the fix the message names works.
    model = GradientGaussian(reg_covar=1e-3).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_singular_structured_covariance(covariance_type):
    match = "singular.*constant.*reg_covar"
    with pytest.raises(ValueError, match=match):
        GradientGaussian(covariance_type=covariance_type).fit(_data()[:1])


def test_shrinkage_cannot_fix_all_constant_data():
    X = np.full((10, 3), 2.5)
    with pytest.raises(ValueError, match="shrinkage needs at least one non-constant"):
        GradientGaussian(shrinkage=0.5).fit(X)


def test_one_positive_weight_is_one_sample():
    weights = np.zeros(60)
    weights[7] = 1.0
    with pytest.raises(ValueError, match="zero variance.*reg_covar"):
        GradientGaussian().fit(_data(), sample_weight=weights)


# ---------------------------------------------------------------------------
# Bad sample weights
# ---------------------------------------------------------------------------


def _weights(values):
    weights = np.ones(60)
    weights[: len(values)] = values
    return weights


BAD_WEIGHTS = [
    pytest.param(_weights([-1.0]), "negative values.*must be >= 0", id="negative"),
    pytest.param(_weights([np.nan]), "NaN or infinity.*must be finite", id="nan"),
    pytest.param(_weights([np.inf]), "NaN or infinity.*must be finite", id="inf"),
    pytest.param(np.zeros(60), "sums to zero.*positive weight", id="all-zero"),
    pytest.param(
        np.ones(59), "59 entries but X has 60.*one weight per row", id="short"
    ),
    pytest.param(np.ones(61), "61 entries but X has 60", id="long"),
    pytest.param(np.ones((60, 1)), r"must be 1-D.*\(60, 1\)", id="2-D"),
    pytest.param(np.ones((60, 2)), r"must be 1-D.*\(60, 2\)", id="2-D-wide"),
    pytest.param(np.array(["a"] * 60), "array of numbers", id="strings"),
]


@pytest.mark.parametrize("sample_weight, match", BAD_WEIGHTS)
def test_bad_sample_weight(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        GradientGaussian().fit(_data(), sample_weight=sample_weight)


# ---------------------------------------------------------------------------
# Wrong number of features after fit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["score_samples", "score", "mahalanobis", "bic", "aic"]
)
@pytest.mark.parametrize("n_features", [2, 4])
def test_wrong_number_of_features(fitted, method, n_features):
    X = _data(n_features=n_features)
    match = f"X has {n_features} features, but GradientGaussian is expecting 3"
    with pytest.raises(ValueError, match=match):
        getattr(fitted, method)(X)


def test_warm_start_with_other_features():
    model = GradientGaussian(warm_start=True).fit(_data())
    with pytest.raises(ValueError, match="previous fit had 3.*warm_start=False"):
        model.fit(_data(n_features=4))


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.score_samples(_data()),
        lambda m: m.score(_data()),
        lambda m: m.mahalanobis(_data()),
        lambda m: m.bic(_data()),
        lambda m: m.aic(_data()),
        lambda m: m.sample(),
    ],
    ids=["score_samples", "score", "mahalanobis", "bic", "aic", "sample"],
)
def test_not_fitted(call):
    with pytest.raises(NotFittedError, match="not fitted yet.*Call 'fit'"):
        call(GradientGaussian())


# ---------------------------------------------------------------------------
# Invalid parameters (InvalidParameterError is a ValueError)
# ---------------------------------------------------------------------------

INVALID_PARAMS = [
    ("covariance_type", "tied"),
    ("covariance_type", None),
    ("covariance_type", "FULL"),
    ("shrinkage", -0.1),
    ("shrinkage", 1.5),
    ("shrinkage", np.nan),
    ("shrinkage", "0.5"),
    ("reg_covar", -1e-6),
    ("reg_covar", np.nan),
    ("reg_covar", np.inf),
    ("reg_covar", "1e-3"),
    ("max_iter", -1),
    ("max_iter", 1.5),
    ("max_iter", None),
    ("tol", -1e-8),
    ("tol", np.nan),
    ("tol", None),
    ("verbose", -1),
    ("verbose", "yes"),
    ("warm_start", "yes"),
    ("warm_start", 1),
    ("warm_start", None),
]


@pytest.mark.parametrize(
    "name, value", INVALID_PARAMS, ids=[f"{n}={v!r}" for n, v in INVALID_PARAMS]
)
def test_invalid_parameter(name, value):
    model = GradientGaussian(**{name: value})
    with pytest.raises(ValueError, match=f"The '{name}' parameter of GradientGaussian"):
        model.fit(_data())


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, "3", None, True])
def test_invalid_n_samples(fitted, n_samples):
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        fitted.sample(n_samples)


# ---------------------------------------------------------------------------
# Data beyond float64's range get a clear error, not garbage
# ---------------------------------------------------------------------------


def test_too_large_values():
    with pytest.raises(ValueError, match="overflows float64.*Rescale X"):
        GradientGaussian().fit(_data() * 1e160)


def test_too_small_spread():
    with pytest.raises(ValueError, match=r"below 2e-304.*Rescale X"):
        GradientGaussian().fit(_data() * 1e-154)


def test_spread_that_squares_to_zero():
    with pytest.raises(ValueError, match="square to 0 in float64: rescale X"):
        GradientGaussian().fit(_data() * 1e-170)


# ---------------------------------------------------------------------------
# Extreme but valid data
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("scale", [1e-120, 1e120])
def test_extreme_scales(covariance_type, scale):
    X = _data(200, 4)
    mean, cov = _closed_form(X, covariance_type)
    model = GradientGaussian(covariance_type=covariance_type).fit(X * scale)
    assert_allclose(model.mean_, scale * mean, rtol=1e-8)
    assert_allclose(model.covariance_, scale**2 * cov, rtol=1e-8, atol=0)
    log_density = model.score_samples(X * scale)
    assert np.all(np.isfinite(log_density))
    # log N(s x | s mu, s^2 S) = log N(x | mu, S) - d log s
    expected = multivariate_normal(mean, cov).logpdf(X) - 4 * np.log(scale)
    assert_allclose(log_density, expected, rtol=1e-12, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_large_mean_unit_spread(covariance_type):
    X = _data(500, 3) + 1e9
    centred = X - 1e9  # exact: every entry is within a factor 2 of 1e9
    mean, cov = _closed_form(centred, covariance_type)
    model = GradientGaussian(covariance_type=covariance_type).fit(X)
    sd = np.sqrt(np.diag(cov))
    assert np.max(np.abs(model.mean_ - 1e9 - mean) / sd) < 1e-6
    assert np.max(np.abs(model.covariance_ - cov) / np.outer(sd, sd)) < 1e-6
    expected = multivariate_normal(mean, cov).logpdf(centred)
    assert_allclose(model.score_samples(X), expected, atol=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_matches_float64(covariance_type):
    X = _data(300, 4)
    X32 = X.astype(np.float32)
    model32 = GradientGaussian(covariance_type=covariance_type).fit(X32)
    model64 = GradientGaussian(covariance_type=covariance_type).fit(X)
    assert model32.covariance_.dtype == np.float64
    assert_allclose(model32.mean_, model64.mean_, rtol=1e-5, atol=1e-5)
    assert_allclose(model32.covariance_, model64.covariance_, rtol=1e-5, atol=1e-5)
    scores32 = model32.score_samples(X32)
    assert scores32.dtype == np.float64
    assert_allclose(scores32, model64.score_samples(X), rtol=1e-5)
    # The float32 values themselves are fitted exactly (float64 accumulation).
    exact = GradientGaussian(covariance_type=covariance_type).fit(X32.astype(float))
    assert_allclose(model32.covariance_, exact.covariance_, rtol=1e-12)


def test_duplicated_rows():
    X = _data(100, 3)
    once = GradientGaussian().fit(X)
    twice = GradientGaussian().fit(np.vstack([X, X, X]))
    assert_allclose(twice.mean_, once.mean_, rtol=1e-12)
    assert_allclose(twice.covariance_, once.covariance_, rtol=1e-12)
    # Few distinct rows, each repeated many times.
    few = np.repeat(X[:5], 200, axis=0)
    mean, cov = _closed_form(few)
    model = GradientGaussian().fit(few)
    assert_allclose(model.covariance_, cov, rtol=1e-10)
    assert_allclose(
        model.score_samples(X[:5]), multivariate_normal(mean, cov).logpdf(X[:5])
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_feature(covariance_type):
    x = _data(80, 1)
    model = GradientGaussian(covariance_type=covariance_type).fit(x)
    assert model.covariance_.shape == (1, 1)
    assert_allclose(model.mean_, [x.mean()], rtol=1e-12)
    assert_allclose(model.covariance_, [[x.var()]], rtol=1e-12)
    expected = norm(x.mean(), x.std()).logpdf(x[:, 0])
    assert_allclose(model.score_samples(x), expected, rtol=1e-12)
    assert_allclose(model.mahalanobis(x), (x[:, 0] - x.mean()) ** 2 / x.var())


@pytest.mark.parametrize("value", [0.1, np.pi * 1e9, 1e-3, -7.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_constant_feature_detected_in_long_data(value, weighted):
    # Many rows and several chunks: a naive column sum would leave a
    # spurious variance of order (n eps value)^2 in the constant feature.
    rng = np.random.RandomState(0)
    n_samples = 300_000
    X = np.column_stack([rng.randn(n_samples), np.full(n_samples, value)])
    weights = rng.uniform(0.5, 2.0, n_samples) if weighted else None
    with pytest.raises(ValueError, match=r"zero variance in feature\(s\) \[1\]"):
        GradientGaussian().fit(X, sample_weight=weights)


@pytest.mark.parametrize("center, spread", [(1.0, 1e-13), (1e9, 1e-5), (1e6, 1e-6)])
def test_near_constant_feature_is_exact(center, spread):
    # The spread is a few dozen units in the last place of the mean: still a
    # real variance, which the statistics get to full precision.
    rng = np.random.RandomState(1)
    column = center + spread * rng.randn(1000)
    exact = [Fraction(v) for v in column]
    mean = sum(exact) / len(exact)
    variance = float(sum((v - mean) ** 2 for v in exact) / len(exact))
    stats = SufficientStats.from_array(column[:, None])
    assert_allclose(stats.covariance()[0, 0], variance, rtol=1e-12)
    X = np.column_stack([rng.randn(1000), column])
    model = GradientGaussian().fit(X)
    assert_allclose(model.covariance_[1, 1], variance, rtol=1e-12)
    # Merging chunks rounds each chunk's mean to float64, which costs a few
    # digits of a spread this small (still a relative 1e-3, not 100%).
    merged = SufficientStats.from_array(column[:, None], chunk_size=64)
    assert_allclose(merged.covariance()[0, 0], variance, rtol=1e-3)
