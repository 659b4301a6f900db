"""Sufficient statistics of a weighted sample: computed in chunks, mergeable.

The Gaussian log-likelihood depends on the data only through the weight sum
``W = sum_i w_i``, the weighted mean ``m`` and the weighted centred scatter
``C = sum_i w_i (x_i - m)(x_i - m)^T``. Everything that fits a model here
(``fit``, ``partial_fit``, Dask blocks, and the regularisation terms, which are
pseudo-statistics) builds one or more :class:`SufficientStats` and merges them;
the objective the optimiser calls sees statistics, never ``X``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy.linalg import solve_triangular

# Rows per chunk are chosen so that one float64 chunk takes about this many
# bytes: small enough to stay in cache and to keep fit's extra memory far below
# the size of X, large enough for efficient BLAS calls.
_CHUNK_BYTES = 2**21


def chunk_rows(n_features, chunk_bytes=_CHUNK_BYTES):
    """Number of rows of a float64 chunk of about ``chunk_bytes`` bytes."""
    return max(64, int(chunk_bytes // (8 * max(n_features, 1))))


class SufficientStats:
    """Weight sum, weighted mean and weighted centred scatter of a sample.

    Parameters
    ----------
    weight_sum : float
        Sum of the sample weights ``W`` (the number of samples when unweighted).
    mean : ndarray of shape (n_features,)
        Weighted mean ``m``.
    scatter : ndarray of shape (n_features, n_features)
        Weighted centred scatter ``sum_i w_i (x_i - m)(x_i - m)^T`` (not divided
        by ``W``).
    n_samples : int, default=0
        Number of rows these statistics were built from (bookkeeping only; the
        likelihood uses ``weight_sum``).
    """

    __slots__ = ("weight_sum", "mean", "scatter", "n_samples")

    def __init__(self, weight_sum, mean, scatter, n_samples=0):
        self.weight_sum = float(weight_sum)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scatter = np.asarray(scatter, dtype=np.float64)
        self.n_samples = int(n_samples)

    @property
    def n_features(self):
        return self.mean.shape[0]

    @classmethod
    def empty(cls, n_features):
        """Statistics of an empty sample (the identity of :meth:`merge`)."""
        return cls(0.0, np.zeros(n_features), np.zeros((n_features, n_features)))

    @classmethod
    def from_array(cls, X, sample_weight=None, chunk_size=None):
        """Compute the statistics of ``X`` in one chunked pass.

        Each chunk is centred on its own mean (float64, also for float32 input)
        and merged with the pairwise update of :meth:`merge`, so the result is
        accurate for data whose mean is large compared with its spread, and no
        temporary larger than one chunk is created.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Finite data.
        sample_weight : ndarray of shape (n_samples,), default=None
            Non-negative weights; ``None`` means unit weights.
        chunk_size : int, default=None
            Rows per chunk; by default about 2 MiB of float64 per chunk.

        Returns
        -------
        stats : SufficientStats
        """
        n_samples, n_features = X.shape
        if chunk_size is None:
            chunk_size = chunk_rows(n_features)
        total = cls.empty(n_features)
        # Data too large to square overflow to inf here; the estimator checks
        # the statistics and raises an error that says how to rescale.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n_samples, chunk_size):
                stop = min(start + chunk_size, n_samples)
                block = X[start:stop]
                w = None if sample_weight is None else sample_weight[start:stop]
                total = total.merge(_chunk_stats(block, w))
        return total

    def merge(self, other):
        """Statistics of the union of two samples (Chan et al.'s pairwise update).

        Parameters
        ----------
        other : SufficientStats or PatternStats
            Statistics per missingness pattern merge on their side (the union
            is commutative), so code that only calls ``merge`` accepts both.

        Returns
        -------
        merged : SufficientStats or PatternStats
        """
        if not isinstance(other, SufficientStats):
            return other.merge(self)
        w_a, w_b = self.weight_sum, other.weight_sum
        n_samples = self.n_samples + other.n_samples
        if w_b == 0.0:
            return SufficientStats(
                w_a, self.mean, self.scatter + other.scatter, n_samples
            )
        if w_a == 0.0:
            return SufficientStats(
                w_b, other.mean, self.scatter + other.scatter, n_samples
            )
        weight = w_a + w_b
        delta = other.mean - self.mean
        mean = self.mean + delta * (w_b / weight)
        scatter = self.scatter + other.scatter
        scatter += np.outer(delta, delta * (w_a * w_b / weight))
        return SufficientStats(weight, mean, scatter, n_samples)

    def scaled(self, factor):
        """Statistics with every weight multiplied by ``factor`` (>= 0)."""
        return SufficientStats(
            self.weight_sum * factor,
            self.mean,
            self.scatter * factor,
            self.n_samples,
        )

    def whitened(self, shift, chol):
        """Statistics of ``chol^{-1} (x - shift)`` for lower-triangular ``chol``.

        The Gaussian likelihood is affine equivariant: the negative
        log-likelihood of ``(mean, factor)`` on the original statistics equals
        that of ``(chol^{-1}(mean - shift), chol^{-1} factor)`` on the whitened
        ones plus ``weight_sum * log|det chol|``.
        """
        mean = solve_triangular(chol, self.mean - shift, lower=True)
        half = solve_triangular(chol, self.scatter, lower=True)
        scatter = solve_triangular(chol, half.T, lower=True)
        scatter = 0.5 * (scatter + scatter.T)
        return SufficientStats(self.weight_sum, mean, scatter, self.n_samples)

    def covariance(self):
        """Weighted maximum-likelihood covariance ``scatter / weight_sum``."""
        return self.scatter / self.weight_sum

    def __repr__(self):
        return (
            f"SufficientStats(weight_sum={self.weight_sum!r}, "
            f"n_features={self.n_features}, n_samples={self.n_samples})"
        )


def compute_stats(X, sample_weight=None):
    """Statistics of a validated array: the one entry point that builds them.

    ``fit``, ``partial_fit`` and every Dask block build their statistics here
    and combine them only with ``.merge``, so a richer statistics object (for
    example per-pattern statistics of data with missing values) flows through
    all of them by changing this function alone.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data.
    sample_weight : ndarray of shape (n_samples,), default=None
        Validated non-negative weights; ``None`` means unit weights.

    Returns
    -------
    stats : SufficientStats or PatternStats
        Mergeable statistics of ``X``: per missingness pattern when ``X`` has
        NaN.
    """
    # Imported here: ``_missing`` builds on this module.
    from ._missing import build_stats

    return build_stats(X, sample_weight)


def _chunk_stats(block, weights):
    """Statistics of one chunk, accumulated in float64.

    Uses the corrected two-pass algorithm: the rows are centred on the first
    estimate of the mean, and the mean ``c`` of the residuals then corrects
    both the mean and the scatter (``C^T C - W c c^T``). A column-wise sum
    carries a rounding error that grows with the number of rows; without the
    correction it would bias the scatter by ``W (error)^2``, giving a constant
    feature a spurious variance of order ``(n eps mean)^2``. With it, a constant
    feature gets its exact value as mean and a variance of 0 (unweighted) or of
    order ``eps^2 (n eps mean)^2`` (weighted).
    """
    block = np.asarray(block, dtype=np.float64)
    n_features = block.shape[1]
    if weights is None:
        # Column sums as matrix-vector products: much faster than a reduction
        # along axis 0, and the correction makes up for their rounding.
        weight_sum = float(block.shape[0])
        ones = np.ones(block.shape[0])
        mean = (ones @ block) / weight_sum
        centred = block - mean
        correction = (ones @ centred) / weight_sum
    else:
        weights = np.asarray(weights, dtype=np.float64)
        weight_sum = float(weights.sum())
        if weight_sum == 0.0:
            return SufficientStats(
                0.0,
                np.zeros(n_features),
                np.zeros((n_features, n_features)),
                block.shape[0],
            )
        mean = (weights @ block) / weight_sum
        centred = block - mean
        correction = (weights @ centred) / weight_sum
        centred *= np.sqrt(weights)[:, np.newaxis]
    scatter = centred.T @ centred
    scatter -= np.outer(correction, correction * weight_sum)
    return SufficientStats(weight_sum, mean + correction, scatter, block.shape[0])
