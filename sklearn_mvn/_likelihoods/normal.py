"""Likelihood objectives: what the solver minimises, for each data source.

An objective is the likelihood family applied to a data source, plus the
penalties. The solver (:mod:`._solve`) sees only this interface:

- ``pilot()``: a starting mean and covariance in the objective's coordinates;
- ``objective(mean, factor) -> (value, grad_mean, grad_factor)`` in those
  coordinates (the seed's gradients; used to compare starting points);
- ``whitened(shift, chol)``: the same objective as a function of ``(u, T)``
  with ``mean = shift + chol u``, ``factor = chol T``; its value differs from
  the objective's by ``weight * log|det chol|``;
- ``weight``: the total weight of the log-determinant term;
- ``internal(mean, covariance)`` / ``to_original(mean, factor)`` and
  ``constant``: the map between the user's units and the objective's
  coordinates, and the constant that puts a value on the scale of
  ``objective_``;
- ``regularised``: whether penalties make the covariance the user's choice
  even where the data are constant;
- ``exact``: whether values are accurate to full precision (statistics) or to
  round-off of a sum over patterns only (the solver then finishes with Newton
  steps, which need no values);
- ``em_update(mean, factor) -> (mean, covariance)`` (inexact objectives): one
  EM step, with which the solver starts while it is fast.

Two data sources exist for the normal likelihood: complete-data statistics
(:class:`StatsObjective`, O(d^3) per evaluation) and statistics per
missingness pattern (:class:`PatternObjective`, the exact observed-data
likelihood). A likelihood without sufficient statistics implements the same
interface on passes over the data.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from functools import reduce

import numpy as np

from .._data.patterns import PatternStats, warn_unobserved_pairs
from .._data.stats import SufficientStats, check_range
from .._representations import TriangularCovariance, singular_error
from .gradients import nll_grad_stats, penalty_stats
from .normal_factor import (
    DataPass,
    nll_grad_diagonal,
    start_probe,
)
from .normal_factor import PatternObjective as FactorPatterns
from .normal_missing import MissingObjective, whitened_objective

_EPS = np.finfo(np.float64).eps


def check_stats_range(stats):
    """Raise a ValueError if the statistics over- or underflowed float64."""
    finite = np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.scatter))
    with np.errstate(invalid="ignore"):
        check_range(np.diag(stats.scatter) / stats.weight_sum, finite)


def _merged(terms):
    return reduce(SufficientStats.merge, terms)


# ---------------------------------------------------------------------------
# The normal likelihood on complete-data statistics
# ---------------------------------------------------------------------------


class StatsObjective:
    """Mean negative log-likelihood of complete-data statistics, penalised.

    The objective is linear in the statistics, so the data term (per unit
    weight) and the penalty terms merge into one set of pseudo-statistics:
    one O(d^3) evaluation per step.

    Parameters
    ----------
    stats : SufficientStats
    shrinkage, reg_covar : float
        The penalties (see :func:`~._likelihoods.gradients.penalty_stats`).
    """

    exact = True
    constant = 0.0

    def __init__(self, stats, *, shrinkage=0.0, reg_covar=0.0):
        check_stats_range(stats)
        data = stats.scaled((1.0 - shrinkage) / stats.weight_sum)
        penalties = penalty_stats(stats, shrinkage=shrinkage, reg_covar=reg_covar)
        self.total = _merged([data, *penalties])
        self.regularised = bool(penalties)
        self.weight = self.total.weight_sum
        self.n_samples = stats.n_samples
        self._anchor = stats.mean

    def pilot(self):
        return self._anchor, self.total.scatter / self.total.weight_sum

    def __call__(self, mean, factor):
        return nll_grad_stats(self.total, mean, factor)

    def whitened(self, shift, chol):
        whitened = self.total.whitened(shift, chol)

        def evaluate(mean, factor):
            return nll_grad_stats(whitened, mean, factor)

        return evaluate

    def internal(self, mean, covariance):
        return mean, covariance

    def to_original(self, mean, factor):
        return mean, factor


# ---------------------------------------------------------------------------
# The normal likelihood on statistics per missingness pattern
# ---------------------------------------------------------------------------


class PatternObjective:
    """Observed-data negative log-likelihood of :class:`PatternStats`.

    Evaluated in feature-wise standardised coordinates (which keep each
    pattern's sub-block apart): ``x_std = (x - shift) / scale`` with the
    available-case means and standard deviations. The penalties are built
    from the available-case moments. The pilot is the available-case
    (pairwise) covariance with its spectrum clipped to positive definite.

    Parameters
    ----------
    stats : PatternStats
    representation : covariance representation
        Chooses scales that keep its structure.
    shrinkage, reg_covar : float
    """

    exact = False

    def __init__(self, stats, representation, *, shrinkage=0.0, reg_covar=0.0):
        n_features = stats.n_features
        weight = stats.weight_sum
        self.n_samples = stats.n_samples
        ac_mean, ac_cov, pair_weight = stats.available_case()
        if shrinkage == 0.0 and representation.covariance_type == "full":
            warn_unobserved_pairs(pair_weight)
        available = SufficientStats(weight, ac_mean, weight * ac_cov, stats.n_samples)
        penalties = penalty_stats(available, shrinkage=shrinkage, reg_covar=reg_covar)
        self.regularised = bool(penalties)
        data_scale = (1.0 - shrinkage) / weight
        pilot = _merged([available.scaled(data_scale), *penalties])
        pilot = pilot.scatter / pilot.weight_sum
        # Constant features raise here, with the same message as complete data.
        diag = TriangularCovariance("diag", n_features)
        std = np.diag(
            diag.preconditioner(
                np.diag(np.diag(pilot)), ac_mean, stats.n_samples, self.regularised
            )
        )
        scale = representation.standardising_scale(std**2)
        self.shift, self.scale = ac_mean, scale
        self._objective = MissingObjective(
            stats.standardised(ac_mean, scale),
            [term.whitened(ac_mean, np.diag(scale)) for term in penalties],
            data_scale,
        )
        penalty_weight = sum(term.weight_sum for term in penalties)
        self.weight = data_scale * weight + penalty_weight
        log_scale = np.log(scale)
        # Back to original units: for the data, each pattern's observed
        # features' scales; for the penalties, all of them.
        self.constant = data_scale * float(
            stats.pattern_weight @ (stats.observed @ log_scale)
        ) + penalty_weight * float(np.sum(log_scale))
        # Pairwise moments need not be positive definite: clip the spectrum
        # of the standardised pilot. The gradient optimiser does the rest.
        eigval, eigvec = np.linalg.eigh(pilot / np.outer(scale, scale))
        eigval = np.clip(eigval, 1e-6 * max(eigval[-1], _EPS), None)
        self._pilot = np.zeros(n_features), (eigvec * eigval) @ eigvec.T

    def pilot(self):
        return self._pilot

    def __call__(self, mean, factor):
        return self._objective(mean, factor)

    def whitened(self, shift, chol):
        return whitened_objective(self._objective, shift, chol)

    def em_update(self, mean, factor):
        return self._objective.em_update(mean, factor)

    def internal(self, mean, covariance):
        return (
            (mean - self.shift) / self.scale,
            covariance / np.outer(self.scale, self.scale),
        )

    def to_original(self, mean, factor):
        return self.shift + self.scale * mean, self.scale[:, np.newaxis] * factor


def make_objective(stats, representation, *, shrinkage=0.0, reg_covar=0.0):
    """The normal likelihood's objective on a data source (the one dispatch)."""
    if isinstance(stats, SufficientStats):
        return StatsObjective(stats, shrinkage=shrinkage, reg_covar=reg_covar)
    return PatternObjective(
        stats, representation, shrinkage=shrinkage, reg_covar=reg_covar
    )


# ---------------------------------------------------------------------------
# The normal likelihood of the factor model (Woodbury), three data forms
# ---------------------------------------------------------------------------


class RowSource:
    """Complete rows of ``X`` read in chunks at every evaluation.

    The factor model's data source when a ``d x d`` scatter is not affordable
    (see ``GradientGaussian``): no statistics are kept, only a reference to
    ``X`` during ``fit``.
    """

    def __init__(self, X, sample_weight=None):
        self.X = X
        self.sample_weight = sample_weight
        self.n_samples, self.n_features = X.shape


class FactorObjective:
    """Penalised mean negative log-likelihood of ``W W^T + diag(psi)``.

    ``evaluate(mean, W, psi) -> (value, grad_mean, grad_W, grad_psi)`` in the user's
    units, on complete-data statistics (O(d^2 k)), per-pattern statistics (the exact
    observed-data likelihood, :class:`~._likelihoods.normal_factor.
    PatternObjective`) or chunked passes over rows
    (:class:`~._likelihoods.normal_factor. DataPass`, O(n d k)). The data
    term is ``(1 - shrinkage) / W`` times the negative log-likelihood; the penalties are
    the pseudo-statistics of :func:`~._likelihoods.gradients.penalty_stats`
    (diagonal scatters, evaluated in O(d k^2)).

    Attributes
    ----------
    center, variance : ndarray of shape (n_features,)
        The standardisation (data or available-case mean; pilot variances).
    products : callable
        ``Q -> R Q`` for the standardised pilot covariance ``R``.
    fit_mean : bool
        Whether the mean is optimised (missing values only: with complete
        data it is the weighted mean whatever the covariance).
    psi_floor : float
        ``reg_covar``: a lower bound of every noise variance.
    n_samples : int
    first_product : ndarray of shape (n_features, n_factors + 10) or None
        With ``n_factors`` and a pass over rows: ``R (s G)`` for ``G =``
        :func:`~.normal_factor.start_probe` (``s`` the pilot's standard
        deviations), computed in the preliminary pass over ``X``: the first
        product of the start's subspace iteration.
    """

    def __init__(self, source, *, shrinkage=0.0, reg_covar=0.0, n_factors=None):
        self.n_samples = source.n_samples
        self.psi_floor = float(reg_covar)
        self.first_product = None
        keep = 1.0 - shrinkage
        if isinstance(source, SufficientStats):
            check_stats_range(source)
            weight = source.weight_sum
            center = source.mean
            variance = np.diag(source.scatter) / weight
            data, self.fit_mean = None, False
            self.mode = "statistics"
        elif isinstance(source, PatternStats):
            weight = source.weight_sum
            center, ac_cov, _ = source.available_case()
            variance = np.diag(ac_cov).copy()
            data, self.fit_mean = FactorPatterns(source), True
            self.mode = "missing-value patterns"
        else:
            probe = (
                None
                if n_factors is None
                else start_probe(source.n_features, int(n_factors))
            )
            data = DataPass(source.X, source.sample_weight, probe=probe)
            weight, center, variance = data.weight, data.center, data.variance
            self.fit_mean = False
            self.mode = "chunked passes over X"
        target = float(np.mean(variance))
        pilot_var = keep * variance + shrinkage * target + reg_covar
        floor = (8.0 * _EPS * np.abs(center)) ** 2
        constant = ~(pilot_var > floor)
        varying = pilot_var[~constant]
        if constant.all() or not np.all(np.isfinite(pilot_var)):
            raise singular_error(
                source.n_samples,
                center.shape[0],
                f"zero variance in feature(s) {np.flatnonzero(constant)[:10].tolist()}",
            )
        if constant.any():
            # A constant feature (e.g. a pixel constant within a CV fold) is
            # a Heywood case, as in FactorAnalysis: its noise variance sits
            # at the floor, set from the other features' mean variance since
            # its own spread is 0.
            pilot_var = np.where(constant, np.mean(varying), pilot_var)
            self.constant_features = np.flatnonzero(constant)
        else:
            self.constant_features = np.empty(0, dtype=int)
        self.center, self.variance = center, pilot_var
        scale = np.sqrt(pilot_var)
        penalties = []
        if shrinkage > 0.0:
            penalties.append((shrinkage, shrinkage * target))
        if reg_covar > 0.0:
            penalties.append((0.0, reg_covar))
        data_scale = keep / weight

        if isinstance(source, SufficientStats):
            total = _merged(
                [
                    source.scaled(data_scale),
                    *penalty_stats(source, shrinkage=shrinkage, reg_covar=reg_covar),
                ]
            )

            def evaluate(mean, W, psi):
                from .normal_factor import nll_grad_stats

                return nll_grad_stats(total, mean, W, psi)

            def products(Q):
                out = total.scatter @ (Q / scale[:, np.newaxis])
                return out / (total.weight_sum * scale[:, np.newaxis])

        else:
            ones = np.ones(center.shape[0])

            def evaluate(mean, W, psi):
                value, g_mu, g_W, g_psi = data(mean, W, psi)
                value, g_mu, g_W, g_psi = (
                    value * data_scale,
                    g_mu * data_scale,
                    g_W * data_scale,
                    g_psi * data_scale,
                )
                for pweight, pdiag in penalties:
                    v, a, b, c = nll_grad_diagonal(
                        pweight, center, pdiag * ones, mean, W, psi
                    )
                    value, g_mu, g_W, g_psi = value + v, g_mu + a, g_W + b, g_psi + c
                return value, g_mu, g_W, g_psi

            if isinstance(source, PatternStats):
                corr = keep * ac_cov + (shrinkage * target + reg_covar) * np.eye(
                    center.shape[0]
                )
                corr /= np.outer(scale, scale)

                def products(Q):
                    return corr @ Q

            else:

                def products(Q):
                    out = data.covariance_products(Q / scale[:, np.newaxis])
                    return pilot_products(out, Q / scale[:, np.newaxis])

                def pilot_products(cov_q, q):
                    # R (scale q) from C q, R the standardised pilot
                    out = keep * cov_q + (shrinkage * target + reg_covar) * q
                    return out / scale[:, np.newaxis]

                if probe is not None:
                    # The start's first product R (scale G), from the pass above.
                    self.first_product = pilot_products(data.probe_product, probe)

        self.evaluate = evaluate
        self.products = products
