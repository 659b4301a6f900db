"""Trimmed t fits (``GradientStudentT(support_fraction < 1)``) and the
functions of ``sklearn_mvn._trimming``."""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.stats import multivariate_t
from sklearn.exceptions import ConvergenceWarning
from test_missing import _random_cov

from sklearn_mvn import GradientStudentT
from sklearn_mvn._robust.trimming import (
    correct_scale,
    start_centralities,
    support_mask,
    support_size,
    tail_probability,
)


def _contaminated(seed=0, n=1200, d=5, frac=0.2, df=3.0, distance=12.0, spread=0.5):
    """t(df) inliers and a tight cluster at Mahalanobis distance ``distance``
    (the last rows)."""
    rng = np.random.RandomState(seed)
    shape = _random_cov(rng, d)
    inliers = multivariate_t(np.zeros(d), shape, df=df).rvs(n, random_state=rng)
    direction = rng.randn(d)
    direction /= np.sqrt(direction @ np.linalg.solve(shape, direction))
    n_out = int(frac / (1 - frac) * n)
    cluster = distance * direction + spread * rng.multivariate_normal(
        np.zeros(d), shape, n_out
    )
    return np.vstack([inliers, cluster]), n, shape


# -- the pieces ----------------------------------------------------------------


def test_support_mask_keeps_weight_h_most_central_first():
    rng = np.random.RandomState(0)
    centrality = rng.randn(50)
    weights = rng.randint(0, 4, size=50).astype(float)
    h = 0.6 * weights.sum()
    mask = support_mask(centrality, weights, h)
    assert np.isclose(np.sum(weights * mask), h)
    assert np.all((mask >= 0) & (mask <= 1))
    assert np.all(mask[weights == 0] == 0)
    # Every fully kept row is at least as central as every dropped row.
    kept = (mask == 1) & (weights > 0)
    dropped = (mask == 0) & (weights > 0)
    assert centrality[kept].min() >= centrality[dropped].max()


def test_support_mask_integer_weights_equal_repeated_rows():
    rng = np.random.RandomState(1)
    centrality = rng.randn(30)
    weights = rng.randint(1, 4, size=30)
    h = 0.55 * weights.sum()
    mask = support_mask(centrality, weights.astype(float), h)
    repeated = support_mask(np.repeat(centrality, weights), np.ones(weights.sum()), h)
    per_row = np.add.reduceat(repeated, np.r_[0, np.cumsum(weights)[:-1]])
    np.testing.assert_allclose(weights * mask, per_row, atol=1e-12)


def test_support_size_default_is_mincovdet():
    assert support_size(100, 10, None) == (100 + 10 + 1) / 200
    assert support_size(100, 10, 0.8) == 0.8


def test_start_centralities_rank_the_cluster_last():
    X, n, _ = _contaminated()
    clean = []
    for centrality in start_centralities(X, X, None):
        support = support_mask(centrality, np.ones(len(X)), 0.5 * len(X)) > 0
        clean.append(not support[n:].any())
    # Five starts; the distance to the coordinate-wise median and at least
    # two correlation starts put the whole cluster outside half the rows.
    assert len(clean) == 5
    assert clean[0] and sum(clean) >= 3


def _truncated_f_sample(rng, m, p, nu, c, keep):
    x = c * p * stats.f.rvs(p, nu, size=m, random_state=rng)
    cut = np.quantile(x, keep)
    return x[x <= cut], cut


def test_correct_scale_recovers_scale_and_df_of_a_truncated_sample():
    rng = np.random.RandomState(2)
    dist, cut = _truncated_f_sample(rng, 40000, 6, 4.0, 0.3, 0.6)
    ones = np.ones(dist.size)
    c, nu = correct_scale(dist, 6 * ones, ones, cut * ones, 50.0, True, (0.01, 1e6))
    assert abs(c / 0.3 - 1) < 0.05
    assert abs(nu - 4.0) < 0.8


def test_correct_scale_fixed_df_matches_a_direct_maximisation():
    rng = np.random.RandomState(3)
    p, nu = 4, 7.0
    dist, cut = _truncated_f_sample(rng, 3000, p, nu, 2.0, 0.5)
    ones = np.ones(dist.size)
    c, df = correct_scale(dist, p * ones, ones, cut * ones, nu, False, (0.01, 1e6))
    assert df == nu

    def nll(log_c):  # the truncated F likelihood written out
        scale = np.exp(log_c)
        x = dist / (scale * p)
        log_pdf = stats.f.logpdf(x, p, nu) - np.log(scale * p)
        return -(log_pdf - stats.f.logcdf(cut / (scale * p), p, nu)).sum()

    ref = optimize.minimize_scalar(nll, bracket=(-1, 2), tol=1e-12).x
    assert abs(np.log(c) - ref) < 1e-6


def test_tail_probability_is_the_f_tail():
    assert np.isclose(
        tail_probability(np.array([12.0]), np.array([3]), 5.0)[0],
        stats.f.sf(4.0, 3, 5.0),
    )


# -- the estimator -----------------------------------------------------------


def test_trimmed_fit_resists_a_cluster_that_breaks_the_plain_t():
    X, n, shape = _contaminated()
    plain = GradientStudentT().fit(X)
    trimmed = GradientStudentT(support_fraction=None).fit(X)
    clean = GradientStudentT().fit(X[:n])

    # The plain t absorbs the cluster (the test's point): its location moves
    # by over one unit of the clean scale; the trimmed fit's does not.
    def moved(model):
        delta = model.mean_ - clean.mean_
        return float(np.sqrt(delta @ np.linalg.solve(clean.shape_, delta)))

    assert moved(plain) > 1.0
    assert moved(trimmed) < 0.15
    assert not trimmed.support_[n:].any()
    assert trimmed.converged_
    # The correction for the trimming: the scale and df are those of the
    # inliers, not of the central half the support holds.
    assert abs(trimmed.df_ - clean.df_) < 1.5
    ratio = np.linalg.eigvalsh(np.linalg.solve(clean.shape_, trimmed.shape_))
    assert np.all(np.abs(ratio - 1) < 0.4)
    assert abs(np.exp(np.log(ratio).mean()) - 1) < 0.15
    on_support = GradientStudentT().fit(X[trimmed.support_])
    ratio = np.linalg.eigvalsh(np.linalg.solve(clean.shape_, on_support.shape_))
    assert np.exp(np.log(ratio).mean()) < 0.8  # uncorrected: too narrow


def test_trimmed_fit_is_the_mle_on_its_support_and_a_fixed_point():
    X, n, _ = _contaminated(seed=1)
    trimmed = GradientStudentT(support_fraction=0.7, tol=1e-10).fit(X)
    ref = GradientStudentT(tol=1e-10).fit(X[trimmed.support_])
    np.testing.assert_allclose(trimmed.mean_, ref.mean_, atol=1e-6)
    # shape_ is the support's MLE times one consistency factor.
    c = trimmed.shape_[0, 0] / ref.shape_[0, 0]
    assert c > 1
    np.testing.assert_allclose(trimmed.shape_, c * ref.shape_, rtol=1e-6, atol=1e-9)
    # The support holds the requested weight, and is the most central rows
    # of the fit on it (a concentration step does not change it).
    h = 0.7 * len(X)
    assert abs(trimmed.support_.sum() - h) < 1
    dist = ref.mahalanobis(X)
    assert dist[trimmed.support_].max() <= np.sort(dist)[int(np.ceil(h)) - 1]
    # The objective is the support's mean negative log-likelihood.
    assert np.isclose(
        trimmed.objective_, -trimmed.score_samples(X[trimmed.support_]).mean()
    )


def test_integer_weights_equal_repeated_rows():
    X, n, _ = _contaminated(seed=2, n=300)
    w = np.random.RandomState(0).randint(1, 4, size=len(X))
    model = GradientStudentT(support_fraction=0.7, tol=1e-10)
    weighted = GradientStudentT(**model.get_params()).fit(X, sample_weight=w)
    repeated = GradientStudentT(**model.get_params()).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(weighted.mean_, repeated.mean_, atol=1e-6)
    np.testing.assert_allclose(weighted.shape_, repeated.shape_, rtol=1e-5)
    np.testing.assert_array_equal(np.repeat(weighted.support_, w), repeated.support_)


def test_trimmed_fit_is_equivariant_under_coordinate_scaling():
    X, n, _ = _contaminated(seed=3)
    scale, shift = np.array([1e-3, 1.0, 50.0, 2.0, 1e4]), np.arange(5.0)
    a = GradientStudentT(support_fraction=None, tol=1e-10).fit(X)
    b = GradientStudentT(support_fraction=None, tol=1e-10).fit(X * scale + shift)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_allclose(b.mean_, a.mean_ * scale + shift, rtol=1e-6)
    np.testing.assert_allclose(
        b.shape_, a.shape_ * np.outer(scale, scale), rtol=1e-5, atol=1e-12
    )


def test_trimmed_fit_with_missing_values():
    X, n, _ = _contaminated(seed=4)
    rng = np.random.RandomState(4)
    X[rng.rand(*X.shape) < 0.15] = np.nan
    kept = ~np.isnan(X).all(axis=1)
    X, n = X[kept], int(kept[:n].sum())
    model = GradientStudentT(support_fraction=None).fit(X)
    assert model.converged_
    assert abs(model.support_.sum() - (len(X) + 6) / 2) < 1
    # Cluster rows with at least two observed entries are all left out.
    informative = (~np.isnan(X)).sum(axis=1) >= 2
    assert not model.support_[n:][informative[n:]].any()


def test_trimmed_factor_fit():
    X, n, _ = _contaminated(seed=5, d=8, frac=0.15, distance=20.0)
    model = GradientStudentT(
        covariance_type="factor", n_factors=2, support_fraction=None
    ).fit(X)
    with warnings.catch_warnings():
        # The plain fit, which absorbs the cluster, can end at a Heywood case.
        warnings.simplefilter("ignore", UserWarning)
        plain = GradientStudentT(covariance_type="factor", n_factors=2).fit(X)
    assert not model.support_[n:].any()
    assert model.components_.shape == (2, 8)
    # The trimmed fit scores the inliers far above the cluster; the plain
    # factor t, which absorbs the cluster, does not.
    gap = model.score_samples(X[:n]).mean() - model.score_samples(X[n:]).mean()
    gap_plain = plain.score_samples(X[:n]).mean() - plain.score_samples(X[n:]).mean()
    assert gap > 10 and gap_plain < 5


def test_fixed_df_trimmed_fit_keeps_df():
    X, n, _ = _contaminated(seed=6)
    model = GradientStudentT(df=3.0, support_fraction=None).fit(X)
    assert model.df_ == 3.0
    assert not model.support_[n:].any()


def test_plain_fit_after_trimmed_fit_drops_the_supports():
    X, n, _ = _contaminated(seed=7, n=300)
    model = GradientStudentT(support_fraction=0.8).fit(X)
    assert hasattr(model, "support_")
    model.set_params(support_fraction=1.0).fit(X)
    assert not hasattr(model, "support_")
    assert not hasattr(model, "raw_support_")


def test_too_small_support_raises_and_keeps_the_fit():
    X, n, _ = _contaminated(seed=8, n=300)
    model = GradientStudentT(support_fraction=0.8).fit(X)
    before = {k: np.copy(v) for k, v in vars(model).items() if k.endswith("_")}
    with pytest.raises(ValueError, match="increase support_fraction"):
        model.set_params(support_fraction=0.01).fit(X[:200])
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(model, key), value)


def test_dask_input_is_refused_with_advice():
    da = pytest.importorskip("dask.array")
    X, n, _ = _contaminated(seed=9, n=200)
    with pytest.raises(ValueError, match="compute X into memory"):
        GradientStudentT(support_fraction=0.8).fit(da.from_array(X, chunks=100))


def test_large_data_search_on_subsample_then_all_rows():
    # n above the 8192-row subsample: the search runs on the strided
    # subsample and its best fit starts concentration steps on all rows.
    X, n, _ = _contaminated(seed=10, n=9000, d=3, frac=0.2)
    model = GradientStudentT(support_fraction=0.6, tol=1e-10).fit(X)
    assert not model.support_[n:].any()
    h = 0.6 * len(X)
    assert abs(model.support_.sum() - h) < 1
    # A concentration step on all rows leaves the support unchanged.
    ref = GradientStudentT(tol=1e-10).fit(X[model.support_])
    dist = ref.mahalanobis(X)
    assert dist[model.support_].max() <= np.sort(dist)[int(np.ceil(h)) - 1]


def test_feature_names_survive_the_trimmed_fit():
    pd = pytest.importorskip("pandas")
    X, n, _ = _contaminated(seed=11, n=300)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    model = GradientStudentT(support_fraction=0.8).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)


def test_unconverged_support_fit_warns():
    X, n, _ = _contaminated(seed=12, n=300)
    with pytest.warns(ConvergenceWarning, match="trimmed support"):
        model = GradientStudentT(support_fraction=0.8, max_iter=2).fit(X)
    assert not model.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert GradientStudentT(support_fraction=0.8).fit(X).converged_
