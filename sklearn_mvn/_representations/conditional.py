"""Conditioning a normal on each row's observed entries: conditional laws of
the missing blocks (means, draws), marginal log-densities and distances of
the observed entries, for any factor ``Lambda`` with ``S = Lambda Lambda^T``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np

from .._linalg import (
    LOG_2PI,
    _sweep_inverse,
    log_density,
    map_chunks,
    precision_from_factor,
    row_chunks,
)

# Budget (float64 entries) for the per-batch gathered blocks of the precision.
_BATCH_ENTRIES = 2**21

# ---------------------------------------------------------------------------
# Conditioning on the observed entries
# ---------------------------------------------------------------------------


def _batches(n_items, per_item):
    """Slices of at most ~_BATCH_ENTRIES / per_item items."""
    step = max(1, int(_BATCH_ENTRIES // max(per_item, 1)))
    for start in range(0, n_items, step):
        yield slice(start, min(start + step, n_items))


def _pair_gather(flat_precision, missing_t):
    """``P_mm`` of a stack of missing-index rows, stacked on the last axis:
    shape ``(k, k, n)`` for ``missing_t`` of shape ``(k, n)``."""
    d = int(round(np.sqrt(flat_precision.size)))
    return flat_precision[missing_t[:, None, :] * d + missing_t[None, :, :]]


def _inverse_pmm(precision, missing):
    """``P_mm^{-1}`` and ``log|P_mm|`` for a stack of missing-index rows of
    equal length ``k`` (batched, O(k^3) per row).

    The conditional law of the missing entries is ``N(mu_m - P_mm^{-1}
    [P (x - mu)]_m, P_mm^{-1})`` with ``x - mu`` set to 0 at the missing
    entries. The blocks are inverted by :func:`_sweep_inverse` with the stack
    on the last axis; the result is a view of shape ``(n, k, k)``.
    """
    flat = np.ascontiguousarray(precision).ravel()
    inv, logdet = _sweep_inverse(_pair_gather(flat, np.ascontiguousarray(missing.T)))
    return np.moveaxis(inv, 2, 0), logdet


def _take_rows(values, missing):
    """``values[i, missing[i]]`` for every row ``i``."""
    return np.take_along_axis(values, missing, axis=1)


def conditional_blocks(X, mean, precision):
    """The conditional law of each row's missing block, batch by batch.

    The one loop over rows with missing entries that conditioning shares
    (conditional means, draws from the normal or the t): rows with the same
    number ``k`` of missing entries are processed together, in batches of a
    few MiB.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows with NaN at missing entries.
    mean : ndarray of shape (n_features,)
    precision : ndarray of shape (n_features, n_features)
        ``P = S^{-1}``.

    Yields
    ------
    rows : ndarray of int
        Rows of the batch (indices into ``X``).
    missing : ndarray of int of shape (n_batch, k)
        Missing features of each row.
    resid : ndarray of shape (n_batch, n_features)
        ``x - mean`` with 0 at the missing entries.
    offset : ndarray of shape (n_batch, k)
        ``E[x_m | x_o] - mean_m = -P_mm^{-1} [P (x - mean)]_m``.
    pmm_inv : ndarray of shape (n_batch, k, k)
        The conditional covariance ``P_mm^{-1}``.
    log_det : ndarray of shape (n_batch,)
        ``log|P_mm|``.
    """
    mask = np.isnan(X)
    n_missing = mask.sum(axis=1)
    d = X.shape[1]
    # Rows grouped by k in one stable sort (increasing row order within k).
    order = np.argsort(n_missing, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(n_missing, minlength=d + 1))]
    flat_p = np.ascontiguousarray(precision).ravel()
    for k in range(1, d + 1):
        rows = order[bounds[k] : bounds[k + 1]]
        for part in _batches(rows.size, k * (d + k)):
            r = rows[part]
            row_mask = mask[r]
            miss = np.nonzero(row_mask)[1].reshape(r.size, k)
            resid = X[r] - mean
            resid[row_mask] = 0.0
            # P_mm stacked on the last axis for the vectorised sweep.
            inv, log_det = _sweep_inverse(
                _pair_gather(flat_p, np.ascontiguousarray(miss.T))
            )
            pull = _take_rows(resid @ precision, miss)
            offset = -np.einsum("kln,nl->nk", inv, pull)
            yield r, miss, resid, offset, np.moveaxis(inv, 2, 0), log_det


def conditional_fill(X, mean, factor):
    """Conditional expectation of the missing entries given the observed ones.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows with NaN at missing entries (at least one observed entry each).
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Lower-triangular factor of the covariance.

    Returns
    -------
    X_filled : ndarray of shape (n_samples, n_features)
        ``X`` with ``x_m = mu_m + S_mo S_oo^{-1} (x_o - mu_o)`` at the missing
        entries (computed as ``mu_m - P_mm^{-1} P_mo (x_o - mu_o)``).
    log_det_pmm : ndarray of shape (n_samples,)
        ``log|P_mm|`` of each row (0 for complete rows).
    n_missing : ndarray of shape (n_samples,)
    """
    X = np.array(X, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    _, precision = precision_from_factor(factor)
    n_missing = np.isnan(X).sum(axis=1)
    log_det = np.zeros(X.shape[0])
    for r, miss, _, offset, _, logdet in conditional_blocks(X, mean, precision):
        X[r[:, None], miss] = mean[miss] + offset
        log_det[r] = logdet
    return X, log_det, n_missing


def marginal_log_density(X, mean, factor):
    """Log-density of each row's observed entries under ``N(mean, S)``.

    Uses ``log p(x_o) = log N(x_hat; mu, S) + k/2 log(2 pi) - 1/2 log|P_mm|``
    with ``x_hat`` the row completed by its conditional expectation: one
    triangular solve per row and a ``k x k`` factorisation for ``k`` missing
    entries. Computed in chunks of rows.
    """

    def chunk(block):
        filled, log_det, n_missing = conditional_fill(block, mean, factor)
        return log_density(filled, mean, factor) + 0.5 * (n_missing * LOG_2PI - log_det)

    return map_chunks(X, chunk)


def marginal_mahalanobis(X, mean, factor):
    """Squared Mahalanobis distance of each row's observed entries.

    ``(x_o - mu_o)^T S_oo^{-1} (x_o - mu_o) = |Lambda^{-1}(x_hat - mu)|^2`` with
    ``x_hat`` the row completed by its conditional expectation. Computed in
    chunks of rows.
    """
    inv, _ = precision_from_factor(factor)

    def chunk(block):
        z = (conditional_fill(block, mean, factor)[0] - mean) @ inv.T
        return np.einsum("ij,ij->i", z, z)

    return map_chunks(X, chunk)


def _precision_of(factor):
    """``P = S^{-1}`` for ``S = factor @ factor.T``.

    A square lower-triangular factor is inverted directly
    (:func:`~._linalg.precision_from_factor`); any other factor
    (not triangular, or not square) through the Cholesky factor of ``S``.
    """
    factor = np.asarray(factor, dtype=np.float64)
    d = factor.shape[0]
    if factor.shape != (d, d) or np.any(np.triu(factor, 1)):
        factor = np.linalg.cholesky(factor @ factor.T)
    return precision_from_factor(factor)[1]


def conditional_draw(X, mean, factor, rng):
    """Draw each row's missing entries from their conditional normal law.

    Under ``N(mean, S)``, ``S = factor @ factor.T``, the missing entries ``m``
    of a row given its observed entries ``o`` are normal with mean
    ``mu_m + S_mo S_oo^{-1} (x_o - mu_o) = mu_m - P_mm^{-1} P_mo (x_o - mu_o)``
    and covariance ``S_mm - S_mo S_oo^{-1} S_om = P_mm^{-1}`` (``P = S^{-1}``).
    A draw is the conditional mean plus ``C z``, ``C C^T = P_mm^{-1}`` (the
    Cholesky factor) and ``z`` standard normal. Rows with the same number
    ``k`` of missing entries are processed together in batches of a few MiB,
    chunk by chunk, so no ``n x d`` temporary is made besides the output. A
    row with every entry missing is drawn from ``N(mean, S)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows with NaN at the missing entries.
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features_factor)
        Any factor of the covariance, ``S = factor @ factor.T`` (e.g. the
        lower-triangular ``factor_`` of the package's estimators).
    rng : numpy.random.RandomState
        Source of the standard normal draws, consumed chunk by chunk and,
        within a chunk, in order of increasing ``k``.

    Returns
    -------
    X_drawn : ndarray of shape (n_samples, n_features)
        A float64 copy of ``X`` with the missing entries drawn; observed
        entries are unchanged.
    """
    out = np.array(X, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    precision = _precision_of(factor)
    n_samples, d = out.shape
    for chunk in row_chunks(n_samples, d):
        block = out[chunk]
        for r, miss, _, offset, pmm_inv, _ in conditional_blocks(
            block, mean, precision
        ):
            k = miss.shape[1]
            # The batched sweep leaves P_mm^{-1} symmetric to round-off.
            pmm_inv = 0.5 * (pmm_inv + np.swapaxes(pmm_inv, 1, 2))
            chol = np.linalg.cholesky(pmm_inv)
            z = rng.standard_normal((r.size, k))
            draw = np.einsum("ikl,il->ik", chol, z)
            block[r[:, None], miss] = mean[miss] + offset + draw
    return out
