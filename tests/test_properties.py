"""Property-based tests (hypothesis): invariances every fit must satisfy.

The data are drawn from seeded NumPy generators whose seeds, sizes and scales
hypothesis chooses, so every example is a well-posed problem (enough samples,
a non-singular covariance). Examples are derandomised for reproducible runs.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal, ortho_group

from sklearn_mvn import GradientGaussian

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

seeds = st.integers(0, 2**31)
n_features = st.integers(1, 5)
covariance_types = st.sampled_from(["full", "diag", "spherical"])


def _data(seed, d, n_samples=None, decades=2):
    """Correlated normal data with scales between 10^-decades and 10^decades."""
    rng = np.random.RandomState(seed)
    n_samples = n_samples or int(rng.randint(d + 2, 80))
    mixing = rng.randn(d, d) + 2.0 * np.eye(d)
    scales = 10.0 ** rng.uniform(-decades, decades, d)
    return (rng.randn(n_samples, d) @ mixing) * scales + rng.randn(d) * scales


def _transform(seed, d, covariance_type):
    """A well-conditioned B the structure is equivariant under, and c.

    Full: any B (singular values in [0.5, 2]); diag: diagonal B; spherical:
    a multiple of an orthogonal matrix.
    """
    rng = np.random.RandomState(seed)
    if covariance_type == "full":
        left = ortho_group.rvs(d, random_state=rng) if d > 1 else np.eye(1)
        right = ortho_group.rvs(d, random_state=rng) if d > 1 else np.eye(1)
        B = left @ np.diag(rng.uniform(0.5, 2.0, d)) @ right
    elif covariance_type == "diag":
        B = np.diag(rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d))
    else:
        B = rng.uniform(0.5, 2.0) * (
            ortho_group.rvs(d, random_state=rng) if d > 1 else -np.eye(1)
        )
    return B, rng.uniform(-100.0, 100.0, d)


def _assert_same_model(model, mean, cov, rtol=1e-8):
    scale = np.sqrt(np.diag(cov))
    assert_allclose(model.mean_, mean, rtol=rtol, atol=rtol * np.max(np.abs(mean)))
    assert_allclose(
        model.covariance_, cov, rtol=rtol, atol=rtol * np.max(np.outer(scale, scale))
    )


@SETTINGS
@given(seed=seeds, d=n_features, covariance_type=covariance_types)
def test_affine_equivariance(seed, d, covariance_type):
    # Modest scales: a general B mixes the features, and mixing scales of
    # 1e-2 and 1e2 makes the moved problem ill-conditioned (the rounding of
    # X @ B alone then moves the log-densities by more than 1e-9).
    X = _data(seed, d, decades=0.5)
    B, c = _transform(seed + 1, d, covariance_type)
    model = GradientGaussian(covariance_type=covariance_type).fit(X)
    moved = GradientGaussian(covariance_type=covariance_type).fit(X @ B + c)
    _assert_same_model(moved, B.T @ model.mean_ + c, B.T @ model.covariance_ @ B)
    # The log-density changes by the log-Jacobian -log|det B|.
    log_det = np.linalg.slogdet(B)[1]
    assert_allclose(
        moved.score_samples(X @ B + c),
        model.score_samples(X) - log_det,
        rtol=1e-9,
        atol=1e-9,
    )


@SETTINGS
@given(seed=seeds, d=n_features, covariance_type=covariance_types)
def test_feature_permutation(seed, d, covariance_type):
    X = _data(seed, d)
    perm = np.random.RandomState(seed).permutation(d)
    model = GradientGaussian(covariance_type=covariance_type).fit(X)
    permuted = GradientGaussian(covariance_type=covariance_type).fit(X[:, perm])
    _assert_same_model(
        permuted, model.mean_[perm], model.covariance_[np.ix_(perm, perm)]
    )
    assert_allclose(
        permuted.score_samples(X[:, perm]), model.score_samples(X), rtol=1e-10
    )


@SETTINGS
@given(
    seed=seeds,
    d=n_features,
    covariance_type=covariance_types,
    shrinkage=st.sampled_from([0.0, 0.3]),
)
def test_integer_weights_equal_repeated_rows(seed, d, covariance_type, shrinkage):
    X = _data(seed, d)
    rng = np.random.RandomState(seed)
    weights = rng.randint(0, 4, X.shape[0])
    weights[: d + 2] = np.maximum(weights[: d + 2], 1)  # enough distinct rows
    params = dict(covariance_type=covariance_type, shrinkage=shrinkage)
    weighted = GradientGaussian(**params).fit(X, sample_weight=weights)
    repeated = GradientGaussian(**params).fit(np.repeat(X, weights, axis=0))
    _assert_same_model(weighted, repeated.mean_, repeated.covariance_, rtol=1e-9)
    assert_allclose(weighted.score_samples(X), repeated.score_samples(X), rtol=1e-9)


@SETTINGS
@given(
    seed=seeds,
    d=n_features,
    covariance_type=covariance_types,
    shrinkage=st.sampled_from([0.0, 0.1, 0.9]),
    reg_covar=st.sampled_from([0.0, 1e-3, 10.0]),
)
def test_score_samples_matches_scipy(seed, d, covariance_type, shrinkage, reg_covar):
    X = _data(seed, d)
    model = GradientGaussian(
        covariance_type=covariance_type, shrinkage=shrinkage, reg_covar=reg_covar
    ).fit(X)
    points = _data(seed + 1, d, n_samples=20)
    reference = multivariate_normal(model.mean_, model.covariance_)
    assert_allclose(model.score_samples(points), reference.logpdf(points), rtol=1e-9)
    assert_allclose(model.score(points), np.mean(reference.logpdf(points)), rtol=1e-9)
