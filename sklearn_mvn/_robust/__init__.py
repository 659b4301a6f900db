"""Robust procedures: plain functions that take a fit callable."""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause
