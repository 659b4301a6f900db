"""GradientStudentT on Dask arrays: every pass runs block-wise on the workers."""

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from numpy.testing import assert_allclose
from scipy.stats import multivariate_t

from sklearn_mvn import GradientStudentT

ROW_CHUNKS = (40, 13, 77, 20, 20, 20, 10, 30, 30, 10, 15, 15)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


def _data():
    rng = np.random.RandomState(0)
    X = multivariate_t([1.0, -1.0, 2.0], np.diag([1.0, 2.0, 0.5]), df=4).rvs(
        sum(ROW_CHUNKS), random_state=rng
    )
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    w = rng.rand(X.shape[0])
    return X, w


@pytest.mark.parametrize("df", ["auto", 5.0])
def test_distributed_fit_equals_numpy(client, df):
    X, w = _data()
    ref = GradientStudentT(df=df).fit(X, sample_weight=w)
    dX = da.from_array(X, chunks=(ROW_CHUNKS, (1, 2)))
    dw = da.from_array(w, chunks=30)
    with dask.config.set(scheduler=client), get_task_stream(client) as stream:
        model = GradientStudentT(df=df).fit(dX, sample_weight=dw)
    tasks = [t for t in stream.data if "_block_pass" in str(t["key"])]
    # One task per row block and pass, on the workers.
    assert len(tasks) % len(ROW_CHUNKS) == 0
    assert len(tasks) // len(ROW_CHUNKS) >= model.n_iter_
    assert {t["worker"] for t in tasks} <= set(client.scheduler_info()["workers"])
    assert_allclose(model.mean_, ref.mean_, rtol=1e-7, atol=1e-9)
    assert_allclose(model.shape_, ref.shape_, rtol=1e-7, atol=1e-9)
    assert_allclose(model.df_, ref.df_, rtol=1e-7)


def test_dask_invalid_values_are_reported():
    X, _ = _data()
    X[5, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GradientStudentT().fit(da.from_array(X, chunks=(50, 3)))
