"""The one call of SciPy's L-BFGS-B, with the package's options.

Every solver (the normal, factor and Student-t models) runs L-BFGS-B through
:func:`lbfgsb`, so the stopping options are set in one place.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from scipy.optimize import minimize


def lbfgsb(fun, theta0, bounds, *, max_iter, tol, callback=None):
    """Minimise ``fun(theta) -> (value, grad)`` with L-BFGS-B.

    Parameters
    ----------
    fun : callable
        Value and gradient of the objective.
    theta0 : ndarray
        Starting point (feasible).
    bounds : sequence of (float or None, float or None)
        Box constraints of each entry.
    max_iter : int
        Maximum number of iterations (at least 1).
    tol : float
        Stop when the largest projected gradient entry is at most ``tol``.
    callback : callable, default=None
        Called with the iterate after every iteration.

    Returns
    -------
    result : scipy.optimize.OptimizeResult
    """
    max_iter = max(int(max_iter), 1)
    return minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=callback,
        options={
            "maxiter": max_iter,
            "maxfun": max(15000, 20 * max_iter),
            "gtol": tol,
            # Convergence is decided by the gradient: at small gradients the
            # objective's decrease is below its rounding error, so a test on
            # it would stop early.
            "ftol": 0.0,
            "maxcor": 20,
        },
    )
