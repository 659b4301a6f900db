"""Missing values on ill-conditioned data: the fit reaches the maximum of the
observed-data likelihood, checked against an independent EM written here."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from test_missing import em_step

from sklearn_mvn import GradientGaussian

# ---------------------------------------------------------------------------
# Data and the reference
# ---------------------------------------------------------------------------


def _ill_conditioned(seed, n, d, cond, mechanism, n_masks=12):
    """Normal data whose correlation matrix has condition number about
    ``cond`` (eigenvalues geometric from 1 to 1/cond, random rotation),
    feature scales from e^-3 to e^3, and missing entries drawn from
    ``n_masks`` random masks (a third of the rows complete, so the likelihood
    is bounded): completely at random (``'mcar'``), or at random with masks
    of more missing entries for large values of the always observed feature
    0 (``'mar'``)."""
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    corr = (q * np.geomspace(1.0, 1.0 / cond, d)) @ q.T
    scale = np.exp(rng.uniform(-3.0, 3.0, d))
    cov = corr * np.outer(scale, scale)
    X = rng.multivariate_normal(scale * rng.randn(d), cov, size=n)
    masks = rng.rand(n_masks, d) < rng.uniform(0.1, 0.4, (n_masks, 1))
    masks[0] = False
    if mechanism == "mar":
        masks[:, 0] = False
        order = np.argsort(masks.sum(axis=1))
        masks = masks[order]
        z = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
        # Larger z, masks with more missing entries.
        pick = np.clip(
            (n_masks * (0.5 + 0.5 * np.tanh(z + 0.3 * rng.randn(n)))).astype(int),
            0,
            n_masks - 1,
        )
        pick[rng.rand(n) < 1.0 / 3.0] = 0
    else:
        pick = np.where(rng.rand(n) < 1.0 / 3.0, 0, rng.randint(1, n_masks, n))
    X[masks[pick]] = np.nan
    return X, cov


def _mixed_scales(seed, n, d, cond, rate):
    """Normal data closer to what users bring: a correlation matrix of
    condition number about ``cond`` (eigenvalues geometric from 1 to
    1/cond, random rotation, rescaled to a unit diagonal), feature standard
    deviations from 0.1 to 50 (geometric, in random order), and each entry
    missing completely at random with probability ``rate``."""
    rng = np.random.RandomState(seed)
    q, _ = np.linalg.qr(rng.randn(d, d))
    corr = (q * np.geomspace(1.0, 1.0 / cond, d)) @ q.T
    sd = np.sqrt(np.diag(corr))
    corr /= np.outer(sd, sd)
    scale = np.geomspace(0.1, 50.0, d)[rng.permutation(d)]
    cov = corr * np.outer(scale, scale)
    X = rng.multivariate_normal(scale * rng.randn(d), cov, size=n)
    X[rng.rand(n, d) < rate] = np.nan
    return X[~np.isnan(X).all(axis=1)], cov


def _groups(X):
    """Per missingness pattern: observed mask, its rows (observed entries),
    their count, sum and sum of products."""
    obs = ~np.isnan(X)
    keys, inverse = np.unique(obs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    groups = []
    for p, o in enumerate(keys):
        rows = X[np.ix_(inverse == p, o)]
        groups.append((o, rows, rows.shape[0], rows.sum(axis=0), rows.T @ rows))
    return groups


def _loglik(groups, n, mean, cov):
    """Observed-data log-likelihood per sample: per pattern a Cholesky factor
    of ``S_oo`` and a triangular solve of the rows' residuals."""
    total = 0.0
    for o, rows, count, _, _ in groups:
        chol = np.linalg.cholesky(cov[np.ix_(o, o)])
        z = np.linalg.solve(chol, (rows - mean[o]).T)
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        total -= 0.5 * (count * (logdet + o.sum() * np.log(2 * np.pi)) + np.sum(z * z))
    return total / n


def _em(X, tol=1e-13, max_iter=5000):
    """Plain EM (E-step per pattern by regression on the observed entries) on
    the data standardised by the observed means and standard deviations
    (sums of products of centred data lose no digits), from the diagonal of
    the observed variances, until no standardised parameter changes by more
    than ``tol``. Returns the mean and covariance in the units of ``X``."""
    n, d = X.shape
    center = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    groups = _groups((X - center) / scale)
    mean, cov = np.zeros(d), np.eye(d)
    sums = [(o, count, s1, s2) for o, _, count, s1, s2 in groups]
    for _ in range(max_iter):
        new_mean, new_cov = em_step(sums, n, mean, cov)
        change = max(np.abs(new_mean - mean).max(), np.abs(new_cov - cov).max())
        mean, cov = new_mean, new_cov
        if change < tol:
            return center + scale * mean, cov * np.outer(scale, scale)
    raise AssertionError("EM reference did not converge")


def _whitened_gradient(X, mean, cov):
    """Gradient of the mean negative log-likelihood in the coordinates of the
    solver, ``mean = mu + L u``, ``factor = L T`` at ``u = 0``, ``T = I``
    (``L`` the Cholesky factor of ``cov``): per row with observed set ``o``,
    ``L_o^T = Q R`` (QR of the observed rows of ``L``), ``a = R^{-T} r`` and
    ``dJ/du = -Q a``, ``dJ/dT = Q Q^T - (Q a)(Q a)^T`` (lower triangle), all
    of unit scale whatever the condition number of ``cov``."""
    n, d = X.shape
    chol = np.linalg.cholesky(cov)
    grad_u = np.zeros(d)
    grad_t = np.zeros((d, d))
    for o, rows, count, _, _ in _groups(X):
        q, r = np.linalg.qr(chol[o].T)
        a = np.linalg.solve(r.T, (rows - mean[o]).T)
        qa = q @ a
        grad_u -= qa.sum(axis=1)
        grad_t += count * (q @ q.T) - qa @ qa.T
    return np.r_[grad_u, np.tril(grad_t)[np.tril_indices(d)]] / n


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

CASES = [
    (0, 400, 10, 1e6, "mcar"),
    (1, 400, 10, 1e9, "mar"),
    (2, 400, 10, 1e9, "mcar"),
    (3, 800, 20, 1e8, "mcar"),
    (4, 800, 20, 1e9, "mar"),
    (5, 1600, 40, 1e7, "mcar"),
    (6, 1600, 40, 1e9, "mar"),
]


@pytest.mark.parametrize("seed, n, d, cond, mechanism", CASES)
def test_ill_conditioned_fit_is_the_maximum(seed, n, d, cond, mechanism):
    """No ConvergenceWarning; the log-likelihood of an independent EM to
    1e-9 per sample; the gradient at the fit, computed independently in
    well-conditioned form, within 10 tol."""
    X, cov = _ill_conditioned(seed, n, d, cond, mechanism)
    sd = np.sqrt(np.diag(cov))
    true_cond = np.linalg.cond(cov / np.outer(sd, sd))
    assert 0.3 * cond < true_cond < 3.0 * cond
    assert np.isnan(X).mean() > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GradientGaussian().fit(X)
    assert model.converged_
    # Re-whitening once the whitened factor drifts: without it (_DRIFT = inf)
    # six of these seven cases take more than 80 iterations.
    assert model.n_iter_ <= 80
    groups = _groups(X)
    ours = _loglik(groups, n, model.mean_, model.covariance_)
    mean, cov_em = _em(X)
    reference = _loglik(groups, n, mean, cov_em)
    assert abs(ours - reference) <= 1e-9
    grad = _whitened_gradient(X, model.mean_, model.covariance_)
    assert np.max(np.abs(grad)) <= 10 * model.tol
    # The fitted objective is the negative log-likelihood per sample.
    assert abs(model.objective_ + ours) <= 1e-8 * abs(ours)


def test_iterations_do_not_grow_with_conditioning():
    """Ill-conditioned data with mixed scales (correlation condition number
    1e4, standard deviations 0.1 to 50, 10% MCAR; d = 10, n = 2000): at
    most 20 iterations (14; before the EM steps at the start, 41: L-BFGS-B
    from the pairwise pilot, whose clipped spectrum misstates the small
    variances, took many iterations to get near the optimum), no warning,
    and the log-likelihood of an independent EM within 1e-10 per sample."""
    X, cov = _mixed_scales(0, 2000, 10, 1e4, 0.1)
    sd = np.sqrt(np.diag(cov))
    assert 3e3 < np.linalg.cond(cov / np.outer(sd, sd)) < 3e4
    assert 0.09 < np.isnan(X).mean() < 0.11
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GradientGaussian().fit(X)
    assert model.converged_
    assert model.n_iter_ <= 20
    n = X.shape[0]
    groups = _groups(X)
    ours = _loglik(groups, n, model.mean_, model.covariance_)
    mean, cov_em = _em(X)
    assert abs(ours - _loglik(groups, n, mean, cov_em)) <= 1e-10
    assert abs(model.objective_ + ours) <= 1e-8 * abs(ours)


def test_reference_gradient_vanishes_at_the_em_solution_only():
    """The reference gradient is that of the likelihood: tiny at EM's fixed
    point, not at a point 1e-4 away from it."""
    X, _ = _ill_conditioned(7, 400, 10, 1e8, "mcar")
    mean, cov = _em(X)
    assert np.max(np.abs(_whitened_gradient(X, mean, cov))) < 1e-7
    sd = np.sqrt(np.diag(cov))
    assert np.max(np.abs(_whitened_gradient(X, mean + 1e-4 * sd, cov))) > 1e-5


def test_unbounded_likelihood_is_reported_as_such():
    """Strongly correlated data with fewer complete rows than features: the
    likelihood is unbounded (a singular covariance through the complete
    rows), this fit drifts towards such a covariance (EM too), and the
    warning says why; shrinkage makes the likelihood bounded."""
    rng = np.random.RandomState(3)
    X = rng.randn(300, 12) @ rng.randn(12, 12)
    X[rng.rand(*X.shape) < 0.3] = np.nan
    assert 1 <= (~np.isnan(X)).all(axis=1).sum() <= 12
    with pytest.warns(ConvergenceWarning, match="unbounded: only 5 row") as record:
        model = GradientGaussian().fit(X)
    assert "shrinkage > 0" in str(record[0].message)
    sd = np.sqrt(np.diag(model.covariance_))
    assert np.linalg.cond(model.covariance_ / np.outer(sd, sd)) > 1e9
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        GradientGaussian(shrinkage=0.01).fit(X)
    # Not said of a bounded likelihood that is short of its maximum.
    X, _ = _ill_conditioned(0, 400, 10, 1e6, "mcar")
    with pytest.warns(ConvergenceWarning) as record:
        GradientGaussian(max_iter=3).fit(X)
    assert "data is unbounded" not in str(record[0].message)
