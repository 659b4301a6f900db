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
from scipy.linalg.blas import dgemv, dsyrk

from .._linalg import (  # noqa: F401 (re-exported for the tests)
    chunk_rows,
    inverse_lower,
    multiply_lower,
    row_chunks,
    solve_lower,
)

# Largest matrix-vector product (in elements) for the column sums: OpenBLAS
# runs smaller ones on one thread.
_SUM_ELEMENTS = 2**18

# The scatter is computed from moments about a shift ``c`` as
# ``A - W (m - c)(m - c)^T``, where ``A = sum w (x - c)(x - c)^T``; this loses
# about ``log10(kappa)`` digits with ``kappa = A_jj / C_jj = 1 + W (m_j -
# c_j)^2 / C_jj``. Unweighted float64 data whose first ``_PROBE_ROWS`` rows have
# ``kappa <= _MAX_KAPPA_UNSHIFTED`` for the shift 0 (e.g. centred or
# standardised data) are multiplied in place, without any copy; otherwise each
# chunk is first shifted by the mean of the first ``_PROBE_ROWS`` rows of
# positive weight (so ``kappa`` is about 1 for data in random order; rows of
# zero weight, which may be anywhere, never choose it) into a reused buffer. If
# the final ``kappa`` exceeds ``_MAX_KAPPA`` (e.g. sorted data whose first rows
# are far from the overall mean), or a variance vanished or came out negative
# while its raw moment did not (all digits lost), the moments are recomputed
# about the mean found, in a second pass (and a third if that mean was itself
# too inaccurate): the centred two-pass form, exact to rounding.
_MAX_KAPPA_UNSHIFTED = 16.0
_MAX_KAPPA = 1e4
# Passes about the mean found at most after the first one.
_MAX_REPAIRS = 2
# Rows of X (of positive weight) that choose the shift.
_PROBE_ROWS = 1024
# Weights are searched for rows of positive weight this many at a time.
_PROBE_SEARCH = 2**16


def set_slots(obj, state, **defaults):
    """Restore a pickled object with ``__slots__``, defaulting missing slots."""
    values = dict(defaults)
    for part in state if isinstance(state, tuple) else (state,):
        if part:
            values.update(part)
    for name, value in values.items():
        setattr(obj, name, value)


# Variances below this are subnormal or close to it: their square roots and
# inverses lose precision or overflow.
TINY_VARIANCE = 1e4 * np.finfo(np.float64).tiny


def check_range(variances, finite=True):
    """Raise a ValueError if moments over- or underflowed float64.

    The one range check of the statistics (complete data, patterns, and the
    Student-t's robust scales): ``finite`` is False when a mean or scatter
    is not finite; ``variances`` below :data:`TINY_VARIANCE` (but positive)
    cannot be represented accurately. Data beyond about 1e150 in magnitude,
    or with a spread below about 1e-151, fail here with advice to rescale.
    """
    with np.errstate(invalid="ignore"):
        finite = finite and bool(np.all(np.isfinite(variances)))
    if not finite:
        raise ValueError(
            "The mean or covariance of X overflows float64: the values of X are "
            "too large in magnitude (the squared spread must stay below 1e308). "
            "Rescale X, e.g. divide it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )
    tiny = np.flatnonzero((variances > 0) & (variances < TINY_VARIANCE))
    if tiny.size:
        raise ValueError(
            f"The variance of feature(s) {tiny[:10].tolist()} is below "
            f"{TINY_VARIANCE:.0e}, too small to be represented accurately in "
            "float64. Rescale X, e.g. multiply it by a power of ten or use "
            "sklearn.preprocessing.StandardScaler, and fit again."
        )


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
    mean_low : ndarray of shape (n_features,), default=None
        The rounding residue of ``mean``: the weighted mean is ``mean +
        mean_low`` to about twice the working precision (0 if None). Merging
        uses it, so the between-sample term of the scatter stays exact for
        means far from zero relative to the spread (a difference of two
        rounded means would lose ``log10(|mean| / spread)`` digits).
    weight_unit : float, default=1.0
        The weights these statistics were built from, divided by this power of
        four (see :func:`normalise_weights`): ``weight_sum`` and ``scatter`` are
        in units of ``weight_unit``. The likelihood depends only on ratios of
        weights, so the unit matters only when two samples are merged
        (:meth:`merge` brings them to a common unit first).
    """

    __slots__ = (
        "weight_sum",
        "mean",
        "scatter",
        "n_samples",
        "weight_unit",
        "mean_low",
    )

    def __init__(
        self, weight_sum, mean, scatter, n_samples=0, weight_unit=1.0, mean_low=None
    ):
        self.weight_sum = float(weight_sum)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.mean_low = (
            np.zeros_like(self.mean)
            if mean_low is None
            else np.asarray(mean_low, dtype=np.float64)
        )
        self.scatter = np.asarray(scatter, dtype=np.float64)
        self.n_samples = int(n_samples)
        self.weight_unit = float(weight_unit)

    @property
    def n_features(self):
        return self.mean.shape[0]

    def __setstate__(self, state):
        # Statistics pickled before ``weight_unit`` and ``mean_low`` existed
        # (e.g. kept by a fitted estimator for partial_fit) load with their
        # defaults.
        set_slots(self, state, weight_unit=1.0, mean_low=None)
        if self.mean_low is None:
            self.mean_low = np.zeros_like(self.mean)

    @classmethod
    def empty(cls, n_features):
        """Statistics of an empty sample (the identity of :meth:`merge`)."""
        return cls(0.0, np.zeros(n_features), np.zeros((n_features, n_features)))

    @classmethod
    def from_array(cls, X, sample_weight=None, chunk_size=None):
        """Compute the statistics of ``X`` in one chunked pass.

        The moments of ``X - c`` are accumulated in float64 (also for float32
        input) with in-place BLAS products, chunk by chunk, and the scatter is
        ``A - W (m - c)(m - c)^T``. The shift ``c`` is 0 (then the chunks of
        ``X`` are multiplied in place, without any copy) when that is accurate
        for the first rows, and otherwise the mean of the first rows of
        positive weight, so the result is accurate for data whose mean is large
        compared with its spread. If these rows were not representative
        (sorted data) and the subtraction lost more than about four digits, or
        a variance came out zero or negative while its raw moment did not, a
        second pass recomputes the moments about the mean found. The only
        temporary is one chunk.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Finite data.
        sample_weight : ndarray of shape (n_samples,), default=None
            Non-negative weights; ``None`` means unit weights.
        chunk_size : int, default=None
            Rows per chunk; by default about ``_CHUNK_BYTES`` of float64 per
            chunk (see :func:`chunk_rows`).

        Returns
        -------
        stats : SufficientStats
        """
        X = np.asarray(X)
        n_samples, n_features = X.shape
        if n_samples == 0:
            return cls.empty(n_features)
        if chunk_size is None:
            chunk_size = chunk_rows(n_features)
        chunk_size = max(1, min(int(chunk_size), n_samples))
        # NaN, infinity and data too large to square give non-finite statistics
        # here; the estimator checks them and raises an error that says what to
        # do.
        with np.errstate(over="ignore", invalid="ignore"):
            first, first_weights = _probe_rows(X, sample_weight)
            shift = _choose_shift(first, sample_weight is None, first_weights)
            weight_sum, second, sums = _shifted_moments(
                X, sample_weight, shift, chunk_size
            )
            stats, kappa = _moments_to_stats(weight_sum, second, sums, shift, n_samples)
            # Any loss of precision the statistics show (a cancellation factor
            # above _MAX_KAPPA, or a variance that came out negative) is
            # repaired by recomputing the moments about the mean found: the
            # centred (two-pass) form, exact to rounding. A second repair
            # covers a first mean that was itself too inaccurate.
            for _ in range(_MAX_REPAIRS):
                if not (kappa > _MAX_KAPPA and np.all(np.isfinite(stats.mean))):
                    break
                shift = stats.mean
                weight_sum, second, sums = _shifted_moments(
                    X, sample_weight, shift, chunk_size
                )
                stats, kappa = _moments_to_stats(
                    weight_sum, second, sums, shift, n_samples
                )
        return stats

    def merge(self, other):
        """Statistics of the union of two samples (Chan et al.'s pairwise update).

        Parameters
        ----------
        other : SufficientStats

        Returns
        -------
        merged : SufficientStats
        """
        n_samples = self.n_samples + other.n_samples
        # Statistics of zero weight (a chunk of zero-weight rows, or the
        # reg_covar pseudo-statistics) take the unit of the other side.
        if other.weight_sum == 0.0:
            return SufficientStats(
                self.weight_sum,
                self.mean,
                self.scatter + other.scatter,
                n_samples,
                self.weight_unit,
                self.mean_low,
            )
        if self.weight_sum == 0.0:
            return SufficientStats(
                other.weight_sum,
                other.mean,
                self.scatter + other.scatter,
                n_samples,
                other.weight_unit,
                other.mean_low,
            )
        unit = max(self.weight_unit, other.weight_unit)
        a, b = self.in_unit(unit), other.in_unit(unit)
        w_a, w_b = a.weight_sum, b.weight_sum
        if w_b == 0.0 or w_a == 0.0:  # one side negligible in the common unit
            kept = a if w_b == 0.0 else b
            return SufficientStats(
                kept.weight_sum,
                kept.mean,
                kept.scatter,
                n_samples,
                unit,
                kept.mean_low,
            )
        self, other = a, b
        weight = w_a + w_b
        # The difference of the two means from their high and low parts (the
        # high parts subtract exactly when close), and the new mean as a sum
        # with its rounding residue (Knuth's two-sum).
        delta = (other.mean - self.mean) + (other.mean_low - self.mean_low)
        step = delta * (w_b / weight)
        mean, residue = _two_sum(self.mean, step)
        scatter = self.scatter + other.scatter
        scatter += np.outer(delta, delta) * (w_a * w_b / weight)
        return SufficientStats(
            weight, mean, scatter, n_samples, unit, residue + self.mean_low
        )

    def in_unit(self, unit):
        """The same statistics with weights in units of ``unit``.

        ``unit`` must be at least ``weight_unit`` (both powers of four): the
        weights are multiplied by ``weight_unit / unit <= 1``, exactly unless
        they become subnormal (then they are negligible in the new unit).
        """
        if unit == self.weight_unit:
            return self
        ratio = self.weight_unit / unit
        return SufficientStats(
            self.weight_sum * ratio,
            self.mean,
            self.scatter * ratio,
            self.n_samples,
            unit,
            self.mean_low,
        )

    def scaled(self, factor):
        """Statistics with every weight multiplied by ``factor`` (>= 0).

        The result is a set of pseudo-statistics in unit 1 (the objective's
        terms are built this way, e.g. the data per unit weight).
        """
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
        mean = solve_lower(chol, self.mean - shift)
        half = solve_lower(chol, self.scatter)
        scatter = solve_lower(chol, half.T)
        scatter = 0.5 * (scatter + scatter.T)
        return SufficientStats(
            self.weight_sum, mean, scatter, self.n_samples, self.weight_unit
        )

    def covariance(self):
        """Weighted maximum-likelihood covariance ``scatter / weight_sum``."""
        return self.scatter / self.weight_sum

    def __repr__(self):
        return (
            f"SufficientStats(weight_sum={self.weight_sum!r}, "
            f"n_features={self.n_features}, n_samples={self.n_samples})"
        )


def normalise_weights(sample_weight):
    """Weights divided by a power of four near their maximum, and that power.

    The likelihood depends only on ratios of weights, so a global scale of the
    weights must not change a fit; but weights of 1e300 or 1e-320 overflow or
    underflow the moments. Dividing by the power of four ``4^e <= max(w) <
    4^(e+1)`` is exact (up to weights that become subnormal, which are then
    negligible) and brings the largest weight into ``[1, 4)``; a power of four
    (not two) keeps the ratio of two units an exact square, so scatter roots
    (``sqrt(w) (x - m)``) are rescaled exactly too.

    Parameters
    ----------
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative finite weights.

    Returns
    -------
    weights : ndarray of shape (n_samples,) or None
    unit : float
        The power of four (1.0 for None or all-zero weights).
    """
    if sample_weight is None or sample_weight.shape[0] == 0:
        return sample_weight, 1.0
    largest = float(np.max(sample_weight))
    if not largest > 0.0:
        return sample_weight, 1.0
    _, exponent = np.frexp(largest)
    unit = float(np.ldexp(1.0, 2 * ((int(exponent) - 1) // 2)))
    if unit == 1.0:
        return sample_weight, 1.0
    return sample_weight / unit, unit


# ---------------------------------------------------------------------------
# One pass over the data
# ---------------------------------------------------------------------------


def _probe_rows(X, sample_weight):
    """The first ``_PROBE_ROWS`` rows of ``X`` of positive weight, and their
    weights (None when unweighted).

    Rows of zero weight do not belong to the sample: a shift chosen from them
    (possibly far from the data) would cost the moments their precision.
    """
    if sample_weight is None:
        return X[:_PROBE_ROWS], None
    found = []
    count = 0
    for start in range(0, sample_weight.shape[0], _PROBE_SEARCH):
        index = np.flatnonzero(sample_weight[start : start + _PROBE_SEARCH] > 0)
        index = index[: _PROBE_ROWS - count] + start
        found.append(index)
        count += index.size
        if count >= _PROBE_ROWS:
            break
    if not count:  # no row of positive weight: the statistics are empty
        return X[:1], None
    index = np.concatenate(found)
    return X[index], sample_weight[index]


def _choose_shift(first, unweighted, weights=None):
    """Shift for the moments: None (no shift, no copy) or a float64 vector.

    ``first`` holds the first rows of ``X`` (of positive weight). No shift is
    used for unweighted float64 data on which it loses at most
    ``log10(_MAX_KAPPA_UNSHIFTED)`` digits; otherwise the shift is the
    (weighted, with ``weights``) mean of these rows, except for features
    constant on them, shifted by their value: a constant feature then gets its
    exact value as mean and an exactly zero variance. With weights of very
    different sizes the weighted mean keeps the cancellation factor near 1
    where the plain mean of the rows would not.
    """
    if weights is None:
        mean = np.mean(first, axis=0, dtype=np.float64)
    else:
        mean = np.asarray(weights, np.float64) @ first / np.sum(weights)
    constant = np.all(first == first[0], axis=0)
    if unweighted and first.dtype == np.float64:
        var = np.var(first, axis=0, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mean == 0.0, 0.0, mean**2 / var)
        if np.all(ratio <= _MAX_KAPPA_UNSHIFTED - 1.0):
            return None
    mean[constant] = first[0, constant]
    return mean


def _shifted_moments(X, sample_weight, shift, chunk_size):
    """Weighted moments of ``X - shift``, accumulated chunk by chunk.

    Each chunk ``B`` (``X`` itself when ``shift`` is None, otherwise ``x - c``
    written into one reused float64 buffer, rows scaled by ``sqrt(w)`` when
    weighted) is added with one symmetric rank-k update (BLAS ``syrk``) and one
    matrix-vector product, in place::

        A += B^T B = sum w (x - c)(x - c)^T,    s += B^T sqrt(w) = sum w (x - c)

    so the only temporary is one chunk, and float32 input is accumulated in
    float64.

    Returns
    -------
    weight_sum : float
    second : ndarray of shape (n_features, n_features), F-ordered
        Upper triangle of ``A``.
    sums : ndarray of shape (n_features,)
        ``s``.
    """
    n_samples, n_features = X.shape
    second = np.zeros((n_features, n_features), order="F")
    sums = np.zeros(n_features)
    ones = np.ones(chunk_size)
    sum_rows = max(1, _SUM_ELEMENTS // max(n_features, 1))
    if shift is not None:
        buffer = np.empty((chunk_size, n_features))
        if sample_weight is not None:
            root = np.empty(chunk_size)
    weight_sum = 0.0
    for chunk in row_chunks(n_samples, chunk_size=chunk_size):
        start, stop = chunk.start, chunk.stop
        rows = stop - start
        vector = ones[:rows]
        if shift is None:
            block = X[start:stop]
        else:
            block = buffer[:rows]
            np.subtract(X[start:stop], shift, out=block)
        if sample_weight is None:
            weight_sum += rows
        else:
            weights = sample_weight[start:stop]
            weight_sum += float(np.sum(weights))
            vector = np.sqrt(weights, out=root[:rows])
            block *= vector[:, np.newaxis]
        # block.T is F-contiguous: BLAS reads the chunk in place.
        second = dsyrk(1.0, block.T, beta=1.0, c=second, overwrite_c=1)
        # The sums, while the chunk is in cache, in pieces small enough for
        # OpenBLAS to run them on one thread (waking threads for a memory-bound
        # product costs more than it gains, much more on a busy machine).
        for low in range(0, rows, sum_rows):
            high = min(low + sum_rows, rows)
            sums = dgemv(
                1.0,
                block[low:high].T,
                vector[low:high],
                beta=1.0,
                y=sums,
                overwrite_y=1,
            )
    return weight_sum, second, sums


def _moments_to_stats(weight_sum, second, sums, shift, n_samples):
    """Statistics from shifted moments, and the worst cancellation factor."""
    n_features = sums.shape[0]
    if not weight_sum > 0.0:
        return SufficientStats(
            0.0,
            np.zeros(n_features),
            np.zeros((n_features, n_features)),
            n_samples,
        ), 1.0
    upper = np.triu(second)
    second = upper + np.triu(upper, 1).T
    delta = sums / weight_sum
    # Written so that it is exactly symmetric.
    scatter = second - np.outer(delta, delta) * weight_sum
    if shift is None:
        mean, low = delta, None
    else:
        mean, low = _two_sum(shift, delta)
    raw = np.diag(second)
    centred = np.diag(scatter)
    # The digits lost are about log10(raw / centred). A spread at round-off
    # level (a constant feature) counts as that level, so a constant feature
    # about an exact shift loses nothing, while one whose centred variance
    # vanished (or came out negative) under a large raw moment lost all.
    noise = weight_sum * (64.0 * np.finfo(np.float64).eps * np.abs(mean)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(raw > noise, raw / np.maximum(centred, noise), 1.0)
        kappa = float(np.max(ratio, initial=1.0))
    if np.any((raw > noise) & (centred <= 0.0)):
        kappa = np.inf
    return SufficientStats(weight_sum, mean, scatter, n_samples, mean_low=low), kappa


def _two_sum(a, b):
    """``a + b`` rounded, and its rounding error (Knuth's two-sum, exact)."""
    total = a + b
    b_virtual = total - a
    error = (a - (total - b_virtual)) + (b - b_virtual)
    return total, np.where(np.isfinite(error), error, 0.0)


def _chunk_stats(block, weights):
    """Statistics of one chunk, accumulated in float64."""
    return SufficientStats.from_array(block, weights, chunk_size=block.shape[0])
