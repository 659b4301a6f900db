"""Fitting the Student-t: ECME iterations, then L-BFGS-B, over data passes.

The t likelihood (:mod:`._likelihoods.student_t`) has no sufficient
statistics and one parameter more than the normal, the degrees of freedom ``nu``, so it
has a solver of its own, built from the engine's parts: the covariance representation
(packing, bounds, gradient restriction, the structured M-step), the convergence rule
(:func:`~._solve.driver._verdict`) and the progress output
(:class:`~._solve.driver.Progress`). Every iteration is one pass over the
data through a ``data_pass(mean, factor, df) -> TSums`` callable (NumPy or Dask).

- :func:`ecme_step`: one ECME iteration (Liu & Rubin, 1995) from a pass's
  sums; with complete data and no prior the parameter-expanded scale update
  (Kent, Tyler & Vardi, 1994), and a Newton step on ``log nu``;
- :func:`start_point`: a robust start (weighted coordinate-wise median and MAD
  of a strided subsample);
- :func:`fit_t`: ECME while it makes fast progress, then L-BFGS-B in
  coordinates whitened at the last ECME point, ``log nu`` appended.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._likelihoods.student_t import (
    DF_MAX,
    DF_MIN,
    _fisher_log_df,
    shape_penalty,
    t_curvature_df,
    t_objective,
)
from .._likelihoods.student_t_factor import factor_shape_penalty, t_factor_objective
from .._linalg import solve_lower
from .._representations.low_rank import (
    MIN_NOISE,
    FactorCovariance,
    LowRankPlusDiagonal,
    canonical_rotation,
)
from .driver import Progress, _verdict
from .factor import _factor_scales, _Recorder, _RootFactor, run_cycles
from .lbfgs import minimize_box, projected_norm

_EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------
# ECME steps and the robust start
# ---------------------------------------------------------------------------


def ecme_step(
    sums,
    mean,
    factor,
    representation,
    estimate_df=True,
    data_scale=1.0,
    prior_weight=0.0,
    trace_coef=0.0,
):
    """One ECME iteration from the sums of a pass at ``(mean, factor, df)``.

    The EM update of ``(mu, Sigma)`` for the current weights ``u_i``,
    ``Sigma = (s S_u + c I) / (s W + alpha)`` with ``S_u = sum w u (x - mu')
    (x - mu')^T + C`` the expected weighted scatter, ``s`` the data scale and
    ``alpha``, ``c`` the shape prior (:func:`shape_penalty`). Without prior
    and missing values the parameter-expanded denominator ``sum w u``
    replaces ``W`` (Kent, Tyler & Vardi, 1994; Liu, Rubin & Wu, 1998), which
    converges much faster. ``nu`` takes a safeguarded Newton step on
    ``log nu`` from the same pass (the ECME step maximises the likelihood in
    ``nu``; one Newton step per pass approximates it).

    Returns
    -------
    mean, factor, df
    """
    weight = sums.weight_sum
    u_sum = sums.u_sum
    a = sums.first
    inner = sums.symmetric_second() - np.outer(a, a) / u_sum
    denom = u_sum
    if sums.cond is not None:
        half = solve_lower(factor, sums.cond)
        inner += solve_lower(factor, half.T)
        denom = weight
    if prior_weight or trace_coef:
        denom = weight
    scale = factor @ (0.5 * (inner + inner.T)) @ factor.T
    scale = data_scale * scale + trace_coef * np.eye(sums.n_features)
    scale /= data_scale * denom + prior_weight
    new_mean = mean + factor @ a / u_sum
    # The structured factor of the update (the M-step of the structured
    # model); a singular scale (data in a subspace, no regularisation) raises
    # NotDeterminedError: the t likelihood is unbounded there.
    new_factor = representation.preconditioner(
        scale, new_mean, sums.n_samples, bool(prior_weight or trace_coef)
    )
    df = sums.df
    if estimate_df:
        df = df_newton_step(sums, t_objective(sums, factor)[3])
    return new_mean, new_factor, df


def df_newton_step(sums, grad_df):
    """A safeguarded Newton step on ``log nu`` (mean and scale fixed) from the
    sums of a pass (``TSums`` or ``TFactorSums``) and ``dJ/dnu`` there."""
    df = sums.df
    curv = t_curvature_df(sums)
    g_log = df * grad_df
    h_log = df * df * curv + df * grad_df
    step = -g_log / h_log if h_log > 0 else -np.sign(g_log)
    step = float(np.clip(step, -1.0, 1.0))
    return float(np.clip(df * np.exp(step), DF_MIN, DF_MAX))


# ---------------------------------------------------------------------------
# The fitter
# ---------------------------------------------------------------------------


class _Packer:
    """Whitened coordinates ``theta = (u, T, s)`` of ``(mean, factor, df)``.

    ``mean = shift + chol u``, ``factor = chol T`` with ``T`` packed by the
    covariance representation, and ``log nu = log nu0 + s / s_scale``
    (``s_scale`` the square root of the expected information on ``log nu``,
    so the Hessian in ``s`` is about 1). Without ``df`` estimation there is
    no ``s``.
    """

    def __init__(self, representation, shift, chol, df0, estimate_df):
        self.rep = representation
        self.d = shift.shape[0]
        self.shift = shift
        self.chol = chol
        self.log_df0 = np.log(df0)
        self.s_scale = _scale_df(df0, self.d, estimate_df)
        self.estimate_df = estimate_df

    def to_params(self, theta, df_fixed):
        d, rep = self.d, self.rep
        mean = self.shift + self.chol @ theta[:d]
        factor = self.chol @ rep.unpack(theta[d : d + rep.n_theta])
        if self.estimate_df:
            df = float(np.exp(self.log_df0 + theta[-1] / self.s_scale))
            df = min(max(df, DF_MIN), DF_MAX)  # round-off at the bounds
        else:
            df = df_fixed
        return mean, factor, df

    def from_params(self, mean, factor, df):
        u = solve_lower(self.chol, mean - self.shift)
        t = np.tril(solve_lower(self.chol, factor))
        parts = [u, self.rep.pack(t)]
        if self.estimate_df:
            parts.append([(np.log(df) - self.log_df0) * self.s_scale])
        return np.concatenate(parts)

    def gradient(self, grad_mean, grad_factor, grad_df, df):
        parts = [
            self.chol.T @ grad_mean,
            self.rep.restrict_grad(self.chol.T @ grad_factor),
        ]
        if self.estimate_df:
            parts.append([df * grad_df / self.s_scale])
        return np.concatenate(parts)

    def box(self):
        lower = [np.full(self.d, -np.inf), self.rep.lower_bounds()]
        upper = [np.full(self.d + self.rep.n_theta, np.inf)]
        if self.estimate_df:
            lower.append([(np.log(DF_MIN) - self.log_df0) * self.s_scale])
            upper.append([(np.log(DF_MAX) - self.log_df0) * self.s_scale])
        return np.concatenate(lower), np.concatenate(upper)


class TFitResult:
    """Outcome of :func:`fit_t`."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def _finish(
    progress, mean, params, df, value, norm, n_em, n_lbfgs, n_passes, verdict, message
):
    """The fit's result (with the progress history), summarised if verbose."""
    result = TFitResult(
        mean=mean,
        factor=params,
        df=df,
        value=float(value),
        objective=float(value),
        grad_norm=norm,
        n_iter=n_em + n_lbfgs,
        n_em=n_em,
        n_passes=n_passes,
        converged=verdict != "short",
        message=message,
    )
    result.history = progress.history
    progress.summary(result)
    return result


def _scale_df(df, d, estimate_df):
    """Scale of the ``log nu`` coordinate: root of its expected information."""
    return np.sqrt(max(_fisher_log_df(df, d), 1e-4)) if estimate_df else 1.0


def _lbfgs(evaluate, packer, df_fixed, theta0, first, max_iter, tol, record):
    """L-BFGS-B in the packer's coordinates from ``theta0`` (the one loop,
    :func:`~._solve.lbfgs.minimize_box`, guarding trial points
    where the t likelihood is not finite)."""
    lower, upper = packer.box()

    def fun(theta):
        m, f, nu = packer.to_params(theta, df_fixed)
        _, value, gm, gf, gd = evaluate(m, f, nu)
        return value, packer.gradient(gm, gf, gd, nu)

    return minimize_box(
        fun,
        theta0,
        lower,
        upper,
        max_iter=max_iter,
        tol=tol,
        record=record,
        guard_nonfinite=True,
        first=first,
    )


# ---------------------------------------------------------------------------
# The factor scale matrix W W^T + diag(psi)
# ---------------------------------------------------------------------------


def ecm_factor_step(
    sums, mean, params, psi_lower, data_scale=1.0, prior_weight=0.0, trace_coef=0.0
):
    """One ECM iteration of the factor t (complete data).

    With the weights ``u_i`` and the factors' posterior ``z_i | x_i ~ N(q_i,
    M^{-1} / u_i)`` of the E-step, ``(mu, W)`` is the weighted regression of
    ``x`` on ``(1, z)`` and ``psi`` the mean residual variance (the factor
    analysers' EM; McLachlan, Bean & Ben-Tahar Jones, 2007): with ``a_i = w_i
    u_i``, ``G = [[sum a, sum a q^T], [sum a q, sum a q q^T + (sum w)
    M^{-1}]]`` and ``B = [sum a r, sum a r q^T]``, ``[b, W'] = B G^{-1}``,
    ``mu' = mu + b`` and ``psi' = diag(sum a r r^T - [b, W'] B^T) / sum w``.
    All from the pass's moments (O(d k^2)).

    The shape prior ``alpha / 2 log|Sigma| + c / 2 tr(Sigma^{-1})`` (with the
    data term scaled by ``s = data_scale``) is the normal likelihood of
    pseudo-data of weight ``alpha`` and scatter ``c I`` about the location,
    whose factors have the posterior mean ``beta r`` (``beta = M^{-1} V^T
    diag(psi)^{-1/2}``): they add ``c beta^T`` to the ``z`` columns of ``B``,
    ``c beta beta^T + alpha M^{-1}`` to the ``z`` block of ``G``, ``c`` to the
    scatter's diagonal and ``alpha`` to the weight (not to the intercept:
    the prior does not involve ``mu``). The iteration stays an EM step.
    """

    W, psi = params
    cov = LowRankPlusDiagonal(W, psi)
    k = W.shape[1]
    weight = sums.weight_sum
    root = cov._root
    gram = np.empty((k + 1, k + 1))
    gram[0, 0] = sums.u_sum
    gram[0, 1:] = gram[1:, 0] = sums.q_sum
    gram[1:, 1:] = 0.5 * (sums.qq + sums.qq.T) + weight * cov._core_inv
    moments = np.column_stack([root * sums.resid, root[:, np.newaxis] * sums.cross])
    gram *= data_scale
    moments *= data_scale
    scatter = data_scale * psi * sums.sq
    if prior_weight or trace_coef:
        post = (cov._scaled @ cov._core_inv) / root[:, np.newaxis]  # beta^T
        gram[1:, 1:] += trace_coef * (post.T @ post) + prior_weight * cov._core_inv
        moments[:, 1:] += trace_coef * post
        scatter = scatter + trace_coef
    coef = np.linalg.solve(gram, moments.T).T
    psi_new = (scatter - np.einsum("jk,jk->j", coef, moments)) / (
        data_scale * weight + prior_weight
    )
    return mean + coef[:, 0], (coef[:, 1:], np.maximum(psi_new, psi_lower))


class _DfTail:
    """The ``log nu`` coordinate of the factor t as a tail block of
    :func:`~._solve.factor.run_cycles`: ``log nu = log nu0 + s / s_scale``
    centred at the current ``nu`` (as in :class:`_Packer`); no coordinate when
    ``nu`` is fixed."""

    def __init__(self, df, n_features, estimate_df):
        self.value = df
        self.d = n_features
        self.estimate_df = estimate_df

    def coordinates(self):
        if not self.estimate_df:
            return 0, lambda theta: self.value, lambda g, df: [], [], []
        log_df0 = np.log(self.value)
        s_scale = _scale_df(self.value, self.d, True)

        def unpack(theta):
            df = float(np.exp(log_df0 + theta[0] / s_scale))
            return min(max(df, DF_MIN), DF_MAX)  # round-off at the bounds

        def gradient(grad_df, df):
            return [df * grad_df / s_scale]

        lower = [(np.log(DF_MIN) - log_df0) * s_scale]
        upper = [(np.log(DF_MAX) - log_df0) * s_scale]
        return 1, unpack, gradient, np.array(lower), np.array(upper)


def _factor_norm(mean, params, df, g_mean, g_params, g_df, psi_lower, estimate_df):
    """Largest entry of the projected gradient in the coordinates of the cycles of
    :func:`~._solve.factor.run_cycles` at ``(mean, (W, psi), df)``."""

    W, psi = params
    g_W, g_psi = g_params
    root_w, col_scale, psi_scale = _factor_scales(W, psi)
    g_tau = g_psi * psi_scale
    g_tau[(psi <= psi_lower * (1.0 + 1e-12)) & (g_tau > 0)] = 0.0
    parts = [
        _RootFactor(W, psi).apply_t(g_mean),
        (root_w.apply_t(g_W) @ col_scale).ravel(),
        g_tau,
    ]
    if estimate_df:
        g_s = df * g_df / _scale_df(df, mean.shape[0], True)
        at_low, at_high = df <= DF_MIN and g_s > 0, df >= DF_MAX and g_s < 0
        parts.append([0.0 if at_low or at_high else g_s])
    return float(np.max(np.abs(np.concatenate(parts))))


# ---------------------------------------------------------------------------
# The driver: accelerating (ECME/ECM) steps, then the representation's
# quasi-Newton phase with log nu as an extra parameter block
# ---------------------------------------------------------------------------


class _TriangularT:
    """The t over a triangular representation: ECME steps, then one L-BFGS-B
    run in coordinates whitened at the last ECME point with ``log nu``
    appended (:class:`_Packer`)."""

    phase = "L-BFGS-B in coordinates whitened at the ECME point"

    def __init__(self, rep, estimate_df, penalty):
        self.rep = rep
        self.estimate_df = estimate_df
        self.penalty = penalty  # (prior_weight, trace_coef)
        self.last = None

    def start(self, params):
        return np.asarray(params, dtype=np.float64)

    def objective(self, sums, mean, params):
        value, gm, gp, gd = t_objective(sums, params)
        if not any(self.penalty):
            return value, gm, gp, gd, (None, None)
        return value, gm, gp, gd, shape_penalty(params, *self.penalty)

    def add_penalty(self, gp, pgp):
        return gp + pgp

    def norm(self, mean, params, df, gm, gp, gd, value):
        packer = _Packer(self.rep, mean, np.tril(params), df, self.estimate_df)
        theta = packer.from_params(mean, params, df)
        grad = packer.gradient(gm, gp, gd, df)
        self.last = packer, theta, (value, grad)
        return projected_norm(theta, grad, *packer.box())

    def accelerate(self, sums, mean, params, df, gd, scale):
        data_scale, prior_weight, trace_coef = scale
        return ecme_step(
            sums,
            mean,
            params,
            self.rep,
            self.estimate_df,
            data_scale,
            prior_weight,
            trace_coef,
        )

    def quasi_newton(self, evaluate, df, max_iter, tol, progress):
        packer, theta, first = self.last
        res = _lbfgs(evaluate, packer, df, theta, first, max_iter, tol, progress.record)
        floor = max(10.0 * np.sqrt(_EPS * max(1.0, abs(res.value))), 100.0 * tol)
        verdict = _verdict(res.norm, tol, stalled=res.status != 1, floor=floor)
        mean, params, df = packer.to_params(res.x, df)
        fields = res.value, res.norm, res.n_iter, res.n_fev, verdict, res.message
        return (mean, params, df, *fields)

    def final(self, params):
        return np.tril(params)


class _FactorT:
    """The t over the factor representation ``W W^T + diag(psi)``: ECM steps
    (complete data), then the factor model's cycles
    (:func:`~.factor.run_cycles`) with ``log nu`` as a tail block
    (:class:`_DfTail`)."""

    phase = "L-BFGS-B in Fisher-scaled coordinates (cycles)"

    def __init__(self, psi_lower, estimate_df, penalty):
        self.psi_lower = psi_lower
        self.estimate_df = estimate_df
        self.penalty = penalty

    def start(self, params):
        W, psi = params
        return np.asarray(W, dtype=np.float64), np.maximum(psi, self.psi_lower)

    def objective(self, sums, mean, params):
        value, gm, gp, gd = t_factor_objective(sums, params)
        if not any(self.penalty):
            return value, gm, gp, gd, (None, None)
        return value, gm, gp, gd, factor_shape_penalty(mean, params, *self.penalty)

    def add_penalty(self, gp, pgp):
        return gp[0] + pgp[0], gp[1] + pgp[1]

    def norm(self, mean, params, df, gm, gp, gd, value):
        return _factor_norm(
            mean, params, df, gm, gp, gd, self.psi_lower, self.estimate_df
        )

    def accelerate(self, sums, mean, params, df, gd, scale):
        data_scale, prior_weight, trace_coef = scale
        if sums.has_missing or data_scale == 0.0:
            # ECM needs complete data, and data that carry weight (with
            # shrinkage=1 the prior alone is fitted, by the cycles).
            return None
        new_df = df_newton_step(sums, gd / data_scale) if self.estimate_df else df
        mean, params = ecm_factor_step(
            sums, mean, params, self.psi_lower, data_scale, prior_weight, trace_coef
        )
        return mean, params, new_df

    def quasi_newton(self, evaluate, df, max_iter, tol, progress):
        mean, (W, psi) = self.point
        tail = _DfTail(df, mean.shape[0], self.estimate_df)

        def evaluate_cycle(m, W, psi, nu):
            _, value, gm, (gW, gp), gd = evaluate(m, (W, psi), nu)
            return value, gm, gW, gp, gd

        mean, W, psi, value, n_iter, norm, message = run_cycles(
            evaluate_cycle,
            1.0,
            mean,
            self.psi_lower / MIN_NOISE,
            mean,
            W,
            psi,
            True,
            max_iter,
            tol,
            self.psi_lower,
            _Recorder(progress),
            tail,
        )
        verdict = "converged" if norm <= 100.0 * tol else "short"
        return mean, (W, psi), tail.value, value, norm, n_iter, 0, verdict, message

    def final(self, params):
        W, psi = params
        return canonical_rotation(W, psi), psi


def fit_t(
    data_pass,
    representation,
    mean0,
    params0,
    df0,
    *,
    psi_lower=None,
    estimate_df=True,
    data_scale=1.0,
    prior_weight=0.0,
    trace_coef=0.0,
    max_iter=200,
    tol=1e-8,
    max_em=100,
    verbose=0,
    name="GradientStudentT",
):
    """Maximum (penalised) likelihood t over any representation.

    The objective is ``data_scale * J + penalty``; every evaluation is one
    pass over the data (``data_pass(mean, params, df) -> sums``). Accelerating
    steps (ECME for a triangular scale matrix, Liu & Rubin 1995; ECM for the
    factor model, complete data only) run while they make fast progress (the
    largest entry of the gradient in coordinates whitened at the current
    point at least halves per step); then the representation's quasi-Newton
    phase takes over with ``log nu`` as an extra parameter block scaled by
    the root of its expected information: one L-BFGS-B run whitened at the
    last ECME point (triangular), or the factor model's preconditioned cycles
    (:func:`~.factor.run_cycles`). Convergence follows the engine's rule
    (:func:`~.driver._verdict`).

    Parameters
    ----------
    data_pass : callable
        ``data_pass(mean, params, df) -> TSums`` (``TFactorSums`` for the
        factor model): one pass over the data.
    representation : covariance representation
        Triangular (packing, bounds, gradient restriction, the structured
        M-step) or the factor model's.
    mean0, params0, df0 :
        Start: a lower-triangular factor with the structure, or ``(W, psi)``.
    psi_lower : ndarray, default=None
        Lower bounds of the noise variances (factor model).
    estimate_df : bool, default=True
        Whether ``nu`` is estimated (else fixed at ``df0``).
    data_scale : float, default=1.0
        Multiplies the data's negative log-likelihood (``1 / W`` for a mean).
    prior_weight, trace_coef : float, default=0.0
        The shape prior (:func:`shape_penalty`).
    max_iter : int, default=200
        Iterations at most (accelerating and quasi-Newton together).
    tol : float, default=1e-8
    max_em : int, default=100
        Accelerating steps at most.
    verbose : int, default=0
    name : str, default="GradientStudentT"

    Returns
    -------
    result : TFitResult
        ``mean``, ``factor`` (the scale parameters; ``(W, psi)`` with ``W``
        in canonical rotation for the factor model), ``df``, ``value``,
        ``grad_norm``, ``n_iter``, ``n_em``, ``n_passes``, ``converged``,
        ``message``, ``history``.
    """
    penalty = (prior_weight, trace_coef)
    if isinstance(representation, FactorCovariance):
        model = _FactorT(psi_lower, estimate_df, penalty)
    else:
        model = _TriangularT(representation, estimate_df, penalty)
    mean, params, df = np.asarray(mean0, float), model.start(params0), df0
    progress = Progress(verbose, name)

    def evaluate(m, p, nu):
        sums = data_pass(m, p, nu)
        value, gm, gp, gd, (pv, pgp) = model.objective(sums, m, p)
        value, gd, gm = data_scale * value, data_scale * gd, data_scale * gm
        if isinstance(gp, tuple):
            gp = tuple(data_scale * g for g in gp)
        else:
            gp = data_scale * gp
        if pv is not None:
            value, gp = value + pv, model.add_penalty(gp, pgp)
        return sums, value, gm, gp, gd

    n_passes, n_em, previous = 0, 0, np.inf
    verdict, message = "short", "max_iter reached"
    while True:
        sums, value, gm, gp, gd = evaluate(mean, params, df)
        n_passes += 1
        if not np.isfinite(value):
            raise ValueError(
                "The t likelihood is not finite at the start: the values of X "
                "are too large or too small in magnitude to be represented. "
                "Rescale X, e.g. with sklearn.preprocessing.StandardScaler, "
                "and fit again."
            )
        norm = model.norm(mean, params, df, gm, gp, gd, value)
        progress.record(value, norm, step=n_em > 0)
        if norm <= tol:
            verdict, message = "converged", "accelerating (EM) steps met tol"
            break
        if n_em >= min(max_em, max_iter) or (n_em >= 3 and norm > 0.5 * previous):
            break
        step = model.accelerate(
            sums, mean, params, df, gd, (data_scale, prior_weight, trace_coef)
        )
        if step is None:
            break
        previous = norm
        mean, params, df = step
        n_em += 1
    n_qn = 0
    if verdict == "short" and n_em < max_iter:
        progress.phase(model.phase)
        model.point = mean, params
        fields = model.quasi_newton(evaluate, df, max_iter - n_em, tol, progress)
        mean, params, df, value, norm, n_qn, extra, verdict, message = fields
        n_passes += extra
    return _finish(
        progress,
        mean,
        model.final(params),
        df,
        value,
        norm,
        n_em,
        n_qn,
        n_passes,
        verdict,
        message,
    )
