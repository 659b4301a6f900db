"""The factor model's fit: starts (probabilistic PCA from a randomised
subspace iteration, profile steps), L-BFGS-B cycles in standardised
coordinates, and restarts out of Heywood and weak-factor basins.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._representations.low_rank import (
    MIN_NOISE,
    LowRankPlusDiagonal,
    canonical_basis,
    canonical_rotation,
    heywood_features,
)
from .driver import Progress, SolveResult
from .lbfgs import minimize_box
from .starts import ppca_start, profile_start

# ---------------------------------------------------------------------------
# L-BFGS-B cycles in standardised coordinates
# ---------------------------------------------------------------------------


class _RootFactor:
    """A square factor ``T`` of ``W W^T + diag(psi)`` applied in O(d k).

    ``T = D^{1/2} (I + Q (G - I) Q^T)`` with ``D = diag(psi)``, ``V = D^{-1/2}
    W = Q Sigma R^T`` (thin SVD) and ``G = (I + Sigma^2)^{1/2}``, so that
    ``T T^T = D^{1/2} (I + V V^T) D^{1/2}``.
    """

    def __init__(self, components, noise_variance):
        self.root = np.sqrt(noise_variance)
        basis, sigma, _ = np.linalg.svd(
            components / self.root[:, np.newaxis], full_matrices=False
        )
        self.basis = basis
        self.gain = np.sqrt(1.0 + sigma**2)

    def _inner(self, vector, gain):
        coef = (gain - 1.0).reshape((-1,) + (1,) * (vector.ndim - 1))
        return vector + self.basis @ (coef * (self.basis.T @ vector))

    def _root(self, vector):
        return self.root if vector.ndim == 1 else self.root[:, np.newaxis]

    def apply(self, vector):
        """``T vector`` (a vector or the columns of a matrix)."""
        return self._root(vector) * self._inner(vector, self.gain)

    def apply_t(self, vector):
        """``T^T vector``."""
        return self._inner(self._root(vector) * vector, self.gain)

    def solve(self, vector):
        """``T^{-1} vector``."""
        return self._inner(vector / self._root(vector), 1.0 / self.gain)


def run_cycles(
    evaluate,
    weight,
    center,
    var,
    mu,
    W,
    psi,
    fit_mean,
    max_iter,
    tol,
    psi_lower,
    history=None,
    tail=None,
):
    """Preconditioned L-BFGS-B cycles from ``(mu, W, psi)`` (original units).

    Each cycle is preconditioned at the point where the previous one stopped
    (see :func:`_lbfgs_cycle`) and runs at most ``_CYCLE_ITER`` iterations;
    cycling stops at ``tol`` (``100 tol`` after a cycle that stopped on its
    own), at ``max_iter`` iterations in all, when a
    cycle does not decrease the objective, or after ``_MAX_CYCLES`` cycles
    that stopped short of the tolerance on their own.

    ``tail`` (e.g. the t's degrees of freedom) is an optional block of further
    parameters: an object with a ``value`` (updated in place to the value at
    the end) and ``coordinates()`` returning, for coordinates centred at
    ``value``, ``(size, unpack, gradient, lower, upper)``: ``unpack(theta)``
    the parameter, ``gradient(g, value)`` the gradient in the coordinates and
    their bounds. With a tail, ``evaluate(mu, W, psi, value)`` returns the
    tail's gradient fifth.

    Returns
    -------
    mu, W, psi, value, n_iter, grad_norm, message
    """
    n_iter = 0
    n_fev = 0
    value = None
    stops = 0
    psi = np.maximum(psi, psi_lower)
    while True:
        budget = min(max_iter - n_iter, _CYCLE_ITER)
        fun, nit, nfev, cycle_message, mu, W, psi, grad_norm = _lbfgs_cycle(
            evaluate,
            weight,
            center,
            var,
            mu,
            W,
            psi,
            fit_mean,
            budget,
            tol,
            psi_lower,
            history,
            tail,
        )
        n_iter += nit
        n_fev += nfev
        improved = value is None or fun < value - 1e-15 * abs(value)
        value = fun
        # A cycle that stopped before its budget (not converged) counts; a
        # gradient within 100 tol is accepted from such a cycle only (the
        # line search stalled at the objective's rounding).
        stopped = nit < budget
        stops += stopped
        if (
            grad_norm <= tol
            or (stopped and grad_norm <= 100 * tol)
            or n_iter >= max_iter
            or not improved
            or stops >= _MAX_CYCLES
        ):
            break
    message = f"{cycle_message} ({n_fev} evaluations)"
    return mu, W, psi, value, n_iter, grad_norm, message


# L-BFGS-B runs are preconditioned at the point the previous one stopped (the
# scalings of a Heywood feature change by orders of magnitude as its noise
# variance reaches the bound, and from a poor start all of them change): a
# run stops after this many iterations, and cycling ends after this many runs
# that stopped on their own short of the tolerance.
_CYCLE_ITER = 25
_MAX_CYCLES = 5


def _factor_scales(components, noise_variance):
    """Coordinates in which the Fisher information of ``(W, psi)`` is about one.

    Per sample, the Fisher information of ``W`` is ``tr(dW^T S^{-1} dW A)``
    plus a term of the same size, with ``A = W^T S^{-1} W = I - M^{-1}``; that
    of ``psi_j`` is ``p_j^2 / 2`` with ``p_j = (S^{-1})_jj`` (plus smaller
    couplings between features). So ``W = W_0 + T B A^{-1/2}``, with ``T`` a
    square factor of ``S_0`` (:class:`_RootFactor`, O(d k^2)), and ``psi_j =
    psi_0j + sqrt(2) / p_j tau_j`` have curvatures about one whatever the
    features' communalities and the factors' strengths; in particular the
    coherent stretches ``dW = W G`` of the loadings, which a row-wise scaling
    leaves ``sigma^2 h`` times too flat (``sigma^2`` a factor's whitened
    strength, ``h`` the features' uniqueness), are as curved as the rest.

    Returns
    -------
    root : _RootFactor
        ``T``.
    col_scale : ndarray of shape (n_factors, n_factors)
        ``A^{-1/2}``.
    psi_scale : ndarray of shape (n_features,)
        ``sqrt(2) / p``.
    """
    cov = LowRankPlusDiagonal(components, noise_variance)
    V, core_inv = cov._scaled, cov._core_inv
    uniq = 1.0 - np.einsum("jk,jk->j", V @ core_inv, V)
    prec_diag = np.clip(uniq, _MIN_UNIQUENESS, 1.0) / cov.noise_variance
    eigval, eigvec = np.linalg.eigh(np.eye(V.shape[1]) - core_inv)
    eigval = np.clip(eigval, _MIN_UNIQUENESS, None)
    col_scale = (eigvec / np.sqrt(eigval)) @ eigvec.T
    root = _RootFactor(components, noise_variance)
    # Far below its optimum a noise variance's curvature exceeds the Fisher
    # information by orders of magnitude (the residual variance over psi^3):
    # a step of at most _PSI_STEP psi_j keeps the line search in range.
    psi_scale = np.minimum(np.sqrt(2.0) / prec_diag, _PSI_STEP * cov.noise_variance)
    return root, col_scale, psi_scale


# Floor of the uniqueness h_j and of the eigenvalues of A in the scalings, and
# the largest unit of tau_j relative to psi_j.
_MIN_UNIQUENESS = 1e-12
_PSI_STEP = 100.0


def _lbfgs_cycle(
    evaluate,
    weight,
    center,
    var,
    mu,
    W,
    psi,
    fit_mean,
    max_iter,
    tol,
    psi_lower,
    history=None,
    tail=None,
):
    """One L-BFGS-B run preconditioned at ``(mu, W, psi)`` (original units).

    Coordinates (see :func:`_factor_scales`): ``mu = mu_0 + s T_0 u`` with
    ``T_0`` a square factor of the standardised ``S_0`` (the mean's curvature
    is ``S^{-1}``), ``W = W_0 + T B A^{-1/2}`` and ``psi = psi_0 + sqrt(2) /
    p tau``, in which the Fisher information is about the identity: L-BFGS-B
    takes unit steps from the first iterations on. ``psi`` enters linearly,
    so that at a Heywood case its gradient stays away from zero and the
    bound ``psi_j >= psi_lower_j`` becomes active (a log scale would make it
    vanish there).

    The values passed to L-BFGS-B follow the gradient where the computed
    ones cannot resolve a step (``minimize_box``'s ``gradient_model``), so that its line
    search keeps working below the objective's rounding: no evaluations are
    lost to a line search that cannot succeed. The value returned is the
    computed one. ``tail``: further parameters (see :func:`run_cycles`),
    their coordinates appended; ``tail.value`` is set to the final value.

    Returns
    -------
    value, n_iter, n_fev, message, mu, W, psi, grad_norm
    """
    d, k = W.shape
    scale = np.sqrt(var)
    root_mean = _RootFactor(W / scale[:, np.newaxis], psi / var)
    # A noise variance within rounding of its bound starts on it.
    psi = np.where(psi <= psi_lower * (1.0 + 1e-12), psi_lower, psi)
    mu_start, W_start, psi_start = mu, W, psi
    root_w, col_scale, psi_scale = _factor_scales(W, psi)
    tau_lower = (psi_lower - psi) / psi_scale
    n_mu = d if fit_mean else 0
    n_w = d * k
    n_psi = n_mu + n_w + d
    if tail is None:
        n_tail, tail_lower, tail_upper = 0, np.empty(0), np.empty(0)
    else:
        n_tail, tail_unpack, tail_grad, tail_lower, tail_upper = tail.coordinates()
    lower = np.concatenate([np.full(n_mu + n_w, -np.inf), tau_lower, tail_lower])
    upper = np.concatenate([np.full(n_psi, np.inf), tail_upper])

    def unpack(theta):
        mean = mu_start + scale * root_mean.apply(theta[:n_mu]) if fit_mean else mu
        B = theta[n_mu : n_mu + n_w].reshape(d, k)
        comp = W_start + root_w.apply(B @ col_scale)
        tau = theta[n_mu + n_w : n_psi]
        # On its bound (where L-BFGS-B puts it exactly) psi is the bound.
        noise = np.where(tau <= tau_lower, psi_lower, psi_start + psi_scale * tau)
        if tail is None:
            return mean, comp, noise
        return mean, comp, noise, tail_unpack(theta[n_psi:])

    # A noise variance within rounding of its bound counts as on it.
    near = np.concatenate(
        [np.zeros(n_mu + n_w), 1e-12 * psi_lower / psi_scale, np.zeros(n_tail)]
    )

    def fun(theta):
        params = unpack(theta)
        # Evaluated in the canonical rotation (orthogonal columns of
        # diag(psi)^{-1/2} W, a diagonal core M): the value is invariant, but
        # at a Heywood case M's condition number is ~1 / min(psi / var) and
        # in another rotation its inverse's rounding costs the value digits.
        rotation = canonical_basis(params[1], params[2])
        value, g_mu, g_W, g_psi, *g_tail = evaluate(
            params[0], params[1] @ rotation, *params[2:]
        )
        g_W = g_W @ rotation.T
        parts = [
            (root_w.apply_t(g_W) @ col_scale).ravel(),
            g_psi * psi_scale,
        ]
        if fit_mean:
            parts.insert(0, root_mean.apply_t(g_mu * scale))
        if tail is not None:
            parts.append(tail_grad(g_tail[0], params[3]))
        return value / weight, np.concatenate(parts) / weight

    record = None if history is None else lambda v, g: history.append((v, g))
    res = minimize_box(
        fun,
        np.zeros(n_psi + n_tail),
        lower,
        upper,
        max_iter=max_iter,
        tol=tol,
        record=record,
        near=near,
        gradient_model=True,
        # A trial step can leave the representable range (psi far below the
        # loadings' scale): the line search is sent back, not aborted.
        guard_nonfinite=True,
    )
    mean, comp, noise, *rest = unpack(res.x)
    if tail is not None:
        tail.value = rest[0]
    return (
        res.value,
        res.n_iter,
        res.n_fev,
        res.message,
        np.array(mean, dtype=np.float64),
        comp,
        noise,
        res.norm,
    )


# ---------------------------------------------------------------------------
# The factor model (low rank plus diagonal)
# ---------------------------------------------------------------------------


class _Recorder:
    """A list-like sink that forwards ``(value, grad_norm)`` to ``Progress``."""

    def __init__(self, progress):
        self.progress = progress

    def append(self, item):
        self.progress.record(*item)


def solve_factor(
    objective,
    n_factors,
    *,
    start=None,
    compare_pilot=False,
    max_iter=200,
    tol=1e-8,
    verbose=0,
    name="GradientGaussian",
    min_noise=None,
):
    """Minimise a :class:`~._likelihoods.normal.FactorObjective` over ``(mu,
    W, psi)``.

    The start is probabilistic PCA on the standardised pilot covariance (a
    randomised subspace iteration: no ``d x d`` factorisation), a previous
    solution ``start = (mean, (W, psi))``, or with ``compare_pilot`` the
    better of the two. The cycles of :func:`~._solve.factor.run_cycles` are
    preconditioned by diagonal scalings and ``k x k`` algebra; the noise
    variances are bounded below by ``max(min_noise s_j^2, reg_covar)``.

    Returns
    -------
    result : SolveResult
        ``factor`` is ``(W, psi)`` with ``W`` in canonical rotation;
        ``heywood`` lists the features whose noise variance is at its bound
        and ``factor_scales`` the whitened norms of the columns of ``W``.
    """

    if min_noise is None:
        min_noise = MIN_NOISE
    progress = Progress(verbose, name)
    center, var = objective.center, objective.variance
    d = center.shape[0]
    scale = np.sqrt(var)
    psi_lower = np.maximum(min_noise * var, objective.psi_floor)
    W0, psi0 = ppca_start(
        objective.products,
        np.ones(d),
        n_factors,
        0,
        min_noise,
        first=objective.first_product,
    )
    pilot = (center, W0 * scale[:, np.newaxis], np.maximum(psi0 * var, psi_lower))
    point = pilot
    if start is not None:
        mean_s, (W_s, psi_s) = start
        if W_s.shape == (d, n_factors):
            previous = (mean_s, W_s, np.maximum(psi_s, psi_lower))
            point = previous
            if compare_pilot:

                def value(p):
                    return objective.evaluate(*p)[0]

                point = pilot if value(pilot) < value(previous) else previous
    mean, W, psi = point
    if not objective.fit_mean:
        mean = center
    progress.phase(f"factor model on {objective.mode}")
    if max_iter == 0:
        value = objective.evaluate(mean, W, psi)[0]
        grad_norm, n_iter, message = np.inf, 0, "max_iter = 0"
    else:
        mean, W, psi, value, n_iter, grad_norm, message = run_cycles(
            objective.evaluate,
            1.0,
            center,
            var,
            mean,
            W,
            psi,
            objective.fit_mean,
            max_iter,
            tol,
            psi_lower,
            _Recorder(progress),
        )
        # Noise variances within 10x their bound count (the fit may stop just
        # off a Heywood boundary).
        if objective.mode == "statistics" and _may_be_multimodal(
            d,
            n_factors,
            heywood_features(psi, psi_lower, rtol=9.0),
            _weakest_factor(W, psi),
        ):
            mean, W, psi, value, n_iter, grad_norm, message = _profile_restarts(
                objective,
                n_factors,
                psi_lower,
                (mean, W, psi, value, n_iter, grad_norm, message),
                max_iter,
                tol,
                progress,
            )
        if objective.mode == "statistics":
            fit, psi_lower = _below_the_floor(
                objective,
                psi_lower,
                (mean, W, psi, value, n_iter, grad_norm, message),
                max_iter,
                tol,
                progress,
            )
            mean, W, psi, value, n_iter, grad_norm, message = fit
    W = canonical_rotation(W, psi)
    result = SolveResult(
        np.array(mean, dtype=np.float64),
        (W, psi),
        value,
        grad_norm,
        n_iter,
        grad_norm <= 100.0 * tol,
        message,
    )
    result.history = progress.history
    # A noise variance at the relative bound (not at a reg_covar floor, which
    # is the user's choice) is a Heywood case.
    result.heywood = heywood_features(psi, psi_lower)
    result.heywood = result.heywood[psi_lower[result.heywood] > objective.psi_floor]
    result.factor_scales = np.linalg.norm(W / np.sqrt(psi)[:, np.newaxis], axis=0)
    if not result.converged:
        result.advice = _over_factored_advice(d, n_factors, result.heywood)
    progress.summary(result)
    return result


# The noise floor of Heywood features is lowered this much per step, at most
# _FLOOR_STEPS times (to 1e-12 of the variance from the default 1e-6, the
# floor of FactorAnalysis in standardised units).
_FLOOR_STEP = 100.0
_FLOOR_STEPS = 3
# Gain (negative log-likelihood per unit weight, relative above 1) that the
# fit below the floor must make to replace the bounded one.
_MATERIAL_GAIN = 1e-6


def _below_the_floor(objective, psi_lower, fit, max_iter, tol, progress):
    """Follow Heywood features whose maximum lies below the noise floor.

    A noise variance at its floor ``min_noise * var`` is either an exact
    combination of the factors (the likelihood grows without bound as it
    shrinks: the floor defines the answer) or a feature nearly equal to one,
    whose maximum is finite but may lie below the floor (a near duplicate):
    there the bounded fit would stop below the maximum FactorAnalysis (floor
    1e-12) reports. From a converged fit with such features, their floor is
    lowered (``_FLOOR_STEP``, never below ``reg_covar``) and the cycles
    run again from the fit, up to ``_FLOOR_STEPS`` times; a new fit is taken
    when it is certified, lower by more than ``_MATERIAL_GAIN`` per unit
    weight (the tolerance of the comparison with FactorAnalysis), and every
    one of those features has left the lower floor (an interior maximum).
    Statistics path only (exact scatter products).

    Returns the fit and the floors it was solved under.
    """
    mean, W, psi, value, _, grad_norm, _ = fit
    at = heywood_features(psi, psi_lower)
    at = at[psi_lower[at] > objective.psi_floor]  # reg_covar is the user's
    if at.size == 0 or grad_norm > 100.0 * tol:
        return fit, psi_lower
    current, lower = fit, psi_lower.copy()
    for _ in range(_FLOOR_STEPS):
        lower = lower.copy()
        lower[at] = np.maximum(lower[at] / _FLOOR_STEP, objective.psi_floor)
        progress.phase("factor model below the noise floor of Heywood features")
        run = run_cycles(
            objective.evaluate,
            1.0,
            objective.center,
            objective.variance,
            *current[:3],
            objective.fit_mean,
            max_iter,
            tol,
            lower,
            _Recorder(progress),
        )
        # Over-factored fits are flat in such noise variances (gains ~1e-8
        # per sample): there the certified bounded fit stands.
        gain = fit[3] - run[3] > _MATERIAL_GAIN * max(1.0, abs(fit[3]))
        if run[5] > 100.0 * tol or not gain:
            break
        if not np.isin(at, heywood_features(run[2], lower)).any():
            return run, lower  # every such feature at an interior maximum
        current = run  # still on the lower floor: lower it again
    # Exact combinations (the likelihood grows without bound as the noise
    # variance shrinks): the floor defines the answer.
    return fit, psi_lower
    lower = psi_lower.copy()
    lower[at] = np.maximum(lower[at] / _FLOOR_STEP, objective.psi_floor)
    progress.phase("factor model below the noise floor of Heywood features")
    run = run_cycles(
        objective.evaluate,
        1.0,
        objective.center,
        objective.variance,
        mean,
        W,
        psi,
        objective.fit_mean,
        max_iter,
        tol,
        lower,
        _Recorder(progress),
    )
    certified = run[5] <= 100.0 * tol
    interior = not np.isin(at, heywood_features(run[2], lower)).any()
    # Over-factored fits are flat in such noise variances (gains ~1e-8 per
    # sample): there the certified bounded fit stands.
    material = run[3] < value - _MATERIAL_GAIN * max(1.0, abs(value))
    if certified and material and interior:
        return run, lower
    return fit, psi_lower


# A factor whose whitened squared norm ``||Psi^{-1/2} w||^2`` is below this
# explains, summed over all features in units of their noise variances, less
# than the noise of one feature (in the canonical rotation, its eigenvalue
# ``1 + ||Psi^{-1/2} w||^2`` of ``Psi^{-1/2} S Psi^{-1/2}`` is below 2): the
# sign of an extra factor fitted to noise, where the likelihood has several
# maxima. A well-specified factor has a norm of order n_features.
_WEAK_FACTOR = 1.0


def _weakest_factor(W, psi):
    """The smallest whitened squared factor norm ``||Psi^{-1/2} w||^2`` (in the
    canonical rotation: the squared singular values of ``Psi^{-1/2} W``)."""
    return float(
        np.min(np.linalg.svd(W / np.sqrt(psi)[:, np.newaxis], compute_uv=False)) ** 2
    )


def _may_be_multimodal(d, k, heywood, weakest=np.inf):
    """Whether a factor fit ended where the likelihood may have a better
    maximum: noise variances at or near their bound (a Heywood case), ``k`` above
    the identifiability (Ledermann) bound ``(d - k)^2 >= d + k``, or a weak
    factor (``weakest``, the smallest ``||Psi^{-1/2} w||^2`` in the canonical
    rotation, below ``_WEAK_FACTOR``)."""
    return bool(heywood.size) or (d - k) ** 2 < d + k or weakest < _WEAK_FACTOR


def _profile_restarts(objective, n_factors, psi_lower, fit, max_iter, tol, progress):
    """The best of ``fit`` and the fits from profile-likelihood starts.

    An over-factored model (or one at a Heywood case) has several local maxima, and the
    gradient fit from the PCA start may end at a Heywood point below a maximum inside
    the bounds, or at an interior maximum with a weak extra factor below a better one.
    Closed-form profile steps (:func:`~._solve.starts.profile_start`) from
    large noise variances tend to stay inside; from each such start the L-BFGS-B cycles
    run to a stationary point, and the lowest certified objective wins. The starts: the
    noise variances equal to the variances (scale-free), and all equal to one in the
    user's units (the classic EM start, which decides the maximum other factor analysis
    programs report). Statistics path only: the steps need products with the scatter,
    one pass over the rows each on the chunked path.

    Returns the fields of ``fit``: ``(mean, W, psi, value, n_iter,
    grad_norm, message)`` of the best run; as for the initialisations of
    scikit-learn's ``GaussianMixture``, every run may take ``max_iter``
    iterations and ``n_iter`` is the best run's.
    """

    center, var = objective.center, objective.variance
    scale = np.sqrt(var)
    d = center.shape[0]
    best = fit
    lower = psi_lower / var
    for psi0 in (np.ones(d), 1.0 / var):
        W, psi = profile_start(objective.products, np.ones(d), psi0, n_factors, lower)
        progress.phase("factor model restarted from profile-likelihood steps")
        run = run_cycles(
            objective.evaluate,
            1.0,
            center,
            var,
            center,
            W * scale[:, np.newaxis],
            psi * var,
            False,
            max_iter,
            tol,
            psi_lower,
            _Recorder(progress),
        )
        # A lower value replaces the fit only where the gradient certifies it
        # (the fit's own rule in solve_factor), or if neither is certified.
        certified = run[5] <= 100.0 * tol
        if run[3] < best[3] and (certified or best[5] > 100.0 * tol):
            best = run
    # As scikit-learn's n_init: each run has max_iter iterations and n_iter
    # is the winning run's.
    return best


def _over_factored_advice(d, k, heywood):
    """What to do when a factor fit stops short and has more factors than the
    data support (``None`` when nothing suggests so).

    Signs: ``k`` above the identifiability (Ledermann) bound ``(d - k)^2 >=
    d + k``, or noise variances at their bound. The likelihood is then flat
    or multimodal in the directions of the extra factors (their loadings can
    rotate into the noise), so more iterations do not help.
    """
    reasons = []
    if (d - k) ** 2 < d + k:
        reasons.append(
            f"n_factors={k} exceeds the largest identified number for "
            f"{d} features ((d - k)^2 >= d + k)"
        )
    if heywood.size:
        reasons.append(
            f"the noise variance of feature(s) {heywood[:20].tolist()} is at its bound"
        )
    if not reasons:
        return None
    return (
        f"The model looks over-factored ({'; '.join(reasons)}): its likelihood "
        "is flat or has several maxima in the directions of the extra factors, "
        "so the optimum cannot be certified and more iterations will not fix "
        "it. Use fewer n_factors, chosen by cross-validated log-likelihood, "
        "e.g. GridSearchCV(GradientGaussian(covariance_type='factor'), "
        f"{{'n_factors': range(1, {k})}}) (score is the mean log-likelihood), "
        "or by the smallest bic()."
    )
