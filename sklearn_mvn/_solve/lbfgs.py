"""The one quasi-Newton loop: L-BFGS-B on a box, with the package's safeguards.

Every model (the normal on statistics or patterns, the factor model, the
Student-t) is minimised by :func:`minimize_box` in coordinates its driver
chose (whitened by the representation); the driver only maps coordinates to
parameters and back. What the loop owns, once:

- the call of SciPy's L-BFGS-B and its stopping options (:func:`lbfgsb`);
- the record of the last evaluation and of the last accepted iterate, and the
  final point taken from them (re-evaluated only when it is neither), so
  that the value and gradient returned belong to the point returned;
- trial points where the objective is not finite (a step to a numerically
  singular scale): a finite stand-in that sends the line search back
  (``guard_nonfinite``);
- values below the objective's rounding: the value seen by the line search
  follows the trapezoidal integral of the gradient along the step when it
  agrees with the computed change (``gradient_model``), so the line search
  keeps working where computed values cannot resolve a step;
- the projected gradient norm on the box, the per-iteration ``record`` and an
  early ``stop`` (e.g. re-whitening when the whitening has drifted).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.optimize import minimize

# Relative agreement between the gradient's trapezoidal model of a step's
# change and the computed change, below which the model is what the line
# search sees (``gradient_model``).
_MODEL_AGREEMENT = 1e-8


def lbfgsb(fun, theta0, bounds, *, max_iter, tol, callback=None):
    """Minimise ``fun(theta) -> (value, grad)`` with SciPy's L-BFGS-B.

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


def projected_norm(x, grad, lower, upper=None, near=None):
    """Infinity norm of ``grad`` projected on the box ``[lower, upper]``.

    An entry at (or, with ``near``, within ``near`` of) its lower bound with a
    positive gradient, or at its upper bound with a negative one, counts 0.
    """
    at_lower = x <= (lower if near is None else lower + near)
    proj = np.where(at_lower & (grad > 0), 0.0, grad)
    if upper is not None:
        proj = np.where((x >= upper) & (proj < 0), 0.0, proj)
    return float(np.max(np.abs(proj))) if proj.size else 0.0


class BoxResult:
    """Outcome of :func:`minimize_box`.

    Attributes
    ----------
    x, grad : ndarray
        The point returned and the gradient there.
    value : float
        The computed objective at ``x``.
    norm : float
        Projected gradient norm at ``x`` (``norm_of``).
    n_iter, n_fev : int
        Iterations and evaluations.
    status : int
        0 converged, 1 iteration limit, 2 the line search failed, 3 stopped
        by ``stop``.
    message : str
    iterates : list of (ndarray, ndarray)
        ``(x, grad)`` of the start and every accepted iterate (only with
        ``keep_iterates``).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)


def minimize_box(
    fun,
    x0,
    lower,
    upper=None,
    *,
    max_iter,
    tol,
    record=None,
    stop=None,
    norm_of=None,
    near=None,
    guard_nonfinite=False,
    gradient_model=False,
    keep_iterates=False,
    first=None,
):
    """Minimise ``fun(x) -> (value, grad)`` over the box ``lower <= x <= upper``.

    Parameters
    ----------
    fun : callable
        Value and gradient in the optimiser's coordinates.
    x0 : ndarray
        Feasible start.
    lower, upper : ndarray
        Bounds (``-inf``/``inf`` or ``None`` for none).
    max_iter : int
        L-BFGS-B iterations at most (at least 1 is run).
    tol : float
        L-BFGS-B's tolerance on the projected gradient in these coordinates.
    record : callable, default=None
        ``record(value, norm)`` at every accepted iterate.
    stop : callable, default=None
        ``stop(x) -> bool`` at every accepted iterate; True ends the run with
        status 3.
    norm_of : callable, default=None
        ``norm_of(x, grad)``: the norm recorded and returned (default: the
        projected norm on the box, with ``near``).
    near : ndarray, default=None
        Distances within which an entry counts as on its lower bound.
    guard_nonfinite : bool, default=False
        A trial point whose value or gradient is not finite, or where ``fun``
        raises ``ValueError``/``LinAlgError``, gets a finite stand-in that
        sends the line search back (the start must be finite).
    gradient_model : bool, default=False
        Values seen by the line search follow the gradient's trapezoidal model
        of each step when it agrees with the computed change (see the module
        docstring); the value returned is always the computed one.
    keep_iterates : bool, default=False
        Keep ``(x, grad)`` of the start and every accepted iterate.
    first : tuple of (float, ndarray), default=None
        The value and gradient at ``x0`` if the caller has them (not
        evaluated again).

    Returns
    -------
    result : BoxResult
    """
    x0 = np.asarray(x0, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    upper = None if upper is None else np.asarray(upper, dtype=np.float64)
    if norm_of is None:

        def norm_of(x, grad):
            return projected_norm(x, grad, lower, upper, near)

    # The last evaluation and the last accepted iterate, as (x, computed
    # value, grad, value seen by L-BFGS-B): only these (a record of every
    # evaluation would grow with the run).
    state = {"last": None, "accepted": None, "n_fev": 0, "origin": None}
    iterates = []
    stopped = []

    def standin(x):
        # Back towards the last accepted point: a value above it and a
        # gradient along the step, so the line search shortens the step.
        x_acc, _, g_acc, seen_acc = state["accepted"]
        step = x - x_acc
        slope = float(g_acc @ step)
        norm2 = float(step @ step)
        correction = (3.0 * abs(slope) - slope) / max(norm2, 1e-300)
        return seen_acc + abs(slope), g_acc + correction * step

    def wrapped(x):
        last = state["last"]
        if last is not None and np.array_equal(x, last[0]):
            return last[3], last[2]  # asked again (the start, a final point)
        if guard_nonfinite and state["accepted"] is not None:
            try:
                with np.errstate(all="ignore"):
                    value, grad = fun(x)
            except (ValueError, np.linalg.LinAlgError):
                return standin(x)
            if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                return standin(x)
        else:
            value, grad = fun(x)
        value = float(value)
        grad = np.asarray(grad, dtype=np.float64)
        state["n_fev"] += 1
        seen = value
        if gradient_model:
            # Values relative to the start, so that small decreases are not
            # lost to the resolution of a large value.
            if state["origin"] is None:
                state["origin"] = value
            seen = value - state["origin"]
            accepted = state["accepted"]
            if accepted is not None:
                model = 0.5 * float((accepted[2] + grad) @ (x - accepted[0]))
                computed = value - accepted[1]
                agree = abs(computed - model) <= _MODEL_AGREEMENT * max(abs(value), 1.0)
                seen = accepted[3] + (model if agree else computed)
        point = (x.copy(), value, grad, seen)
        state["last"] = point
        if state["accepted"] is None:
            state["accepted"] = point  # the starting point
        return seen, grad

    def callback(x):
        last = state["last"]
        if last is None or not np.array_equal(x, last[0]):
            wrapped(x)
            last = state["last"]
        state["accepted"] = last
        if keep_iterates:
            iterates.append((last[0], last[2]))
        if record is not None:
            record(last[1], norm_of(last[0], last[2]))
        if stop is not None and stop(last[0]):
            stopped.append(True)
            raise StopIteration

    if first is None:
        wrapped(x0)
    else:
        value0, grad0 = float(first[0]), np.asarray(first[1], dtype=np.float64)
        seen0 = 0.0 if gradient_model else value0
        state["origin"] = value0
        state["last"] = state["accepted"] = (x0.copy(), value0, grad0, seen0)
    if keep_iterates:
        iterates.append((x0.copy(), state["last"][2]))
    bounds = [
        (
            None if np.isinf(lo) else lo,
            None if upper is None or np.isinf(upper[i]) else upper[i],
        )
        for i, lo in enumerate(lower)
    ]
    res = lbfgsb(wrapped, x0, bounds, max_iter=max_iter, tol=tol, callback=callback)
    # The point returned and its gradient (after an abnormal line search
    # ``res.jac`` may belong to a rejected trial point); evaluated again only
    # if it is neither the last evaluation nor the last iterate.
    point = None
    for store in (state["last"], state["accepted"]):
        if store is not None and np.array_equal(res.x, store[0]):
            point = store
            break
    if point is None:
        wrapped(res.x)
        point = state["last"]
    x, value, grad, _ = point
    status = 3 if stopped else min(int(res.status), 2)
    message = (
        "stopped to re-whiten (the whitening drifted)" if stopped else str(res.message)
    )
    return BoxResult(
        x=x,
        value=float(value),
        grad=grad,
        norm=norm_of(x, grad),
        n_iter=int(res.nit),
        n_fev=state["n_fev"],
        status=status,
        message=message,
        iterates=iterates,
    )
