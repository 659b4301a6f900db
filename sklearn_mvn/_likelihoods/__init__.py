"""Likelihoods: value and gradients of the penalised negative log-likelihood
of a model on a data source, and per-row log-densities.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause
