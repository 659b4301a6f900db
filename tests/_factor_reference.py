"""A second route to the factor model's maximum likelihood, for the tests.

``fit_factor_model`` runs the factor model's cycles (``run_cycles``) from a
probabilistic-PCA start on statistics, chunked passes or missingness
patterns, without the estimator, its restarts or its checks: the tests compare
the estimator with it. It is not part of the package (the package has one
factor driver, ``solve_factor``).
"""

import numpy as np

from sklearn_mvn._data.patterns import PatternStats, compute_stats
from sklearn_mvn._likelihoods.normal_factor import (
    DataPass,
    PatternObjective,
    nll_grad_stats,
)
from sklearn_mvn._representations.low_rank import (
    MIN_NOISE,
    LowRankPlusDiagonal,
    canonical_rotation,
    heywood_features,
)
from sklearn_mvn._solve.factor import run_cycles
from sklearn_mvn._solve.starts import ppca_start


class FactorFit:
    """Result of :func:`fit_factor_model` (original units, canonical ``W``)."""

    def __init__(
        self,
        mean,
        components,
        noise_variance,
        objective,
        n_iter,
        converged,
        heywood,
        grad_norm,
        message,
    ):
        self.mean = mean
        self.components = components
        self.noise_variance = noise_variance
        self.objective = objective
        self.n_iter = n_iter
        self.converged = converged
        self.heywood = heywood
        self.grad_norm = grad_norm
        self.message = message

    @property
    def covariance(self):
        return LowRankPlusDiagonal(self.components, self.noise_variance)


def _problem(X, stats, sample_weight, path, max_stats_features):
    """The data form, its centre and scales, and covariance products."""

    if stats is None:
        X = np.asarray(X)
        use_stats = path == "stats" or (
            path == "auto" and X.shape[1] <= max_stats_features
        )
        if use_stats:
            stats = compute_stats(X, sample_weight)
        elif np.isnan(X).any():
            stats = PatternStats.from_array(X, sample_weight)
    if isinstance(stats, PatternStats):
        center, cov_avail, _ = stats.available_case()
        var = np.diag(cov_avail).copy()
        scaled = cov_avail / np.sqrt(np.outer(var, var))
        return (
            "patterns",
            PatternObjective(stats),
            center,
            var,
            stats.weight_sum,
            lambda Q: scaled @ Q,
        )
    if stats is not None:
        weight = stats.weight_sum
        var = np.diag(stats.scatter) / weight
        scale = np.sqrt(var)

        def products(Q):
            return (stats.scatter @ (Q / scale[:, np.newaxis])) / (
                weight * scale[:, np.newaxis]
            )

        def evaluate(mu, W, psi):
            return nll_grad_stats(stats, mu, W, psi)

        return "stats", evaluate, stats.mean, var, weight, products
    data = DataPass(X, sample_weight)
    scale = np.sqrt(data.variance)

    def products(Q):
        return data.covariance_products(Q / scale[:, np.newaxis]) / scale[:, np.newaxis]

    return "data", data, data.center, data.variance, data.weight, products


def fit_factor_model(
    X=None,
    n_factors=1,
    *,
    stats=None,
    sample_weight=None,
    path="auto",
    tol=1e-8,
    max_iter=1000,
    min_noise=MIN_NOISE,
    random_state=0,
    init=None,
    max_stats_features=2048,
):
    """Maximum-likelihood factor model by L-BFGS-B (standalone).

    The start is probabilistic PCA on the data standardised by their mean
    ``c`` and standard deviations ``s`` (available-case ones with missing
    values); the optimiser works in coordinates in which the Fisher
    information is about the identity (see :func:`run_cycles`). The objective
    is the negative log-likelihood per unit
    weight. ``psi_j / s_j^2`` is bounded below by ``min_noise``: a feature
    reaching it is a Heywood case. With complete data the mean is the
    weighted mean (the optimum whatever the covariance) and is not optimised.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), default=None
        Data (NaN = missing, which uses per-pattern statistics).
    n_factors : int
    stats : SufficientStats or PatternStats, default=None
        Statistics instead of ``X``.
    sample_weight : ndarray of shape (n_samples,), default=None
    path : {'auto', 'stats', 'data'}
        Complete data: the ``d x d`` scatter ('stats') or chunked passes
        ('data'); 'auto' picks 'stats' for ``d <= max_stats_features``.
    tol : float
        Gradient tolerance (largest entry) in standardised coordinates.
    max_iter : int
    min_noise : float
        Lower bound of ``psi_j / s_j^2``.
    random_state : int
        Seed of the randomised start.
    init : tuple (mean, components, noise_variance), default=None
        Starting point in original units.
    max_stats_features : int
        See ``path``.

    Returns
    -------
    result : FactorFit
    """
    mode, evaluate, center, var, weight, products = _problem(
        X, stats, sample_weight, path, max_stats_features
    )
    scale = np.sqrt(var)
    d = center.shape[0]
    k = int(n_factors)
    if init is None:
        W0, psi0 = ppca_start(products, np.ones(d), k, random_state, min_noise)
        mu0 = np.zeros(d)
    else:
        mu0 = (np.asarray(init[0]) - center) / scale
        W0 = np.asarray(init[1]) / scale[:, np.newaxis]
        psi0 = np.maximum(np.asarray(init[2]) / var, min_noise)
    fit_mean = mode == "patterns"
    mu, W, psi = center + scale * mu0, scale[:, np.newaxis] * W0, var * psi0
    mu, W, psi, value, n_iter, grad_norm, message = run_cycles(
        evaluate,
        weight,
        center,
        var,
        mu,
        W,
        psi,
        fit_mean,
        max_iter,
        tol,
        min_noise * var,
    )
    res_message = f"{message} [{mode}]"
    W = canonical_rotation(W, psi)
    heywood = heywood_features(psi / var, min_noise)
    return FactorFit(
        np.array(mu, dtype=np.float64),
        W,
        psi,
        value,
        n_iter,
        bool(grad_norm <= 100 * tol),
        heywood,
        grad_norm,
        res_message,
    )
