"""Data sources: what a likelihood reads (complete-data statistics, statistics
per missingness pattern, passes over Dask blocks).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause
