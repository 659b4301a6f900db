"""Row chunks and triangular algebra."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sklearn_mvn._linalg import (
    map_chunks,
    precision_from_factor,
    row_chunks,
)


@pytest.mark.parametrize("n_rows, chunk_size", [(0, 3), (1, 3), (10, 3), (9, 3)])
def test_row_chunks_cover_the_rows_once(n_rows, chunk_size):
    chunks = list(row_chunks(n_rows, chunk_size=chunk_size))
    covered = np.concatenate([np.arange(n_rows)[c] for c in chunks] or [[]])
    assert covered.tolist() == list(range(n_rows))
    assert all(c.stop - c.start <= chunk_size for c in chunks)


def test_map_chunks_equals_whole():
    X = np.random.RandomState(0).randn(25, 3)
    assert_allclose(map_chunks(X, lambda b: b.sum(axis=1), chunk_size=4), X.sum(1))


def test_precision_from_factor_is_the_inverse_covariance():
    rng = np.random.RandomState(1)
    factor = np.tril(rng.randn(5, 5)) + 3 * np.eye(5)
    inverse, precision = precision_from_factor(factor)
    assert_allclose(inverse @ factor, np.eye(5), atol=1e-12)
    assert_allclose(precision, np.linalg.inv(factor @ factor.T), rtol=1e-10)
    assert np.array_equal(precision, precision.T)
