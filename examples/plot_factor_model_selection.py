"""
=========================================================
Choosing the number of factors, with and without NaN
=========================================================

This replicates scikit-learn's example "Model selection with Probabilistic
PCA and Factor Analysis (FA)" with the factor model of
:class:`~sklearn_mvn.GradientGaussian` (``covariance_type="factor"``): data of
rank 5 plus homoscedastic or heteroscedastic noise, and the number of
factors chosen by cross-validated log-likelihood with
:class:`~sklearn.model_selection.GridSearchCV` over ``n_factors``.

Then 20% of the entries are removed at random. The exact fit maximises the
likelihood of the observed entries and still finds the rank. Imputing the
means first (:class:`~sklearn.impute.SimpleImputer`) and fitting
:class:`~sklearn.decomposition.FactorAnalysis` to the completed data shrinks
the variances and correlations: scored the same way (the held-out
log-likelihood of the observed entries), it is worse at every number of
factors. On these data it happens to prefer the same rank.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

# %%
# Data: rank 5 plus noise
# -----------------------
#
# As in scikit-learn's example: 25 features, a rank-5 signal, and noise of
# the same variance for every feature (homoscedastic) or of a different one
# per feature (heteroscedastic). We draw 1000 samples instead of 500: with
# 500 the heteroscedastic case is borderline (4 and 5 factors score within
# 0.01 of each other), which would blur the comparison with missing values.
import numpy as np
from scipy import linalg

n_samples, n_features, rank = 1000, 25, 5
sigma = 1.0
rng = np.random.RandomState(42)
U, _, _ = linalg.svd(rng.randn(n_features, n_features))
X = np.dot(rng.randn(n_samples, rank), U[:, :rank].T)
X_homo = X + sigma * rng.randn(n_samples, n_features)
sigmas = sigma * rng.rand(n_features) + sigma / 2.0
X_hetero = X + rng.randn(n_samples, n_features) * sigmas

# %%
# Cross-validated log-likelihood over ``n_factors``
# -------------------------------------------------
#
# :meth:`~sklearn_mvn.GradientGaussian.score` is the mean log-likelihood, so
# :class:`~sklearn.model_selection.GridSearchCV` maximises the held-out
# likelihood directly.
import warnings

from sklearn.model_selection import GridSearchCV

from sklearn_mvn import GradientGaussian

# More factors than the data support drive some noise variances to their
# lower bound (a Heywood case), which the estimator reports with a warning,
# and leave the fit ill-conditioned there (a ConvergenceWarning). Both are
# expected for the too-large values of the grid and silenced here.
warnings.filterwarnings("ignore", message=".*Heywood case")
warnings.filterwarnings("ignore", message="GradientGaussian did not converge")

n_factors = np.arange(2, 9)


def cv_scores(estimator, X, param="n_factors"):
    search = GridSearchCV(estimator, {param: n_factors}, cv=4)
    search.fit(X)
    return search.cv_results_["mean_test_score"], search.best_params_[param]


factor = GradientGaussian(covariance_type="factor")
results = {}
for name, data in [("homoscedastic", X_homo), ("heteroscedastic", X_hetero)]:
    results[name] = cv_scores(factor, data)
    print(f"{name} noise: best n_factors = {results[name][1]} (true rank {rank})")

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
for ax, (name, (scores, best)) in zip(axes, results.items(), strict=True):
    ax.plot(n_factors, scores, "o-", label="GradientGaussian (factor)")
    ax.axvline(rank, color="g", ls="--", label=f"true rank {rank}")
    ax.axvline(best, color="b", ls=":", label=f"chosen {best}")
    ax.set(title=f"{name} noise", xlabel="n_factors", ylabel="CV log-likelihood")
    ax.legend(loc="lower right")
fig.tight_layout()

# %%
# 20% of the entries missing
# --------------------------
#
# Missing completely at random. The exact fit needs nothing more: ``fit``
# and ``score`` use the marginal density of each row's observed entries. The
# common alternative imputes column means and fits
# :class:`~sklearn.decomposition.FactorAnalysis`; for a fair comparison its
# fitted ``W`` and ``psi`` are scored by the same held-out observed-data
# log-likelihood (a :class:`~sklearn_mvn.GradientGaussian` carrying them).
from sklearn.base import BaseEstimator
from sklearn.decomposition import FactorAnalysis
from sklearn.impute import SimpleImputer

X_missing = X_hetero.copy()
X_missing[rng.rand(*X_missing.shape) < 0.2] = np.nan


class ImputeThenFA(BaseEstimator):
    """SimpleImputer(mean) + FactorAnalysis, scored on the observed entries."""

    def __init__(self, n_factors=1):
        self.n_factors = n_factors

    def fit(self, X, y=None):
        filled = SimpleImputer().fit_transform(X)
        fa = FactorAnalysis(self.n_factors).fit(filled)
        # The same density, evaluated by the exact marginal likelihood.
        self.model_ = GradientGaussian(
            covariance_type="factor", n_factors=self.n_factors
        )
        self.model_.n_features_in_ = X.shape[1]
        self.model_.mean_ = fa.mean_
        self.model_.components_ = fa.components_
        self.model_.noise_variance_ = fa.noise_variance_
        return self

    def score(self, X, y=None):
        return self.model_.score(X)


exact_scores, exact_best = cv_scores(factor, X_missing)
imputed_scores, imputed_best = cv_scores(ImputeThenFA(), X_missing)
print(
    f"exact fit with NaN: best n_factors = {exact_best}, "
    f"CV log-likelihood {exact_scores.max():.3f}"
)
print(
    f"SimpleImputer + FactorAnalysis: best n_factors = {imputed_best}, "
    f"CV log-likelihood {imputed_scores.max():.3f}"
)

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(n_factors, exact_scores, "o-", label=f"exact fit (chosen {exact_best})")
ax.plot(n_factors, imputed_scores, "s-", label=f"impute + FA (chosen {imputed_best})")
ax.axvline(rank, color="g", ls="--", label=f"true rank {rank}")
ax.set(
    title="20% missing, heteroscedastic noise",
    xlabel="n_factors",
    ylabel="CV observed-data log-likelihood",
)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
