"""sklearn-mvn: multivariate normal density estimation by gradient-based ML.

The public surface is :class:`GradientGaussian` and :class:`GradientStudentT`.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from ._gradient_gaussian import GradientGaussian
from ._student_t import GradientStudentT
from ._version import __version__

__all__ = ["GradientGaussian", "GradientStudentT", "__version__"]
