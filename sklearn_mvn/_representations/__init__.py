"""Covariance representations: how ``S = Lambda Lambda^T`` is parameterised.

One module per representation: :mod:`.triangular` (``'full'``, ``'diag'``,
``'spherical'``: a lower-triangular ``Lambda``) and :mod:`.low_rank`
(``'factor'``: ``Lambda = [W | diag(sqrt(psi))]``, Woodbury algebra);
:mod:`.conditional` conditions a normal on observed entries for any factor.
:func:`make_representation` is the one place that maps ``covariance_type`` to
a class.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

from .low_rank import FactorCovariance
from .triangular import NotDeterminedError, TriangularCovariance, singular_error

__all__ = [
    "FactorCovariance",
    "NotDeterminedError",
    "TriangularCovariance",
    "make_representation",
    "singular_error",
]


def make_representation(covariance_type, n_features, n_factors=None):
    """The representation of a ``covariance_type``: the one registry."""
    if covariance_type == "factor":
        return FactorCovariance(n_features, n_factors)
    return TriangularCovariance(covariance_type, n_features)
