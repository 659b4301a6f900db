"""The solver: objective + representation + start -> one result.

Plain functions, no estimator. :func:`solve` runs cycles of preconditioned
L-BFGS-B. Each cycle works in coordinates whitened at its starting point,

    mean = shift + chol @ u,    factor = chol @ T,

where ``chol chol^T`` is that point's covariance restricted to the
representation's structure (the pilot for the first cycle), so the problem is
close to isotropic whatever the scales and correlations of the data and the
iteration count does not depend on them. For exact objectives (complete-data
statistics) one cycle normally suffices (the pilot is the optimum); inexact
ones (missing values) are re-whitened every ``_CYCLE_ITER`` iterations, or
as soon as a diagonal entry of the whitened factor leaves ``[1/2, 2]`` (far
from the whitening point, e.g. from a pilot whose spectrum was clipped on
strongly correlated data), continue a line search stalled at their round-off
floor with value-free quasi-Newton steps (:func:`_gradient_steps`), and
switch to Newton steps (:func:`newton_steps`) when a cycle is slow, stalls at
that floor or stops decreasing the objective. The free parameters are scaled so that the
complete-data Hessian is the identity (:func:`_unit_curvature`).

Each concern lives in one place: the start point (pilot, warm start, or the
better of the two for ``partial_fit``) in :func:`_start`, the convergence rule
in :func:`_verdict`, progress output in :class:`Progress`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import time

import numpy as np

from .._linalg import multiply_lower, solve_lower
from .lbfgs import minimize_box, projected_norm
from .newton import _NEWTON_STEPS, newton_steps

_EPS = np.finfo(np.float64).eps
# L-BFGS-B iterations between re-whitenings of an inexact objective.
_CYCLE_ITER = 30
# A cycle that shrinks the gradient by less than this factor is slow: Newton
# steps are tried next (inexact objectives).
_SLOW = 1e-2
# A cycle of an inexact objective ends (and the next one re-whitens) once a
# diagonal entry of the whitened factor leaves [1 / _DRIFT, _DRIFT].
_DRIFT = 2.0
# Inexact objectives start with EM steps while the whitened gradient is above
# _EM_UNTIL (far from the optimum, where the complete-data model of L-BFGS-B
# is poor) and each step shrinks it by at least _EM_SLOW; at most _EM_STEPS.
_EM_UNTIL = 0.05
_EM_SLOW = 0.9
_EM_STEPS = 10
# Curvature condition of a value-free quasi-Newton step (strong Wolfe).
_WOLFE = 0.9


class SolveResult:
    """Outcome of :func:`solve`, in the user's units.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
    factor : ndarray
        The representation's factor.
    objective : float
        The minimised objective (the estimator's ``objective_``).
    grad_norm : float
        Largest entry of the projected gradient in whitened coordinates.
    n_iter : int
        Iterations over all phases: EM steps (inexact objectives), L-BFGS-B
        cycles, value-free and Newton steps.
    converged : bool
    message : str
        Why the solver stopped.
    history : list of tuple of (float, float)
        Objective (scale of ``objective``) and gradient norm at the start and
        after every iteration.
    """

    def __init__(self, mean, factor, objective, grad_norm, n_iter, converged, message):
        self.mean = mean
        self.factor = factor
        self.objective = float(objective)
        self.grad_norm = float(grad_norm)
        self.n_iter = int(n_iter)
        self.converged = bool(converged)
        self.message = message
        self.history = []


class Progress:
    """``verbose`` output: one line per iteration, phases, a summary.

    Iterations are numbered across cycles; objective values are on the scale
    of ``objective_``.
    """

    def __init__(self, verbose, name):
        self.verbose = verbose
        self.name = name
        self.history = []
        self.iteration = 0
        self._start = time.perf_counter()

    def phase(self, label):
        if self.verbose:
            print(f"-- {label} (after iteration {self.iteration})")

    def record(self, value, grad_norm, step=True):
        self.iteration += int(step)
        self.history.append((float(value), float(grad_norm)))
        if self.verbose:
            print(
                f"Iteration {self.iteration}: objective = {value:.12g}, "
                f"|grad| = {grad_norm:.3e}"
            )

    def summary(self, result):
        if self.verbose:
            state = "converged" if result.converged else "did not converge"
            print(
                f"{self.name} {state}: {result.n_iter} iterations, "
                f"objective = {result.objective:.12g}, "
                f"|grad| = {result.grad_norm:.3e}, "
                f"{time.perf_counter() - self._start:.3f} s ({result.message})"
            )


# ---------------------------------------------------------------------------
# One cycle: L-BFGS-B in whitened coordinates
# ---------------------------------------------------------------------------


def _projected_norm(representation, theta, grad):
    """Infinity norm of the gradient projected on the representation's box."""
    n_features = theta.size - representation.n_theta
    lower = np.r_[np.full(n_features, -np.inf), representation.lower_bounds()]
    return projected_norm(theta, grad, lower)


def _unit_curvature(representation, n_features):
    """Scales that give the whitened problem unit complete-data curvature.

    At the whitening point (``u = 0``, ``T = I``) of a complete-data
    objective at its optimum, the Hessian of the negative log-likelihood per
    unit weight is diagonal in ``(u, packed T)``: 1 for the mean and an
    off-diagonal entry of ``T``, 2 for a diagonal entry of ``T`` (``1/t^2``
    from ``log|T|`` and ``3/t^4 - 2/t^2`` from ``tr(T^{-T} T^{-1})`` per unit
    of each), and ``2 d`` for the one parameter of ``T = t I``. L-BFGS-B
    starts from a multiple of the identity, so it works in ``x`` with
    ``theta = scale * x``, where that Hessian is the identity; with missing
    values the remaining curvature is the fraction of observed information,
    which is what the iterations have to learn.
    """
    scale = np.ones(n_features + representation.n_theta)
    diag = n_features + representation.diag_positions
    if representation.covariance_type == "spherical":
        scale[diag] = 1.0 / np.sqrt(2.0 * n_features)
    else:
        scale[diag] = 1.0 / np.sqrt(2.0)
    return scale


def _noise_floor(value):
    """Gradient below which an inexact objective's line search cannot resolve
    the decrease it asks for (about the square root of its rounding error)."""
    return 10.0 * np.sqrt(_EPS * max(1.0, abs(value)))


def _two_loop(grad, pairs):
    """``-H grad`` for the L-BFGS inverse Hessian ``H`` of the ``(s, y)``
    pairs (oldest first), scaled by ``s.y / y.y`` of the newest."""
    q = grad.copy()
    alphas = []
    for s, y in reversed(pairs):
        alpha = float(s @ q) / float(s @ y)
        q -= alpha * y
        alphas.append(alpha)
    s, y = pairs[-1]
    q *= float(s @ y) / float(y @ y)
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        q += (alpha - float(y @ q) / float(s @ y)) * s
    return -q


def _gradient_steps(fun, iterates, lower, norm_of, tol, max_steps, record):
    """Quasi-Newton steps that need no objective values (inexact objectives).

    When L-BFGS-B's line search stalls because the decrease it seeks is below
    the objective's rounding error, the gradient is still accurate. From the
    curvature pairs of the accepted iterates (``iterates``: ``(x, grad)``,
    oldest first), full L-BFGS steps are taken while each stays feasible and
    shrinks the gradient (largest entry, ``norm_of``), as Newton steps do
    below the objective's resolution, or meets the strong Wolfe curvature
    condition ``|g_new . s| <= _WOLFE |g . s|`` along the step ``s`` (near the
    optimum, where the objective is close to quadratic, this implies a
    decrease; the largest entry of an L-BFGS gradient need not shrink at
    every step). A rejected step that overshot (the slope along it changed
    sign) is retried once at the zero of the slope's secant, the minimum of
    the quadratic model along the step. Returns the last accepted ``(x,
    value, grad, norm)`` and the number of steps, or None if no step was
    accepted.
    """

    def trial(x, grad, norm, direction):
        # Value, gradient and norm at x + direction, and whether accepted.
        x_new = x + direction
        if np.any(x_new < lower):
            return x_new, None, None, None, False
        value, grad_new = fun(x_new)
        norm_new = norm_of(x_new, grad_new)
        slope = float(grad @ direction)
        wolfe = slope < 0.0 and abs(float(grad_new @ direction)) <= _WOLFE * abs(slope)
        ok = bool(np.isfinite(value)) and (norm_new < norm or wolfe)
        return x_new, value, grad_new, norm_new, ok

    pairs = []
    for (x0, g0), (x1, g1) in zip(iterates[:-1], iterates[1:], strict=True):
        s, y = x1 - x0, g1 - g0
        if float(s @ y) > 0.0:
            pairs.append((s, y))
    if not pairs:
        return None
    x, grad = iterates[-1]
    norm = norm_of(x, grad)
    best, n_steps = None, 0
    while n_steps < max_steps and norm > tol:
        direction = _two_loop(grad, pairs[-20:])
        x_new, value, grad_new, norm_new, ok = trial(x, grad, norm, direction)
        if not ok and grad_new is not None and np.isfinite(value):
            slope0, slope1 = float(grad @ direction), float(grad_new @ direction)
            if slope0 < 0.0 < slope1:
                alpha = slope0 / (slope0 - slope1)
                x_new, value, grad_new, norm_new, ok = trial(
                    x, grad, norm, alpha * direction
                )
        if not ok:
            break
        s, y = x_new - x, grad_new - grad
        if float(s @ y) > 0.0:
            pairs.append((s, y))
        x, grad, norm = x_new, grad_new, norm_new
        best, n_steps = (x, value, grad, norm), n_steps + 1
        if record is not None:
            record(value, norm)
    return None if best is None else (*best, n_steps)


def minimize_whitened(
    evaluate,
    representation,
    mean0,
    factor0,
    *,
    max_iter,
    tol,
    record=None,
    record_start=None,
    finish=False,
    drift=None,
):
    """Minimise ``evaluate(mean, factor)`` over the representation with L-BFGS-B.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(mean, factor) -> (value, grad_mean, grad_factor)``.
    representation : covariance representation
        Which entries of the factor are free, and their bounds.
    mean0, factor0 : ndarray
        Starting point; ``factor0`` is projected on the structure.
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    tol : float
        Stop when the largest entry of the projected gradient is at most tol.
    record : callable, default=None
        ``record(value, grad_norm)`` after every iteration.
    record_start : callable, default=None
        ``record_start(value, grad_norm)`` at the starting point.
    finish : bool, default=False
        For inexact objectives: stop (status 0) as soon as the gradient is
        within ``tol``; when it is below the objective's noise floor, or when
        L-BFGS-B stops before its iteration limit with a gradient above
        ``tol`` but below that floor (its line search found no decrease
        within the rounding error), continue with value-free quasi-Newton
        steps (:func:`_gradient_steps`) within the iteration budget.
    drift : float, default=None
        Stop (status 3) after the first iteration at which a diagonal entry
        of the whitened factor ``T`` leaves ``[1 / drift, drift]``: the
        whitening no longer describes the current point, and the caller
        re-whitens there.

    Returns
    -------
    mean, factor : ndarray
    value, grad_norm : float
    n_iter : int
    status : int
        0 converged, 1 iteration limit, 2 the line search failed, 3 the
        iterate drifted beyond ``drift`` (re-whiten).
    message : str
    """
    d = mean0.shape[0]
    rep = representation
    scale = _unit_curvature(rep, d)

    def fun_scaled(x):
        theta = scale * x
        value, grad_mean, grad_factor = evaluate(theta[:d], rep.unpack(theta[d:]))
        return value, scale * np.concatenate(
            [grad_mean, rep.restrict_grad(grad_factor)]
        )

    def norm_of(x, grad_scaled):
        return _projected_norm(rep, scale * x, grad_scaled / scale)

    diag = d + rep.diag_positions
    last, why = {"n": 0}, []

    def record_last(value, norm):
        last["value"], last["norm"], last["n"] = value, norm, last["n"] + 1
        if record is not None:
            record(value, norm)

    def stop(x):
        # Inexact objectives: stop as soon as the unscaled gradient meets tol
        # (L-BFGS-B tests the scaled one, against tol * min(scale), and may go
        # on with line searches below the objective's resolution), and hand
        # over to value-free steps once it is below the noise floor.
        if (
            finish
            and last["n"] < max_iter
            and last["norm"] <= _noise_floor(last["value"])
        ):
            why.append("floor")
            return True
        if drift is not None and bool(
            np.any(np.abs(np.log(scale[diag] * x[diag])) > np.log(drift))
        ):
            why.append("drift")
            return True
        return False

    lower = np.r_[np.full(d, -np.inf), rep.lower_bounds()]
    theta0 = np.maximum(np.concatenate([mean0, rep.pack(factor0)]), lower)
    value0, grad0 = fun_scaled(theta0 / scale)
    grad0 = grad0 / scale
    norm0 = _projected_norm(rep, theta0, grad0)
    if record_start is not None:
        record_start(value0, norm0)
    if norm0 <= tol:
        theta, value, grad, n_iter, status = theta0, value0, grad0, 0, 0
        message = "the starting point satisfies the tolerance"
    elif max_iter == 0:
        theta, value, grad, n_iter, status = theta0, value0, grad0, 0, 1
        message = "max_iter = 0"
    else:
        # A scaled gradient within tol * min(scale) is within tol unscaled.
        res = minimize_box(
            fun_scaled,
            theta0 / scale,
            lower / scale,
            max_iter=max_iter,
            tol=tol * float(np.min(scale)),
            record=record_last,
            stop=stop,
            norm_of=norm_of,
            keep_iterates=finish,
            first=(value0, scale * grad0),
        )
        theta, value, n_iter = scale * res.x, res.value, res.n_iter
        grad, message, status = res.grad / scale, res.message, res.status
        if why == ["floor"]:
            status, message = 2, "stopped at the objective's noise floor"
        if finish and _projected_norm(rep, theta, grad) <= tol:
            status = 0
        if (
            finish
            and status in (0, 2)
            and n_iter < max_iter
            and tol < _projected_norm(rep, theta, grad) <= _noise_floor(value)
        ):
            steps = _gradient_steps(
                fun_scaled,
                res.iterates,
                lower / scale,
                norm_of,
                tol,
                max_iter - n_iter,
                record,
            )
            if steps is not None:
                x, value, grad_scaled, norm, n_steps = steps
                theta, grad = scale * x, grad_scaled / scale
                n_iter += n_steps
                message += f"; then {n_steps} value-free L-BFGS steps"
                if norm <= tol:
                    status = 0
                elif n_iter >= max_iter:
                    # Still progressing when the budget ran out: not a stall.
                    status = 1
    return (
        theta[:d].copy(),
        rep.unpack(theta[d:]),
        float(value),
        _projected_norm(rep, theta, grad),
        n_iter,
        status,
        message,
        (value0, norm0),
    )


# ---------------------------------------------------------------------------
# The convergence rule, the start point
# ---------------------------------------------------------------------------


def _verdict(grad_norm, tol, *, stalled, floor):
    """``'converged'``, ``'floor'`` or ``'short'``: the one convergence rule.

    Converged when the largest whitened gradient entry is at most ``tol``.
    When the line search stalls (it cannot decrease the objective within
    floating-point resolution), a gradient within ``floor`` (the objective's
    noise floor) is ``'floor'``: at the optimum to working precision. Anything
    else is short of the optimum.
    """
    if grad_norm <= tol:
        return "converged"
    if stalled and grad_norm <= floor:
        return "floor"
    return "short"


def _start(objective, representation, pilot, start, compare_pilot):
    """The starting mean and covariance, in the objective's coordinates.

    The ``pilot``; or ``start`` (a previous solution, as mean and covariance
    in the user's units), or, with ``compare_pilot``, the better of the two.
    """
    if start is None:
        return pilot
    previous = objective.internal(*start)
    if not compare_pilot:
        return previous

    def value(point):
        mean, covariance = point
        factor = representation.preconditioner(
            covariance, mean, objective.n_samples, objective.regularised
        )
        return objective(mean, factor)[0]

    return pilot if value(pilot) < value(previous) else previous


def _em_steps(objective, representation, mean, covariance, tol, max_steps, progress):
    """EM steps from ``(mean, covariance)`` while they are fast (inexact
    objectives).

    Far from the optimum (e.g. from the pairwise pilot of strongly
    correlated data, whose clipped spectrum misstates the small variances by
    orders of magnitude) the whitened problem is far from its complete-data
    model, and L-BFGS-B, whose first steps have unit length and whose
    whitening soon drifts, needs many iterations and line-search
    evaluations to get close. An EM step costs one E-step, needs no line
    search, never increases the objective and is affine equivariant: in
    coordinates whitened at the current point it is the step of unit
    complete-data curvature, re-whitened at every step. Steps are taken while
    the whitened gradient at the current point is above ``_EM_UNTIL`` and the
    last step shrank it by at least ``_EM_SLOW`` (then EM has reached its
    linear rate, the fraction of missing information, and L-BFGS-B is faster),
    at most ``max_steps``. Each point is recorded (the start without counting
    an iteration).

    Returns
    -------
    mean, covariance : ndarray
        The last point; its E-step is the objective's cached one.
    n_steps : int
    """
    rep = representation
    d = mean.shape[0]
    point, previous = None, np.inf
    for n_steps in range(max_steps + 1):
        try:
            factor = rep.preconditioner(
                covariance, mean, objective.n_samples, objective.regularised
            )
        except (ValueError, np.linalg.LinAlgError):
            if point is None:
                raise
            # The last step's covariance is singular: keep the point before.
            return (*point, n_steps - 1)
        value, grad_u, grad_t = objective.whitened(mean, factor)(np.zeros(d), np.eye(d))
        if point is not None and not np.isfinite(value):
            return (*point, n_steps - 1)
        grad_norm = float(
            np.max(np.abs(np.concatenate([grad_u, rep.restrict_grad(grad_t)])))
        )
        offset = objective.weight * float(np.sum(np.log(np.diag(factor))))
        progress.record(value + offset + objective.constant, grad_norm, n_steps > 0)
        point = (mean, covariance)
        if (
            n_steps == max_steps
            or not np.isfinite(value)
            or grad_norm <= max(tol, _EM_UNTIL)
            or grad_norm > _EM_SLOW * previous
        ):
            break
        previous = grad_norm
        mean, covariance = objective.em_update(mean, factor)
    return mean, covariance, n_steps


# ---------------------------------------------------------------------------
# Newton steps without objective values (inexact objectives)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# The solver
# ---------------------------------------------------------------------------


def solve(
    objective,
    representation,
    *,
    start=None,
    compare_pilot=False,
    max_iter=200,
    tol=1e-8,
    verbose=0,
    name="GradientGaussian",
):
    """Minimise an objective over a covariance representation.

    Parameters
    ----------
    objective : objective (see :mod:`._likelihoods`)
    representation : covariance representation
    start : tuple of (ndarray, ndarray), default=None
        A previous solution as mean and covariance in the user's units.
    compare_pilot : bool, default=False
        Start from the better of ``start`` and the pilot (``partial_fit``).
    max_iter : int, default=200
        L-BFGS-B iterations over all cycles.
    tol : float, default=1e-8
        Largest whitened gradient entry at convergence.
    verbose : int, default=0
        Print progress (see :class:`Progress`).
    name : str, default="GradientGaussian"
        Estimator name for the summary line.

    Returns
    -------
    result : SolveResult
    """
    rep = representation
    progress = Progress(verbose, name)
    n_samples = objective.n_samples
    # The pilot's preconditioner checks that the data determine a covariance.
    pilot = objective.pilot()
    pilot_mean, pilot_cov = pilot
    pilot_chol = rep.preconditioner(
        pilot_cov, pilot_mean, n_samples, objective.regularised
    )
    start_mean, start_cov = _start(objective, rep, pilot, start, compare_pilot)
    cycle_iter = max_iter if objective.exact else _CYCLE_ITER
    n_iter, previous, cycle = 0, np.inf, 0
    if not objective.exact:
        # EM steps first while they are fast; they record the start.
        start_mean, start_cov, n_iter = _em_steps(
            objective,
            rep,
            start_mean,
            start_cov,
            tol,
            min(_EM_STEPS, max_iter),
            progress,
        )
    wait, backoff = 0, 1
    # The first cycle is whitened at the pilot for exact objectives (where the
    # pilot is the optimum, so the problem is isotropic there) and at the
    # starting point for inexact ones; later cycles at the current estimate.
    factor = None
    if objective.exact or start_cov is pilot_cov:
        mean, covariance, chol = pilot_mean, pilot_cov, pilot_chol
    else:
        mean, covariance, chol = start_mean, start_cov, None
    while True:
        if chol is None:
            try:
                chol = rep.preconditioner(
                    covariance, mean, n_samples, objective.regularised
                )
            except (ValueError, np.linalg.LinAlgError):
                if cycle == 0:
                    raise
                break
            if cycle > 0:
                progress.phase(f"re-whitened at the current estimate (cycle {cycle})")
                if not objective.exact:
                    # The current factor whitens as well as the Cholesky
                    # factor of its covariance and, unlike it, makes the
                    # cycle's first point bitwise the last point evaluated,
                    # which the objective's cache answers without an E-step.
                    chol = factor
        if cycle == 0 and start_cov is not covariance:
            u0 = solve_lower(chol, start_mean - mean)
            start_chol = rep.preconditioner(
                start_cov, start_mean, n_samples, objective.regularised
            )
            t0 = np.tril(solve_lower(chol, start_chol))
        else:
            u0, t0 = np.zeros_like(mean), np.eye(mean.shape[0])
        offset = objective.weight * float(np.sum(np.log(np.diag(chol))))
        offset += objective.constant

        def record(value, grad_norm, offset=offset):
            progress.record(value + offset, grad_norm)

        def record_start(
            value, grad_norm, offset=offset, first=cycle == 0 and objective.exact
        ):
            if first:
                progress.record(value + offset, grad_norm, step=False)

        u, t, value, grad_norm, steps, status, message, first = minimize_whitened(
            objective.whitened(mean, chol),
            rep,
            u0,
            rep.project(t0),
            max_iter=min(max_iter - n_iter, cycle_iter),
            tol=tol,
            record=record,
            record_start=record_start,
            finish=not objective.exact,
            drift=None if objective.exact else _DRIFT,
        )
        n_iter += steps
        stalled = status not in (1, 3)
        floor = 100.0 * tol
        if not objective.exact:
            floor = _noise_floor(value)
        verdict = _verdict(grad_norm, tol, stalled=stalled, floor=floor)
        value += offset
        mean = mean + chol @ u
        factor = multiply_lower(chol, t)
        covariance = factor @ factor.T
        chol, cycle = None, cycle + 1
        decreased = value < previous
        previous = value
        if verdict == "converged" or n_iter >= max_iter:
            break
        if objective.exact:
            if verdict == "floor" or not decreased:
                break
            continue
        if status == 3 and decreased:
            # Far from the whitening point: re-whiten at once (the complete-
            # data curvature is the identity only near it).
            continue
        # Inexact objectives: Newton steps when the cycle stalled (e.g. at the
        # round-off floor), stopped decreasing the objective, or was slow.
        wait -= 1
        slow = grad_norm > _SLOW * first[1]
        if not (stalled or not decreased or (slow and wait <= 0)):
            continue
        progress.phase("Newton steps")

        def record(value, grad_norm):
            progress.record(value + objective.constant, grad_norm)

        new_mean, new_factor, new_value, new_norm, n_steps = newton_steps(
            objective,
            rep,
            mean,
            factor,
            tol,
            max_steps=min(_NEWTON_STEPS, max_iter - n_iter),
            record=record,
        )
        n_iter += n_steps
        if n_steps:
            mean, factor, grad_norm = new_mean, new_factor, new_norm
            value = new_value + objective.constant
            covariance = factor @ factor.T
            message = f"{n_steps} Newton steps"
            verdict = "converged" if grad_norm <= tol else "short"
        if verdict == "converged" or n_iter >= max_iter:
            break
        if n_steps < 2:
            # Not near a minimum yet, or none exists: back to cycles, and try
            # again after twice as many cycles as last time.
            backoff *= 2
            wait = backoff
            if not n_steps and (stalled or not decreased):
                message += (
                    "; Newton steps failed (the Hessian is not positive definite)"
                )
                break
        previous = np.inf
    # Exact objectives: a stall within 100 tol counts (see _verdict). Inexact
    # ones converge only by the gradient: Newton steps get it below tol.
    converged = verdict == "converged" or (objective.exact and verdict == "floor")
    mean, factor = objective.to_original(mean, factor)
    result = SolveResult(mean, factor, value, grad_norm, n_iter, converged, message)
    result.history = progress.history
    progress.summary(result)
    return result
