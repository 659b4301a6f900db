"""Starting points of the solvers.

Robust starts (weighted coordinate-wise median and MAD of a strided
subsample) for the t; probabilistic PCA from a randomised subspace iteration
and profile (EM) steps for the factor model.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._likelihoods.normal_factor import _OVERSAMPLE, start_probe
from .._linalg import row_chunks
from .._representations.low_rank import MIN_NOISE

# Columns of the start's subspace iteration beyond the factors, its largest
# number of products after the first and the relative change of the top
# Ritz values at which it stops.


_SUBSPACE_ITER = 4


_RITZ_RTOL = 1e-2


def _top_subspace(matvec, d, k, random_state, first=None):
    """Top-``k`` eigenpairs of a PSD operator by randomised subspace iteration.

    From ``Y = C G`` for ``G =`` :func:`start_probe` (``first``, computed
    here unless given with the right shape), each step orthonormalises
    ``Q = orth(Y)`` and computes ``Y = C Q``; the Rayleigh-Ritz values of
    ``Q^T Y`` come with it, and the iteration stops once the top ``k`` change by at most
    ``_RITZ_RTOL`` (relative) between steps, after ``_SUBSPACE_ITER`` steps at
    most. A clear gap between the factors' eigenvalues and the rest (the case
    the factor model is for) takes two steps.
    """
    if first is None or first.shape != (d, min(d, k + _OVERSAMPLE)):
        first = matvec(start_probe(d, k, random_state))
    Y = first
    previous = None
    for _ in range(_SUBSPACE_ITER):
        basis, _ = np.linalg.qr(Y)
        Y = matvec(basis)
        small = basis.T @ Y
        eigval, eigvec = np.linalg.eigh(0.5 * (small + small.T))
        order = np.argsort(eigval)[::-1][:k]
        top = eigval[order]
        if previous is not None and np.all(
            np.abs(top - previous) <= _RITZ_RTOL * np.abs(top)
        ):
            break
        previous = top
    return top, basis @ eigvec[:, order]


def ppca_start(matvec, diag, n_factors, random_state=0, floor=MIN_NOISE, first=None):
    """Probabilistic-PCA start on a covariance given by products.

    ``matvec(Q)`` returns ``C Q`` for the (standardised) covariance ``C`` whose
    diagonal is ``diag``; ``first`` is optionally ``C G`` for ``G =``
    :func:`start_probe` (computed with other quantities in one pass). The top
    eigenpairs ``(l_i, u_i)`` come from a randomised subspace iteration (no
    ``d x d`` factorisation); ``W = U (L - s^2)^{1/2}`` with ``s^2`` the mean of
    the other eigenvalues, ``psi = diag - rowsum(W^2)`` floored.
    """
    d = diag.shape[0]
    k = n_factors
    eigval, eigvec = _top_subspace(matvec, d, k, random_state, first)
    rest = max(float(np.sum(diag) - np.sum(eigval)), 0.0) / max(d - k, 1)
    rest = max(rest, 1e-3 * float(np.mean(diag)))
    W = eigvec * np.sqrt(np.clip(eigval - rest, 1e-3 * rest, None))
    psi = np.maximum(diag - np.sum(W**2, axis=1), np.maximum(floor, 0.1 * rest))
    return W, psi


# Closed-form profile steps of a restart (see :func:`profile_start`): they
# stop once no noise variance moves by more than _PROFILE_RTOL of its
# feature's variance in a step, after _PROFILE_STEPS steps at most. The steps
# are EM steps, slow along weak factors: a fixed count of 100 left some
# restarts in the basin of a Heywood point below the maximum the steps lead to
# (k = 5 on rank-2 data, tests/test_factor.py).
_PROFILE_STEPS = 1000


_PROFILE_RTOL = 1e-4


def profile_start(
    matvec,
    diag,
    noise_variance,
    n_factors,
    lower,
    n_steps=_PROFILE_STEPS,
    rtol=_PROFILE_RTOL,
):
    """Profile-likelihood (closed-form) iterations of the factor model.

    For fixed noise variances ``psi`` the loadings maximising the likelihood
    of a covariance ``C`` come from the top eigenpairs ``(l_i, u_i)`` of
    ``Psi^{-1/2} C Psi^{-1/2}``: ``W = Psi^{1/2} U (L - 1)_+^{1/2}``; then
    ``psi = diag(C) - rowsum(W^2)``, bounded below by ``lower``. Each step
    takes one subspace-iteration step (products ``matvec(Q) = C Q``, no
    ``d x d`` factorisation) warm-started at the previous subspace, so a step
    costs two products with ``C``. These iterations follow the profile
    likelihood, which from a start with large noise variances tends to stay
    off Heywood boundaries where the gradient fit may end. They stop once no
    ``psi_j`` moves by more than ``rtol diag_j`` in a step, after ``n_steps``
    steps at most.

    Returns
    -------
    W : ndarray of shape (n_features, n_factors)
    psi : ndarray of shape (n_features,)
    """
    d = diag.shape[0]
    k = n_factors
    psi = np.maximum(noise_variance, lower)
    basis = None
    for _ in range(n_steps):
        root = np.sqrt(psi)
        if basis is None:
            Y = matvec(start_probe(d, k) / root[:, np.newaxis]) / root[:, np.newaxis]
        else:
            Y = matvec(basis / root[:, np.newaxis]) / root[:, np.newaxis]
        basis, _ = np.linalg.qr(Y)
        Y = matvec(basis / root[:, np.newaxis]) / root[:, np.newaxis]
        small = basis.T @ Y
        eigval, eigvec = np.linalg.eigh(0.5 * (small + small.T))
        order = np.argsort(eigval)[::-1]
        basis = basis @ eigvec[:, order]
        top, U = eigval[order][:k], basis[:, :k]
        W = root[:, np.newaxis] * U * np.sqrt(np.maximum(top - 1.0, 0.0))
        new_psi = np.maximum(diag - np.sum(W**2, axis=1), lower)
        change = np.max(np.abs(new_psi - psi) / diag)
        psi = new_psi
        if change <= rtol:
            break
    return W, psi


# Entries of the subsample sorted at once by the robust start (its
# temporaries are a few arrays of this many entries, whatever the width).
_MEDIAN_BLOCK = 2**17


def _weighted_median(values, weights):
    """Column-wise weighted median of ``values`` (NaN entries ignored), in
    blocks of columns."""
    m, d = values.shape
    step = max(1, _MEDIAN_BLOCK // max(m, 1))
    if step >= d:
        return _weighted_median_block(values, weights)
    return np.concatenate(
        [
            _weighted_median_block(values[:, j : j + step], weights)
            for j in range(0, d, step)
        ]
    )


def _weighted_median_block(values, weights):
    order = np.argsort(np.where(np.isnan(values), np.inf, values), axis=0)
    sorted_vals = np.take_along_axis(values, order, axis=0)
    w = np.where(np.isnan(values), 0.0, weights[:, None])
    sorted_w = np.take_along_axis(w, order, axis=0)
    cum = np.cumsum(sorted_w, axis=0)
    half = 0.5 * cum[-1]
    idx = np.argmax(cum >= half[None, :], axis=0)
    return sorted_vals[idx, np.arange(values.shape[1])]


def robust_start(sample, weights=None):
    """Coordinate-wise weighted median and MAD (as a standard deviation).

    Parameters
    ----------
    sample : ndarray of shape (m, n_features)
        Rows (e.g. a strided subsample of ``X``), NaN allowed.
    weights : ndarray of shape (m,), default=None

    Returns
    -------
    center : ndarray of shape (n_features,)
    spread : ndarray of shape (n_features,)
        ``1.4826 * MAD``; 0 where half the weight sits on one value.
    """
    sample = np.asarray(sample, dtype=np.float64)
    weights = np.ones(sample.shape[0]) if weights is None else weights
    center = _weighted_median(sample, weights)
    spread = np.empty_like(center)
    step = max(1, _MEDIAN_BLOCK // max(sample.shape[0], 1))
    for j in range(0, sample.shape[1], step):
        cols = slice(j, j + step)
        dev = np.abs(sample[:, cols] - center[cols])
        spread[cols] = 1.4826 * _weighted_median(dev, weights)
    return center, spread


def start_point(X, representation, sample_weight=None, max_rows=8192):
    """Robust start from a strided subsample: median, MAD (diagonal scale).

    Features whose MAD is 0 (e.g. discrete data) get their standard deviation
    on the subsample instead (0 for a constant feature).

    Returns
    -------
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Diagonal, with the representation's standardising scale (one value
        for ``'spherical'``).
    """
    center, scale = start_scale(X, representation, sample_weight, max_rows)
    return center, np.diag(scale)


def start_scale(X, representation, sample_weight=None, max_rows=8192):
    """:func:`start_point` with the diagonal scale as a vector (no ``d x d``
    array)."""
    n = X.shape[0]
    step = max(1, n // max_rows)
    sample = np.asarray(X[::step], dtype=np.float64)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight[::step], dtype=np.float64)
        if not weights.sum() > 0:
            sample, weights = np.asarray(X, dtype=np.float64), sample_weight
    center, spread = robust_start(sample, weights)
    zero = ~(spread > 0)
    # Scales beyond 1e154 overflow in the squares below; the caller's range
    # check says what to do.
    with np.errstate(over="ignore"):
        if zero.any():
            w = np.ones(sample.shape[0]) if weights is None else weights
            obs = ~np.isnan(sample[:, zero])
            vals = np.where(obs, sample[:, zero], 0.0)
            ww = w[:, None] * obs
            mu = (ww * vals).sum(0) / np.maximum(ww.sum(0), 1e-300)
            var = (ww * (vals - mu) ** 2).sum(0) / np.maximum(ww.sum(0), 1e-300)
            spread[zero] = np.sqrt(var)
        return center, representation.standardising_scale(spread**2)


def factor_start(sample, sample_weight, center, spread, n_factors):
    """Start ``(W, psi)`` of the factor t from a subsample: probabilistic PCA.

    The subsample is standardised by the robust ``center`` and ``spread`` (NaN read as
    the centre) and each row weighted by the Cauchy weight ``(d + 1) / (1 + |z|^2)`` of
    its standardised distance, so a few gross outliers do not set the directions. The
    top eigenvectors come from the factor model's randomised subspace iteration
    (:func:`~._solve.starts.ppca_start`): O(m d k), no ``d x d`` array, and
    the standardised rows are formed chunk by chunk (no copy of the subsample)."""

    m, d = sample.shape

    def standardised(rows, shift=0.0, scale=1.0):
        Z = np.subtract(sample[rows], center, dtype=np.float64)
        Z /= spread
        np.nan_to_num(Z, copy=False, nan=0.0)
        Z -= shift
        Z /= scale
        return Z

    chunks = list(row_chunks(m, d, max(64, 2**20 // (8 * d))))
    w = np.ones(m) if sample_weight is None else np.array(sample_weight, float)
    for rows in chunks:
        Z = standardised(rows)
        w[rows] *= (d + 1.0) / (1.0 + np.einsum("ij,ij->i", Z, Z))
    w /= w.sum()
    shift = np.zeros(d)
    for rows in chunks:
        shift += w[rows] @ standardised(rows)
    second = np.zeros(d)
    for rows in chunks:
        Z = standardised(rows, shift)
        second += np.einsum("i,ij,ij->j", w[rows], Z, Z)
    norms = np.sqrt(second)
    norms = np.where(norms > 0, norms, 1.0)

    def products(Q):
        out = np.zeros_like(Q)
        for rows in chunks:
            Z = standardised(rows, shift, norms)
            out += Z.T @ (w[rows, np.newaxis] * (Z @ Q))
        return out

    W0, psi0 = ppca_start(products, np.ones(d), n_factors, 0, MIN_NOISE)
    scale = spread * norms
    return W0 * scale[:, np.newaxis], psi0 * scale**2
