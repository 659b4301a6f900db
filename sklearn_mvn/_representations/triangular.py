"""The triangular representation: ``'full'``, ``'diag'`` and ``'spherical'``.

A representation is one of the three choices that make a model (with the data
source and the likelihood). It owns everything that depends on the form of
``Lambda``:

- the free parameters ``theta`` the optimiser moves (packing, unpacking,
  bounds) and the restriction of the seed's gradient ``dJ/dLambda`` to them;
- the preconditioner: a factor with the structure of the model whose product
  is a pilot covariance, used to whiten the problem;
- the linear algebra of a fitted covariance: log-determinant, whitening
  (squared Mahalanobis distances and log-densities of row chunks), marginals
  of a subset of features and conditional means (missing values), sampling,
  the dense covariance and precision, and the number of free parameters.

:class:`TriangularCovariance` covers ``'full'`` (lower-triangular ``Lambda``
with a positive diagonal), ``'diag'`` and ``'spherical'`` with triangular
solves. The factor model's rectangular ``Lambda`` (low rank plus diagonal,
Woodbury algebra, :mod:`.low_rank`) implements the same methods.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.linalg import cholesky

from .._linalg import (
    log_density,
    precision_from_factor,
    squared_mahalanobis,
)
from ..exceptions import NotDeterminedError
from .conditional import conditional_fill, marginal_log_density, marginal_mahalanobis

_EPS = np.finfo(np.float64).eps
# Lower bound on the diagonal of T (whitened units, where the optimum's
# diagonal is of order one).
MIN_DIAG = 1e-10


def singular_error(n_samples, n_features, detail):
    """The error for a covariance that the data leave singular."""
    return NotDeterminedError(
        f"The covariance is singular ({detail}; n_samples={n_samples}, "
        f"n_features={n_features}): this happens with a single sample, fewer "
        "samples than features, or constant or collinear features. Set "
        "reg_covar > 0 or shrinkage > 0 (shrinkage needs at least one "
        "non-constant feature), or remove the redundant features."
    )


# ---------------------------------------------------------------------------
# Full, diagonal and spherical: a lower-triangular Lambda
# ---------------------------------------------------------------------------


class TriangularCovariance:
    """``Lambda`` lower triangular (``'full'``), diagonal or ``c I``.

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical'}
    n_features : int
    """

    def __init__(self, covariance_type, n_features):
        self.covariance_type = covariance_type
        self.n_features = n_features
        if covariance_type == "full":
            self._rows, self._cols = np.tril_indices(n_features)
            self.n_theta = self._rows.size
            self.diag_positions = np.flatnonzero(self._rows == self._cols)
        elif covariance_type == "diag":
            self.n_theta = n_features
            self.diag_positions = np.arange(n_features)
        elif covariance_type == "spherical":
            self.n_theta = 1
            self.diag_positions = np.arange(1)
        else:  # pragma: no cover - validated by the estimator
            raise ValueError(f"unknown covariance_type {covariance_type!r}")

    # -- the optimiser's parameters ------------------------------------------

    def n_parameters(self):
        """Number of free parameters of the model (mean and covariance)."""
        d = self.n_features
        return (
            d
            + {"full": d * (d + 1) // 2, "diag": d, "spherical": 1}[
                self.covariance_type
            ]
        )

    def pack(self, factor):
        """Free entries of a structured factor."""
        if self.covariance_type == "full":
            return factor[self._rows, self._cols]
        if self.covariance_type == "diag":
            return np.diag(factor).copy()
        return np.array([np.mean(np.diag(factor))])

    def unpack(self, theta):
        """The structured factor of the free entries ``theta``."""
        d = self.n_features
        if self.covariance_type == "full":
            factor = np.zeros((d, d))
            factor[self._rows, self._cols] = theta
            return factor
        if self.covariance_type == "diag":
            return np.diag(theta)
        return theta[0] * np.eye(d)

    def restrict_grad(self, grad):
        """The gradient with respect to the free entries of the factor."""
        if self.covariance_type == "full":
            return grad[self._rows, self._cols]
        if self.covariance_type == "diag":
            return np.diag(grad).copy()
        return np.array([np.trace(grad)])

    def project(self, matrix):
        """The structured matrix nearest to a lower-triangular ``matrix``."""
        return self.unpack(self.pack(matrix))

    def lower_bounds(self):
        """Lower bounds of ``theta`` (``-inf`` where unbounded)."""
        lower = np.full(self.n_theta, -np.inf)
        lower[self.diag_positions] = MIN_DIAG
        return lower

    # -- preconditioning -----------------------------------------------------

    def standardising_scale(self, variances):
        """Per-feature scales that keep the structure (one for ``'spherical'``)."""
        scale = np.sqrt(variances)
        if self.covariance_type == "spherical":
            scale = np.full(self.n_features, np.sqrt(np.mean(variances)))
        return scale

    def preconditioner(self, covariance, mean, n_samples, regularised=False):
        """Lower-triangular ``chol`` with the structure of the model.

        ``chol chol^T`` is ``covariance`` restricted to the structure; it is
        computed from the correlation matrix so that feature scales do not
        affect its accuracy. Raises a ``NotDeterminedError`` (a ValueError)
        when ``covariance`` is singular.

        Unregularised, a variance within a few units in the last place of the
        mean squared counts as zero: such a spread carries no information.
        A ``regularised`` covariance (``reg_covar`` or ``shrinkage``) is the
        user's choice and is used whenever its standard deviation exceeds one
        unit in the last place of the mean.
        """
        n_features = self.n_features
        variances = np.diag(covariance).copy()
        # The statistics give a constant feature a variance of 0 (with
        # weights, a residue of order eps^2 (n eps mean)^2, far below the
        # floor); the floor also flags spreads within a few units in the last
        # place of the mean, which carry no information and cannot be
        # whitened accurately.
        floor = ((1.0 if regularised else 8.0) * _EPS * np.abs(mean)) ** 2
        if self.covariance_type == "spherical":
            var = float(np.mean(variances))
            if not var > float(np.mean(floor)):
                raise singular_error(n_samples, n_features, "all features are constant")
            return np.sqrt(var) * np.eye(n_features)
        constant = np.flatnonzero(~(variances > floor))
        if constant.size:
            detail = f"zero variance in feature(s) {constant[:10].tolist()}"
            if constant.size > 10:
                detail += f" and {constant.size - 10} more, {constant.size} in total"
            detail += (
                "; sklearn.feature_selection.VarianceThreshold removes constant "
                "features"
            )
            magnitude = np.abs(mean[constant])
            if np.all((magnitude > 0) & (magnitude < 1e-150)):
                detail += " (values below 1e-154 square to 0 in float64: rescale X)"
            if regularised:
                needed = (4.0 * _EPS * float(np.max(magnitude))) ** 2
                detail += (
                    "; the regularisation is too small to be represented next "
                    f"to these features' values (up to {np.max(magnitude):.3g}): "
                    f"reg_covar >= {needed:.1e} works"
                )
            raise singular_error(n_samples, n_features, detail)
        scale = np.sqrt(variances)
        if self.covariance_type == "diag":
            return np.diag(scale)
        corr = covariance / np.outer(scale, scale)
        try:
            chol_corr = cholesky(corr, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            chol_corr = None
        if chol_corr is None or np.min(np.diag(chol_corr)) ** 2 <= (
            1e3 * n_features * _EPS
        ):
            raise singular_error(
                n_samples, n_features, "the features are linearly dependent"
            )
        return scale[:, np.newaxis] * chol_corr

    # -- a fitted covariance -------------------------------------------------

    def fitted_attributes(self, factor):
        """The estimator's covariance attributes of a fitted factor."""
        factor = np.tril(factor)
        with np.errstate(over="ignore", invalid="ignore"):
            _, precision = precision_from_factor(factor)
        if not np.all(np.isfinite(precision)):
            # A covariance near the bottom of float64 whose inverse is not
            # representable (issue 14, found by the fuzz).
            raise ValueError(
                "The precision (inverse covariance) overflows float64: the "
                "spread of X is too small to be represented accurately. Rescale "
                "X, e.g. multiply it by a power of ten or use "
                "sklearn.preprocessing.StandardScaler, and fit again."
            )
        return {
            "factor_": factor,
            "covariance_": factor @ factor.T,
            "precision_": precision,
        }

    def log_density(self, X, mean, factor):
        """Log-density of complete rows (NaN rows give NaN)."""
        return log_density(X, mean, factor)

    def mahalanobis(self, X, mean, factor):
        """Squared Mahalanobis distances of complete rows."""
        return squared_mahalanobis(X, mean, factor)

    def marginal_log_density(self, X, mean, factor):
        """Log-density of each row's observed entries (NaN = missing)."""
        return marginal_log_density(X, mean, factor)

    def marginal_mahalanobis(self, X, mean, factor):
        """Squared distance of each row's observed entries."""
        return marginal_mahalanobis(X, mean, factor)

    def conditional_mean(self, X, mean, factor):
        """``X`` with each NaN replaced by its conditional expectation."""
        return conditional_fill(X, mean, factor)[0]

    def sample(self, mean, factor, draws):
        """``mean + Z Lambda^T`` for standard normal rows ``Z``."""
        return mean + draws @ factor.T
