"""Row chunks and triangular algebra: the one home of both.

Every pass over the rows of ``X`` (statistics, log-densities, conditioning,
input checks) walks :func:`row_chunks`, so the chunk size is chosen in one
place. Every solve, product or inverse with a lower-triangular factor calls
the BLAS/LAPACK wrappers below, and the precision matrix is computed from the
factor in one way, :func:`precision_from_factor`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.linalg.blas import dtrmm, dtrsm
from scipy.linalg.lapack import dtrtri

# Rows per chunk are chosen so that one float64 chunk takes about this many
# bytes: small enough to stay in a core's cache (the chunk is written once and
# read by the BLAS product while still cached) and to keep fit's extra memory
# far below the size of X, large enough for efficient BLAS calls and a small
# Python overhead per chunk. Wide data get at least ``_MIN_CHUNK_ROWS`` rows,
# so that the rank-k update stays efficient.
_CHUNK_BYTES = 2**20
_MIN_CHUNK_ROWS = 2048
LOG_2PI = np.log(2.0 * np.pi)


# ---------------------------------------------------------------------------
# Row chunks
# ---------------------------------------------------------------------------


def chunk_rows(n_features, chunk_bytes=_CHUNK_BYTES):
    """Number of rows of a float64 chunk of about ``chunk_bytes`` bytes."""
    return max(_MIN_CHUNK_ROWS, int(chunk_bytes // (8 * max(n_features, 1))))


def row_chunks(n_rows, n_features=1, chunk_size=None):
    """Slices of consecutive rows that cover ``range(n_rows)``.

    Parameters
    ----------
    n_rows : int
        Number of rows to cover.
    n_features : int, default=1
        Width of a row (float64 entries); sets the default chunk size.
    chunk_size : int, default=None
        Rows per chunk; by default :func:`chunk_rows` of ``n_features``.

    Yields
    ------
    rows : slice
        ``slice(start, stop)`` with ``stop - start <= chunk_size``.
    """
    if chunk_size is None:
        chunk_size = chunk_rows(n_features)
    chunk_size = max(1, int(chunk_size))
    for start in range(0, n_rows, chunk_size):
        yield slice(start, min(start + chunk_size, n_rows))


def map_chunks(X, func, chunk_size=None):
    """``func`` applied to row chunks of ``X``, one float per row."""
    out = np.empty(X.shape[0])
    for rows in row_chunks(X.shape[0], X.shape[1], chunk_size):
        out[rows] = func(X[rows])
    return out


# ---------------------------------------------------------------------------
# Lower-triangular factors
# ---------------------------------------------------------------------------


def solve_lower(factor, rhs, trans=False):
    """``factor^{-1} rhs``, or ``factor^{-T} rhs``, for a lower-triangular factor.

    Calls BLAS ``trsm`` directly: LAPACK ``trtrs``, behind
    :func:`scipy.linalg.solve_triangular`, is threaded in OpenBLAS and can take
    milliseconds even for 10 x 10 systems when the cores are busy. The factor
    must have a non-zero diagonal (not checked).

    Parameters
    ----------
    factor : ndarray of shape (n, n)
        Lower triangular (the strict upper triangle is ignored).
    rhs : ndarray of shape (n,) or (n, k)
    trans : bool, default=False
        Solve with the transpose of ``factor``.

    Returns
    -------
    solution : ndarray of the shape of ``rhs``
    """
    rhs = np.asarray(rhs, dtype=np.float64)
    matrix = rhs[:, np.newaxis] if rhs.ndim == 1 else rhs
    solution = dtrsm(
        1.0, np.asarray(factor, dtype=np.float64), matrix, lower=1, trans_a=int(trans)
    )
    return solution[:, 0] if rhs.ndim == 1 else solution


def inverse_lower(factor):
    """Inverse of a lower-triangular factor with a non-zero diagonal.

    LAPACK ``trtri``: a third of the work of solving against the identity.
    """
    inverse, info = dtrtri(np.asarray(factor, dtype=np.float64), lower=1)
    if info != 0:
        raise ValueError(
            "factor is singular; the covariance factor must be invertible."
        )
    return np.tril(inverse)


def multiply_lower(factor, other):
    """``factor @ other`` for a lower-triangular ``factor`` (BLAS ``trmm``)."""
    return dtrmm(
        1.0,
        np.asarray(factor, dtype=np.float64),
        np.asarray(other, dtype=np.float64),
        lower=1,
    )


def precision_from_factor(factor):
    """``Lambda^{-1}`` and the precision ``S^{-1} = Lambda^{-T} Lambda^{-1}``.

    The one way the package inverts a covariance given its lower-triangular
    factor: one triangular inversion and one product, never an inversion of
    ``S``.

    Returns
    -------
    inverse : ndarray of shape (n, n)
        Lower-triangular ``Lambda^{-1}``.
    precision : ndarray of shape (n, n)
        Exactly symmetric.
    """
    inverse = inverse_lower(factor)
    precision = inverse.T @ inverse
    return inverse, 0.5 * (precision + precision.T)


# ---------------------------------------------------------------------------
# Row-chunk algebra with a lower-triangular factor
# ---------------------------------------------------------------------------


def squared_mahalanobis(X, mean, factor, chunk_size=None):
    """Squared Mahalanobis distance of each row of ``X`` to ``mean``.

    ``|z|^2`` with ``z = Lambda^{-1}(x - mean)``, computed in chunks: the
    residuals of a chunk are written into one reused float64 buffer (accurate
    for large means, float64 also for float32 input), multiplied there in place
    by the inverse triangular factor ``Lambda^{-1}`` (BLAS ``trmm``: half the
    work of a dense product; the covariance is never inverted), and reduced to
    their squared norms. The only temporary is one chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Lower-triangular factor with a positive diagonal.
    chunk_size : int, default=None
        Rows per chunk.

    Returns
    -------
    dist : ndarray of shape (n_samples,)
    """
    n_samples, n_features = X.shape
    out = np.empty(n_samples)
    if n_samples == 0:
        return out
    chunks = list(row_chunks(n_samples, n_features, chunk_size))
    mean = np.asarray(mean, dtype=np.float64)
    inverse = np.asfortranarray(inverse_lower(factor))
    buffer = np.empty((chunks[0].stop, n_features))
    # NaN or infinity in X give NaN or infinity, which the estimator checks.
    with np.errstate(invalid="ignore", over="ignore"):
        for rows in chunks:
            block = buffer[: rows.stop - rows.start]
            np.subtract(X[rows], mean, out=block)
            # block.T (F-contiguous) holds the residuals as columns; trmm
            # overwrites them with z = Lambda^{-1} (x - mean).
            z = dtrmm(1.0, inverse, block.T, lower=1, overwrite_b=1)
            np.einsum("ij,ij->j", z, z, out=out[rows])
    return out


def log_density(X, mean, factor, chunk_size=None):
    """Log-density of each row of ``X`` under ``N(mean, factor factor^T)``.

    ``-d/2 log 2 pi - log|det Lambda| - |z|^2 / 2`` with
    ``z = Lambda^{-1}(x - mean)``, ``|z|^2`` from :func:`squared_mahalanobis`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    mean : ndarray of shape (n_features,)
    factor : ndarray of shape (n_features, n_features)
        Lower-triangular factor with a positive diagonal.
    chunk_size : int, default=None
        Rows per chunk.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
    """
    n_features = X.shape[1]
    const = -0.5 * n_features * LOG_2PI - float(np.sum(np.log(np.diag(factor))))
    out = squared_mahalanobis(X, mean, factor, chunk_size)
    out *= -0.5
    out += const
    return out


def _sweep_inverse(a):
    """In-place inverse and log-determinant of a stack of symmetric positive
    definite matrices stored as ``a[i, j, p]`` (the stack on the last,
    contiguous axis; the upper triangle is read).

    The sweep operator on every pivot: sweeping all pivots of ``A`` gives
    ``-A^{-1}``, and the product of the pivots is ``|A|``. Each of the ``k``
    steps is a few array operations over the whole stack, which for small
    ``k`` beats one LAPACK call per matrix. ``k = 1`` and ``k = 2`` use the
    closed forms. Only ratios of entries and reciprocals of pivots are
    formed, so any scale of ``A`` representable in float64 works.
    """
    k = a.shape[0]
    if k == 1:
        logdet = np.log(a[0, 0])
        np.reciprocal(a, out=a)
        return a, logdet
    if k == 2:
        # Pivot, then Schur complement: no product of two entries, which
        # under- or overflows for extreme scales (unstandardised precisions).
        piv = a[0, 0].copy()
        up, low = a[0, 1] / piv, a[1, 0] / piv
        schur = a[1, 1] - a[1, 0] * up
        a[1, 1] = 1.0 / schur
        a[0, 1] = -up * a[1, 1]
        a[1, 0] = -low * a[1, 1]
        a[0, 0] = 1.0 / piv + up * low * a[1, 1]
        return a, np.log(piv) + np.log(schur)
    pivots = np.empty(a.shape[::2])
    outer = np.empty_like(a)
    for j in range(k):
        piv = np.reciprocal(a[j, j], out=pivots[j])
        # The swept matrix stays symmetric: row j doubles as column j.
        row = a[j]
        col = row * piv
        np.multiply(col[:, None, :], row[None, :, :], out=outer)
        a -= outer
        a[:, j] = col
        a[j] = col
        np.negative(piv, out=a[j, j])
    np.negative(a, out=a)
    # The pivots were replaced by their reciprocals: log|A| = -sum log(1/p).
    return a, -np.log(pivots).sum(axis=0)
