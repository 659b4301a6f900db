"""Public exception classes of sklearn-mvn.

Catch these to tell the package's own errors apart from other ones; each is a
subclass of the built-in exception that the rest of scikit-learn would raise
in its place, so ``except ValueError`` keeps working.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

__all__ = ["NotDeterminedError"]


class NotDeterminedError(ValueError):
    """The data seen do not determine the model (e.g. a singular covariance).

    Raised by ``fit`` (and by the wrappers' ``fit``, which fit a density
    estimator) when the maximum-likelihood estimate does not exist: a single
    sample, fewer samples than features, constant or collinear features. The
    message says which features and what to do: set ``reg_covar > 0`` or
    ``shrinkage > 0``, or remove the redundant features. A subclass of
    :class:`ValueError`.

    ``partial_fit`` does not raise it for a chunk that leaves the model
    undetermined: it keeps the chunk's statistics and warns, so later chunks
    can determine the model.

    See Also
    --------
    sklearn.exceptions.NotFittedError : Raised when a method is called before
        ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mvn import GradientGaussian
    >>> from sklearn_mvn.exceptions import NotDeterminedError
    >>> X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])  # a constant feature
    >>> try:
    ...     GradientGaussian().fit(X)
    ... except NotDeterminedError as exc:
    ...     print(str(exc)[:61])
    The covariance is singular (zero variance in feature(s) [1];
    >>> GradientGaussian(shrinkage=0.1).fit(X).covariance_.round(3)
    array([[0.633, 0.   ],
           [0.   , 0.033]])
    """
