"""The normal's observed-data negative log-likelihood on statistics per
missingness pattern (:class:`~._data.patterns.PatternStats`),
and its gradients by Fisher's identity.

The objective and its gradient are evaluated through the precision
``P = S^{-1}`` (one inversion of the triangular factor per iteration) and, per
pattern with missing set ``m`` (``k`` entries), the ``k x k`` block ``P_mm``:
``S_oo^{-1} = P_oo - P_om P_mm^{-1} P_mo`` and
``log|S_oo| = log|S| + log|P_mm|``.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import numpy as np
from scipy import sparse

from .._data.stats import SufficientStats
from .._linalg import LOG_2PI, _sweep_inverse, multiply_lower, precision_from_factor
from .._representations.conditional import _batches
from .gradients import nll_grad_stats

# ---------------------------------------------------------------------------
# The observed-data objective
# ---------------------------------------------------------------------------


class _Batch:
    """Index tables of a batch of patterns with ``k`` missing entries each.

    The patterns are on the last axis (arrays of shape ``(k, n)`` or
    ``(k, k, n)``), so that the batched sweep works on contiguous rows.
    """

    def __init__(self, k, p0, p1, miss, d, fill_data, roots):
        self.k = k
        self.pattern = slice(p0, p1)
        self.miss = miss
        self.pull_idx = miss + d * np.arange(p0, p1)
        self.pair_idx = miss[:, None, :] * d + miss[None, :, :]
        self.fill_data = fill_data
        self.has_roots = roots is not None
        if self.has_roots:
            r0, r1, owner, root_data = roots
            self.root_owner = owner
            root_miss = miss[:, owner]
            self.root_pull_idx = root_miss + d * np.arange(r0, r1)
            self.root_pair_idx = root_miss[:, None, :] * d + root_miss[None, :, :]
            self.root_data = root_data


class MissingObjective:
    """Observed-data negative log-likelihood of :class:`PatternStats`.

    ``objective(mean, factor) -> (J, dJ/dmean, dJ/dfactor)`` where ``J`` is
    ``scale`` times the sum over patterns of the NLL of ``N(mu_o, S_oo)``
    (constant included) plus the NLL of the full-dimensional ``penalties``
    (pseudo-statistics, e.g. from :func:`penalty_stats`).

    One evaluation costs one ``d x d`` inversion, one matrix product of the
    pattern means and scatter roots with the precision ``P``, and per pattern
    with ``k`` missing entries a ``k x k`` inversion (a sweep vectorised over
    the patterns with the same ``k``) and O(k d) more: the completed
    statistics are assembled from the statistics of the observed entries
    (computed once), two sparse products with the fills, and one
    ``bincount`` for the ``k x k`` blocks of all patterns.

    Parameters
    ----------
    stats : PatternStats
    penalties : list of SufficientStats
    scale : float
        Multiplies the data term (``(1 - shrinkage) / W`` in the estimator).
    """

    def __init__(self, stats, penalties=(), scale=1.0):
        self.stats = stats
        self.penalties = list(penalties)
        self.scale = float(scale)
        self._cache = None
        d = stats.n_features
        w = stats.pattern_weight
        obs = stats.observed
        obs_f = obs.astype(np.float64)
        obs_w = obs_f * w[:, None]
        n_missing = d - obs.sum(axis=1)
        # Statistics of the observed entries, the same at every evaluation:
        # with r_p = (m_p - mu) o_p (m_p is 0 at missing entries),
        # sum_p w_p r_p r_p^T = A - B diag(mu) - diag(mu) B^T + O (mu mu^T).
        wmeans = stats.means * w[:, None]
        self._weight = float(w.sum())
        self._first = w @ stats.means
        self._obs_weight = w @ obs_f
        self._A = stats.means.T @ wmeans + stats.roots.T @ stats.roots
        self._B = wmeans.T @ obs_f
        self._O = obs_w.T @ obs_f
        # The fills (residuals of the conditional means at the missing
        # entries) of the pattern means and then of the root rows: one sparse
        # matrix whose data are overwritten at each evaluation. Patterns are
        # sorted by k: a batch of patterns is one slice of the data. Its
        # products with the pattern means (weighted), the weights and the
        # root rows give the cross products with the observed entries.
        miss_cols = np.nonzero(~obs)[1]
        indptr = np.r_[0, np.cumsum(n_missing)]
        root_pat = stats.root_pattern
        root_indptr = indptr[-1] + np.r_[0, np.cumsum(n_missing[root_pat])]
        n_roots = root_pat.size
        self._fill = sparse.csr_matrix(
            (
                np.zeros(root_indptr[-1]),
                np.concatenate([miss_cols, np.nonzero(~obs[root_pat])[1]]),
                np.concatenate([indptr, root_indptr[1:]]),
            ),
            shape=(len(w) + n_roots, d),
        )
        # The transpose shares the data: it is updated with them.
        self._fill_t = self._fill.T
        self._fill_rhs = np.zeros((len(w) + n_roots, d + 1))
        self._fill_rhs[: len(w), :d] = wmeans
        self._fill_rhs[: len(w), d] = w
        self._fill_rhs[len(w) :, :d] = stats.roots
        root_bounds = np.searchsorted(root_pat, np.arange(len(w) + 1))
        self._batches = []
        for k in np.unique(n_missing):
            if k == 0:
                continue
            pats = np.flatnonzero(n_missing == k)
            for part in _batches(pats.size, k * (k + 2)):
                p0, p1 = pats[part.start], pats[part.stop - 1] + 1
                miss = miss_cols[indptr[p0] : indptr[p1]].reshape(p1 - p0, k)
                r0, r1 = root_bounds[p0], root_bounds[p1]
                roots = None
                if r1 > r0:
                    roots = (
                        r0,
                        r1,
                        root_pat[r0:r1] - p0,
                        slice(root_indptr[r0], root_indptr[r1]),
                    )
                self._batches.append(
                    _Batch(
                        int(k),
                        p0,
                        p1,
                        np.ascontiguousarray(miss.T),
                        d,
                        slice(indptr[p0], indptr[p1]),
                        roots,
                    )
                )
        self._pair_idx = np.concatenate(
            [b.pair_idx.ravel() for b in self._batches]
            + [b.root_pair_idx.ravel() for b in self._batches if b.has_roots]
            + [np.zeros(0, dtype=np.intp)]
        )
        # Entropy constant of the missing entries: sum_p W_p k_p (1 + log 2 pi) / 2.
        self._entropy0 = 0.5 * (1.0 + LOG_2PI) * float(w @ n_missing)

    def expected_stats(self, mean, factor):
        """Expected complete-data statistics given the observed entries.

        Returns
        -------
        stats : SufficientStats
            Weight sum, mean and scatter of the rows completed by their
            conditional law under ``N(mean, factor factor^T)`` (not scaled).
        entropy : float
            Weighted sum of the conditional entropies of the missing entries.
        """
        st = self.stats
        d = st.n_features
        w = st.pattern_weight
        _, precision = precision_from_factor(factor)
        flat_p = precision.ravel()
        # [P r_p]_m = [P m_p]_m - [P mu]_m + P_mm mu_m: the pattern means
        # times P in one matrix product; the last term gives -mu_m once solved.
        pull = (st.means @ precision).ravel()
        root_pull = (st.roots @ precision).ravel()
        p_mu = precision @ mean
        fill = self._fill.data
        pair_vals, root_vals = [], []
        log_det = 0.0
        for b in self._batches:
            inv, logdet = _sweep_inverse(flat_p[b.pair_idx])
            wp = w[b.pattern]
            log_det += float(wp @ logdet)
            rhs = pull[b.pull_idx] - p_mu[b.miss]
            mu_m = mean[b.miss]
            f = -np.einsum("abp,bp->ap", inv, rhs) - mu_m
            fill[b.fill_data] = f.T.ravel()
            if b.has_roots:
                rf = -np.einsum(
                    "abj,bj->aj", inv[:, :, b.root_owner], root_pull[b.root_pull_idx]
                )
                fill[b.root_data] = rf.T.ravel()
                root_vals.append((rf[:, None, :] * rf[None, :, :]).ravel())
            # w_p (P_mm^{-1} + f f^T + f mu_m^T + mu_m f^T) at the (m, m)
            # entries (the last two: the cross products of the fills with the
            # -mu_m that the observed residuals lack at the missing entries).
            inv += f[:, None, :] * (f + 2.0 * mu_m)[None, :, :]
            inv *= wp
            pair_vals.append(inv.ravel())
        # Cross products of the fills with the observed residuals.
        prod = np.asarray(self._fill_t @ self._fill_rhs)
        fill_sum = prod[:, d]
        cross = prod[:, :d] - np.outer(fill_sum, mean)
        b_mu = self._B * mean
        second = self._A - b_mu - b_mu.T + self._O * np.outer(mean, mean)
        second += cross + cross.T
        if self._pair_idx.size:
            second += np.bincount(
                self._pair_idx,
                weights=np.concatenate(pair_vals + root_vals),
                minlength=d * d,
            ).reshape(d, d)
        # First moment about mu, then the moments about the expected mean.
        first = self._first - self._obs_weight * mean + fill_sum
        weight = self._weight
        scatter = second - np.outer(first, first / weight)
        scatter = 0.5 * (scatter + scatter.T)
        entropy = self._entropy0 - 0.5 * log_det
        return (
            SufficientStats(weight, mean + first / weight, scatter, st.n_samples),
            entropy,
        )

    def total_stats(self, mean, factor):
        """Scaled expected statistics merged with the penalties, and the
        scaled entropy: ``J = nll_stats(total) - entropy``.

        The last result is cached (the optimiser's first point is the last
        EM iterate).
        """
        cached = self._cache
        if (
            cached is not None
            and np.array_equal(cached[0], mean)
            and np.array_equal(cached[1], factor)
        ):
            return cached[2], cached[3]
        expected, entropy = self.expected_stats(mean, factor)
        total = expected.scaled(self.scale)
        for term in self.penalties:
            total = total.merge(term)
        self._cache = (mean.copy(), factor.copy(), total, self.scale * entropy)
        return total, self.scale * entropy

    def __call__(self, mean, factor):
        total, entropy = self.total_stats(mean, factor)
        value, grad_mean, grad_factor = nll_grad_stats(total, mean, factor)
        return value - entropy, grad_mean, grad_factor

    def em_update(self, mean, factor):
        """One EM step: the mean and covariance of the expected statistics
        at ``(mean, factor)`` merged with the penalties (the maximiser of the
        penalised expected complete-data log-likelihood). Costs no E-step
        after an evaluation at the same point (the cache)."""
        total, _ = self.total_stats(mean, factor)
        return total.mean, total.scatter / total.weight_sum


def whitened_objective(objective, shift, chol):
    """``objective`` in the coordinates ``mean = shift + chol u``,
    ``factor = chol T`` (value up to the constant ``W log|det chol|``).

    The expected statistics are computed in the original coordinates (where
    the patterns' sub-blocks live) and whitened; by affine equivariance the
    seed's gradient on the whitened statistics is the chain-rule gradient
    ``(chol^T dJ/dmean, chol^T dJ/dfactor)``.

    A trial step of the line search can reach a covariance that is singular
    to working precision (a diagonal entry of ``T`` at its bound), where the
    objective is infinite in floating point. L-BFGS-B does not backtrack from
    an infinite value, so there the function returns a finite stand-in along
    the segment from the last finite point ``a`` to the trial point ``b``:
    value ``J(a) + |g(a).(b - a)|`` and a gradient with slope
    ``3 |g(a).(b - a)|`` along the segment. Its interpolation sends the line
    search back towards ``a``; such points are never accepted.
    """
    last = {}

    def evaluate(u, t):
        # As the solver maps a cycle's end point back (bitwise the same).
        mean = shift + chol @ u
        factor = multiply_lower(chol, t)
        try:
            with np.errstate(all="ignore"):
                total, entropy = objective.total_stats(mean, factor)
                whitened = total.whitened(shift, chol)
                value, grad_u, grad_t = nll_grad_stats(whitened, u, t)
                value -= entropy
        except (ValueError, np.linalg.LinAlgError):
            value = np.inf
        if (
            np.isfinite(value)
            and np.all(np.isfinite(grad_u))
            and np.all(np.isfinite(grad_t))
        ):
            last.update(u=u.copy(), t=t.copy(), value=value, gu=grad_u, gt=grad_t)
            return value, grad_u, grad_t
        if not last:
            return np.inf, np.zeros_like(u), np.zeros_like(t)
        step_u, step_t = u - last["u"], t - last["t"]
        slope = float(np.sum(last["gu"] * step_u) + np.sum(last["gt"] * step_t))
        norm2 = float(np.sum(step_u**2) + np.sum(step_t**2))
        if norm2 == 0.0:
            return np.inf, np.zeros_like(u), np.zeros_like(t)
        correction = (3.0 * abs(slope) - slope) / norm2
        return (
            last["value"] + abs(slope),
            last["gu"] + correction * step_u,
            last["gt"] + correction * step_t,
        )

    return evaluate
