"""Missing values as a data source: input checks and statistics per
missingness pattern.

A row with missing entries (NaN, missing at random) contributes the log-density
of its observed entries, the marginal normal ``N(mu_o, S_oo)``. Rows are
grouped by pattern (which entries are observed) and each pattern is summarised
by the statistics of its observed sub-vectors (:class:`PatternStats`), which
merge like :class:`SufficientStats`, so ``partial_fit`` and Dask code that only
calls ``merge`` work unchanged with NaN data.

The observed-data likelihood of these statistics is in
:mod:`._likelihoods.normal_missing`; conditioning a fitted normal on
observed entries in :mod:`._representations.conditional`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy import sparse

from .._linalg import (
    row_chunks,
)
from .._validation import warn_at_caller
from .stats import SufficientStats, check_range, normalise_weights, set_slots

# Rows searched for NaN before a complete-data pass is tried.
_PROBE_ROWS = 64


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def check_missing(X, *, what="X", row_offset=0):
    """Raise on infinity or an all-missing row; return whether ``X`` has NaN.

    Works in chunks, so no boolean array of the size of ``X`` is created.
    Rows are numbered from ``row_offset`` (the position of a Dask block).
    """
    n_samples, n_features = X.shape
    has_nan = False
    for rows in row_chunks(n_samples, n_features):
        start = rows.start
        block = X[rows]
        inf = np.isinf(block)
        if inf.any():
            row, col = np.argwhere(inf)[0]
            raise ValueError(
                f"{what} contains infinity (row {row_offset + start + row}, "
                f"feature {col}); "
                "only NaN is accepted as a missing value. Replace infinite "
                "entries by NaN or by finite values."
            )
        nan = np.isnan(block)
        if nan.any():
            has_nan = True
            empty = np.flatnonzero(nan.all(axis=1))
            if empty.size:
                rows = (row_offset + start + empty[:10]).tolist()
                raise ValueError(
                    f"{what} has rows with no observed entry (all NaN), e.g. rows "
                    f"{rows}; such rows carry no information. Drop them."
                )
    return has_nan


def unobserved_pairs(pair_weight):
    """Pairs of features never observed together in a row of positive weight.

    Parameters
    ----------
    pair_weight : ndarray of shape (n_features, n_features)
        Weight of the rows observing each pair (from
        :meth:`PatternStats.available_case`).

    Returns
    -------
    pairs : list of tuple of int
        ``(j, l)`` with ``j < l``, in row-major order.
    """
    upper = np.triu(pair_weight <= 0.0, 1)
    return [(int(j), int(k)) for j, k in zip(*np.nonzero(upper), strict=True)]


def warn_unobserved_pairs(pair_weight):
    """Warn (at the user's line) when some covariances are not identified.

    When features ``j`` and ``l`` are never observed together, the observed-data
    likelihood does not depend on their covariance (it is flat along it, within
    the positive-definite range): the fit returns an arbitrary value.
    """
    pairs = unobserved_pairs(pair_weight)
    if not pairs:
        return
    shown = ", ".join(f"({j}, {k})" for j, k in pairs[:10])
    more = f" and {len(pairs) - 10} more" if len(pairs) > 10 else ""
    warn_at_caller(
        f"Feature pair(s) {shown}{more} are never observed together (in rows "
        "of positive weight): the data do not determine their covariance, the "
        "likelihood is flat along it and the fitted value is arbitrary. Set "
        "shrinkage > 0 for a defined answer, or use covariance_type='diag'.",
        UserWarning,
    )


def unbounded_likelihood(stats):
    """Why the observed-data likelihood of a full covariance is unbounded, or
    None when this sufficient condition does not hold.

    Let ``o`` be a pattern with the most observed features (``k`` of them).
    Only its own rows observe every feature of ``o``; if they are at most
    ``k`` (for complete data: at most ``d`` complete rows), their observed
    sub-vectors lie on an affine hyperplane ``v^T (x_o - mu_o) = 0``. A
    covariance whose variance along ``v`` tends to zero makes the density of
    those rows infinite while every other row keeps a non-singular marginal
    (``v`` is not supported on its observed features, for data in general
    position), so the likelihood grows without bound. Local maxima may exist
    as well; a fit that drifts towards such a singular covariance does not
    converge.

    Parameters
    ----------
    stats : PatternStats

    Returns
    -------
    reason : str or None
    """
    positive = stats.pattern_weight > 0
    if not positive.any():
        return None
    n_observed = stats.observed[positive].sum(axis=1)
    k = int(n_observed.max())
    counts = stats.pattern_count[positive][n_observed == k]
    if not np.any(counts <= k):
        return None
    rows = int(counts[counts <= k].min())
    what = "every feature" if k == stats.n_features else f"{k} features"
    return (
        f"The likelihood of these data is unbounded: only {rows} row(s) "
        f"observe {what} jointly (no more than {k}), so a covariance that is "
        "singular along a hyperplane through them makes their density "
        "infinite. A fit may stop at a local maximum; one that does not "
        "converge is usually drifting towards such a singular covariance. Set "
        "shrinkage > 0 or reg_covar > 0 for a bounded likelihood."
    )


# ---------------------------------------------------------------------------
# Statistics per missingness pattern
# ---------------------------------------------------------------------------


def _pattern_keys(observed):
    """One sortable key per row of a boolean matrix: its packed bits.

    Up to 64 features the key is the unsigned integer of those bytes in
    big-endian order, which sorts like the bytes and about ten times faster
    than byte strings (``np.unique`` on the keys is the cost); above, a void
    scalar of the bytes.
    """
    packed = np.packbits(observed, axis=1)
    n_bytes = packed.shape[1]
    if n_bytes <= 8:
        padded = np.zeros((packed.shape[0], 8), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        return padded.view(">u8").ravel().astype(np.uint64)
    packed = np.ascontiguousarray(packed)
    return packed.view(np.dtype((np.void, n_bytes))).ravel()


def _psd_roots(scatter):
    """Roots of a stack of PSD matrices: rows ``sqrt(l_i) v_i^T D``.

    The matrices are equilibrated first (``C = D C' D``, ``D`` the square
    roots of the diagonal) so that the factorisation (batched ``eigh`` of
    ``C'``) is accurate for every feature whatever the feature scales.

    Returns
    -------
    roots : ndarray of shape (n_matrices, n_features, n_features)
        ``roots[i].T @ roots[i] == scatter[i]``.
    eigval : ndarray of shape (n_matrices, n_features)
        Eigenvalues of the equilibrated matrices (rows with ``eigval <= 0``
        are zero).
    """
    if not np.all(np.isfinite(scatter)):
        check_range(np.zeros(0), finite=False)
    diag = np.sqrt(np.clip(np.diagonal(scatter, axis1=1, axis2=2), 0.0, None))
    safe = np.where(diag > 0.0, diag, 1.0)
    unit = scatter / (safe[:, :, None] * safe[:, None, :])
    eigval, eigvec = np.linalg.eigh(0.5 * (unit + np.swapaxes(unit, 1, 2)))
    roots = np.swapaxes(eigvec * np.sqrt(np.clip(eigval, 0.0, None))[:, None], 1, 2)
    return roots * diag[:, None, :], eigval


def _compress(blocks, observed, full_rank=None):
    """Shorter roots of the scatters ``R^T R`` of several blocks of rows.

    Each scatter (one matrix product per block) is factored: by a batched
    Cholesky factorisation of ``C + diag(unobserved)`` (whose rows at the
    observed features are a root of ``C``) where ``full_rank`` (default: all)
    expects a non-singular scatter, else, or if the factorisation fails, by
    :func:`_psd_roots` (the rows of positive eigenvalues). A root has at most
    ``n_features`` rows, 0 at the block's unobserved features.

    Returns
    -------
    roots : ndarray of shape (n_rows, n_features)
    block : ndarray of int of shape (n_rows,)
        Index of the block of each row.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        scatter = np.stack([rows.T @ rows for rows in blocks])
    if full_rank is None:
        full_rank = np.ones(len(blocks), dtype=bool)
    roots = np.empty_like(scatter)
    keep = np.zeros(observed.shape, dtype=bool)
    chol = np.flatnonzero(full_rank)
    if chol.size:
        # Cholesky is backward stable, invariant under feature scaling and
        # much faster than eigh; it fails on (numerically) singular scatters.
        shifted = scatter[chol] + (~observed[chol])[:, :, None] * np.eye(
            observed.shape[1]
        )
        try:
            roots[chol] = np.swapaxes(np.linalg.cholesky(shifted), 1, 2)
            keep[chol] = observed[chol]
        except np.linalg.LinAlgError:
            full_rank = np.zeros(len(blocks), dtype=bool)
    rest = np.flatnonzero(~full_rank)
    if rest.size:
        roots[rest], eigval = _psd_roots(scatter[rest])
        keep[rest] = eigval > 0.0
    roots *= observed[:, None, :]
    block = np.broadcast_to(np.arange(len(blocks))[:, None], keep.shape)
    return roots[keep], block[keep]


def _assemble(observed, weights, counts, means, roots, owner, n_samples):
    """Canonical :class:`PatternStats` from per-segment statistics.

    Segments with the same pattern are merged with the k-way form of Chan's
    update, ``C = sum_s C_s + sum_s W_s (m_s - m)(m_s - m)^T``, kept as a root
    (extra rows ``sqrt(W_s) (m_s - m)``) and compressed (:func:`_compress`) to
    at most ``d`` rows. Patterns are ordered by their number of missing entries.
    """
    keys = _pattern_keys(observed)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    uniq_obs = observed[first]
    order = np.argsort((~uniq_obs).sum(axis=1), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    seg_pat = rank[inverse]
    n_pat = order.size
    uniq_obs = uniq_obs[order]

    weight = np.bincount(seg_pat, weights=weights, minlength=n_pat)
    count = np.bincount(seg_pat, weights=counts, minlength=n_pat).astype(np.int64)
    # Sums per pattern: one sparse (pattern x segment) product.
    member = sparse.csr_matrix(
        (weights, (seg_pat, np.arange(seg_pat.size))), shape=(n_pat, seg_pat.size)
    )
    mean = (member @ means) / weight[:, np.newaxis]

    n_seg = np.bincount(seg_pat, minlength=n_pat)
    multi = n_seg[seg_pat] > 1
    delta = (means[multi] - mean[seg_pat[multi]]) * np.sqrt(weights[multi])[:, None]
    all_roots = np.concatenate([roots, delta])
    all_owner = np.concatenate([seg_pat[owner], seg_pat[multi]])
    keep = np.any(all_roots != 0.0, axis=1)
    all_roots, all_owner = all_roots[keep], all_owner[keep]
    sort = np.argsort(all_owner, kind="stable")
    all_roots, all_owner = all_roots[sort], all_owner[sort]

    n_obs = uniq_obs.sum(axis=1)
    n_rows = np.bincount(all_owner, minlength=n_pat)
    big = n_rows > n_obs
    if big.any():
        bounds = np.r_[0, np.cumsum(n_rows)]
        targets = np.flatnonzero(big)
        blocks = [all_roots[bounds[p] : bounds[p + 1]] for p in targets]
        new_roots, block = _compress(
            blocks, uniq_obs[targets], count[targets] > n_obs[targets]
        )
        rest = ~big[all_owner]
        all_roots = np.concatenate([all_roots[rest], new_roots])
        all_owner = np.concatenate([all_owner[rest], targets[block]])
        sort = np.argsort(all_owner, kind="stable")
        all_roots, all_owner = all_roots[sort], all_owner[sort]
    return PatternStats(uniq_obs, weight, count, mean, all_roots, all_owner, n_samples)


class PatternStats:
    """Sufficient statistics of a sample with missing entries, per pattern.

    For every missingness pattern ``p`` (the set ``o`` of observed features) it
    holds the weight sum ``W_p``, the weighted mean of the observed sub-vectors
    and their centred scatter ``C_p``. The scatter is stored as a root: rows
    ``R`` with ``R^T R = C_p`` (at most ``|o|`` rows, none for a pattern seen
    once), so memory stays of the order of the data even when nearly every row
    has its own pattern. :meth:`pattern` returns one pattern's
    :class:`SufficientStats`.

    Parameters
    ----------
    observed : ndarray of bool of shape (n_patterns, n_features)
        Observed features of each pattern; patterns sorted by their number of
        missing entries.
    pattern_weight : ndarray of shape (n_patterns,)
        Weight sum ``W_p`` of each pattern.
    pattern_count : ndarray of int of shape (n_patterns,)
        Number of rows of each pattern.
    means : ndarray of shape (n_patterns, n_features)
        Weighted mean of each pattern's rows, 0 at missing features.
    roots : ndarray of shape (n_roots, n_features)
        Root rows of the scatters, 0 at missing features.
    root_pattern : ndarray of int of shape (n_roots,)
        Pattern of each root row (non-decreasing).
    n_samples : int
        Number of rows summarised, including rows of zero weight.
    weight_unit : float, default=1.0
        Power of four the weights were divided by (as
        :attr:`SufficientStats.weight_unit`).
    """

    __slots__ = (
        "observed",
        "pattern_weight",
        "pattern_count",
        "means",
        "roots",
        "root_pattern",
        "n_samples",
        "weight_unit",
    )

    def __init__(
        self,
        observed,
        pattern_weight,
        pattern_count,
        means,
        roots,
        root_pattern,
        n_samples,
        weight_unit=1.0,
    ):
        self.observed = observed
        self.pattern_weight = pattern_weight
        self.pattern_count = pattern_count
        self.means = means
        self.roots = roots
        self.root_pattern = root_pattern
        self.n_samples = int(n_samples)
        self.weight_unit = float(weight_unit)

    @classmethod
    def empty(cls, n_features, n_samples=0):
        """Statistics of rows of zero weight only (no pattern)."""
        return cls(
            np.zeros((0, n_features), dtype=bool),
            np.zeros(0),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, n_features)),
            np.zeros((0, n_features)),
            np.zeros(0, dtype=np.int64),
            n_samples,
        )

    @property
    def n_features(self):
        return self.observed.shape[1]

    def __setstate__(self, state):
        # Pickled before ``weight_unit`` existed: unit 1.
        set_slots(self, state, weight_unit=1.0)

    @property
    def n_patterns(self):
        return self.observed.shape[0]

    @property
    def weight_sum(self):
        return float(self.pattern_weight.sum())

    # -- building ------------------------------------------------------------

    @classmethod
    def from_array(cls, X, sample_weight=None, chunk_size=None):
        """Statistics of ``X`` (NaN = missing) in one chunked pass.

        Within a chunk, rows are grouped by pattern (``np.unique`` on the
        packed bit rows of the mask); each group is centred on its own mean
        (float64) and its centred rows form the root of its scatter
        (compressed to at most ``d`` rows when they outnumber the observed
        features). Rows of zero
        weight are ignored.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Data; NaN marks a missing entry, other entries are finite.
        sample_weight : ndarray of shape (n_samples,), default=None
            Non-negative weights; ``None`` means unit weights.
        chunk_size : int, default=None
            Rows per chunk; by default about 2 MiB of float64 per chunk.

        Returns
        -------
        stats : PatternStats
        """
        n_samples, n_features = X.shape
        parts = []
        for rows in row_chunks(n_samples, n_features, chunk_size):
            block = np.asarray(X[rows], dtype=np.float64)
            if sample_weight is None:
                w = np.ones(block.shape[0])
            else:
                w = np.asarray(sample_weight[rows], np.float64)
                block, w = block[w > 0], w[w > 0]
            if block.shape[0]:
                parts.append(_chunk_patterns(block, w))
        if not parts:  # every row has zero weight: only the count is kept
            return cls.empty(n_features, n_samples)
        observed, weights, counts, means, roots = (
            np.concatenate([p[i] for p in parts]) for i in range(5)
        )
        offsets = np.cumsum([0] + [p[0].shape[0] for p in parts[:-1]])
        owner = np.concatenate(
            [p[5] + off for p, off in zip(parts, offsets, strict=True)]
        )
        return _assemble(observed, weights, counts, means, roots, owner, n_samples)

    @classmethod
    def from_sufficient_stats(cls, stats):
        """The one-pattern (complete) form of a :class:`SufficientStats`."""
        d = stats.n_features
        if stats.weight_sum == 0.0:
            return cls.empty(d, stats.n_samples)
        roots, eigval = _psd_roots(stats.scatter[np.newaxis])
        roots, keep = roots[0], eigval[0] > 0.0
        return cls(
            np.ones((1, d), dtype=bool),
            np.array([stats.weight_sum]),
            np.array([stats.n_samples], dtype=np.int64),
            stats.mean[np.newaxis, :].copy(),
            roots[keep],
            np.zeros(int(keep.sum()), dtype=np.int64),
            stats.n_samples,
            stats.weight_unit,
        )

    def in_unit(self, unit):
        """The same statistics with weights in units of ``unit`` (at least
        ``weight_unit``); patterns whose weight underflows to 0 are dropped."""
        if unit == self.weight_unit:
            return self
        ratio = self.weight_unit / unit
        weight = self.pattern_weight * ratio
        keep = weight > 0.0
        roots = self.roots * np.sqrt(ratio)
        root_pattern = self.root_pattern
        if not np.all(keep):
            new_index = np.cumsum(keep) - 1
            kept_roots = keep[root_pattern]
            roots, root_pattern = roots[kept_roots], new_index[root_pattern[kept_roots]]
        return PatternStats(
            self.observed[keep],
            weight[keep],
            self.pattern_count[keep],
            self.means[keep],
            roots,
            root_pattern,
            self.n_samples,
            unit,
        )

    # -- combining -----------------------------------------------------------

    def merge(self, other):
        """Statistics of the union of two samples, merged pattern by pattern.

        Parameters
        ----------
        other : PatternStats or SufficientStats

        Returns
        -------
        merged : PatternStats
        """
        if isinstance(other, SufficientStats):
            other = PatternStats.from_sufficient_stats(other)
        if other.n_features != self.n_features:
            raise ValueError(
                f"Cannot merge statistics of {self.n_features} and "
                f"{other.n_features} features."
            )
        n_samples = self.n_samples + other.n_samples
        # Rows of zero weight (no pattern) only add to the count of rows seen;
        # so do patterns negligible in the common unit of the weights.
        unit = max(self.weight_unit, other.weight_unit)
        if self.n_patterns and other.n_patterns:
            self, other = self.in_unit(unit), other.in_unit(unit)
        if not (self.n_patterns and other.n_patterns):
            kept = self if self.n_patterns else other
            return PatternStats(
                kept.observed,
                kept.pattern_weight,
                kept.pattern_count,
                kept.means,
                kept.roots,
                kept.root_pattern,
                n_samples,
                kept.weight_unit,
            )
        merged = _assemble(
            np.concatenate([self.observed, other.observed]),
            np.concatenate([self.pattern_weight, other.pattern_weight]),
            np.concatenate([self.pattern_count, other.pattern_count]),
            np.concatenate([self.means, other.means]),
            np.concatenate([self.roots, other.roots]),
            np.concatenate([self.root_pattern, other.root_pattern + self.n_patterns]),
            n_samples,
        )
        merged.weight_unit = unit
        return merged

    def standardised(self, shift, scale):
        """Statistics of ``(x - shift) / scale`` (feature-wise).

        A diagonal affine map keeps each pattern's observed sub-vectors apart,
        so the pattern structure is preserved.
        """
        means = (self.means - shift) / scale * self.observed
        return PatternStats(
            self.observed,
            self.pattern_weight,
            self.pattern_count,
            means,
            self.roots / scale,
            self.root_pattern,
            self.n_samples,
            self.weight_unit,
        )

    # -- summaries -----------------------------------------------------------

    def pattern(self, index):
        """:class:`SufficientStats` of one pattern's observed sub-vectors.

        Returns
        -------
        observed : ndarray of int
            Indices of the observed features.
        stats : SufficientStats
        """
        cols = np.flatnonzero(self.observed[index])
        rows = self.roots[self.root_pattern == index][:, cols]
        return cols, SufficientStats(
            self.pattern_weight[index],
            self.means[index, cols],
            rows.T @ rows,
            self.pattern_count[index],
        )

    def available_case(self):
        """Available-case mean and pairwise covariance, and pair weights.

        The mean of feature ``j`` uses every row where ``j`` is observed; the
        covariance of ``j`` and ``l`` every row where both are, centred on the
        available-case means. Pairs never observed together get covariance 0.
        Raises the complete-data errors when the moments are beyond float64
        (values too large to square, or variances too small to represent).

        Returns
        -------
        mean : ndarray of shape (n_features,)
        covariance : ndarray of shape (n_features, n_features)
        pair_weight : ndarray of shape (n_features, n_features)
        """
        obs = self.observed.astype(np.float64)
        w = self.pattern_weight
        feature_weight = w @ obs
        never = np.flatnonzero(feature_weight <= 0.0)
        if never.size:
            raise ValueError(
                f"Feature(s) {never[:10].tolist()} are never observed (all NaN, "
                "or only in rows of zero weight); their distribution cannot be "
                "estimated. Drop these features."
            )
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mean = (w @ self.means) / feature_weight
            delta = (self.means - mean) * obs
            scatter = self.roots.T @ self.roots + (delta * w[:, None]).T @ delta
            pair_weight = (obs * w[:, None]).T @ obs
            cov = np.where(pair_weight > 0, scatter / pair_weight, 0.0)
        finite = np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))
        check_range(np.diag(cov), finite)
        return mean, 0.5 * (cov + cov.T), pair_weight

    def __repr__(self):
        return (
            f"PatternStats(weight_sum={self.weight_sum!r}, "
            f"n_features={self.n_features}, n_patterns={self.n_patterns}, "
            f"n_samples={self.n_samples})"
        )


def _chunk_patterns(block, w):
    """Per-pattern statistics of one chunk (rows of positive weight)."""
    observed = ~np.isnan(block)
    keys = _pattern_keys(observed)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    sort = np.argsort(inverse, kind="stable")
    seg = inverse[sort]
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    filled = np.where(observed, block, 0.0)[sort]
    ws = w[sort]
    weight = np.add.reduceat(ws, starts)
    count = np.diff(np.r_[starts, seg.size])
    mean = np.add.reduceat(filled * ws[:, None], starts) / weight[:, None]
    obs = observed[first]
    centred = (filled - mean[seg]) * obs[seg]
    centred *= np.sqrt(ws)[:, None]
    # Patterns seen once have a zero scatter: no root rows. Patterns with more
    # rows than observed features are compressed (:func:`_compress`).
    n_obs = obs.sum(axis=1)
    ends = np.r_[starts[1:], seg.size]
    small = (count > 1) & (count <= n_obs)
    rows = small[seg]
    pieces, owners = [centred[rows]], [seg[rows]]
    big = np.flatnonzero(count > n_obs)
    if big.size:
        blocks = [centred[starts[p] : ends[p]] for p in big]
        big_roots, block = _compress(blocks, obs[big])
        pieces.append(big_roots)
        owners.append(big[block])
    return obs, weight, count, mean, np.concatenate(pieces), np.concatenate(owners)


def compute_stats(X, sample_weight=None, row_offset=0):
    """Statistics of a validated array: the one entry point that builds them.

    ``fit``, ``partial_fit`` and every Dask block build their statistics here
    and combine them only with :func:`merge_stats`. Returns a plain
    :class:`SufficientStats` (the complete-data fast path) when ``X`` has no
    NaN, a :class:`PatternStats` otherwise. Raises a ValueError on infinity or
    on a row without observed entry.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data; NaN marks a missing entry.
    sample_weight : ndarray of shape (n_samples,), default=None
        Validated non-negative weights; ``None`` means unit weights. They are
        normalised (:func:`~._stats.normalise_weights`), so their
        global scale does not matter; the statistics carry the unit.
    row_offset : int, default=0
        Index of the first row of ``X`` in the whole data set (a Dask block's
        position), used in error messages that name rows.

    Returns
    -------
    stats : SufficientStats or PatternStats
    """
    sample_weight, unit = normalise_weights(sample_weight)
    stats = _build_stats(X, sample_weight, row_offset)
    stats.weight_unit = unit
    return stats


def _build_stats(X, sample_weight, row_offset):
    # Complete data are read once: NaN or infinity make the statistics
    # non-finite (also in rows of zero weight: 0 * inf is NaN), and only then
    # is X searched (finite data too large to square keep their overflowed
    # statistics, which the estimator reports). Statistics of zero weight are
    # zero whatever X holds, so then X is searched too: rows of zero weight
    # are validated like any row. A NaN among the first rows (a cheap probe)
    # skips the complete-data pass that would only find it.
    if np.isnan(X[:_PROBE_ROWS]).any() and check_missing(X, row_offset=row_offset):
        return PatternStats.from_array(X, sample_weight)
    stats = SufficientStats.from_array(X, sample_weight)
    finite = np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.scatter))
    if finite and stats.weight_sum > 0.0:
        return stats
    if not check_missing(X, row_offset=row_offset):
        return stats
    return PatternStats.from_array(X, sample_weight)


def merge_stats(first, second):
    """Statistics of the union of two samples, complete or per pattern.

    Two :class:`SufficientStats` merge as such; if either side has missing
    values the result is a :class:`PatternStats`.
    """
    if isinstance(first, SufficientStats) and isinstance(second, SufficientStats):
        return first.merge(second)
    if isinstance(first, SufficientStats):
        first, second = second, first
    return first.merge(second)
