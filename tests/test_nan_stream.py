"""partial_fit and Dask with missing values (NaN): per-pattern statistics
merge exactly, so streaming and distributed fits equal ``fit``."""

import dask
import dask.array as da
import numpy as np
import pytest
from test_dask import client, scheduler  # noqa: F401  (fixtures)
from test_partial_fit import CHUNKINGS, assert_same_gaussian, ill_conditioned, stream

from sklearn_mvn import GradientGaussian

# The missing-data MLE is iterative: both fits are run to a tight tolerance so
# that they agree to 1e-10 in correlation units. On these ill-conditioned data
# a whitened gradient g leaves the solution up to about 1.5 g from the optimum
# in those units, so TOL is well below NAN_TOL (with TOL = 1e-9, fits that
# L-BFGS-B converged at 3e-10 were 1.2e-10 apart).
TOL = 1e-11
# The line search alone stalls at the objective's round-off floor
# 10 sqrt(eps |J|) (> TOL), which left the solutions a few 1e-8 apart; Newton
# steps (which need no objective values) take the gradient below TOL, so fit
# and partial_fit agree to 1e-10. The statistics themselves merge exactly (see
# test_partial_fit.py).
NAN_TOL = 1e-10


def with_missing(seed=0, fraction=0.15):
    """Ill-conditioned data with entries missing completely at random (no row
    is entirely missing)."""
    X, weights = ill_conditioned(seed=seed)
    rng = np.random.RandomState(seed + 1)
    mask = rng.uniform(size=X.shape) < fraction
    mask[mask.all(axis=1), 0] = False
    X = X.copy()
    X[mask] = np.nan
    return X, weights


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nan_partial_fit_equals_fit_on_concatenation(chunking, weighted):
    X, weights = with_missing()
    weights = weights if weighted else None
    reference = GradientGaussian(tol=TOL).fit(X, sample_weight=weights)
    model = stream(GradientGaussian(tol=TOL), X, weights, chunking)
    assert model.n_samples_seen_ == X.shape[0]
    assert_same_gaussian(model, reference, tol=NAN_TOL)


def test_nan_partial_fit_after_fit_continues():
    X, weights = with_missing()
    model = GradientGaussian(tol=TOL).fit(X[:150], sample_weight=weights[:150])
    model.partial_fit(X[150:], sample_weight=weights[150:])
    reference = GradientGaussian(tol=TOL).fit(X, sample_weight=weights)
    assert_same_gaussian(model, reference, tol=NAN_TOL)


def test_nan_partial_fit_is_warm_started():
    """With NaN the pilot is not the optimum: after a fit, partial_fit starts
    from the previous solution when it is better than the new pilot."""
    X, _ = with_missing()
    cold = GradientGaussian(tol=TOL).fit(X)
    assert cold.n_iter_ > 0
    model = GradientGaussian(tol=TOL).fit(X[:-5])
    model.partial_fit(X[-5:])
    # history_[0] holds the starting objective and gradient (whitened units).
    assert model.history_[0][0] < cold.history_[0][0]
    assert model.history_[0][1] < cold.history_[0][1]
    assert_same_gaussian(model, cold, tol=NAN_TOL)


def test_nan_dask_fit_equals_numpy_fit(scheduler):  # noqa: F811
    X, weights = with_missing()
    dX = da.from_array(X, chunks=((40, 13, 77, 20, 20, 20, 10, 30, 30, 10, 30), 3))
    dw = da.from_array(weights, chunks=50)
    reference = GradientGaussian(tol=TOL).fit(X, sample_weight=weights)
    model = GradientGaussian(tol=TOL).fit(dX, sample_weight=dw)
    assert model.n_samples_seen_ == X.shape[0]
    assert_same_gaussian(model, reference, tol=NAN_TOL)


def test_nan_dask_partial_fit():
    X, _ = with_missing()
    dX = da.from_array(X, chunks=60)
    with dask.config.set(scheduler="threads"):
        model = GradientGaussian(tol=TOL).partial_fit(dX[:100])
        model.partial_fit(dX[100:])
    assert_same_gaussian(model, GradientGaussian(tol=TOL).fit(X), tol=NAN_TOL)


def test_nan_dask_score_samples_is_lazy():
    X, _ = with_missing()
    model = GradientGaussian(tol=TOL).fit(X)
    scores = model.score_samples(da.from_array(X, chunks=70))
    assert isinstance(scores, da.Array)
    np.testing.assert_allclose(scores.compute(), model.score_samples(X), rtol=1e-12)


def test_dask_still_rejects_infinity():
    X, _ = with_missing()
    X[5, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GradientGaussian().fit(da.from_array(X, chunks=70))
