"""sklearn-mvn: multivariate normal density estimation by gradient-based ML.

The public surface is the density estimator :class:`GradientGaussian` and the
pipeline tools built on it: :class:`GaussianImputer` (a transformer) and
:class:`GaussianOutlierDetector` (an outlier detector).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from ._gradient_gaussian import GradientGaussian
from ._imputer import GaussianImputer
from ._outlier import GaussianOutlierDetector
from ._version import __version__

__all__ = [
    "GaussianImputer",
    "GaussianOutlierDetector",
    "GradientGaussian",
    "__version__",
]
