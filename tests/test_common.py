"""scikit-learn's estimator checks over several configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mvn import GradientGaussian

ESTIMATORS = [
    GradientGaussian(),
    GradientGaussian(covariance_type="diag"),
    GradientGaussian(covariance_type="spherical"),
    GradientGaussian(shrinkage=0.2),
    GradientGaussian(reg_covar=1e-3, warm_start=True),
    GradientGaussian(covariance_type="factor", n_factors=1),
    GradientGaussian(covariance_type="factor", shrinkage=0.1),
]

_SINGULAR = (
    "the check's data have a singular covariance ({}), so the unregularised "
    "full-covariance MLE does not exist and fit raises the documented "
    "ValueError; the regularised configurations run this check"
)


def expected_failed_checks(estimator):
    """Checks that need a maximum-likelihood estimate that does not exist."""
    regularised = estimator.reg_covar > 0 or estimator.shrinkage > 0
    if estimator.covariance_type != "full" or regularised:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": _SINGULAR.format(
            "15 samples, 30 features"
        ),
        "check_array_api_input": _SINGULAR.format(
            "make_classification's redundant features are linear combinations"
        ),
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
