"""
===========================================================
Choosing the shrinkage: cross-validation, Ledoit-Wolf, OAS
===========================================================

With fewer samples than features the maximum-likelihood covariance is
singular, and with few samples it overfits. The ``shrinkage`` of
:class:`~sklearn_mvn.GradientGaussian` pulls the estimate towards a scaled
identity; its optimum is the estimate of
:class:`~sklearn.covariance.ShrunkCovariance`. This example uses the set-up of
scikit-learn's *Shrinkage covariance estimation: LedoitWolf vs OAS and
max-likelihood* (40 features, 20 training samples, a random colouring matrix)
and compares three ways of choosing the shrinkage:

* :class:`~sklearn.model_selection.GridSearchCV` on the held-out mean
  log-likelihood (the :meth:`~sklearn_mvn.GradientGaussian.score` of the
  estimator);
* the closed-form coefficient of :class:`~sklearn.covariance.LedoitWolf`,
  asymptotically optimal for the squared error of the covariance;
* the coefficient of :class:`~sklearn.covariance.OAS`, designed for Gaussian
  data and small samples.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

# %%
# Data
# ----
#
# Standard normal samples multiplied by a random colouring matrix ``A`` are
# Gaussian with covariance :math:`A^\top A`.
import numpy as np

n_features, n_samples = 40, 20
rng = np.random.RandomState(42)
coloring_matrix = rng.normal(size=(n_features, n_features))
X_train = rng.normal(size=(n_samples, n_features)) @ coloring_matrix
X_test = rng.normal(size=(n_samples, n_features)) @ coloring_matrix
true_covariance = coloring_matrix.T @ coloring_matrix

# %%
# Held-out log-likelihood along the shrinkage path
# ------------------------------------------------
#
# For each shrinkage :math:`\alpha` we fit on the training set and report the
# mean log-likelihood per sample of the test set. The fitted covariance is
# :math:`(1-\alpha) S_{ML} + \alpha \tau I` with
# :math:`\tau = \operatorname{tr}(S_{ML})/d`, exactly
# :class:`~sklearn.covariance.ShrunkCovariance`'s estimate, so both give the
# same test score (checked below). :math:`\alpha = 0` is left out: with 20
# samples in 40 dimensions the maximum-likelihood covariance is singular and
# :class:`~sklearn_mvn.GradientGaussian` refuses it with a ``ValueError``.
from sklearn.covariance import ShrunkCovariance

from sklearn_mvn import GradientGaussian

shrinkages = np.logspace(-2, 0, 20)
test_scores = np.array(
    [GradientGaussian(shrinkage=a).fit(X_train).score(X_test) for a in shrinkages]
)
peer_scores = np.array(
    [ShrunkCovariance(shrinkage=a).fit(X_train).score(X_test) for a in shrinkages]
)
print(
    "largest |GradientGaussian - ShrunkCovariance| test score: "
    f"{np.max(np.abs(test_scores - peer_scores)):.2e}"
)

# %%
# The three choices of the shrinkage
# ----------------------------------
#
# :class:`~sklearn.model_selection.GridSearchCV` uses only the training set:
# each candidate is fitted on four fifths of it and scored by its mean
# log-likelihood on the remaining fifth. :class:`~sklearn.covariance.LedoitWolf`
# and :class:`~sklearn.covariance.OAS` shrink towards the same target
# :math:`\tau I`, so a :class:`~sklearn_mvn.GradientGaussian` with their
# coefficient reproduces their estimates.
from scipy.stats import multivariate_normal
from sklearn.covariance import OAS, LedoitWolf
from sklearn.model_selection import GridSearchCV

search = GridSearchCV(GradientGaussian(), {"shrinkage": shrinkages}, cv=5)
search.fit(X_train)
cv_shrinkage = search.best_params_["shrinkage"]
cv_score = search.best_estimator_.score(X_test)

lw = LedoitWolf().fit(X_train)
oas = OAS().fit(X_train)
lw_score = GradientGaussian(shrinkage=lw.shrinkage_).fit(X_train).score(X_test)
oas_score = GradientGaussian(shrinkage=oas.shrinkage_).fit(X_train).score(X_test)
print(f"LedoitWolf: |difference of test scores| {abs(lw_score - lw.score(X_test)):.2e}")
print(
    f"OAS:        |difference of test scores| {abs(oas_score - oas.score(X_test)):.2e}"
)

# Reference: the log-likelihood under the true distribution.
true_score = (
    multivariate_normal(np.zeros(n_features), true_covariance).logpdf(X_test).mean()
)

for name, alpha, score in [
    ("cross-validation", cv_shrinkage, cv_score),
    ("Ledoit-Wolf", lw.shrinkage_, lw_score),
    ("OAS", oas.shrinkage_, oas_score),
]:
    print(f"{name:17s} shrinkage = {alpha:.3f}, test log-likelihood = {score:.2f}")
print(f"best on the test set: shrinkage = {shrinkages[np.argmax(test_scores)]:.3f}")
print(f"true covariance: test log-likelihood = {true_score:.2f}")

# %%
# Plot
# ----
import matplotlib.pyplot as plt

fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(11, 4.5))
choices = [
    ("cross-validation", cv_shrinkage, cv_score, "tab:cyan"),
    ("Ledoit-Wolf", lw.shrinkage_, lw_score, "tab:purple"),
    ("OAS", oas.shrinkage_, oas_score, "tab:olive"),
]
zoom = shrinkages >= 0.2
for ax, keep in [(ax_all, slice(None)), (ax_zoom, zoom)]:
    ax.semilogx(shrinkages[keep], -test_scores[keep], color="k",
                label="GradientGaussian(shrinkage)")  # fmt: skip
    ax.axhline(-true_score, color="tab:red", linestyle="--", label="true covariance")
    bottom = -true_score - 0.1 * (np.max(-test_scores[keep]) + true_score)
    for name, alpha, score, color in choices:
        ax.vlines(alpha, bottom, -score, color=color, linewidth=3, label=name)
    ax.set_ylim(bottom, None)
    ax.set_xlabel("shrinkage")
ax_all.set_ylabel("negative mean log-likelihood of the test set")
ax_all.set_title("40 features, 20 training samples")
ax_zoom.set_title("Zoom on shrinkage >= 0.2")
ax_zoom.legend(fontsize="small", loc="center right")
fig.tight_layout()

# %%
# All three choices land in the flat part of the curve, far better than small
# shrinkages. Cross-validation optimises the criterion that is plotted, but on
# folds of only 16 samples its choice is noisy; Ledoit-Wolf and OAS need no
# refitting at all. Because the estimator's
# :meth:`~sklearn_mvn.GradientGaussian.score` is the *mean* log-likelihood per
# sample, scores of folds and test sets of different sizes are comparable.
plt.show()
