"""Preconditioned L-BFGS-B over (mean, factor) with a structured factor.

The optimiser never sees ``X``: it minimises a callable ``objective(mean,
factor) -> (value, grad_mean, grad_factor)`` built from statistics. Feature
scales and correlations are removed by an affine change of variables

    mean = shift + chol @ u,    factor = chol @ T,

where ``chol`` is the lower Cholesky factor of a pilot covariance (the moment
estimate of the statistics with the regularisation applied). In ``(u, T)``
the problem is close to isotropic whatever the scales and correlations of the
data, so the iteration count does not depend on them. ``T`` is lower
triangular with a positive diagonal (``'full'``), diagonal (``'diag'``) or a
positive multiple of the identity (``'spherical'``); the gradient of the seed
is restricted to those entries.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.optimize import minimize

# Lower bound on the diagonal of T (whitened units, where the optimum's
# diagonal is of order one).
_MIN_DIAG = 1e-10


# ---------------------------------------------------------------------------
# Packing the structured factor
# ---------------------------------------------------------------------------


class FactorStructure:
    """Maps a covariance structure's free parameters to and from a vector.

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
            self.n_factor = self._rows.size
            self._diag_pos = np.flatnonzero(self._rows == self._cols)
        elif covariance_type == "diag":
            self.n_factor = n_features
            self._diag_pos = np.arange(n_features)
        elif covariance_type == "spherical":
            self.n_factor = 1
            self._diag_pos = np.arange(1)
        else:  # pragma: no cover - validated by the estimator
            raise ValueError(f"unknown covariance_type {covariance_type!r}")

    def n_parameters(self):
        """Number of free parameters of the model (mean and covariance)."""
        d = self.n_features
        return (
            d
            + {"full": d * (d + 1) // 2, "diag": d, "spherical": 1}[
                self.covariance_type
            ]
        )

    def pack_factor(self, factor):
        if self.covariance_type == "full":
            return factor[self._rows, self._cols]
        if self.covariance_type == "diag":
            return np.diag(factor).copy()
        return np.array([np.mean(np.diag(factor))])

    def unpack_factor(self, theta):
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
        return self.unpack_factor(self.pack_factor(matrix))

    def bounds(self):
        d = self.n_features
        lower = np.full(d + self.n_factor, -np.inf)
        lower[d + self._diag_pos] = _MIN_DIAG
        return list(zip(lower, np.full(lower.size, np.inf), strict=True))


# ---------------------------------------------------------------------------
# The optimiser
# ---------------------------------------------------------------------------


class OptimizeResult:
    """Outcome of :func:`minimize_nll`, in whitened coordinates."""

    def __init__(self, mean, factor, value, grad_norm, n_iter, status, message):
        self.mean = mean
        self.factor = factor
        self.value = value
        self.grad_norm = grad_norm
        self.n_iter = n_iter
        self.status = status
        self.message = message


def minimize_nll(
    objective, structure, mean0, factor0, *, max_iter, tol, verbose=0, history=None
):
    """Minimise ``objective(mean, factor)`` with L-BFGS-B.

    Parameters
    ----------
    objective : callable
        ``objective(mean, factor) -> (value, grad_mean, grad_factor)`` in the
        (whitened) coordinates the optimiser works in.
    structure : FactorStructure
        Which entries of the factor are free.
    mean0, factor0 : ndarray
        Starting point; ``factor0`` is projected on the structure.
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        Convergence when the largest entry of the projected gradient is at most
        ``tol``.
    verbose : int, default=0
        If positive, print the objective and the gradient norm each iteration.
    history : list, default=None
        If given, ``(value, grad_norm)`` of every iterate is appended to it.

    Returns
    -------
    result : OptimizeResult
    """
    d = structure.n_features
    last = {}

    def fun(theta):
        mean = theta[:d]
        factor = structure.unpack_factor(theta[d:])
        value, grad_mean, grad_factor = objective(mean, factor)
        grad = np.concatenate([grad_mean, structure.restrict_grad(grad_factor)])
        last["theta"], last["value"], last["grad"] = theta.copy(), value, grad
        return value, grad

    def projected_norm(theta, grad):
        # Infinity norm of the gradient projected on the feasible box.
        proj = grad.copy()
        at_bound = np.zeros(theta.size, dtype=bool)
        at_bound[d + structure._diag_pos] = theta[d + structure._diag_pos] <= (
            _MIN_DIAG
        )
        proj[at_bound & (grad > 0)] = 0.0
        return float(np.max(np.abs(proj))) if proj.size else 0.0

    iteration = [0]

    def callback(theta):
        iteration[0] += 1
        if not np.array_equal(theta, last.get("theta")):
            fun(theta)
        norm = projected_norm(theta, last["grad"])
        if history is not None:
            history.append((last["value"], norm))
        if verbose:
            print(
                f"Iteration {iteration[0]}: objective = {last['value']:.12g}, "
                f"|grad| = {norm:.3e}"
            )

    theta0 = np.concatenate([mean0, structure.pack_factor(factor0)])
    diag_idx = d + structure._diag_pos
    theta0[diag_idx] = np.maximum(theta0[diag_idx], _MIN_DIAG)
    value0, grad0 = fun(theta0)
    if history is not None:
        history.append((value0, projected_norm(theta0, grad0)))
    if verbose:
        print(
            f"Iteration 0: objective = {value0:.12g}, "
            f"|grad| = {projected_norm(theta0, grad0):.3e}"
        )
    if projected_norm(theta0, grad0) <= tol:
        theta, value, grad, n_iter, status, message = (
            theta0,
            value0,
            grad0,
            0,
            0,
            "the starting point satisfies the tolerance",
        )
    elif max_iter == 0:
        theta, value, grad, n_iter, status, message = (
            theta0,
            value0,
            grad0,
            0,
            1,
            "max_iter = 0",
        )
    else:
        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=structure.bounds(),
            callback=callback,
            options={
                "maxiter": max_iter,
                "maxfun": max(15000, 20 * max_iter),
                "gtol": tol,
                # Convergence is decided by the gradient: at small gradients the
                # objective's decrease is below its rounding error, so a test
                # on it would stop early.
                "ftol": 0.0,
                "maxcor": 20,
            },
        )
        theta, value, n_iter, status = res.x, float(res.fun), int(res.nit), res.status
        grad = np.asarray(res.jac)
        message = str(res.message)
    norm = projected_norm(theta, grad)
    if status == 2 and norm <= 100.0 * tol:
        # The line search cannot decrease the objective any further within
        # floating-point resolution, and the gradient is near the tolerance.
        status = 0
    return OptimizeResult(
        theta[:d].copy(),
        structure.unpack_factor(theta[d:]),
        float(value),
        norm,
        n_iter,
        status,
        message,
    )
