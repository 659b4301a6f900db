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
  round-off of a sum over patterns only; inexact objectives provide
  ``em_step`` for polishing below their noise floor.

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

from ._gradients import nll_grad_stats, penalty_stats
from ._missing import MissingObjective, whitened_objective
from ._representations import TriangularCovariance
from ._stats import SufficientStats

_EPS = np.finfo(np.float64).eps
# Variances below this are subnormal or close to it: their square roots and
# inverses lose precision or overflow.
_TINY_VARIANCE = 1e4 * np.finfo(np.float64).tiny


def check_stats_range(stats):
    """Raise a ValueError if the statistics over- or underflowed float64.

    The covariance of data whose magnitude is beyond about 1e150 (or whose
    spread is below about 1e-151) is not representable in float64.
    """
    if not (np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.scatter))):
        raise ValueError(
            "The mean or covariance of X overflows float64: the values of X are "
            "too large in magnitude (the squared spread must stay below 1e308). "
            "Rescale X, e.g. divide it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )
    variances = np.diag(stats.scatter) / stats.weight_sum
    tiny = np.flatnonzero((variances > 0) & (variances < _TINY_VARIANCE))
    if tiny.size:
        raise ValueError(
            f"The variance of feature(s) {tiny[:10].tolist()} is below "
            f"{_TINY_VARIANCE:.0e}, too small to be represented accurately in "
            "float64. Rescale X, e.g. multiply it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )


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
        The penalties (see :func:`~._gradients.penalty_stats`).
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
        ac_mean, ac_cov, _ = stats.available_case()
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

    def internal(self, mean, covariance):
        return (
            (mean - self.shift) / self.scale,
            covariance / np.outer(self.scale, self.scale),
        )

    def to_original(self, mean, factor):
        return self.shift + self.scale * mean, self.scale[:, np.newaxis] * factor

    def em_step(self, mean, factor):
        """One EM step: the objective, its gradient norm, and the M-step.

        The E-step is the expected statistics merged with the penalties; the
        gradient is taken in coordinates whitened at the current point, as the
        optimiser's. Returns the objective value at ``(mean, factor)``, the
        largest gradient entry (whitened, on the free entries of a full
        factor), and the M-step's mean and covariance (unrestricted).
        """
        total, entropy = self._objective.total_stats(mean, factor)
        whitened = total.whitened(mean, factor)
        value, grad_mean, grad_factor = nll_grad_stats(
            whitened, np.zeros_like(mean), np.eye(mean.shape[0])
        )
        # whitened value + log|det factor| * weight = value at (mean, factor)
        value += total.weight_sum * np.sum(np.log(np.diag(factor))) - entropy
        return value, grad_mean, grad_factor, total.mean, total.covariance()


def make_objective(stats, representation, *, shrinkage=0.0, reg_covar=0.0):
    """The normal likelihood's objective on a data source (the one dispatch)."""
    if isinstance(stats, SufficientStats):
        return StatsObjective(stats, shrinkage=shrinkage, reg_covar=reg_covar)
    return PatternObjective(
        stats, representation, shrinkage=shrinkage, reg_covar=reg_covar
    )
