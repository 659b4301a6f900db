"""Dask arrays: statistics computed on the workers, equal to the NumPy fit."""

import os
import subprocess
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from test_partial_fit import assert_same_gaussian, ill_conditioned

from sklearn_mvn import GradientGaussian

ROOT = Path(__file__).resolve().parents[1]
# Uneven row chunks, more than one reduction level (fan-in 8), and several
# column chunks (rechunked into one).
ROW_CHUNKS = (40, 13, 77, 20, 20, 20, 10, 30, 30, 10, 15, 15)
COL_CHUNKS = (2, 3)


@pytest.fixture(scope="module")
def client():
    """Two worker processes; used only where selected (not the default)."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    ) as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request):
    """Run the test body with the threaded scheduler or the LocalCluster."""
    if request.param == "threads":
        with dask.config.set(scheduler="threads"):
            yield None
    else:
        cluster_client = request.getfixturevalue("client")
        with dask.config.set(scheduler=cluster_client):
            yield cluster_client


def data():
    X, weights = ill_conditioned()
    assert X.shape[0] == sum(ROW_CHUNKS)
    dX = da.from_array(X, chunks=(ROW_CHUNKS, COL_CHUNKS))
    dw = da.from_array(weights, chunks=30)  # not aligned with X's row chunks
    return X, weights, dX, dw


@pytest.mark.parametrize("weights_kind", ["none", "dask", "numpy"])
def test_dask_fit_equals_numpy_fit(scheduler, weights_kind):
    X, weights, dX, dw = data()
    sample_weight = {"none": None, "dask": dw, "numpy": weights}[weights_kind]
    np_weight = None if weights_kind == "none" else weights
    reference = GradientGaussian().fit(X, sample_weight=np_weight)
    if scheduler is None:
        model = GradientGaussian().fit(dX, sample_weight=sample_weight)
    else:
        with get_task_stream(scheduler) as stream:
            model = GradientGaussian().fit(dX, sample_weight=sample_weight)
        # The block statistics ran on the workers, one task per row block.
        block_tasks = [t for t in stream.data if "_block_stats" in str(t["key"])]
        assert len(block_tasks) == len(ROW_CHUNKS)
        assert {t["worker"] for t in block_tasks} <= set(
            scheduler.scheduler_info()["workers"]
        )
    assert_same_gaussian(model, reference)
    assert model.n_samples_seen_ == X.shape[0]
    assert model.n_features_in_ == X.shape[1]


def test_dask_score_samples_is_lazy(scheduler):
    X, _, dX, _ = data()
    model = GradientGaussian().fit(X)
    scores = model.score_samples(dX)
    assert isinstance(scores, da.Array)
    assert scores.shape == (X.shape[0],)
    assert scores.chunks == (ROW_CHUNKS,)
    np.testing.assert_allclose(
        scores.compute(), model.score_samples(X), rtol=1e-12, atol=0
    )
    score = model.score(dX)
    assert isinstance(score, float)
    np.testing.assert_allclose(score, model.score(X), rtol=1e-12)


def test_dask_partial_fit(scheduler):
    X, weights, dX, dw = data()
    model = GradientGaussian()
    model.partial_fit(dX[:100], sample_weight=dw[:100])
    model.partial_fit(X[100:150], sample_weight=weights[100:150])  # NumPy chunk
    model.partial_fit(dX[150:], sample_weight=weights[150:])
    assert model.n_samples_seen_ == X.shape[0]
    assert_same_gaussian(model, GradientGaussian().fit(X, sample_weight=weights))


def test_dask_partial_fit_checks_n_features():
    X, _, dX, _ = data()
    model = GradientGaussian().partial_fit(dX[:100])
    with pytest.raises(ValueError, match="X has 4 features, but GradientGaussian"):
        model.partial_fit(dX[100:, :4])
    with pytest.raises(ValueError, match="X has 4 features, but GradientGaussian"):
        model.score_samples(dX[:, :4])
    assert model.n_samples_seen_ == 100


def test_dask_empty_blocks():
    X, weights = ill_conditioned()
    dX = da.from_array(X, chunks=((100, 0, 150, 0, 50), 5))
    dw = da.from_array(weights, chunks=((100, 0, 150, 0, 50),))
    model = GradientGaussian().fit(dX, sample_weight=dw)
    assert_same_gaussian(model, GradientGaussian().fit(X, sample_weight=weights))
    np.testing.assert_allclose(
        model.score_samples(dX).compute(), model.score_samples(X), rtol=1e-12
    )


def test_dask_integer_and_float32_inputs():
    rng = np.random.RandomState(0)
    X = rng.randint(-50, 50, size=(200, 3))
    for Xa in (X, X.astype(np.float32)):
        reference = GradientGaussian().fit(Xa)
        model = GradientGaussian().fit(da.from_array(Xa, chunks=64))
        assert_same_gaussian(model, reference)


def test_dask_unknown_row_chunks():
    X, weights, dX, _ = data()
    keep = X[:, 0] < np.median(X[:, 0])
    masked = dX[da.from_array(keep, chunks=(ROW_CHUNKS,))]
    assert np.isnan(masked.shape[0])
    model = GradientGaussian().fit(masked)
    assert model.n_samples_seen_ == keep.sum()
    assert_same_gaussian(model, GradientGaussian().fit(X[keep]))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        GradientGaussian().fit(masked, sample_weight=weights[keep])


def with_value(dX, value):
    """``dX`` with ``value`` at one entry of a middle row block."""
    mask = np.zeros(dX.shape, dtype=bool)
    mask[123, 2] = True
    return da.where(da.from_array(mask, chunks=dX.chunks), value, dX)


@pytest.mark.parametrize(
    "make_X, error, match",
    [
        (lambda dX: dX[:, 0], ValueError, "Expected a 2-D Dask array"),
        (lambda dX: dX[:0], ValueError, "0 sample"),
        (lambda dX: dX[:, :0], ValueError, "0 feature"),
        (lambda dX: dX.astype(complex), ValueError, "Complex data"),
        (lambda dX: dX.astype(object), ValueError, "numeric dtype"),
        (lambda dX: with_value(dX, np.inf), ValueError, "X contains infinity"),
        (lambda dX: with_value(dX, -np.inf), ValueError, "X contains infinity"),
    ],
    ids=["1d", "no rows", "no columns", "complex", "object", "inf", "-inf"],
)
def test_dask_invalid_X(make_X, error, match):
    _, _, dX, _ = data()
    with pytest.raises(error, match=match):
        GradientGaussian().fit(make_X(dX))


@pytest.mark.parametrize(
    "make_weights, match",
    [
        (lambda dw: -dw, "negative"),
        (lambda dw: da.where(dw > 2.9, np.nan, dw), "NaN or infinity"),
        (lambda dw: dw[:-1], "one weight per row"),
        (lambda dw: dw[:, None], "1-D"),
        (lambda dw: 0 * dw, "sums to zero"),
    ],
    ids=["negative", "nan", "length", "2d", "zero sum"],
)
def test_dask_invalid_weights(make_weights, match):
    _, _, dX, dw = data()
    with pytest.raises(ValueError, match=match):
        GradientGaussian().fit(dX, sample_weight=make_weights(dw))


def test_dask_fit_drops_feature_names():
    import pandas as pd

    X, _, dX, _ = data()
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = GradientGaussian().fit(frame)
    assert hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="valid feature names"):
        scores = model.score_samples(dX)
    np.testing.assert_allclose(scores.compute(), model.score_samples(frame), rtol=1e-12)
    model.fit(dX)
    assert not hasattr(model, "feature_names_in_")


def test_package_does_not_import_dask():
    """Importing the package, or fitting NumPy data, never loads Dask."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import sklearn_mvn\n"
        "assert 'dask' not in sys.modules, 'import'\n"
        "X = np.random.RandomState(0).standard_normal((50, 3))\n"
        "model = sklearn_mvn.GradientGaussian().fit(X)\n"
        "model.partial_fit(X)\n"
        "model.score(X)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dask'], 'fit'\n"
        "print(sklearn_mvn.__file__)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).parent == ROOT / "sklearn_mvn"
