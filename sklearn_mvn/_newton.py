"""The missing-data solver: L-BFGS-B cycles and Newton steps that need no
objective values.

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
from ._optimize import minimize_nll

# Steps of the differences of the gradient (whitened units). Forward: error
# ~h + noise / h, about 1e-8 relative, but the gradient's rounding noise
# (~1e-14) divided by h swamps a flat direction's curvature. Central: error
# ~h^2 + noise / h, about 1e-9 absolute.
_FD_STEP = 1e-8
_FD_STEP_CENTRAL = 1e-5
# Central differences once the gradient is below this.
_CENTRAL_BELOW = 1e-4
_EPS = np.finfo(np.float64).eps
# Up to this many free parameters the Hessian is formed densely near the
# optimum (as many evaluations as conjugate gradients would need in the worst
# case, and exact however ill-conditioned); above, or farther away, conjugate
# gradients.
_DENSE_MAX = 64


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
        """``H v`` by differences of the gradient (``grad0`` at ``x0``):
        forward differences while the gradient is large, central ones (twice
        the cost, accurate also along flat directions) near the optimum."""
        scale = float(np.max(np.abs(v)))
        if np.max(np.abs(grad0)) > _CENTRAL_BELOW:
            h = _FD_STEP / scale
            return (self(self.x0 + h * v)[1] - grad0) / h
        h = _FD_STEP_CENTRAL / scale
        return (self(self.x0 + h * v)[1] - self(self.x0 - h * v)[1]) / (2.0 * h)


def _dense_step(w, grad):
    """Newton step from the Hessian formed by forward differences (one
    evaluation per parameter); None if it is not positive definite."""
    p = grad.size
    hess = np.column_stack([w.hessian_vector(e, grad) for e in np.eye(p)])
    eigval, eigvec = np.linalg.eigh(0.5 * (hess + hess.T))
    if not eigval[0] > 1e3 * _EPS * max(eigval[-1], 1.0):
        return None
    return -(eigvec @ ((eigvec.T @ grad) / eigval))


def _cg_step(w, grad, tol, max_iter):
    """Newton step by conjugate gradients on Hessian-vector products; None on
    a direction of negative curvature.

    The relative residual sought is ``|g|`` (quadratic convergence), or
    ``0.1 tol / |g|`` if larger (enough for the next gradient to meet
    ``tol``), within ``[1e-6, 0.1]`` (the differences are accurate to about
    1e-7).
    """
    step = np.zeros_like(grad)
    resid = -grad.copy()
    direction = resid.copy()
    rr = float(resid @ resid)
    norm = float(np.max(np.abs(grad)))
    forcing = min(0.1, max(norm, 0.1 * tol / norm, 1e-6))
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


def newton_polish(
    objective, structure, mean, factor, tol, max_steps=10, history=None, verbose=0
):
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
    history : list, default=None
        If given, ``(value, grad_norm)`` of every accepted step is appended to
        it (value in the whitened coordinates of the step).
    verbose : int, default=0
        If positive, print the objective and the gradient at every step.

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
        if grad.size <= _DENSE_MAX and grad_norm <= _CENTRAL_BELOW:
            step = _dense_step(w, grad)
        else:
            step = _cg_step(w, grad, tol, max_iter=grad.size)
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
        if history is not None:
            history.append((value1, norm1))
        if verbose:
            print(
                f"Newton step {n_steps}: objective = {value1:.12g}, "
                f"|grad| = {norm1:.3e}"
            )
    value = objective(mean, factor)[0]
    return mean, factor, value, grad_norm, grad_norm <= tol, n_steps, n_eval + 1


# ---------------------------------------------------------------------------
# The missing-data solver
# ---------------------------------------------------------------------------

# L-BFGS-B iterations between re-whitenings.
_CYCLE_ITER = 10
# A cycle that shrinks the gradient by less than this factor is slow: Newton
# steps are tried next.
_SLOW = 1e-2


class MissingResult:
    """Outcome of :func:`solve_missing` (standardised coordinates)."""

    def __init__(self, mean, factor, value, grad_norm, n_iter, converged, message):
        self.mean = mean
        self.factor = factor
        self.value = value
        self.grad_norm = grad_norm
        self.n_iter = n_iter
        self.converged = converged
        self.message = message


def solve_missing(
    objective,
    structure,
    mean,
    cov,
    *,
    factorize,
    start,
    tol,
    max_iter,
    verbose=0,
    history=None,
):
    """Minimise the observed-data objective: L-BFGS-B cycles and Newton steps.

    Cycles of at most ``_CYCLE_ITER`` L-BFGS-B iterations each work in
    coordinates whitened at the current estimate (the pilot of pairwise
    moments can be a poor preconditioner, and refreshing it keeps the
    complete-data part of the problem isotropic). What whitening cannot fix is
    the missing information: when a cycle shrinks the gradient by less than
    ``_SLOW``, or its line search stalls at the objective's round-off floor,
    or it stops decreasing the objective, Newton steps take over
    (:func:`newton_polish`); their convergence does not depend on the fraction
    of missing information, and they need no objective values near the
    optimum. If the Hessian is not positive definite (far from the optimum)
    the cycles go on, and Newton steps are tried again after twice as many
    cycles each time.

    The fit has converged when the largest entry of the gradient in whitened
    coordinates is at most ``tol``. On an unbounded likelihood (no maximum)
    this never happens and the caller warns.

    Parameters
    ----------
    objective : MissingObjective
        In standardised coordinates.
    structure : FactorStructure
    mean, cov : ndarray
        Starting point (standardised coordinates).
    factorize : callable
        ``factorize(cov, mean) -> chol``: the whitening factor, a ValueError
        if ``cov`` is singular.
    start : callable
        ``start(evaluate, mean, chol) -> (u0, T0)``: the first cycle's
        starting point in its whitened coordinates (``evaluate`` is the
        whitened objective).
    tol : float
    max_iter : int
        L-BFGS-B iterations plus Newton steps.
    verbose : int, default=0
    history : list, default=None
        ``(value, grad_norm)`` of every iterate is appended to it.

    Returns
    -------
    result : MissingResult
    """
    n_features = structure.n_features
    total_weight = objective.scale * objective.stats.weight_sum + sum(
        term.weight_sum for term in objective.penalties
    )
    history = [] if history is None else history
    n_iter, previous = 0, np.inf
    wait, backoff = 0, 1
    factor = None
    value, grad_norm, message = np.inf, np.inf, "no iteration"
    for cycle in range(max_iter + 1):
        try:
            chol = factorize(cov, mean)
        except (ValueError, np.linalg.LinAlgError):
            if cycle == 0:
                raise
            message = "the covariance became numerically singular"
            break
        evaluate = whitened_objective(objective, mean, chol)
        if cycle == 0:
            u0, t0 = start(evaluate, mean, chol)
        else:
            u0, t0 = np.zeros(n_features), np.eye(n_features)
        first = len(history)
        result = minimize_nll(
            evaluate,
            structure,
            u0,
            t0,
            max_iter=min(max_iter - n_iter, _CYCLE_ITER),
            tol=tol,
            verbose=verbose,
            history=history,
        )
        n_iter += result.n_iter
        # The objective in standardised units, comparable across cycles.
        value = result.value + total_weight * np.sum(np.log(np.diag(chol)))
        mean = mean + chol @ result.mean
        factor = chol @ result.factor
        cov = factor @ factor.T
        grad_norm, message = result.grad_norm, result.message
        if grad_norm <= tol or n_iter >= max_iter:
            break
        stalled = result.status != 1
        slow = grad_norm > _SLOW * history[first][1]
        progress = value < previous
        wait -= 1
        if stalled or not progress or (slow and wait <= 0):
            out = newton_polish(
                objective,
                structure,
                mean,
                factor,
                tol,
                max_steps=min(10, max_iter - n_iter),
                history=history,
                verbose=verbose,
            )
            n_steps = out[5]
            n_iter += n_steps
            if n_steps:
                mean, factor, value, grad_norm = out[:4]
                cov = factor @ factor.T
                message = "Newton steps"
            if out[4] or n_iter >= max_iter:
                break
            if n_steps < 2:
                # Not near a maximum yet (or none exists): back to cycles.
                backoff *= 2
                wait = backoff
                if not n_steps and (stalled or not progress):
                    message += (
                        "; Newton steps failed (the Hessian is not positive definite)"
                    )
                    break
            previous = np.inf
            continue
        previous = value
    return MissingResult(
        mean, factor, value, grad_norm, n_iter, grad_norm <= tol, message
    )
