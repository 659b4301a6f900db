"""Public exception classes: what fit raises on singular data is catchable."""

import numpy as np
import pytest

import sklearn_mvn
from sklearn_mvn import (
    GaussianImputer,
    GaussianOutlierDetector,
    GradientGaussian,
    GradientStudentT,
)
from sklearn_mvn.exceptions import NotDeterminedError


def _singular_data():
    """Named data sets whose unregularised covariance is singular."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    constant = X.copy()
    constant[:, 1] = 2.0
    collinear = X.copy()
    collinear[:, 2] = X[:, 0] - 3.0 * X[:, 1]
    return {
        "one sample": X[:1],
        "constant feature": constant,
        "collinear features": collinear,
        "fewer samples than features": rng.randn(3, 5),
    }


@pytest.mark.parametrize("data", list(_singular_data()))
@pytest.mark.parametrize(
    "estimator",
    [
        GradientGaussian(),
        GradientGaussian(covariance_type="diag"),
        GradientStudentT(),
        GaussianImputer(),
        GaussianOutlierDetector(),
        GaussianOutlierDetector(GradientStudentT(), contamination="auto"),
    ],
    ids=repr,
)
def test_fit_on_singular_data_raises_the_public_class(estimator, data):
    X = _singular_data()[data]
    if isinstance(estimator, GradientGaussian) and estimator.covariance_type == "diag":
        if data in ("collinear features", "fewer samples than features"):
            pytest.skip("a diagonal covariance is determined by these data")
    with pytest.raises(NotDeterminedError, match="singular") as info:
        estimator.fit(X)
    # Still a ValueError, and one that says what to do.
    assert isinstance(info.value, ValueError)
    assert "reg_covar > 0" in str(info.value)


def test_regularised_fits_do_not_raise():
    for X in _singular_data().values():
        GradientGaussian(reg_covar=1e-3).fit(X)


def test_one_class_importable_from_both_places():
    from sklearn_mvn._representations import NotDeterminedError as private

    assert private is NotDeterminedError
    assert NotDeterminedError.__module__ == "sklearn_mvn.exceptions"
    assert sklearn_mvn.exceptions.NotDeterminedError is NotDeterminedError
    assert issubclass(NotDeterminedError, ValueError)


def test_numpydoc():
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    result = numpydoc_validate.validate("sklearn_mvn.exceptions.NotDeterminedError")
    assert not result["errors"], result["errors"]
