"""partial_fit: streamed chunks give exactly the model fit gives on their union."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_mvn import GradientGaussian

N_SAMPLES, N_FEATURES = 300, 5


def ill_conditioned(n_samples=N_SAMPLES, n_features=N_FEATURES, seed=0):
    """Strongly correlated rows, scales 1e-3..1e6, means far from zero."""
    rng = np.random.RandomState(seed)
    corr_factor = np.tril(rng.uniform(0.5, 1.0, (n_features, n_features)))
    scales = np.logspace(-3, 6, n_features)
    X = rng.standard_normal((n_samples, n_features)) @ corr_factor.T
    X = X * scales + 50.0 * scales
    weights = rng.uniform(0.1, 3.0, n_samples)
    return X, weights


def assert_same_gaussian(model, reference, tol=1e-8):
    """Means in standard deviations and covariances in correlation units."""
    scale = np.sqrt(np.diag(reference.covariance_))
    np.testing.assert_allclose(
        (model.mean_ - reference.mean_) / scale, 0.0, rtol=0, atol=tol
    )
    np.testing.assert_allclose(
        model.covariance_ / np.outer(scale, scale),
        reference.covariance_ / np.outer(scale, scale),
        rtol=0,
        atol=tol,
    )


def split_points(name, n_samples):
    """Row indices where the chunks of a named chunking start."""
    if name == "one chunk":
        return []
    if name == "equal chunks":
        return list(range(60, n_samples, 60))
    if name == "uneven chunks":
        rng = np.random.RandomState(1)
        return sorted(rng.choice(np.arange(10, n_samples), 6, replace=False))
    if name == "rows after a first chunk":
        # A first chunk big enough for a non-singular covariance, then single
        # rows, then the rest.
        return [40, *range(41, 70), 70]
    raise ValueError(name)


CHUNKINGS = ["one chunk", "equal chunks", "uneven chunks", "rows after a first chunk"]


def stream(model, X, weights, chunking):
    starts = split_points(chunking, X.shape[0])
    for rows in np.split(np.arange(X.shape[0]), starts):
        w = None if weights is None else weights[rows]
        model.partial_fit(X[rows], sample_weight=w)
    return model


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"covariance_type": "diag"},
        {"covariance_type": "spherical"},
        {"shrinkage": 0.3, "reg_covar": 1e-2},
    ],
    ids=["full", "diag", "spherical", "penalised"],
)
def test_partial_fit_equals_fit_on_concatenation(chunking, weighted, params):
    X, weights = ill_conditioned()
    weights = weights if weighted else None
    reference = GradientGaussian(**params).fit(X, sample_weight=weights)
    model = stream(GradientGaussian(**params), X, weights, chunking)
    assert_same_gaussian(model, reference)
    assert model.n_samples_seen_ == N_SAMPLES
    assert model.n_features_in_ == N_FEATURES
    np.testing.assert_allclose(model.objective_, reference.objective_, rtol=1e-10)
    np.testing.assert_allclose(
        model.score_samples(X[:20]), reference.score_samples(X[:20]), rtol=1e-10
    )


def test_first_call_is_a_fit_on_the_chunk():
    X, weights = ill_conditioned()
    model = GradientGaussian().partial_fit(X[:100], sample_weight=weights[:100])
    reference = GradientGaussian().fit(X[:100], sample_weight=weights[:100])
    assert_same_gaussian(model, reference, tol=1e-14)
    assert model.n_samples_seen_ == 100
    assert reference.n_samples_seen_ == 100


@pytest.mark.parametrize("warm_start", [False, True])
def test_continuing_call_starts_at_the_better_point(warm_start):
    """For complete data the merged statistics' pilot is the optimum: no steps."""
    X, _ = ill_conditioned()
    model = GradientGaussian(warm_start=warm_start).partial_fit(X[:100])
    model.partial_fit(X[100:])
    assert model.n_iter_ == 0
    assert model.converged_
    # history_[0] is the starting point: already stationary.
    assert model.history_[0][1] <= model.tol
    assert_same_gaussian(model, GradientGaussian().fit(X), tol=1e-12)


def test_zero_weight_chunk_keeps_the_model():
    X, weights = ill_conditioned()
    model = GradientGaussian().partial_fit(X[:200], sample_weight=weights[:200])
    mean, covariance = model.mean_.copy(), model.covariance_.copy()
    model.partial_fit(X[200:], sample_weight=np.zeros(N_SAMPLES - 200))
    assert model.n_samples_seen_ == N_SAMPLES
    assert model.n_iter_ == 0
    np.testing.assert_allclose(model.mean_, mean, rtol=1e-13)
    np.testing.assert_allclose(model.covariance_, covariance, rtol=1e-12)


def test_first_call_rejects_zero_weight_sum():
    X, _ = ill_conditioned()
    with pytest.raises(ValueError, match="sums to zero"):
        GradientGaussian().partial_fit(X[:50], sample_weight=np.zeros(50))


def test_partial_fit_after_fit_continues_and_fit_resets():
    X, weights = ill_conditioned()
    model = GradientGaussian().fit(X[:120], sample_weight=weights[:120])
    model.partial_fit(X[120:], sample_weight=weights[120:])
    assert model.n_samples_seen_ == N_SAMPLES
    assert_same_gaussian(model, GradientGaussian().fit(X, sample_weight=weights))

    # fit discards the statistics: fit then partial_fit equals fit on both.
    model.fit(X[200:])
    assert model.n_samples_seen_ == 100
    assert_same_gaussian(model, GradientGaussian().fit(X[200:]), tol=1e-14)
    model.partial_fit(X[:50])
    assert model.n_samples_seen_ == 150
    expected = GradientGaussian().fit(np.vstack([X[200:], X[:50]]))
    assert_same_gaussian(model, expected)


def test_changed_number_of_features_raises_and_keeps_the_model():
    X, _ = ill_conditioned()
    model = GradientGaussian().partial_fit(X[:100])
    mean = model.mean_.copy()
    with pytest.raises(ValueError, match="X has 4 features, but GradientGaussian"):
        model.partial_fit(X[100:, :4])
    assert model.n_samples_seen_ == 100
    model.partial_fit(X[100:])
    assert not np.allclose(model.mean_, mean)
    assert_same_gaussian(model, GradientGaussian().fit(X))


def test_failed_chunk_leaves_statistics_unchanged():
    X, _ = ill_conditioned()
    model = GradientGaussian().partial_fit(X[:100])
    bad = X[100:].copy()
    bad[3, 2] = np.inf  # invalid with or without missing-value support
    with pytest.raises(ValueError, match="infinity"):
        model.partial_fit(bad)
    assert model.n_samples_seen_ == 100
    model.partial_fit(X[100:])
    assert_same_gaussian(model, GradientGaussian().fit(X))


def test_singular_first_chunk_is_kept_until_the_model_is_determined():
    """The MLE of too few rows does not exist: the chunk is kept (issue 14,
    defect 4), the call warns, the estimator is not fitted, and it fits as
    soon as the rows determine a model."""
    X, _ = ill_conditioned()
    model = GradientGaussian()
    with pytest.warns(UserWarning, match="1 rows seen so far") as record:
        model.partial_fit(X[:1])
    assert record[0].filename == __file__
    assert model.n_samples_seen_ == 1
    with pytest.raises(NotFittedError):
        model.score_samples(X[:3])
    model.partial_fit(X[1:])
    assert model.n_samples_seen_ == N_SAMPLES
    assert_same_gaussian(model, GradientGaussian().fit(X), tol=1e-12)


def test_rows_one_at_a_time_lose_nothing():
    """Streaming single rows: every row is kept, the fit equals fit(X)."""
    X, _ = ill_conditioned(n_samples=40)
    model = GradientGaussian()
    d = X.shape[1]
    with pytest.warns(UserWarning, match="do not determine a model"):
        for i in range(d):
            model.partial_fit(X[i : i + 1])
    for i in range(d, X.shape[0]):
        model.partial_fit(X[i : i + 1])
    assert model.n_samples_seen_ == X.shape[0]
    assert_same_gaussian(model, GradientGaussian().fit(X), tol=1e-10)


def test_single_row_chunks_with_regularisation_from_the_start():
    """With reg_covar the model exists from the first row on."""
    X, weights = ill_conditioned(n_samples=40)
    model = GradientGaussian(reg_covar=1.0)
    for i in range(X.shape[0]):
        model.partial_fit(X[i : i + 1], sample_weight=weights[i : i + 1])
    reference = GradientGaussian(reg_covar=1.0).fit(X, sample_weight=weights)
    assert_same_gaussian(model, reference)


def test_fitted_attributes_are_documented():
    X, _ = ill_conditioned()
    model = GradientGaussian().partial_fit(X)
    fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert "n_samples_seen_" in fitted
    for name in fitted:
        assert f"{name} :" in GradientGaussian.__doc__, name
