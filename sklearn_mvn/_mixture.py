"""GradientGaussianMixture: a finite mixture of the package's normal densities.

The mixture is a *composition*: each component is a
:class:`~sklearn_mvn.GradientGaussian`, refitted in the M-step through its
public ``fit(X, sample_weight=...)`` with the rows weighted by their
responsibilities, and scored in the E-step through its public
``score_samples``. Both treat NaN exactly (a row's density is the marginal
density of its observed entries), so EM over the component labels alone is
the exact EM of the observed-data mixture likelihood. The EM map is
accelerated by SQUAREM (Varadhan and Roland, 2008, scheme S3) with a monotone
safeguard.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import copy
import warnings

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin, clone
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._data.patterns import check_missing
from ._gradient_gaussian import GradientGaussian
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_sample_weight,
    validate_with_nan,
    warn_at_caller,
)

# Every responsibility is floored at this fraction of its row's weight before
# a component is refitted, so that no component's weights sum to zero (an
# empty component is then refitted on all rows, i.e. re-initialised) and
# every feature keeps rows that observe it. It moves a component holding the
# weight of m rows by about n / m * 1e-12 (relative): far below any tol.
_RESP_FLOOR = 1e-12

# A component holding less than this many rows' worth of weight has collapsed.
_MIN_ROWS = 2.0

# ---------------------------------------------------------------------------
# Gaussians as fitted components
# ---------------------------------------------------------------------------


def _gaussian_at(mean, root, kind):
    """A fitted GradientGaussian with mean ``mean`` and covariance root root^T.

    It is fitted (public ``fit``) to the 2 d points ``mean +- sqrt(d) root
    e_j``, whose weighted mean and covariance are exactly ``mean`` and
    ``root root^T``; ``kind`` ('full', 'diag' or 'spherical') must hold that
    covariance. Used for the starting point and SQUAREM's extrapolated point,
    which only need to be scored.
    """
    d = mean.shape[0]
    steps = np.sqrt(d) * root.T
    points = np.vstack([mean + steps, mean - steps])
    model = GradientGaussian(covariance_type=kind, tol=1e-10)
    return model.fit(points)


def _restrict(cov, kind):
    """The covariance ``cov`` (d x d) restricted to the covariance type."""
    if kind == "diag":
        return np.diag(np.diag(cov))
    if kind == "spherical":
        return np.eye(cov.shape[0]) * np.mean(np.diag(cov))
    return cov


def _proxy_kind(covariance_type):
    return "full" if covariance_type == "factor" else covariance_type


def _cholesky(cov, component):
    """Lower Cholesky factor, or a ValueError that says what to do."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"The covariance of mixture component {component} is not positive "
            "definite (the component collapsed onto too few rows). Increase "
            "reg_covar, use fewer n_components, or scale the input data."
        ) from exc


# ---------------------------------------------------------------------------
# E-step and M-step
# ---------------------------------------------------------------------------


def _weighted_log_prob(X, log_weights, densities):
    """``log pi_k + log p_k(x_i)``, shape (n_samples, n_components)."""
    out = np.empty((X.shape[0], len(densities)))
    for k, density in enumerate(densities):
        out[:, k] = density.score_samples(X) + log_weights[k]
    return out


def _e_step(X, weights, log_weights, densities):
    """Mean log-likelihood per unit weight, responsibilities and row scores."""
    log_prob = _weighted_log_prob(X, log_weights, densities)
    log_norm = logsumexp(log_prob, axis=1)
    with np.errstate(under="ignore"):
        resp = np.exp(log_prob - log_norm[:, None])
    return float(weights @ log_norm / weights.sum()), resp


def _m_step(X, weights, resp, components, caught, tol=None):
    """Refit every component on the rows weighted by their responsibilities.

    Returns the log mixing weights; ``caught`` receives the components'
    warnings (re-emitted once, after the last M-step). ``tol``, if given, is
    the components' gradient tolerance for this step (an inexact M-step
    that still increases the likelihood: a generalised EM step).
    """
    row_weights = weights[:, None] * (resp + _RESP_FLOOR)
    totals = row_weights.sum(axis=0)
    caught.clear()
    for k, component in enumerate(components):
        if tol is not None:
            component.set_params(tol=tol)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always", UserWarning)
            try:
                component.fit(X, sample_weight=row_weights[:, k])
            except ValueError as exc:
                raise ValueError(
                    f"Fitting mixture component {k} (holding {totals[k]:.3g} of "
                    f"the total weight {totals.sum():.3g}) failed: {exc} "
                    "Increase reg_covar (GaussianMixture's default is 1e-6), "
                    "use fewer n_components, or set shrinkage > 0."
                ) from exc
        for item in record:
            if issubclass(item.category, UserWarning):
                caught.append((k, item.category, str(item.message)))
            else:
                warnings.warn_explicit(
                    item.message, item.category, item.filename, item.lineno
                )
    return np.log(totals / totals.sum())


def _initial_resp(X, weights, n_components, init_params, random_state):
    """Responsibilities of the initialisation, as GaussianMixture's."""
    n_samples = X.shape[0]
    resp = np.zeros((n_samples, n_components))
    if init_params == "kmeans":
        labels = (
            KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
            .fit(X, sample_weight=weights)
            .labels_
        )
        resp[np.arange(n_samples), labels] = 1.0
    elif init_params == "random":
        resp = random_state.uniform(size=(n_samples, n_components))
        resp /= resp.sum(axis=1)[:, None]
    elif init_params == "random_from_data":
        candidates = np.flatnonzero(weights > 0)
        indices = random_state.choice(candidates, size=n_components, replace=False)
        resp[indices, np.arange(n_components)] = 1.0
    else:  # "k-means++"
        _, indices = kmeans_plusplus(
            X, n_components, random_state=random_state, sample_weight=weights
        )
        resp[indices, np.arange(n_components)] = 1.0
    return resp


def _moments(X, weights, resp, reg_covar, kind):
    """Weighted means, restricted covariances (+ reg_covar) and log weights."""
    row_weights = weights[:, None] * resp
    totals = row_weights.sum(axis=0) + 10 * np.finfo(float).eps * weights.sum()
    means = row_weights.T @ X / totals[:, None]
    floor = 1e-6 * np.var(X, axis=0).mean() + np.finfo(float).tiny
    covs = []
    for k in range(resp.shape[1]):
        diff = X - means[k]
        cov = (row_weights[:, k] * diff.T) @ diff / totals[k]
        cov = _restrict(cov, kind) + reg_covar * np.eye(X.shape[1])
        if np.linalg.eigvalsh(cov)[0] <= floor:
            cov = cov + floor * np.eye(X.shape[1])
        covs.append(cov)
    return np.log(totals / totals.sum()), means, np.array(covs)


# ---------------------------------------------------------------------------
# SQUAREM coordinates
# ---------------------------------------------------------------------------


class _Coordinates:
    """Whitened coordinates of the mixture parameters around a point.

    A component's mean is ``L0^{-1} mu`` and its covariance the Cholesky
    factor ``M`` of ``L0^{-1} S L0^{-T}`` (identity at the reference point),
    with ``log`` of its diagonal, so any vector maps back to a positive
    definite covariance ``L0 M M^T L0^T`` of the same (diagonal, spherical)
    structure; the mixing weights are their logarithms (a softmax maps
    back). Extrapolation in these coordinates is invariant to affine changes
    of the data, and the max-norm of a change measures it in standard
    deviations (means) and relative units (covariances, weights).
    """

    def __init__(self, covariances):
        self.roots = [_cholesky(c, k) for k, c in enumerate(covariances)]
        d = covariances.shape[1]
        self.tril = np.tril_indices(d)
        self.diag = self.tril[0] == self.tril[1]

    def vector(self, log_weights, means, covariances):
        parts = [log_weights]
        for k, root in enumerate(self.roots):
            parts.append(np.linalg.solve(root, means[k]))
            inner = np.linalg.solve(root, np.linalg.solve(root, covariances[k]).T)
            chol = _cholesky((inner + inner.T) / 2, k)
            packed = chol[self.tril]
            packed[self.diag] = np.log(packed[self.diag])
            parts.append(packed)
        return np.concatenate(parts)

    def point(self, vector):
        """Log weights, means and covariance roots of a coordinate vector."""
        n_components = len(self.roots)
        d = self.roots[0].shape[0]
        log_weights = vector[:n_components] - logsumexp(vector[:n_components])
        offset, means, roots = n_components, [], []
        size = d * (d + 1) // 2
        for root in self.roots:
            means.append(root @ vector[offset : offset + d])
            packed = vector[offset + d : offset + d + size].copy()
            packed[self.diag] = np.exp(np.clip(packed[self.diag], -300, 300))
            chol = np.zeros((d, d))
            chol[self.tril] = packed
            roots.append(root @ chol)
            offset += d + size
        return log_weights, means, roots


def _parameters(components, log_weights):
    means = np.array([c.mean_ for c in components])
    covariances = np.array([c.covariance_ for c in components])
    return log_weights, means, covariances


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------


class GradientGaussianMixture(DensityMixin, BaseEstimator):
    """Finite mixture of multivariate normals fitted by exact maximum likelihood.

    A drop-in for :class:`~sklearn.mixture.GaussianMixture` (same parameters,
    fitted attributes and methods) that also accepts missing values (NaN),
    sample weights, ``shrinkage`` and the factor model, and that runs EM to
    the maximum rather than to a small change of the objective.

    The mixture is a composition of the package's estimators: each component
    is a :class:`GradientGaussian` (in :attr:`estimators_`) which the M-step
    refits through its public ``fit(X, sample_weight=w * resp[:, k])``
    (with NaN warm-started, ``warm_start=True``, from its previous solution;
    on complete data its pilot is the closed form), and which the E-step scores
    through ``score_samples``. With NaN a component's density is the
    marginal density of the row's observed entries, integrated out
    analytically, so EM over the component labels alone is the exact EM of
    the observed-data likelihood (no imputation). The mixing weights are the
    weighted means of the responsibilities.

    EM converges linearly, and slowly where the components overlap; an
    objective that barely changes is then a plateau, not the maximum. The
    EM map is therefore accelerated by SQUAREM (Varadhan and Roland, 2008,
    scheme S3): two EM steps give a secant estimate of the step to the fixed
    point, which is taken in whitened coordinates of the parameters (see
    ``tol``) and stabilised by one more EM step; it is accepted only if its
    log-likelihood is not below the one of the plain EM step (otherwise the
    plain EM steps are kept), so the log-likelihood never decreases
    (up to ``reg_covar``, as in ``GaussianMixture``).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.

    covariance_type : {'full', 'diag', 'spherical', 'factor', 'tied'}, \
            default='full'
        Covariance structure of every component, as in
        :class:`GradientGaussian`; ``'factor'`` is ``W W^T + diag(psi)`` with
        ``n_factors`` columns in ``W``. ``'tied'`` (one covariance shared by
        the components) is not available yet and raises a ValueError: use
        ``'full'``, or ``GaussianMixture(covariance_type='tied')`` on complete
        data.

    n_factors : int, default=None
        Number of factors of ``covariance_type='factor'`` (see
        :class:`GradientGaussian`); ignored otherwise.

    tol : float, default=1e-6
        Convergence tolerance on the estimated distance to the maximum. Each
        SQUAREM cycle starts at a point ``theta_0`` and takes two EM steps
        (``r = theta_1 - theta_0``, ``v = theta_2 - 2 theta_1 + theta_0``), in
        coordinates whitened at ``theta_0``: means in standard deviations of
        their component, covariances by the log-diagonal Cholesky factor of
        ``L0^{-1} S L0^{-T}`` (relative changes), mixing weights as their
        logarithms. EM converges linearly with a rate ``rho``, so the
        distance to the fixed point is about ``|r| / (1 - rho)``, and
        ``|r|_2 / |v|_2`` estimates ``1 / (1 - rho)``. The fit has converged
        when ``max(1, |r|_2 / |v|_2) * max|r|`` is at most ``tol``: no
        parameter is more than about ``tol`` (in those units) from the
        fixed point, and the mean log-likelihood is within about ``tol**2``
        of its maximum. Unlike the change in the objective
        (``GaussianMixture``'s ``tol``), this does not stop on a plateau.

    reg_covar : float, default=1e-6
        Non-negative value added to the diagonal of each component's
        covariance in the M-step (a penalty of :class:`GradientGaussian`
        whose optimum does exactly that), as in ``GaussianMixture``.

    shrinkage : float, default=0.0
        Shrinkage of each component's covariance towards a scaled identity
        (see :class:`GradientGaussian`), applied in every M-step.

    max_iter : int, default=100
        Maximum number of EM steps (M-steps) per initialisation; a SQUAREM
        cycle takes two or three.

    n_init : int, default=1
        Number of initialisations; the fit with the largest log-likelihood
        is kept.

    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the initial responsibilities are chosen, as in
        ``GaussianMixture`` (with ``sample_weight``, weighted k-means and
        k-means++). With NaN they are computed on a copy of ``X`` with each
        missing entry replaced by its feature's weighted mean, as are the
        starting means and covariances; the EM steps then use the exact
        marginal densities.

    weights_init : array-like of shape (n_components,), default=None
        Initial mixing weights (else from ``init_params``).

    means_init : array-like of shape (n_components, n_features), default=None
        Initial means (else from ``init_params``).

    precisions_init : array-like, default=None
        Initial precision matrices, shaped as ``GaussianMixture``'s:
        ``(n_components,)`` for 'spherical', ``(n_components, n_features)``
        for 'diag', ``(n_components, n_features, n_features)`` for 'full' and
        'factor' (else from ``init_params``).

    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.

    warm_start : bool, default=False
        If True and the estimator is fitted, ``fit`` starts from the previous
        solution (one initialisation, ``n_init`` is ignored).

    verbose : int, default=0
        If positive, print the log-likelihood and the distance estimate
        every ``verbose_interval`` SQUAREM cycles.

    verbose_interval : int, default=10
        Number of cycles between progress lines.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights.

    means_ : ndarray of shape (n_components, n_features)
        Component means.

    covariances_ : ndarray
        Component covariances: ``(n_components,)`` for 'spherical',
        ``(n_components, n_features)`` for 'diag',
        ``(n_components, n_features, n_features)`` for 'full' and 'factor'.

    precisions_ : ndarray
        Inverses of ``covariances_``, of the same shape.

    precisions_cholesky_ : ndarray
        Cholesky factors of the precisions, as ``GaussianMixture``'s: for
        'full' and 'factor' the upper-triangular ``U`` with
        ``precisions_[k] = U U^T``; ``1 / sqrt(covariances_)`` otherwise.

    estimators_ : list of GradientGaussian
        The fitted components (their ``mean_``, ``covariance_`` and, for
        'factor', ``components_`` and ``noise_variance_``).

    converged_ : bool
        Whether the best initialisation met ``tol``.

    n_iter_ : int
        Number of EM steps of the best initialisation.

    lower_bound_ : float
        Mean log-likelihood per unit weight of the training data at the
        fitted parameters (the observed-data log-likelihood with NaN).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.mixture.GaussianMixture : Gaussian mixture fitted by EM (complete
        data only).
    GradientGaussian : One multivariate normal, the mixture's component.

    References
    ----------
    R. Varadhan and C. Roland (2008), "Simple and globally convergent methods
    for accelerating the convergence of any EM algorithm", Scandinavian
    Journal of Statistics 35(2), 335-353.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mvn import GradientGaussianMixture
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.randn(200, 2), rng.randn(200, 2) + [6.0, 0.0]])
    >>> X[rng.rand(*X.shape) < 0.2] = np.nan
    >>> X = X[~np.isnan(X).all(axis=1)]
    >>> model = GradientGaussianMixture(n_components=2, random_state=0).fit(X)
    >>> model.converged_
    True
    >>> np.sort(model.means_[:, 0]).round(0)
    array([0., 6.])
    >>> model.predict_proba(X[:3]).sum(axis=1)
    array([1., 1., 1.])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [
            StrOptions({"full", "diag", "spherical", "factor", "tied"})
        ],
        "n_factors": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "shrinkage": [Interval(Real, 0.0, 1.0, closed="both")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "k-means++", "random", "random_from_data"})
        ],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        n_factors=None,
        tol=1e-6,
        reg_covar=1e-6,
        shrinkage=0.0,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_factors = n_factors
        self.tol = tol
        self.reg_covar = reg_covar
        self.shrinkage = shrinkage
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimators_")

    # -- fitting ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture by (SQUAREM-accelerated) EM to the maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN marks a missing entry (missing at random; every
            row needs an observed entry).

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights equal repeated rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        state = dict(vars(self))
        try:
            self._fit(X, sample_weight)
        except BaseException:
            vars(self).clear()
            vars(self).update(state)
            raise
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the mixture and return the most likely component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (NaN marks a missing entry).

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _fit(self, X, sample_weight):
        if self.covariance_type == "tied":
            raise ValueError(
                "covariance_type='tied' is not available yet in "
                "GradientGaussianMixture (one covariance shared by the components "
                "is not an exact composition of GradientGaussian fits with "
                "missing values). Use covariance_type='full', or "
                "sklearn.mixture.GaussianMixture(covariance_type='tied') on "
                "complete data."
            )
        X = validate_with_nan(self, X, reset=True).astype(np.float64, copy=False)
        check_missing(X)
        n_samples = X.shape[0]
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_samples}; use fewer "
                "n_components."
            )
        weights = check_sample_weight(sample_weight, n_samples)
        weights = np.ones(n_samples) if weights is None else weights / weights.max()
        if np.count_nonzero(weights) < self.n_components:
            raise ValueError(
                f"Only {np.count_nonzero(weights)} rows have a positive weight, "
                f"fewer than n_components={self.n_components}; use fewer "
                "n_components."
            )
        missing = np.isnan(X)
        never = np.flatnonzero((~missing & (weights > 0)[:, None]).sum(axis=0) == 0)
        if never.size:
            raise ValueError(
                f"Features {never[:10].tolist()} are never observed (in rows of "
                "positive weight); drop them."
            )
        filled = X
        if missing.any():
            centre = np.nansum(weights[:, None] * X, axis=0) / (weights @ ~missing)
            filled = np.where(missing, centre, X)
        previous = self.__dict__.get("estimators_") if self.warm_start else None
        if previous is not None and self.means_.shape[1] != X.shape[1]:
            raise ValueError(
                f"warm_start=True but X has {X.shape[1]} features while the "
                f"previous fit had {self.means_.shape[1]}; set warm_start=False."
            )
        if previous is not None and len(previous) != self.n_components:
            previous = None
        random_state = check_random_state(self.random_state)
        n_init = 1 if previous is not None else self.n_init
        best, caught = None, []
        for _ in range(n_init):
            if previous is not None:
                copies = copy.deepcopy(previous)
                start = (np.log(self.weights_), copies, copies)
            else:
                start = self._start(filled, weights, random_state, missing.any())
            run_caught = []
            result = self._run(X, weights, start, run_caught)
            if best is None or result["lower_bound"] > best["lower_bound"]:
                best, caught = result, run_caught
        self._set_fitted(best, X, weights)
        for k, category, message in dict.fromkeys(caught):
            warn_at_caller(f"Mixture component {k}: {message}", category)
        if not best["converged"] and self.max_iter > 0:
            warn_at_caller(
                "Best performing initialization did not converge: the estimated "
                f"distance to the maximum is {best['distance']:.3g} > "
                f"tol={self.tol:g} after {best['n_iter']} EM steps. Increase "
                "max_iter or tol, try other init parameters, or check for "
                "degenerate data (then increase reg_covar or use fewer "
                "n_components).",
                ConvergenceWarning,
            )
        return self

    def _new_component(self, warm_start=True):
        # Complete data: the pilot of a cold fit is already the closed form.
        return GradientGaussian(
            covariance_type=self.covariance_type,
            n_factors=self.n_factors,
            shrinkage=self.shrinkage,
            reg_covar=self.reg_covar,
            warm_start=warm_start,
        )

    def _start(self, filled, weights, random_state, warm):
        """Starting log weights and densities (GaussianMixture's rules)."""
        K, d = self.n_components, filled.shape[1]
        kind = _proxy_kind(self.covariance_type)
        resp = _initial_resp(filled, weights, K, self.init_params, random_state)
        log_weights, means, covs = _moments(filled, weights, resp, self.reg_covar, kind)
        if self.weights_init is not None:
            given = _check_init(self.weights_init, (K,), "weights_init")
            if np.any(given < 0) or not np.isclose(given.sum(), 1.0):
                raise ValueError(
                    "weights_init must be non-negative and sum to 1, got "
                    f"{given}; normalise it."
                )
            with np.errstate(divide="ignore"):
                log_weights = np.log(np.maximum(given, np.finfo(float).tiny))
        if self.means_init is not None:
            means = _check_init(self.means_init, (K, d), "means_init")
        if self.precisions_init is not None:
            covs = _covariances_from_precisions(
                self.precisions_init, self.covariance_type, K, d
            )
        densities = []
        for k in range(K):
            root = _cholesky(covs[k], k)
            densities.append(_gaussian_at(means[k], root, kind))
        components = [self._new_component(warm) for _ in range(K)]
        return log_weights, densities, components

    def _run(self, X, weights, start, caught):
        """SQUAREM-accelerated EM from one start; returns the best point."""
        log_weights, densities, components = start
        if self.max_iter == 0:
            # As GaussianMixture: the initial parameters, no EM step.
            components = [clone(c) for c in components]
            lower_bound, resp = _e_step(X, weights, log_weights, densities)
            log_weights = _m_step(X, weights, resp, components, caught)
            lower_bound, _ = _e_step(X, weights, log_weights, components)
            return dict(
                log_weights=log_weights,
                components=components,
                lower_bound=lower_bound,
                converged=False,
                n_iter=0,
                distance=np.inf,
            )
        kind = _proxy_kind(self.covariance_type)
        n_iter, step_max, distance, cycle = 0, 1.0, np.inf, 0
        # With NaN a component's fit is iterative: solve it to a tolerance
        # that follows the outer distance (0.1% of it, 1e-5 at most, 1% of
        # tol at least): a generalised EM step. (Looser inner fits cost more
        # EM steps than they save: 1%/1e-4 took 47 steps instead of 36.)
        inner = None if components[0].warm_start is False else 1e-5
        lower_bound, resp = _e_step(X, weights, log_weights, densities)
        params0 = self._params_of(densities, log_weights)
        converged = False
        while n_iter < self.max_iter:
            cycle += 1
            coords = _Coordinates(params0[2])
            vec0 = coords.vector(*params0)
            log_weights = _m_step(X, weights, resp, components, caught, inner)
            n_iter += 1
            params1 = _parameters(components, log_weights)
            vec1 = coords.vector(*params1)
            ll1, resp = _e_step(X, weights, log_weights, components)
            if n_iter >= self.max_iter:
                lower_bound = ll1
                distance = np.abs(vec1 - vec0).max()
                converged = distance <= self.tol
                break
            log_weights = _m_step(X, weights, resp, components, caught, inner)
            n_iter += 1
            params2 = _parameters(components, log_weights)
            vec2 = coords.vector(*params2)
            r, v = vec1 - vec0, vec2 - 2 * vec1 + vec0
            r_norm, v_norm = np.linalg.norm(r), np.linalg.norm(v)
            ratio = r_norm / v_norm if v_norm > 0 else 1.0
            distance = max(1.0, ratio) * np.abs(r).max()
            step = min(max(1.0, ratio), step_max)
            if self.verbose and cycle % self.verbose_interval == 0:
                print(
                    f"  cycle {cycle}: EM steps {n_iter}, mean log-likelihood "
                    f"{ll1:.12g}, distance {distance:.3g}, step {step:.3g}"
                )
            # A fixed point of inexact M-steps is only the maximum if they
            # were solved tightly: converged once the components' tolerance
            # is at most 1% of tol (1e-10 at least).
            used, tight = inner, max(1e-2 * self.tol, 1e-10)
            if inner is not None:
                inner = float(np.clip(1e-3 * distance, tight, 1e-5))
            if distance <= self.tol and (used is None or used <= tight):
                converged = True
                lower_bound, resp = _e_step(X, weights, log_weights, components)
                params0 = params2
                break
            accepted = step == 1.0
            if step > 1.0 and n_iter < self.max_iter:
                trial = self._extrapolated(coords, vec0, r, v, step, kind)
                if trial is not None:
                    t_weights, t_densities = trial
                    ll_t, resp_t = _e_step(X, weights, t_weights, t_densities)
                    # Below 1e-12 (relative) a mean log-likelihood cannot
                    # tell two points apart (rounding): accept there.
                    noise = 1e-12 * (1.0 + abs(ll1))
                    if np.isfinite(ll_t) and ll_t >= ll1 - noise:
                        accepted = True
                        log_weights = _m_step(
                            X, weights, resp_t, components, caught, inner
                        )
                        n_iter += 1
            if not accepted:
                step_max = max(1.0, step_max / 4)
            elif step >= step_max:
                step_max *= 4
            params0 = _parameters(components, log_weights)
            lower_bound, resp = _e_step(X, weights, log_weights, components)
        return dict(
            log_weights=log_weights,
            components=components,
            lower_bound=lower_bound,
            converged=converged,
            n_iter=n_iter,
            distance=distance,
        )

    def _params_of(self, densities, log_weights):
        return _parameters(densities, log_weights)

    @staticmethod
    def _extrapolated(coords, vec0, r, v, step, kind):
        """Densities at SQUAREM's point ``vec0 + 2 a r + a^2 v`` (or None)."""
        vector = vec0 + 2 * step * r + step**2 * v
        log_weights, means, roots = coords.point(vector)
        try:
            densities = [
                _gaussian_at(m, root, kind)
                for m, root in zip(means, roots, strict=True)
            ]
        except (ValueError, np.linalg.LinAlgError):
            return None
        return log_weights, densities

    def _set_fitted(self, result, X, weights):
        components = result["components"]
        log_weights = result["log_weights"]
        self.estimators_ = components
        self.weights_ = np.exp(log_weights)
        self.means_ = np.array([c.mean_ for c in components])
        covs = np.array([c.covariance_ for c in components])
        precs = np.array([c.precision_ for c in components])
        if self.covariance_type == "diag":
            covs = np.array([np.diag(c) for c in covs])
            precs = 1.0 / covs
            prec_chol = np.sqrt(precs)
        elif self.covariance_type == "spherical":
            covs = covs[:, 0, 0].copy()
            precs = 1.0 / covs
            prec_chol = np.sqrt(precs)
        else:
            prec_chol = np.array(
                [
                    solve_triangular(_cholesky(c, k), np.eye(len(c)), lower=True).T
                    for k, c in enumerate(covs)
                ]
            )
        self.covariances_ = covs
        self.precisions_ = precs
        self.precisions_cholesky_ = prec_chol
        self.converged_ = bool(result["converged"])
        self.n_iter_ = int(result["n_iter"])
        self.lower_bound_ = float(result["lower_bound"])
        # The weight of a component in rows' worth (of the mean positive weight).
        rows = self.weights_ * np.count_nonzero(weights)
        # A covariance whose smallest eigenvalue (in units of the data's
        # variances) is below 1e-10 is singular to the E-step's precision.
        scale = 1.0 / np.sqrt(np.nanvar(X, axis=0) + np.finfo(float).tiny)
        singular = [
            k
            for k, c in enumerate(result["components"])
            if np.linalg.eigvalsh(c.covariance_ * np.outer(scale, scale))[0] < 1e-10
        ]
        if singular:
            warn_at_caller(
                f"Mixture components {singular} collapsed onto a (nearly) "
                "singular covariance: their likelihood grows without bound on "
                "few rows. Increase reg_covar (GaussianMixture's default is "
                "1e-6) or set shrinkage > 0, or use fewer n_components.",
                ConvergenceWarning,
            )
        small = np.flatnonzero(rows < _MIN_ROWS)
        if small.size and self.n_components > 1:
            warn_at_caller(
                f"Mixture components {small.tolist()} collapsed: they hold the "
                f"weight of fewer than {_MIN_ROWS:g} rows "
                f"({np.round(rows[small], 3).tolist()}). Use fewer n_components, "
                "increase reg_covar, or try another init (random_state, "
                "n_init).",
                ConvergenceWarning,
            )

    # -- prediction ------------------------------------------------------------

    def _validated(self, X):
        check_is_fitted(self)
        X = validate_with_nan(self, X, reset=False).astype(np.float64, copy=False)
        check_missing(X)
        return X

    def _log_prob(self, X):
        return _weighted_log_prob(X, np.log(self.weights_), self.estimators_)

    def score_samples(self, X):
        """Log-density of each row under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log sum_k weights_[k] p_k(x)``; for a row with NaN, ``p_k`` is
            the marginal density of its observed entries.
        """
        return logsumexp(self._log_prob(self._validated(X)), axis=1)

    def score(self, X, y=None):
        """Mean log-likelihood per sample of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Responsibilities (rows sum to 1).
        """
        log_prob = self._log_prob(self._validated(X))
        with np.errstate(under="ignore"):
            return np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])

    def predict(self, X):
        """Most likely component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        return self._log_prob(self._validated(X)).argmax(axis=1)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (at least 1).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The draws, grouped by component (as ``GaussianMixture.sample``).

        y : ndarray of shape (n_samples,)
            The component of each draw.
        """
        check_is_fitted(self)
        if (
            not isinstance(n_samples, Integral)
            or isinstance(n_samples, bool)
            or n_samples < 1
        ):
            raise ValueError(
                f"n_samples must be an integer >= 1, got {n_samples!r}; pass the "
                "number of samples to draw."
            )
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_ / self.weights_.sum())
        draws, labels = [], []
        for k, (count, component) in enumerate(
            zip(counts, self.estimators_, strict=True)
        ):
            if count:
                draws.append(component.sample(int(count), random_state=rng))
                labels.append(np.full(count, k))
        return np.vstack(draws), np.concatenate(labels)

    def _n_parameters(self):
        d = self.n_features_in_
        per = {
            "full": d + d * (d + 1) // 2,
            "diag": 2 * d,
            "spherical": d + 1,
        }
        if self.covariance_type == "factor":
            k = self.estimators_[0].components_.shape[0]
            n_cov = d * k - k * (k - 1) // 2 + d
            return self.n_components * (d + n_cov) + self.n_components - 1
        return self.n_components * per[self.covariance_type] + self.n_components - 1

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        bic : float
            ``-2 * score(X) * n_samples + n_parameters * log(n_samples)``, as
            ``GaussianMixture.bic``.
        """
        scores = self.score_samples(X)
        return -2 * scores.sum() + self._n_parameters() * np.log(scores.shape[0])

    def aic(self, X):
        """Akaike information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples; NaN marks a missing entry.

        Returns
        -------
        aic : float
            ``-2 * score(X) * n_samples + 2 * n_parameters``, as
            ``GaussianMixture.aic``.
        """
        return -2 * self.score_samples(X).sum() + 2 * self._n_parameters()


def _check_init(value, shape, name):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape}, got {array.shape}; one entry per "
            "component (and feature)."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _covariances_from_precisions(precisions, covariance_type, K, d):
    """Covariances (K, d, d) from GaussianMixture-shaped ``precisions_init``."""
    if covariance_type == "spherical":
        prec = _check_init(precisions, (K,), "precisions_init")
        if np.any(prec <= 0):
            raise ValueError("precisions_init must be positive ('spherical').")
        return np.array([np.eye(d) / p for p in prec])
    if covariance_type == "diag":
        prec = _check_init(precisions, (K, d), "precisions_init")
        if np.any(prec <= 0):
            raise ValueError("precisions_init must be positive ('diag').")
        return np.array([np.diag(1.0 / p) for p in prec])
    prec = _check_init(precisions, (K, d, d), "precisions_init")
    covs = []
    for k in range(K):
        try:
            root = np.linalg.cholesky(prec[k])
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                f"precisions_init[{k}] is not symmetric positive definite; pass "
                "positive-definite precision matrices."
            ) from exc
        inv_root = np.linalg.inv(root)
        covs.append(inv_root.T @ inv_root)
    return np.array(covs)
