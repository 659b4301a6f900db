"""Newton steps without objective values, for inexact objectives.

When the objective's rounding error hides the decrease a step predicts (the
missing-value likelihood on ill-conditioned data), the gradient is still
accurate: Newton steps from differences of gradients (conjugate gradients, or
a dense Hessian for few parameters), accepted by the gradient below the
objective's measured rounding (:func:`_value_noise`).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._linalg import multiply_lower

_EPS = np.finfo(np.float64).eps

# Newton steps at most per attempt.
_NEWTON_STEPS = 10


# Up to this many free parameters the Hessian is formed densely near the
# optimum (as many evaluations as conjugate gradients may need, and exact
# however ill-conditioned); above, or farther away, conjugate gradients.
_DENSE_MAX = 64


# Steps of the differences of the gradient (whitened units). Forward: error
# ~h + noise / h, about 1e-8 relative, but the gradient's rounding noise
# (~1e-14) divided by h swamps the curvature of a flat direction. Central:
# error ~h^2 + noise / h, about 1e-9 absolute.
_FD_STEP = 1e-8


_FD_STEP_CENTRAL = 1e-5


# Central differences (and the dense Hessian) once the gradient is below this.
_CENTRAL_BELOW = 1e-4


# Curvature (relative to the largest, or to 1) that central differences, with
# entries accurate to about 1e-9, cannot tell from 0.
_NULL_CURVATURE = 1e-6


class _Whitened:
    """The objective as a function of ``x = (u, packed T)``, whitened at
    ``(mean, factor)``: ``x0 = (0, I)`` is that point."""

    def __init__(self, objective, representation, mean, factor):
        self.rep = representation
        self.d = mean.shape[0]
        self.evaluate = objective.whitened(mean, factor)
        self.x0 = np.concatenate(
            [np.zeros(self.d), representation.pack(np.eye(self.d))]
        )
        self.n_eval = 0

    def unpack(self, x):
        return x[: self.d], self.rep.unpack(x[self.d :])

    def __call__(self, x):
        self.n_eval += 1
        value, grad_u, grad_t = self.evaluate(*self.unpack(x))
        return value, np.concatenate([grad_u, self.rep.restrict_grad(grad_t)])

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


def _value_noise(w, value):
    """Rounding error of the objective's values near ``w.x0`` (``value``).

    Second differences ``J(x0 + h) + J(x0 - h) - 2 J(x0)`` along random
    sign vectors with entries ``1e-9``: the curvature term (about ``1e-18``
    per free parameter) is far below any rounding error, so what is left is
    the noise (four evaluations).
    """
    rng = np.random.RandomState(0)
    noise = _EPS * max(1.0, abs(value))
    for _ in range(2):
        h = 1e-9 * np.where(rng.rand(w.x0.size) < 0.5, -1.0, 1.0)
        second = w(w.x0 + h)[0] + w(w.x0 - h)[0] - 2.0 * value
        if np.isfinite(second):
            noise = max(noise, 0.5 * abs(second))
    return noise


def _dense_step(w, grad, tol):
    """Newton step from the Hessian formed column by column; None if it is not
    positive semi-definite.

    Eigenvalues within the differences' accuracy of 0 (``_NULL_CURVATURE``
    times the largest) are a null space: directions along which the
    likelihood is flat (a covariance the data do not determine). The step is
    taken in the complement (the minimum-norm Newton step) when the gradient
    along the null space is already within ``tol``; otherwise, or on a clearly
    negative eigenvalue, there is no minimum to step to.
    """
    p = grad.size
    hess = np.column_stack([w.hessian_vector(e, grad) for e in np.eye(p)])
    eigval, eigvec = np.linalg.eigh(0.5 * (hess + hess.T))
    null = _NULL_CURVATURE * max(eigval[-1], 1.0)
    if not eigval[0] > -null:
        return None
    coef = eigvec.T @ grad
    flat = eigval <= null
    if np.linalg.norm(coef[flat]) > tol:
        return None
    return -(eigvec[:, ~flat] @ (coef[~flat] / eigval[~flat]))


def _cg_step(w, grad, tol, max_iter):
    """Newton step by conjugate gradients on Hessian-vector products; None on
    a direction of negative curvature.

    The relative residual sought is ``|g|`` (quadratic convergence), or
    ``0.1 tol / |g|`` if larger (enough for the next gradient to meet
    ``tol``), within ``[1e-6, 0.1]`` (the products are accurate to about
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
            # Not positive definite: far from a minimum, or none exists.
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


def newton_steps(
    objective, representation, mean, factor, tol, max_steps=_NEWTON_STEPS, record=None
):
    """Newton steps from ``(mean, factor)`` until the whitened gradient's
    largest entry is at most ``tol``.

    Near the optimum of an inexact objective the decrease along a step (of the
    order of the squared gradient) falls below the rounding error of the
    objective (about ``eps |J|``), so a line search on values stalls while
    the gradient, computed to near machine precision, is still above ``tol``.
    Newton steps need no values there. Each works in coordinates whitened at
    the current point and solves ``H s = -g``: with the Hessian formed by
    central differences of the gradient (few parameters, near the optimum),
    else by conjugate gradients on Hessian-vector products (one or two
    gradients each). A step of at most 0.5 per whitened entry is accepted when
    it decreases the objective by half the predicted amount or, when that
    amount is below the objective's resolution, when the gradient shrinks;
    otherwise it is halved (at most 8 times). The resolution is the larger of
    ``1e3 eps |J|`` and ten times the rounding error of the values measured
    near the point (:func:`_value_noise`, only when needed): the E-step goes
    through the precision ``S^{-1}``, so its rounding error grows with the
    condition number of the covariance (about ``1e-8`` per sample at
    ``1e9``), while the gradient stays accurate far below the decrease.
    Their convergence is quadratic whatever the fraction of missing
    information, which is what slows EM and first-order methods down. On a
    Hessian that is not positive definite (far from the optimum, or an
    unbounded likelihood) they stop.

    Parameters
    ----------
    objective : objective (see :mod:`._likelihoods`)
    representation : covariance representation
    mean, factor : ndarray
        Starting point, in the objective's coordinates.
    tol : float
    max_steps : int
    record : callable, default=None
        ``record(value, grad_norm)`` after every accepted step (value in the
        objective's coordinates).

    Returns
    -------
    mean, factor : ndarray
        The last accepted point.
    value : float
        The objective there (objective's coordinates).
    grad_norm : float
        Largest entry of its whitened gradient.
    n_steps : int
        Accepted steps.
    """
    rep = representation
    n_steps = 0
    noise = None
    while True:
        w = _Whitened(objective, rep, mean, factor)
        value, grad = w(w.x0)
        grad_norm = float(np.max(np.abs(grad)))
        if grad_norm <= tol or n_steps >= max_steps or not np.isfinite(value):
            break
        if grad.size <= _DENSE_MAX and grad_norm <= _CENTRAL_BELOW:
            step = _dense_step(w, grad, tol)
        else:
            step = _cg_step(w, grad, tol, max_iter=grad.size)
        if step is None:
            break
        # Well inside the domain (T's diagonal positive): whitened steps of at
        # most 0.5 per entry.
        alpha = min(1.0, 0.5 / max(float(np.max(np.abs(step))), _EPS))
        predicted = -0.5 * alpha * float(grad @ step)
        floor = 1e3 * _EPS * max(1.0, abs(value))
        for _ in range(8):
            value1, grad1 = w(w.x0 + alpha * step)
            norm1 = float(np.max(np.abs(grad1)))
            if np.isfinite(value1):
                if predicted > floor and value1 <= value - 0.5 * predicted:
                    break
                if norm1 < grad_norm:
                    if predicted <= floor:
                        break
                    # The rounding error of the values grows with the
                    # condition number of the covariance (the E-step goes
                    # through the precision): a decrease within it says
                    # nothing, and the gradient, accurate far below the
                    # decrease, decides.
                    if noise is None:
                        noise = _value_noise(w, value)
                    if predicted <= 10.0 * noise:
                        break
            alpha *= 0.5
            predicted *= 0.5
        else:
            break
        u, t = w.unpack(w.x0 + alpha * step)
        offset = objective.weight * float(np.sum(np.log(np.diag(factor))))
        mean = mean + factor @ u
        factor = rep.project(multiply_lower(factor, t))
        n_steps += 1
        if record is not None:
            record(value1 + offset, norm1)
    value = float(objective(mean, factor)[0])
    return mean, factor, value, grad_norm, n_steps
