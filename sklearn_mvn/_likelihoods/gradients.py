"""The negative log-likelihood of a multivariate normal and its gradients.

Parameterisation (J. Rennie, 2006): mean ``mu`` and factor ``Lambda`` with
covariance ``S = Lambda Lambda^T``. With ``J = -log P(X | mu, Lambda)`` (the
note's eq. (2) drops the minus sign and the log),

    J = C + 1/2 (n log|S| + sum_a (x_a - mu)^T S^{-1} (x_a - mu)),
    C = n d / 2 log(2 pi),

and its gradients are eq. (9) for the mean and (7) + (14) for the factor:

    dJ/dmu     = -S^{-1} sum_a (x_a - mu),
    dJ/dLambda = n S^{-1} Lambda - S^{-1} (X - mu)^T (X - mu) S^{-1} Lambda.

Because ``S^{-1} Lambda = Lambda^{-T}``, with ``A = Lambda^{-1} B Lambda^{-T}``
and ``B = (X - mu)^T (X - mu)`` the factor gradient is ``Lambda^{-T}(n I - A)``:
two triangular (or LU) solves and no inverse of ``S``.

Two forms are provided. The ``X``-level functions :func:`nll` and
:func:`nll_grad` are the reference forms of the note, for any invertible
factor. The statistics-level functions work on :class:`SufficientStats`
(``B = C + W (m - mu)(m - mu)^T``), so their cost is O(d^3) whatever the number
of samples; the optimiser only ever calls these. Regularisation terms are
pseudo-statistics (see :func:`penalty_stats`), so they share the same formulas.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning, lu_factor, lu_solve

from .._data.stats import SufficientStats
from .._linalg import LOG_2PI, solve_lower

# ---------------------------------------------------------------------------
# Solving with the factor
# ---------------------------------------------------------------------------


class _Factor:
    """Solves with an invertible square factor and its log-determinant.

    Lower-triangular factors use triangular solves; any other invertible factor
    an LU decomposition.
    """

    def __init__(self, factor):
        factor = np.asarray(factor, dtype=np.float64)
        if factor.ndim != 2 or factor.shape[0] != factor.shape[1]:
            raise ValueError(
                f"factor must be a square matrix, got shape {factor.shape}."
            )
        self.lower = not np.any(np.triu(factor, 1))
        # The optimiser starts at the identity (the pilot in whitened
        # coordinates): solving with it is a copy, not O(d^3) work.
        self.identity = (
            self.lower
            and bool(np.all(np.diag(factor) == 1.0))
            and not np.any(np.tril(factor, -1))
        )
        if self.lower:
            diag = np.diag(factor)
            self._factor = factor
        else:
            with warnings.catch_warnings():
                # A singular factor is reported below as a ValueError.
                warnings.simplefilter("ignore", LinAlgWarning)
                self._lu = lu_factor(factor, check_finite=False)
            diag = np.diag(self._lu[0])
        with np.errstate(divide="ignore"):
            self.logabsdet = float(np.sum(np.log(np.abs(diag))))
        if not np.isfinite(self.logabsdet) or np.any(diag == 0):
            raise ValueError(
                "factor is singular; the covariance factor must be invertible."
            )

    def solve(self, rhs):
        """``Lambda^{-1} rhs``."""
        if self.identity:
            return np.array(rhs, dtype=np.float64)
        if self.lower:
            return solve_lower(self._factor, rhs)
        return lu_solve(self._lu, rhs, check_finite=False)

    def solve_t(self, rhs):
        """``Lambda^{-T} rhs``."""
        if self.identity:
            return np.array(rhs, dtype=np.float64)
        if self.lower:
            return solve_lower(self._factor, rhs, trans=True)
        return lu_solve(self._lu, rhs, trans=1, check_finite=False)


def _logdet_trace_term(fac, weight, matrix):
    """``weight log|det Lambda| + 1/2 tr(S^{-1} matrix)`` and its gradient.

    This is ``1/2 (J1 + J2)`` of the note with ``n = weight`` and
    ``(X - mu)^T (X - mu) = matrix``; the gradient is eq. (7) + (14) halved,
    ``Lambda^{-T} (weight I - Lambda^{-1} matrix Lambda^{-T})``.
    """
    half = fac.solve(matrix)
    inner = fac.solve(half.T)
    inner = 0.5 * (inner + inner.T)
    value = weight * fac.logabsdet + 0.5 * np.trace(inner)
    inner *= -1.0
    inner[np.diag_indices_from(inner)] += weight
    return value, fac.solve_t(inner)


# ---------------------------------------------------------------------------
# X-level reference forms (the note's equations, on the data matrix)
# ---------------------------------------------------------------------------


def _residuals(X, mean, sample_weight):
    X = np.asarray(X, dtype=np.float64)
    resid = X - np.asarray(mean, dtype=np.float64)
    if sample_weight is None:
        weights = np.ones(X.shape[0])
    else:
        weights = np.asarray(sample_weight, dtype=np.float64)
    return resid, weights


def nll(X, mean, factor, sample_weight=None):
    """Negative log-likelihood ``J`` of eq. (2), constant included.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    mean : ndarray of shape (n_features,)
        Mean ``mu``.
    factor : ndarray of shape (n_features, n_features)
        Any invertible factor ``Lambda`` of the covariance ``S = Lambda Lambda^T``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each row's term is multiplied by its weight (``n`` becomes the weight
        sum).

    Returns
    -------
    J : float
    """
    return nll_grad(X, mean, factor, sample_weight)[0]


def nll_grad(X, mean, factor, sample_weight=None):
    """Negative log-likelihood and its gradients, on the data matrix.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    mean : ndarray of shape (n_features,)
        Mean ``mu``.
    factor : ndarray of shape (n_features, n_features)
        Any invertible factor ``Lambda``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Row weights.

    Returns
    -------
    J : float
        Eq. (2), constant included.
    grad_mean : ndarray of shape (n_features,)
        ``dJ/dmu``, eq. (9) with the 1/2 of ``J = C + 1/2 (J1 + J2)``.
    grad_factor : ndarray of shape (n_features, n_features)
        ``dJ/dLambda``, eq. (7) + (14) with the same 1/2.
    """
    resid, weights = _residuals(X, mean, sample_weight)
    fac = _Factor(factor)
    n_features = resid.shape[1]
    weight_sum = float(weights.sum())
    # Z = Lambda^{-1} (X - mu)^T: the whitened residuals, one column per row.
    z = fac.solve(resid.T)
    mahalanobis = np.einsum("ij,ij->j", z, z)
    value = (
        0.5 * weight_sum * n_features * LOG_2PI
        + weight_sum * fac.logabsdet
        + 0.5 * float(weights @ mahalanobis)
    )
    grad_mean = -fac.solve_t(z @ weights)
    inner = -(z * weights) @ z.T
    inner[np.diag_indices_from(inner)] += weight_sum
    grad_factor = fac.solve_t(inner)
    return value, grad_mean, grad_factor


# ---------------------------------------------------------------------------
# Statistics-level forms (what the optimiser calls)
# ---------------------------------------------------------------------------


def nll_stats(stats, mean, factor):
    """Negative log-likelihood from sufficient statistics.

    Parameters
    ----------
    stats : SufficientStats
        Weight sum ``W``, weighted mean ``m`` and centred scatter ``C``.
    mean : ndarray of shape (n_features,)
        Mean ``mu``.
    factor : ndarray of shape (n_features, n_features)
        Any invertible factor ``Lambda``.

    Returns
    -------
    J : float
        Equal to :func:`nll` on the data the statistics summarise.
    """
    return nll_grad_stats(stats, mean, factor)[0]


def nll_grad_stats(stats, mean, factor):
    """Negative log-likelihood and gradients from sufficient statistics.

    Uses ``sum_a (x_a - mu)(x_a - mu)^T = C + W (m - mu)(m - mu)^T``; the cost
    is O(d^3), independent of the number of samples.

    Parameters
    ----------
    stats : SufficientStats
        Weight sum ``W``, weighted mean ``m`` and centred scatter ``C``.
    mean : ndarray of shape (n_features,)
        Mean ``mu``.
    factor : ndarray of shape (n_features, n_features)
        Any invertible factor ``Lambda``.

    Returns
    -------
    J : float
    grad_mean : ndarray of shape (n_features,)
    grad_factor : ndarray of shape (n_features, n_features)
    """
    fac = factor if isinstance(factor, _Factor) else _Factor(factor)
    weight = stats.weight_sum
    n_features = stats.n_features
    diff = stats.mean - np.asarray(mean, dtype=np.float64)
    matrix = stats.scatter + np.outer(diff, diff * weight)
    value, grad_factor = _logdet_trace_term(fac, weight, matrix)
    value += 0.5 * weight * n_features * LOG_2PI
    grad_mean = -weight * fac.solve_t(fac.solve(diff))
    return value, grad_mean, grad_factor


def penalty_stats(data_stats, *, shrinkage=0.0, reg_covar=0.0, target_var=None):
    """Regularisation terms as pseudo-statistics.

    The objective the estimator minimises is a sum of negative
    log-likelihoods of statistics, each with the seed's gradients:

    - the data, weighted by ``(1 - shrinkage) / W`` (a mean per sample);
    - the shrinkage prior, ``shrinkage`` pseudo-observations with the data's
      mean and covariance ``target_var * I``: the negative log of a conjugate
      normal-inverse-Wishart prior. The optimum of data + prior is
      ``(1 - shrinkage) S_ML + shrinkage target_var I``, the estimate of
      :class:`~sklearn.covariance.ShrunkCovariance`;
    - the ``reg_covar`` term ``reg_covar / 2 tr(S^{-1})``: statistics of zero
      weight and scatter ``reg_covar * I`` (the trace part of an
      inverse-Wishart prior). It adds ``reg_covar`` to the optimum's diagonal,
      as in :class:`~sklearn.mixture.GaussianMixture`.

    Parameters
    ----------
    data_stats : SufficientStats
        Statistics of the data (their mean anchors the prior's mean).
    shrinkage : float, default=0.0
        Weight of the prior, in [0, 1].
    reg_covar : float, default=0.0
        Non-negative diagonal regularisation.
    target_var : float, default=None
        Variance of the shrinkage target; default ``tr(S_ML) / d``.

    Returns
    -------
    terms : list of SufficientStats
        The penalty terms (possibly empty).
    """
    n_features = data_stats.n_features
    eye = np.eye(n_features)
    terms = []
    if shrinkage > 0.0:
        if target_var is None:
            target_var = np.trace(data_stats.covariance()) / n_features
        terms.append(
            SufficientStats(shrinkage, data_stats.mean, shrinkage * target_var * eye)
        )
    if reg_covar > 0.0:
        terms.append(SufficientStats(0.0, data_stats.mean, reg_covar * eye))
    return terms
