"""Property-based fuzz (hypothesis) of the models beyond the plain normal:
the Student-t (fixed and estimated ``df``, trimmed), the factor model (normal
and t) and the pipeline tools, on the adversarial problems of ``test_fuzz``
and on small problems where an independent optimum can be computed.

The oracles, all independent of the package's code:

* errors: exactly a ValueError or TypeError (or our subclass of them), raised
  by our code or scikit-learn's validation, never by NumPy or SciPy (no
  ``LinAlgError``, no raw NumPy message);
* no NumPy ``RuntimeWarning`` leaks from ``fit``, ``score_samples`` or the
  pipeline tools (they are turned into errors);
* log-densities: SciPy's ``multivariate_t`` / ``multivariate_normal`` at the
  fitted parameters, on each row's observed entries (the marginal), where
  SciPy is reliable;
* optimality on small problems: a direct maximisation of the dense
  likelihood written here (``scipy.optimize`` on a Cholesky or loadings
  parameterisation, started from our fit and from the moments) gains no more
  than ``1e-8`` nats per sample on ours;
* the factor normal: its log-likelihood is at least that of scikit-learn's
  ``FactorAnalysis`` on the same complete data;
* the pipeline tools: imputations equal the conditional expectation computed
  from the fitted parameters, observed entries are kept, and the detector's
  decision function is the log-density minus ``offset_``.

Each test runs ``SKLEARN_MVN_FUZZ_EXAMPLES`` examples (default 25; the CI
run is deterministic); ``SKLEARN_MVN_FUZZ_SEED`` explores other examples, as
in ``test_fuzz``::

    SKLEARN_MVN_FUZZ_EXAMPLES=500 python -m pytest tests/test_fuzz_models.py
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import Phase, event, given, note, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from scipy.special import gammaln
from scipy.stats import multivariate_normal, multivariate_t
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from test_fuzz import SETTINGS, _scipy_reliable, _seeded, problems

from sklearn_mvn import (
    GaussianImputer,
    GaussianOutlierDetector,
    GradientGaussian,
    GradientStudentT,
)

N_EXAMPLES = int(os.environ.get("SKLEARN_MVN_FUZZ_EXAMPLES", "25"))
MODEL_SETTINGS = settings(SETTINGS, max_examples=N_EXAMPLES)
# Half the examples for the costlier tests; properties that fail today
# because of a listed defect (non-strict xfail) stop at the first failure,
# without shrinking.
HALF_SETTINGS = settings(MODEL_SETTINGS, max_examples=max(1, N_EXAMPLES // 2))
KNOWN_DEFECT_SETTINGS = settings(
    HALF_SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)

# The documented range of an estimated df.
DF_RANGE = (1e-2, 1e6)
# Fragments of NumPy/SciPy messages that must not reach the user.
RAW = ("matmul", "gufunc", "not positive definite", "SVD did not converge")
# A dense optimum may beat ours by this much per sample (nats).
GAIN_TOL = 1e-8


# %% Oracles shared by the tests


def _assert_ours(exc):
    """Exactly a ValueError or TypeError (or our subclass), raised by our
    code or scikit-learn's validation, not inside NumPy or SciPy."""
    ours = type(exc).__module__.startswith("sklearn_mvn")
    assert type(exc) in (ValueError, TypeError) or ours, repr(exc)
    assert not any(raw in str(exc) for raw in RAW), str(exc)
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    origin = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    assert "/numpy/" not in origin and "/scipy/" not in origin, (origin, str(exc))


def _run(call):
    """Call, recording warnings; return (result, warnings), or (None, None)
    if it raised one of our errors. NumPy RuntimeWarnings are only counted
    here (issue 22 items 3 and 13); test_fuzz_no_runtime_warning checks
    them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except (ValueError, TypeError) as exc:
            _assert_ours(exc)
            event(f"rejected: {str(exc)[:40]}")
            return None, None
    if any(issubclass(w.category, RuntimeWarning) for w in caught):
        event("a RuntimeWarning leaked (items 3, 13)")
    return result, caught


def _quiet(call):
    """Call, NumPy RuntimeWarnings ignored (see _run); no error accepted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return call()


def _marginals(law, mean, matrix, X, df=None):
    """SciPy's log-density of each row's observed entries, or None where
    SciPy is not reliable (extreme magnitudes, near-singular blocks)."""
    out = []
    for row in np.asarray(X, dtype=np.float64):
        seen = ~np.isnan(row)
        m, S = mean[seen], matrix[np.ix_(seen, seen)]
        if not _scipy_reliable(m, S):
            out.append(np.nan)
        elif law == "t":
            out.append(multivariate_t(m, S, df=df).logpdf(row[seen]))
        else:
            out.append(multivariate_normal(m, S).logpdf(row[seen]))
    return np.array(out)


def _assert_scipy_log_density(model, X):
    """score_samples equals SciPy's (marginal) log-density at the fitted
    parameters, to 1e-8 per observed entry, where SciPy is reliable."""
    rows = np.asarray(X[~np.all(np.isnan(X), axis=1)][:10], dtype=np.float64)
    if len(rows) == 0:
        return
    values = model.score_samples(rows)
    assert np.all(np.isfinite(values)), values
    t = isinstance(model, GradientStudentT)
    matrix = model.shape_ if t else model.covariance_
    if np.any(np.isnan(rows)):
        if not _scipy_reliable(model.mean_, matrix):
            # Marginals are computed by conditioning on the whole matrix,
            # which must be well conditioned (the documented limit, as in
            # test_fuzz).
            return
    if t:
        if model.df_ > 1e5:  # SciPy's own t loses digits there
            return
        expected = _marginals("t", model.mean_, matrix, rows, model.df_)
    else:
        expected = _marginals("normal", model.mean_, matrix, rows)
    seen = np.sum(~np.isnan(rows), axis=1)
    ok = np.isfinite(expected)
    error = np.abs(values[ok] - expected[ok])
    assert np.all(error <= 1e-8 * seen[ok] * np.maximum(1.0, np.abs(expected[ok]))), (
        error
    )


def _assert_finite_params(model):
    names = ["mean_"]
    names += ["shape_"] if isinstance(model, GradientStudentT) else ["covariance_"]
    if model.covariance_type == "factor":
        names += ["components_", "noise_variance_"]
        assert np.all(model.noise_variance_ > 0)
    for name in names:
        assert np.all(np.isfinite(getattr(model, name))), name
    if isinstance(model, GradientStudentT):
        assert DF_RANGE[0] <= model.df_ <= DF_RANGE[1] or model.df_ == model.df


def _note(X, weights):
    note(f"X ({X.dtype}) = {np.asarray(X).tolist()!r}")
    note(f"weights = {None if weights is None else weights.tolist()!r}")


# %% The Student-t on the adversarial problems


@_seeded
@MODEL_SETTINGS
@given(problems(), st.sampled_from(["auto", "auto", 1.0, 4.0, 30.0]))
def test_fuzz_t(problem, df):
    """GradientStudentT (fixed and estimated df, full/diag/spherical, every
    penalty): our error, or finite parameters whose log-density is SciPy's t
    (marginal for NaN rows), with no RuntimeWarning; well-posed complete
    data fit without a ConvergenceWarning."""
    X, weights, params, well_posed = problem
    _note(X, weights)
    model = GradientStudentT(df=df, **params)
    fitted, caught = _run(lambda: model.fit(X, sample_weight=weights))
    if fitted is None:
        return
    _assert_finite_params(model)
    if well_posed:
        warned = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        assert not warned, [str(w.message) for w in warned]
    _quiet(lambda: _assert_scipy_log_density(model, X))
    event("fitted")


@_seeded
@HALF_SETTINGS
@given(problems(), st.sampled_from([0.6, 0.75, None]))
def test_fuzz_trimmed_t(problem, support_fraction):
    """Trimmed GradientStudentT: our error, or finite parameters, a support
    of positive-weight rows, a log-density equal to SciPy's t, and no
    RuntimeWarning."""
    X, weights = problem[:2]
    _note(X, weights)
    model = GradientStudentT(support_fraction=support_fraction)
    fitted, _ = _run(lambda: model.fit(X, sample_weight=weights))
    if fitted is None:
        return
    _assert_finite_params(model)
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=float)
    assert model.support_.shape == (len(X),)
    assert not np.any(model.support_ & (w <= 0))
    _quiet(lambda: _assert_scipy_log_density(model, X))
    event("fitted")


@st.composite
def clean_t_data(draw):
    """Uncontaminated t data of moderate size."""
    seed = draw(st.integers(0, 2**32 - 1))
    d = draw(st.integers(1, 3))
    df = draw(st.sampled_from([2.0, 4.0, 10.0, 100.0]))
    n = draw(st.sampled_from([100, 200]))
    rng = np.random.RandomState(seed)
    mixing = np.tril(rng.uniform(-1, 1, (d, d)), -1) + np.diag(rng.uniform(0.3, 1, d))
    X = multivariate_t(np.zeros(d), mixing @ mixing.T, df=df).rvs(
        2 * n, random_state=rng
    )
    return X.reshape(2 * n, d), n, draw(st.sampled_from([0.6, 0.75, 0.9]))


@pytest.mark.xfail(
    strict=False, reason="issue 22 item 5: trimmed t on clean data collapses df"
)
@_seeded
@KNOWN_DEFECT_SETTINGS
@given(clean_t_data())
def test_fuzz_trimmed_t_on_clean_data(case):
    """On uncontaminated t data the trimmed fit keeps df_ off its floor and
    loses less than a nat per held-out sample against the untrimmed fit
    (SciPy's t at both fits' parameters)."""
    X, n, fraction = case
    train, test = X[:n], X[n:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trimmed = GradientStudentT(support_fraction=fraction).fit(train)
        full = GradientStudentT().fit(train)
    assert trimmed.df_ > 1.01 * DF_RANGE[0]
    loss = np.mean(
        _marginals("t", full.mean_, full.shape_, test, full.df_)
        - _marginals("t", trimmed.mean_, trimmed.shape_, test, trimmed.df_)
    )
    assert loss < 1.0


# %% The factor model on the adversarial problems


@_seeded
@MODEL_SETTINGS
@given(
    problems(),
    st.sampled_from(["normal", "t"]),
    st.sampled_from([None, 1, 2, 3]),
)
def test_fuzz_factor(problem, law, n_factors):
    """covariance_type='factor' (normal and t): our error, or finite
    loadings and positive noise variances whose log-density is SciPy's
    (marginal for NaN rows; checked away from near-Heywood fits, item 2), and
    no RuntimeWarning."""
    X, weights, params, _ = problem
    _note(X, weights)
    params = dict(params, covariance_type="factor", n_factors=n_factors)
    model = (
        GradientGaussian(**params) if law == "normal" else GradientStudentT(**params)
    )
    fitted, _ = _run(lambda: model.fit(X, sample_weight=weights))
    if fitted is None:
        return
    _assert_finite_params(model)
    k = model.components_.shape[0]
    assert model.components_.shape == (k, X.shape[1])
    assert 1 <= k <= X.shape[1] - 1
    _quiet(lambda: _assert_scipy_log_density(model, X))
    event(f"fitted: {law}")


@pytest.mark.parametrize("df", ["auto", 4.0])
def test_t_factor_full_shrinkage(df):
    """The t factor model with shrinkage=1 (the prior alone) fits, as the
    full and diagonal t do, or raises our error; never a raw
    ZeroDivisionError or LinAlgError."""
    X = np.random.RandomState(0).randn(30, 3)
    model = GradientStudentT(
        covariance_type="factor", n_factors=1, shrinkage=1.0, df=df
    )
    fitted, _ = _run(lambda: model.fit(X))
    if fitted is not None:
        _assert_finite_params(model)


@_seeded
@HALF_SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from(["normal", "t"]))
def test_fuzz_factor_marginals_near_heywood(seed, law):
    """A feature that is nearly the sum of two others (small noise
    variance), 30% NaN: the factor model's log-density equals SciPy's
    marginal of its covariance."""
    rng = np.random.RandomState(seed)
    X = rng.randn(200, 5)
    X[:, 2] = X[:, 0] + X[:, 1] + 0.03 * rng.randn(200)
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X = X[~np.all(np.isnan(X), axis=1)]
    model = (GradientGaussian if law == "normal" else GradientStudentT)(
        covariance_type="factor", n_factors=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    _assert_scipy_log_density(model, X)


# %% Small problems: the dense optimum and FactorAnalysis


def _tril_unpack(theta, d):
    L = np.zeros((d, d))
    L[np.tril_indices(d)] = theta
    L[np.diag_indices(d)] = np.exp(np.diag(L))
    return L


def _tril_pack(L):
    L = L.copy()
    L[np.diag_indices(len(L))] = np.log(np.diag(L))
    return L[np.tril_indices(len(L))]


def _dense_loglik(law, mean, cov, df, X):
    """Per-row log-density of the observed entries, written out (Cholesky
    of each pattern's block, no SciPy density)."""
    out = np.empty(len(X))
    patterns = ~np.isnan(X)
    for pattern in np.unique(patterns, axis=0):
        rows = np.all(patterns == pattern, axis=1)
        p = int(pattern.sum())
        block = cov[np.ix_(pattern, pattern)]
        try:
            chol = np.linalg.cholesky(block)
        except np.linalg.LinAlgError:
            return np.full(len(X), -np.inf)
        z = np.linalg.solve(chol, (X[np.ix_(rows, pattern)] - mean[pattern]).T)
        delta = np.sum(z**2, axis=0)
        logdet = 2 * np.sum(np.log(np.diag(chol)))
        if law == "t":
            out[rows] = (
                gammaln((df + p) / 2)
                - gammaln(df / 2)
                - p / 2 * np.log(df * np.pi)
                - logdet / 2
                - (df + p) / 2 * np.log1p(delta / df)
            )
        else:
            out[rows] = -(p * np.log(2 * np.pi) + logdet + delta) / 2
    return out


class _Dense:
    """Penalised mean negative log-likelihood of a model written densely,
    as a function of an unconstrained vector."""

    def __init__(self, X, w, law, structure, d, k, df, reg_covar, psi_lower):
        self.X, self.w, self.law, self.structure = X, w / np.sum(w), law, structure
        self.d, self.k, self.df, self.reg = d, k, df, reg_covar
        self.psi_lower = psi_lower

    def unpack(self, theta):
        d, k = self.d, self.k
        mean, rest = theta[:d], theta[d:]
        if self.df == "auto":
            df, rest = float(np.exp(rest[0])), rest[1:]
        else:
            df = self.df
        if self.structure == "factor":
            W = rest[: d * k].reshape(d, k)
            psi = self.psi_lower + np.exp(rest[d * k :])
            cov = W @ W.T + np.diag(psi)
        elif self.structure == "diag":
            cov = np.diag(np.exp(rest))
        else:
            L = _tril_unpack(rest, d)
            cov = L @ L.T
        return mean, cov, df

    def __call__(self, theta):
        mean, cov, df = self.unpack(theta)
        with np.errstate(all="ignore"):
            loglik = _dense_loglik(self.law, mean, cov, df, self.X)
            value = -self.w @ loglik
            if self.reg:
                value += self.reg / 2 * np.trace(np.linalg.inv(cov))
        return value if np.isfinite(value) else 1e300

    def pack(self, mean, cov, df, components=None, noise=None):
        parts = [mean]
        if self.df == "auto":
            parts.append([np.log(df)])
        if self.structure == "factor":
            parts += [
                components.T.ravel(),
                np.log(np.maximum(noise - self.psi_lower, 1e-300)),
            ]
        elif self.structure == "diag":
            parts.append(np.log(np.diag(cov)))
        else:
            parts.append(_tril_pack(np.linalg.cholesky(cov)))
        return np.concatenate([np.ravel(p) for p in parts])

    def bounds(self, theta):
        bounds = [(None, None)] * len(theta)
        if self.df == "auto":
            bounds[self.d] = tuple(np.log(DF_RANGE))
        return bounds

    def best(self, starts):
        """Best objective found by L-BFGS-B from each start."""
        values = []
        for theta in starts:
            res = minimize(
                self,
                theta,
                method="L-BFGS-B",
                bounds=self.bounds(theta),
                options={
                    "maxiter": 500,
                    "maxfun": 5000,
                    "ftol": 1e-15,
                    "gtol": 1e-9,
                },
            )
            values.append(min(res.fun, self(theta)))
        return min(values)


@st.composite
def small_problems(draw):
    """Small, well-scaled problems (a dense optimisation is affordable):
    complete or with NaN, with or without weights."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.RandomState(seed)
    kind = draw(
        st.sampled_from(["t full", "t full", "t diag", "factor normal", "factor t"])
    )
    factor = kind.startswith("factor")
    d = draw(st.integers(2, 4)) if factor else draw(st.integers(1, 3))
    n = draw(st.sampled_from([12, 25]))
    heavy = draw(st.sampled_from([None, 1.0, 4.0, 30.0]))
    mixing = np.tril(rng.uniform(-1, 1, (d, d)), -1) + np.diag(rng.uniform(0.2, 1, d))
    X = rng.standard_normal((n, d)) @ mixing.T
    if heavy is not None:
        X /= np.sqrt(rng.chisquare(heavy, (n, 1)) / heavy)
    X = X * 10.0 ** rng.uniform(-2, 2, d) + rng.uniform(-5, 5, d)
    if draw(st.sampled_from([False, False, True])):
        mask = rng.uniform(size=X.shape) < 0.15
        mask[np.arange(n), rng.randint(d, size=n)] = False
        X[mask] = np.nan
    weights = draw(st.sampled_from([None, None, "uniform"]))
    if weights is not None:
        weights = rng.uniform(0.2, 3.0, n)
    df = draw(st.sampled_from(["auto", 4.0])) if kind != "factor normal" else None
    k = draw(st.integers(1, d - 1)) if factor else None
    reg_covar = draw(st.sampled_from([0.0, 0.0, 1e-3]))
    return kind, X, weights, df, k, reg_covar


@_seeded
@HALF_SETTINGS
@given(small_problems())
def test_fuzz_dense_optimum(problem):
    """Small problems: a dense likelihood maximised by L-BFGS-B (from our fit
    and from the moments; noise variances kept above 1e-5 of the feature's
    variance, inside our bound) gains at most 1e-8 nats per sample on our
    fit, whose objective_ is the dense objective at its parameters; for the
    factor normal on complete unweighted data our log-likelihood is at least
    FactorAnalysis's."""
    kind, X, weights, df, k, reg_covar = problem
    _note(X, weights)
    law = "normal" if kind == "factor normal" else "t"
    structure = "factor" if kind.startswith("factor") else kind.split()[1]
    params = {"covariance_type": structure, "reg_covar": reg_covar}
    if structure == "factor":
        params["n_factors"] = k
    if law == "normal":
        model = GradientGaussian(**params)
    else:
        model = GradientStudentT(df=df, **params)
    fitted, _ = _run(lambda: model.fit(X, sample_weight=weights))
    if fitted is None:
        return
    if not model.converged_:
        event("not converged")
        return  # a ConvergenceWarning says so; optimality is not claimed
    d = X.shape[1]
    w = np.ones(len(X)) if weights is None else weights
    var = np.nanvar(X, axis=0)
    dense = _Dense(
        X,
        w,
        law,
        structure,
        d,
        k,
        df if law == "t" else None,
        reg_covar,
        psi_lower=np.maximum(1e-5 * var, 1.1 * reg_covar),
    )
    matrix = model.shape_ if law == "t" else model.covariance_
    fitted_df = model.df_ if law == "t" else None
    # Our objective, written densely at the fitted parameters.
    loglik = _dense_loglik(law, model.mean_, matrix, fitted_df, X) @ (w / w.sum())
    ours = -loglik + reg_covar / 2 * np.trace(np.linalg.inv(matrix))
    assert_allclose(model.objective_, ours, rtol=1e-7, atol=1e-7)
    if structure == "factor":
        noise = np.maximum(model.noise_variance_, dense.psi_lower * (1 + 1e-9))
        ours_theta = dense.pack(
            model.mean_, matrix, fitted_df, model.components_, noise
        )
        start = dense.pack(
            np.nanmean(X, axis=0), None, 4.0, np.full((k, d), 0.1), 2.0 * var
        )
    else:
        ours_theta = dense.pack(model.mean_, matrix, fitted_df)
        start = dense.pack(np.nanmean(X, axis=0), np.diag(var), 4.0)
    best = dense.best([ours_theta, start])
    assert best >= ours - GAIN_TOL, (ours, best)
    event(f"dense optimum: {kind}")
    if kind == "factor normal" and weights is None and reg_covar == 0:
        if not np.any(np.isnan(X)):
            reference = FactorAnalysis(n_components=k, tol=1e-10, svd_method="lapack")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference.fit(X)
            assert loglik >= reference.score(X) - 1e-7
            event("FactorAnalysis checked")


# A case found by test_fuzz_dense_optimum (campaign, 500 examples): the t
# factor fit converges on a Heywood point of feature 2 (df_ about 5), while
# the dense likelihood has a better maximum inside our bounds (a Heywood
# point of feature 0, df about 1.5e4), 0.16 nats per sample higher.
T_FACTOR_LOCAL_MAXIMUM = np.array(
    [
        [0.4855040557632548, -3.114995983310175, 4.572008988748053],
        [0.5742146655633736, -3.120538674034218, 4.4662062115925245],
        [0.523341438973273, -3.128811428086299, 4.568554217616904],
        [0.5127485083275818, -3.1277609638975745, 4.558500971213664],
        [0.5551543538697203, -3.120410888133723, 4.480502018849162],
        [0.5036346315804765, -3.116132711854205, 4.5256418940750605],
        [0.5084807872226448, -3.1242712353723143, 4.573581648946903],
        [0.6675102387636107, -3.139909804289085, 4.410217936615905],
        [0.5190184130871989, -3.132602099975462, 4.558652020553155],
        [0.5166726291526413, -3.117796767963269, 4.521798743187558],
        [0.47974059865061813, -3.1178276354963765, 4.55153054376161],
        [0.4924163240739809, -3.1263084078578687, 4.565999575382175],
    ]
)


@pytest.mark.xfail(
    strict=True,
    reason="found by this fuzz (not in issue 22): the t factor fit stops "
    "0.16 nats/sample below the dense optimum, converged",
)
def test_t_factor_not_below_dense_optimum():
    """The converged t factor fit (k=1, df='auto') is at least as good as a
    dense maximisation from the moments, to 1e-8 nats per sample."""
    X = T_FACTOR_LOCAL_MAXIMUM
    model = GradientStudentT(covariance_type="factor", n_factors=1)
    fitted, _ = _run(lambda: model.fit(X))
    assert fitted is not None and model.converged_
    var = np.var(X, axis=0)
    dense = _Dense(X, np.ones(len(X)), "t", "factor", 3, 1, "auto", 0.0, 1e-5 * var)
    start = dense.pack(X.mean(axis=0), None, 4.0, np.full((1, 3), 0.1), 2.0 * var)
    assert dense.best([start]) >= model.objective_ - GAIN_TOL


# %% The pipeline tools


@st.composite
def estimators(draw):
    law = draw(st.sampled_from(["normal", "t"]))
    covariance_type = draw(st.sampled_from(["full", "diag", "spherical", "factor"]))
    params = {
        "covariance_type": covariance_type,
        "shrinkage": draw(st.sampled_from([0.0, 0.0, 0.1])),
        "reg_covar": draw(st.sampled_from([0.0, 0.0, 1e-6])),
    }
    if covariance_type == "factor":
        params["n_factors"] = draw(st.sampled_from([None, 1, 2]))
    if law == "normal":
        return GradientGaussian(**params)
    return GradientStudentT(df=draw(st.sampled_from(["auto", 4.0])), **params)


def _conditional_means(mean, matrix, X):
    """E[x_missing | x_observed] = mean_m + S_mo S_oo^-1 (x_o - mean_o),
    row by row."""
    out = np.array(X, dtype=np.float64)
    for row in out:
        miss = np.isnan(row)
        if not miss.any():
            continue
        seen = ~miss
        if not seen.any():
            row[miss] = mean[miss]
            continue
        S_oo = matrix[np.ix_(seen, seen)]
        S_mo = matrix[np.ix_(miss, seen)]
        row[miss] = mean[miss] + S_mo @ np.linalg.solve(S_oo, row[seen] - mean[seen])
    return out


@_seeded
@MODEL_SETTINGS
@given(problems(), estimators(), st.booleans(), st.integers(0, 2**32 - 1))
def test_fuzz_imputer(problem, estimator, sample_posterior, seed):
    """GaussianImputer with every estimator: our error, or finite output
    that keeps the observed entries and fills the missing ones with the
    conditional expectation of the fitted model (or finite draws)."""
    X = problem[0]
    if not np.any(np.isnan(X)) and X.shape[1] > 1:  # 20% missing, rows kept
        rng = np.random.RandomState(seed)
        mask = rng.uniform(size=X.shape) < 0.2
        mask[np.arange(len(X)), rng.randint(X.shape[1], size=len(X))] = False
        X = np.where(mask, np.nan, X)
    _note(X, None)
    imputer = GaussianImputer(
        estimator=estimator, sample_posterior=sample_posterior, random_state=0
    )
    filled, _ = _run(lambda: imputer.fit_transform(X))
    if filled is None:
        return
    X64 = np.asarray(X, dtype=np.float64)
    seen = ~np.isnan(X64)
    assert filled.shape == X.shape
    assert np.all(np.isfinite(filled))
    assert_allclose(filled[seen], X64[seen], rtol=1e-6)
    fitted = imputer.estimator_
    if sample_posterior or not np.any(~seen):
        event(f"imputed: posterior={sample_posterior}")
        return
    matrix = (
        fitted.shape_ if isinstance(fitted, GradientStudentT) else fitted.covariance_
    )
    sd = np.sqrt(np.diag(matrix))
    if _scipy_reliable(fitted.mean_, matrix):
        expected = _conditional_means(fitted.mean_, matrix, X64)
        # float32 input gives float32 output: one rounding of each entry.
        rounding = np.finfo(filled.dtype).eps * np.abs(expected) / sd
        error = np.abs(filled.astype(np.float64) - expected) / sd
        assert np.all(error <= 1e-6 + rounding), error.max()
    event("imputed: conditional expectation checked")


@_seeded
@HALF_SETTINGS
@given(problems(), st.integers(0, 2**32 - 1))
def test_fuzz_imputer_factor_posterior_draws(problem, seed):
    """GaussianImputer(sample_posterior=True) with the factor normal: our
    error, or finite draws that keep the observed entries."""
    X = problem[0]
    rng = np.random.RandomState(seed)
    X = np.where(rng.uniform(size=X.shape) < 0.2, np.nan, X)
    X = X[~np.all(np.isnan(X), axis=1)]
    _note(X, None)
    imputer = GaussianImputer(
        estimator=GradientGaussian(covariance_type="factor", n_factors=1),
        sample_posterior=True,
        random_state=0,
    )
    filled, _ = _run(lambda: imputer.fit_transform(X))
    if filled is None:
        return
    seen = ~np.isnan(X)
    assert np.all(np.isfinite(filled))
    assert_allclose(filled[seen], np.asarray(X, dtype=np.float64)[seen], rtol=1e-6)


@_seeded
@MODEL_SETTINGS
@given(problems(), estimators(), st.sampled_from([0.05, 0.1, 0.25, "auto"]))
def test_fuzz_outlier_detector(problem, estimator, contamination):
    """GaussianOutlierDetector with every estimator: our error, or finite
    scores equal to the estimator's (and to SciPy's where reliable),
    decision_function = score_samples - offset_, predict in {-1, +1} by its
    sign, and a float contamination flags that fraction of the training rows
    (within 1/n, when the training scores have no ties)."""
    X, weights = problem[:2]
    _note(X, None)
    detector = GaussianOutlierDetector(estimator=estimator, contamination=contamination)
    fitted, _ = _run(lambda: detector.fit(X))
    if fitted is None:
        return
    rows = np.asarray(X[~np.all(np.isnan(X), axis=1)], dtype=np.float64)
    scores = _quiet(lambda: detector.score_samples(rows))
    assert np.all(np.isfinite(scores))
    assert_allclose(scores, detector.estimator_.score_samples(rows), rtol=1e-12)
    _quiet(lambda: _assert_scipy_log_density(detector.estimator_, rows))
    decision = detector.decision_function(rows)
    assert_allclose(decision, scores - detector.offset_, rtol=1e-12, atol=1e-12)
    labels = detector.predict(rows)
    assert set(np.unique(labels)) <= {-1, 1}
    assert np.all((labels == -1) == (decision < 0))
    if contamination != "auto" and len(np.unique(scores)) == len(scores):
        flagged = np.mean(labels == -1)
        assert abs(flagged - contamination) <= 1.0 / len(rows) + 1e-12
    event(f"detector fitted: contamination={contamination}")


# %% RuntimeWarnings


@pytest.mark.xfail(
    strict=False, reason="issue 22 items 3 and 13: NumPy RuntimeWarnings leak"
)
@_seeded
@settings(KNOWN_DEFECT_SETTINGS, max_examples=N_EXAMPLES)
@given(problems(), estimators())
def test_fuzz_no_runtime_warning(problem, estimator):
    """No NumPy RuntimeWarning leaks from fit or score_samples of any model
    on the adversarial problems (our errors are fine)."""
    X, weights = problem[:2]
    _note(X, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        try:
            estimator.fit(X, sample_weight=weights)
        except (ValueError, TypeError) as exc:
            _assert_ours(exc)
            return
        estimator.score_samples(X[~np.all(np.isnan(X), axis=1)][:10])
