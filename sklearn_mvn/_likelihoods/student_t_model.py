"""A fitted multivariate t as a value: location, scale parameters, ``df``.

:class:`TModel` is what the t's fit returns and what scores rows: per-row
log-densities and squared distances in the scale matrix (the marginal t of the
observed entries for rows with NaN), conditional draws, and the rescaling the
trimmed fit's consistency correction applies. The estimator and the trimmed
search both use it, so neither scores through the other.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import math

import numpy as np

from .._data.patterns import check_missing
from .._data.stats import check_range
from .student_t import t_conditional_draw, t_log_density
from .student_t_factor import t_factor_conditional_draw, t_factor_log_density


def check_scale_range(spread):
    """Raise a ValueError if the features' scales are not representable."""
    with np.errstate(over="ignore"):
        check_range(spread**2)


def covariance_from_shape(shape, df):
    """``df / (df - 2) shape`` for ``df > 2``; else infinite variances and NaN
    covariances."""
    if df > 2.0:
        return df / (df - 2.0) * shape
    d = shape.shape[0]
    out = np.full((d, d), np.nan)
    out[np.diag_indices(d)] = np.inf
    return out


class TModel:
    """A multivariate t: ``mean``, scale parameters ``params`` of a
    representation (a lower-triangular factor, or ``(W, psi)`` for the factor
    model) and degrees of freedom ``df``."""

    def __init__(self, representation, mean, params, df):
        self.representation = representation
        self.mean = mean
        self.params = params
        self.df = float(df)

    @property
    def is_factor(self):
        return isinstance(self.params, tuple)

    def _rows(self, X, complete, marginal):
        scores = getattr(self.representation, complete)(X, self.mean, self.params)
        if not np.all(np.isfinite(scores)) and check_missing(X):
            return getattr(self.representation, marginal)(X, self.mean, self.params)
        return scores

    def distance(self, X):
        """Squared Mahalanobis distances in the scale matrix (marginal for
        rows with NaN)."""
        return self._rows(X, "mahalanobis", "marginal_mahalanobis")

    def log_density(self, X):
        """t log-densities of validated rows (marginal for rows with NaN)."""
        if self.is_factor:
            return t_factor_log_density(X, self.mean, self.params, self.df)
        return t_log_density(X, self.mean, self.params, self.df)

    def conditional_draw(self, X, rng):
        """``X`` with each row's missing entries drawn from their conditional
        t law given its observed entries."""
        if self.is_factor:
            return t_factor_conditional_draw(X, self.mean, self.params, self.df, rng)
        return t_conditional_draw(X, self.mean, self.params, self.df, rng)

    def rescaled(self, c, df):
        """The same location with the scale matrix multiplied by ``c`` and
        ``df`` degrees of freedom (scales checked to stay representable)."""
        if self.is_factor:
            W, psi = self.params
            W, psi = W * math.sqrt(c), psi * c
            with np.errstate(over="ignore"):
                variance = (W**2).sum(axis=1) + psi
            check_scale_range(np.sqrt(variance))
            params = (W, psi)
        else:
            params = self.params * math.sqrt(c)
            # The corrected variances (squared row norms) must stay in range.
            check_scale_range(np.linalg.norm(params, axis=1))
        return TModel(self.representation, self.mean, params, df)
