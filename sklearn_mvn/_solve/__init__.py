"""The solver: optimisation drivers, preconditioned by the representation."""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause
