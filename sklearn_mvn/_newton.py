"""Newton steps on the observed-data objective, without objective values.

Near the optimum of the observed-data likelihood the decrease of the objective
along a step (of the order of the squared gradient) falls below the rounding
error of the objective itself (about ``eps |J|``), so a line search on values
stalls while the gradient, computed to near machine precision, is still above
``tol``. Newton steps need no values there: in coordinates whitened at the
current point, the Hessian is formed from central differences of the
gradient (or applied to vectors, for many parameters, inside conjugate
gradients), the step solves ``H s = -g``, and it is accepted when the
gradient shrinks. Far from the optimum (or on a likelihood that is
unbounded, where ``H`` is not positive definite) the steps stop and the caller
reports non-convergence.

The quadratic convergence of Newton's method does not depend on the fraction
of missing information, which is what makes EM (and first-order methods in
coordinates whitened for the complete data) slow: one or two steps take a
gradient at the line search's floor to far below ``tol``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from ._missing import whitened_objective

# Step of the forward differences of the gradient (whitened units): truncation
# error ~h, rounding error ~eps / h, both about 1e-8 relative.
_FD_STEP = 1e-8
_EPS = np.finfo(np.float64).eps


def _flat(structure, grad_mean, grad_factor):
    return np.concatenate([grad_mean, structure.restrict_grad(grad_factor)])


class _Whitened:
    """The objective in coordinates ``x = (u, packed T)`` whitened at a point;
    ``x0`` (u = 0, T = I) is that point."""

    def __init__(self, objective, structure, mean, factor):
        self.structure = structure
        self.d = structure.n_features
        self.evaluate = whitened_objective(objective, mean, factor)
        self.x0 = np.concatenate(
            [np.zeros(self.d), structure.pack_factor(np.eye(self.d))]
        )
        self.n_eval = 0

    def unpack(self, x):
        return x[: self.d], self.structure.unpack_factor(x[self.d :])

    def __call__(self, x):
        self.n_eval += 1
        value, grad_u, grad_t = self.evaluate(*self.unpack(x))
        return value, _flat(self.structure, grad_u, grad_t)

    def hessian_vector(self, v, grad0):
        """``H v`` by forward differences of the gradient (``grad0`` at
        ``x0``)."""
        h = _FD_STEP / float(np.max(np.abs(v)))
        return (self(self.x0 + h * v)[1] - grad0) / h


def _cg_step(w, grad, max_iter):
    """Newton step by conjugate gradients on Hessian-vector products, to a
    relative residual ``min(0.1, sqrt(|g|))`` (superlinear convergence); None
    on a direction of negative curvature."""
    step = np.zeros_like(grad)
    resid = -grad.copy()
    direction = resid.copy()
    rr = float(resid @ resid)
    forcing = min(0.1, np.sqrt(float(np.max(np.abs(grad)))))
    target = forcing**2 * rr
    for _ in range(max_iter):
        hd = w.hessian_vector(direction, grad)
        curvature = float(direction @ hd)
        if not curvature > 0.0:
            # Not positive definite: far from a maximum, or unbounded.
            return None
        alpha = rr / curvature
        step += alpha * direction
        resid -= alpha * hd
        rr_new = float(resid @ resid)
        if rr_new <= target:
            break
        direction = resid + (rr_new / rr) * direction
        rr = rr_new
    return step


def newton_polish(objective, structure, mean, factor, tol, max_steps=10):
    """Newton steps from ``(mean, factor)`` until the whitened gradient's
    largest entry is at most ``tol``.

    Parameters
    ----------
    objective : MissingObjective
    structure : FactorStructure
    mean, factor : ndarray
        Starting point (the coordinates of ``objective``).
    tol : float
    max_steps : int, default=10

    Returns
    -------
    mean, factor : ndarray
        Last accepted point.
    value : float
        Objective at that point.
    grad_norm : float
        Largest entry of its whitened gradient.
    converged : bool
        Whether ``grad_norm <= tol``.
    n_steps : int
        Accepted Newton steps.
    n_eval : int
        Objective evaluations.
    """
    n_eval = 0
    n_steps = 0
    for _ in range(max_steps + 1):
        w = _Whitened(objective, structure, mean, factor)
        value, grad = w(w.x0)
        grad_norm = float(np.max(np.abs(grad)))
        if grad_norm <= tol or n_steps == max_steps or not np.isfinite(value):
            n_eval += w.n_eval
            break
        step = _cg_step(w, grad, max_iter=grad.size)
        accepted = False
        if step is not None:
            # Stay well inside the domain (T's diagonal positive): whitened
            # steps of at most 0.5 per entry.
            alpha = min(1.0, 0.5 / max(float(np.max(np.abs(step))), _EPS))
            predicted = -0.5 * alpha * float(grad @ step)
            resolvable = predicted > 1e3 * _EPS * max(1.0, abs(value))
            for _ in range(8):
                x1 = w.x0 + alpha * step
                value1, grad1 = w(x1)
                norm1 = float(np.max(np.abs(grad1)))
                if np.isfinite(value1) and (
                    (resolvable and value1 <= value - 0.5 * alpha * predicted)
                    or (not resolvable and norm1 < grad_norm)
                ):
                    accepted = True
                    break
                alpha *= 0.5
                predicted *= 0.5
        n_eval += w.n_eval
        if not accepted:
            break
        u, t = w.unpack(x1)
        mean = mean + factor @ u
        factor = structure.project(np.tril(factor @ t))
        n_steps += 1
    value = objective(mean, factor)[0]
    return mean, factor, value, grad_norm, grad_norm <= tol, n_steps, n_eval + 1
