"""Shared estimator behaviour: all-or-nothing fit, warnings at the caller,
progress output."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mvn import GradientGaussian


def _data(n=300, d=4, seed=0, missing=0.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) @ rng.randn(d, d) + 3.0
    if missing:
        mask = rng.uniform(size=X.shape) < missing
        mask[mask.all(axis=1), 0] = False
        X[mask] = np.nan
    return X


@pytest.mark.parametrize("missing", [0.0, 0.2], ids=["complete", "nan"])
def test_convergence_warning_points_at_the_callers_line(missing):
    X = _data(missing=missing)
    model = GradientGaussian(warm_start=True).fit(X[:40])
    with pytest.warns(ConvergenceWarning) as record:
        model.set_params(max_iter=1).fit(X)
    assert {w.filename for w in record} == {__file__}


def test_warning_from_a_meta_estimator_points_at_the_callers_line():
    X = _data(missing=0.2)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), GradientGaussian(max_iter=1)),
        {"gradientgaussian__shrinkage": [0.0, 0.1]},
        cv=2,
    )
    with pytest.warns(ConvergenceWarning) as record:
        search.fit(X)
    assert {w.filename for w in record} == {__file__}


def test_verbose_nan_fit_reports_on_the_objective_scale(capsys):
    X = _data(missing=0.2)
    model = GradientGaussian(verbose=1).fit(X)
    lines = capsys.readouterr().out.splitlines()
    iterations = [line for line in lines if line.startswith("Iteration")]
    numbers = [int(line.split(":")[0].split()[1]) for line in iterations]
    # one global count, never restarted by re-whitening
    assert numbers == list(range(len(numbers)))
    last = float(iterations[-1].split("objective = ")[1].split(",")[0])
    # printed objective values are on the scale of objective_
    assert abs(last - model.objective_) <= 1e-9 * max(1.0, abs(model.objective_))
    assert lines[-1].startswith("GradientGaussian converged")
    assert f"{model.n_iter_} iterations" in lines[-1]
    assert [value for value, _ in model.history_][-1] == pytest.approx(
        model.objective_, rel=1e-9
    )


@pytest.mark.parametrize("missing", [0.0, 0.2], ids=["complete", "nan"])
def test_failed_fit_keeps_the_previous_state(missing):
    X = _data(missing=missing)
    model = GradientGaussian().fit(X)
    before = {k: v for k, v in vars(model).items()}
    with pytest.raises(ValueError):
        model.fit(np.ones((2, 5)))
    assert set(vars(model)) == set(before)
    assert model.n_features_in_ == 4
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            assert_array_equal(getattr(model, name), value)

    class Interrupting:
        def __array__(self, dtype=None, copy=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(_data(d=3), sample_weight=Interrupting())
    assert model.n_features_in_ == 4 and model.mean_.shape == (4,)


def test_failed_first_fit_leaves_the_estimator_unfitted():
    model = GradientGaussian()
    with pytest.raises(ValueError, match="singular"):
        model.fit(np.ones((2, 5)))
    assert not hasattr(model, "n_features_in_")
    with pytest.raises(NotFittedError):
        model.score_samples(np.ones((2, 5)))
