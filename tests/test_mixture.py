"""GradientGaussianMixture against GaussianMixture, an exact EM with NaN
written here (per-pattern conditional expectations) and SciPy densities."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from sklearn_mvn import GradientGaussianMixture


@pytest.fixture(autouse=True)
def _runtime_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _blobs(n=600, d=3, seed=0, spread=1.5):
    """Three overlapping, correlated clusters (EM is slow on them)."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(3, d) * spread
    parts = []
    for k, size in enumerate([n // 2, n // 3, n - n // 2 - n // 3]):
        root = rng.randn(d, d) * 0.5 + np.eye(d) * (0.5 + 0.5 * k)
        parts.append(centres[k] + rng.randn(size, d) @ root.T)
    return np.vstack(parts)


def _mcar(X, rate, seed=1):
    rng = np.random.RandomState(seed)
    X = X.copy()
    X[rng.rand(*X.shape) < rate] = np.nan
    return X[~np.isnan(X).all(axis=1)]


def _exact_em(X, sample_weight, mix, means, covs, reg_covar, max_iter=20000):
    """Plain EM of a normal mixture with NaN: labels and missing entries latent.

    E-step per missingness pattern and component: the marginal density of the
    observed entries, the conditional mean of the missing ones and their
    conditional covariance. M-step: closed form on the expected statistics
    (plus ``reg_covar`` on the diagonal). Stops when an iteration gains less
    than 1e-14 per unit weight; returns the mean log-likelihood there.
    """
    n, d = X.shape
    K = len(mix)
    w = sample_weight / sample_weight.sum()
    observed = ~np.isnan(X)
    patterns, which = np.unique(observed, axis=0, return_inverse=True)
    which = which.ravel()
    mix, means, covs = mix.copy(), means.copy(), covs.copy()
    previous = -np.inf
    for _ in range(max_iter):
        log_prob = np.empty((n, K))
        filled = np.empty((K, n, d))
        cond = np.zeros((K, len(patterns), d, d))
        for p, o in enumerate(patterns):
            rows, m = np.flatnonzero(which == p), ~o
            x_o = X[np.ix_(rows, np.flatnonzero(o))]
            for k in range(K):
                S, mu = covs[k], means[k]
                S_oo = S[np.ix_(o, o)]
                sol = np.linalg.solve(S_oo, (x_o - mu[o]).T)
                logdet = np.linalg.slogdet(S_oo)[1]
                quad = np.sum((x_o - mu[o]).T * sol, axis=0)
                log_prob[rows, k] = np.log(mix[k]) - 0.5 * (
                    o.sum() * np.log(2 * np.pi) + logdet + quad
                )
                block = np.empty((rows.size, d))
                block[:, o] = x_o
                block[:, m] = mu[m] + (S[np.ix_(m, o)] @ sol).T
                filled[k, rows] = block
                cond[k, p][np.ix_(m, m)] = S[np.ix_(m, m)] - S[
                    np.ix_(m, o)
                ] @ np.linalg.solve(S_oo, S[np.ix_(o, m)])
        norm = logsumexp(log_prob, axis=1)
        ll = float(w @ norm)
        if ll - previous < 1e-14:
            break
        previous = ll
        resp = np.exp(log_prob - norm[:, None]) * w[:, None]
        totals = resp.sum(axis=0)
        mix = totals / totals.sum()
        for k in range(K):
            means[k] = resp[:, k] @ filled[k] / totals[k]
            diff = filled[k] - means[k]
            scatter = (resp[:, k] * diff.T) @ diff
            per_pattern = np.bincount(which, resp[:, k], minlength=len(patterns))
            scatter += np.einsum("p,pij->ij", per_pattern, cond[k])
            covs[k] = scatter / totals[k] + reg_covar * np.eye(d)
    return ll, mix, means, covs


def _start(X, n_components=3, covariance_type="full"):
    """A common start: GaussianMixture after two EM steps on complete data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=2, random_state=0
        ).fit(X)
    return dict(
        weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_
    )


def _oracle_log_density(model, X):
    """log sum_k w_k N(x_o | mu_o, S_oo), row by row with SciPy."""
    covs = model.covariances_
    d = X.shape[1]
    if covs.ndim == 1:
        covs = covs[:, None, None] * np.eye(d)
    elif covs.ndim == 2:
        covs = np.array([np.diag(c) for c in covs])
    out = []
    for x in X:
        o = ~np.isnan(x)
        terms = [
            np.log(w) + multivariate_normal(mu[o], S[np.ix_(o, o)]).logpdf(x[o])
            for w, mu, S in zip(model.weights_, model.means_, covs, strict=True)
        ]
        out.append(logsumexp(terms))
    return np.array(out)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_complete_data_reaches_gaussian_mixture_maximum(covariance_type):
    X = _blobs()
    start = _start(X, covariance_type=covariance_type)
    gm = GaussianMixture(
        3, covariance_type=covariance_type, tol=1e-10, max_iter=10_000, **start
    ).fit(X)
    model = GradientGaussianMixture(3, covariance_type=covariance_type, **start)
    model.fit(X)
    assert model.converged_
    assert model.score(X) >= gm.score(X) - 1e-7
    # GaussianMixture stops on a change below tol, short of the maximum on
    # plateaus (diag: means 4e-4 apart), so the parameters agree loosely.
    assert_allclose(model.means_, gm.means_, atol=1e-2)
    assert_allclose(model.covariances_, gm.covariances_, atol=1e-2)
    assert model.lower_bound_ == pytest.approx(model.score(X), abs=1e-12)
    # SQUAREM: fewer EM steps than plain EM needs for tol=1e-10.
    assert model.n_iter_ < gm.n_iter_
    assert model.bic(X) == pytest.approx(gm.bic(X), rel=1e-7)
    assert model.aic(X) == pytest.approx(gm.aic(X), rel=1e-7)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_missing_values_reach_exact_em_maximum(rate):
    X = _blobs()
    gm = GaussianMixture(3, tol=1e-8, max_iter=1000, random_state=0).fit(X)
    Xn = _mcar(X, rate)
    ll, mix, means, covs = _exact_em(
        Xn, np.ones(len(Xn)), gm.weights_, gm.means_, gm.covariances_, 1e-6
    )
    model = GradientGaussianMixture(
        3,
        weights_init=gm.weights_,
        means_init=gm.means_,
        precisions_init=gm.precisions_,
    ).fit(Xn)
    assert model.converged_
    assert model.lower_bound_ >= ll - 1e-7
    assert model.score(Xn) == pytest.approx(model.lower_bound_, abs=1e-12)
    order = np.argsort(model.means_[:, 0])
    assert_allclose(model.means_[order], means[np.argsort(means[:, 0])], atol=1e-3)


def test_sample_weight_equals_repeated_rows():
    X = _mcar(_blobs(300), 0.2)
    counts = np.random.RandomState(3).randint(0, 4, size=len(X))
    start = _start(np.nan_to_num(X))
    weighted = GradientGaussianMixture(3, **start).fit(X, sample_weight=counts)
    repeated = GradientGaussianMixture(3, **start).fit(np.repeat(X, counts, axis=0))
    order_w = np.argsort(weighted.means_[:, 0])
    order_r = np.argsort(repeated.means_[:, 0])
    assert_allclose(weighted.means_[order_w], repeated.means_[order_r], atol=1e-5)
    assert_allclose(weighted.weights_[order_w], repeated.weights_[order_r], atol=1e-6)
    assert_allclose(
        weighted.covariances_[order_w], repeated.covariances_[order_r], atol=1e-5
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(covariance_type="full"),
        dict(covariance_type="diag"),
        dict(covariance_type="spherical"),
        dict(covariance_type="factor", n_factors=1),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # Heywood cases, max_iter
def test_score_samples_and_proba_against_scipy(params):
    X = _mcar(_blobs(300, d=4), 0.25)
    model = GradientGaussianMixture(3, random_state=0, max_iter=10, **params)
    model.fit(X)
    assert_allclose(model.score_samples(X), _oracle_log_density(model, X), atol=1e-8)
    proba = model.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert_array_equal(model.predict(X), proba.argmax(axis=1))
    assert_array_equal(model.fit_predict(X), model.predict(X))
    shapes = {
        "full": (3, 4, 4),
        "factor": (3, 4, 4),
        "diag": (3, 4),
        "spherical": (3,),
    }[params["covariance_type"]]
    assert model.covariances_.shape == shapes
    assert model.precisions_.shape == shapes
    if len(shapes) == 3:
        U = model.precisions_cholesky_
        assert_allclose(U @ U.transpose(0, 2, 1), model.precisions_, rtol=1e-8)
        assert_allclose(np.tril(U, -1), 0.0)
    else:
        assert_allclose(model.precisions_cholesky_**2, model.precisions_)
    draws, labels = model.sample(50)
    assert draws.shape == (50, 4) and labels.shape == (50,)


def test_failure_leaves_the_estimator_as_it_was():
    X = _blobs(200)
    model = GradientGaussianMixture(2, random_state=0).fit(X)
    before = pickle.dumps(model)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.fit(bad)
    assert pickle.dumps(model) == before
    fresh = GradientGaussianMixture(2)
    with pytest.raises(ValueError, match="never observed"):
        fresh.fit(np.column_stack([X[:, 0], np.full(len(X), np.nan)]))
    assert not hasattr(fresh, "estimators_")


def test_tied_is_refused_with_advice():
    with pytest.raises(ValueError, match="'tied' is not available yet.*'full'"):
        GradientGaussianMixture(2, covariance_type="tied").fit(_blobs(100))


def test_degenerate_components_are_named():
    # Component 1 can only sit on three identical rows: without reg_covar its
    # covariance collapses.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(100, 2), np.tile([[8.0, 8.0]], (3, 1))])
    start = dict(
        means_init=[[0.0, 0.0], [8.0, 8.0]],
        weights_init=[0.97, 0.03],
        precisions_init=np.tile(np.eye(2), (2, 1, 1)),
        max_iter=5,
    )
    model = GradientGaussianMixture(2, reg_covar=0.0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            model.fit(X)
        except ValueError as exc:  # the component's own singular-fit error
            assert "component 1" in str(exc) and "reg_covar" in str(exc)
        else:
            with pytest.warns(ConvergenceWarning, match=r"\[1\] collapsed onto"):
                GradientGaussianMixture(2, reg_covar=0.0, **start).fit(X)
    # A component left with one row's weight is reported.
    X = np.vstack([rng.randn(100, 2), [[30.0, 30.0]]])
    start = dict(
        means_init=[[0.0, 0.0], [30.0, 30.0]],
        weights_init=[0.99, 0.01],
        precisions_init=np.tile(np.eye(2), (2, 1, 1)),
    )
    with pytest.warns(ConvergenceWarning, match=r"components \[1\] collapsed"):
        GradientGaussianMixture(2, **start).fit(X)


def test_warm_start_and_n_init():
    X = _blobs(300)
    model = GradientGaussianMixture(3, random_state=0).fit(X)
    again = GradientGaussianMixture(3, random_state=0, warm_start=True).fit(X)
    again.fit(X)
    assert again.n_iter_ <= 4  # one SQUAREM cycle (2 EM steps) or two
    assert again.score(X) == pytest.approx(model.score(X), abs=1e-8)
    best = GradientGaussianMixture(3, n_init=3, random_state=0).fit(X)
    assert best.lower_bound_ >= model.lower_bound_ - 1e-9
    for init in ["k-means++", "random", "random_from_data"]:
        fitted = GradientGaussianMixture(3, init_params=init, random_state=0).fit(X)
        assert np.isfinite(fitted.lower_bound_)


def test_docstrings_are_valid_numpydoc():
    validate = pytest.importorskip("numpydoc.validate").validate
    ignored = {"SA01", "EX01", "ES01", "RT02", "GL08"}
    for name in [
        "",
        ".fit",
        ".fit_predict",
        ".predict",
        ".predict_proba",
        ".score_samples",
        ".score",
        ".sample",
        ".bic",
        ".aic",
    ]:
        errors = validate("sklearn_mvn.GradientGaussianMixture" + name)["errors"]
        assert [e for e in errors if e[0] not in ignored] == [], name


def test_fitted_attributes_are_documented():
    model = GradientGaussianMixture(2, random_state=0).fit(_blobs(100))
    doc = GradientGaussianMixture.__doc__
    for name in vars(model):
        if name.endswith("_") and not name.startswith("_"):
            assert f"{name} :" in doc, name


def test_max_iter_reached_warns_and_bad_inits_are_refused():
    X = _blobs(300)
    with pytest.warns(ConvergenceWarning, match="did not converge.*max_iter"):
        model = GradientGaussianMixture(3, max_iter=3, random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 3
    with pytest.raises(ValueError, match="means_init must have shape"):
        GradientGaussianMixture(3, means_init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="weights_init must be non-negative"):
        GradientGaussianMixture(2, weights_init=[0.7, 0.7]).fit(X)
    with pytest.raises(ValueError, match="not symmetric positive definite"):
        GradientGaussianMixture(2, precisions_init=np.tile(-np.eye(3), (2, 1, 1))).fit(
            X
        )
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GradientGaussianMixture(5).fit(X[:3])
