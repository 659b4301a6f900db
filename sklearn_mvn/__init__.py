"""sklearn-mvn: multivariate normal density estimation by gradient-based ML.

The public surface is the density estimators :class:`GradientGaussian` and
:class:`GradientStudentT` (a robust, heavy-tailed density), the finite
mixture :class:`GradientGaussianMixture`, and the pipeline
tools built on them: :class:`GaussianImputer` (a transformer) and
:class:`GaussianOutlierDetector` (an outlier detector). The package's public
error classes are in :mod:`sklearn_mvn.exceptions`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from . import exceptions
from ._gradient_gaussian import GradientGaussian
from ._imputer import GaussianImputer
from ._mixture import GradientGaussianMixture
from ._outlier import GaussianOutlierDetector
from ._student_t import GradientStudentT
from ._version import __version__

__all__ = [
    "GaussianImputer",
    "GaussianOutlierDetector",
    "GradientGaussian",
    "GradientGaussianMixture",
    "GradientStudentT",
    "__version__",
    "exceptions",
]
