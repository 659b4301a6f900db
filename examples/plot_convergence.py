"""
==================================
Convergence of the optimiser
==================================

:class:`~sklearn_mvn.GradientGaussian` minimises the negative log-likelihood
with L-BFGS-B and records, in ``history_``, the objective and the largest
entry of the gradient at the starting point and after every iteration. This
example shows what that record looks like, and that the optimiser's path does
not depend on the units of the features.
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

# %%
# The default start is already the optimum
# ----------------------------------------
#
# Before optimising, the estimator computes a *pilot* covariance from the
# sufficient statistics (the moment estimate, with the regularisation terms
# applied) and starts from it. For complete data this pilot is the exact
# optimum, with or without ``shrinkage`` and ``reg_covar``, so the optimiser
# only certifies it: ``n_iter_`` is 0 and ``history_`` holds one entry, whose
# gradient is at round-off level.
import numpy as np
from sklearn.datasets import load_wine

from sklearn_mvn import GradientGaussian

X, y = load_wine(return_X_y=True)
for params in [{}, {"shrinkage": 0.2}, {"reg_covar": 0.1}]:
    model = GradientGaussian(**params).fit(X)
    value, gradient = model.history_[0]
    print(f"{params!s:20s} n_iter_ = {model.n_iter_}, largest gradient {gradient:.1e}")

# %%
# A start away from the optimum: ``warm_start``
# ---------------------------------------------
#
# To watch the optimiser work, we start it elsewhere: a first fit on 30 of the
# 178 wines (10 of each cultivar) gives a rough estimate, and a second fit on
# all of them with ``warm_start=True`` starts from that estimate.
subset = np.concatenate([np.flatnonzero(y == k)[:10] for k in range(3)])


def warm_fit(X):
    model = GradientGaussian(warm_start=True).fit(X[subset])
    return model.fit(X)


model = warm_fit(X)
print(f"n_iter_ = {model.n_iter_}, converged_ = {model.converged_}")

# Error against the closed form, in correlation units (free of feature scales).
closed_form = np.cov(X.T, bias=True)
std = np.sqrt(np.diag(closed_form))
error = np.max(np.abs(model.covariance_ - closed_form) / np.outer(std, std))
print(f"largest error against the closed form: {error:.1e} (correlation units)")

# %%
# Units do not matter
# -------------------
#
# The optimiser works in coordinates whitened by the Cholesky factor of the
# pilot covariance. Rescaling the features (here by factors from 1e-3 to 1e6)
# changes the pilot by the same diagonal map, so in whitened coordinates the
# problem, and every iterate, is the same: the two histories coincide.
scales = np.logspace(-3, 6, X.shape[1])
rescaled = warm_fit(X * scales)
print(f"rescaled data: n_iter_ = {rescaled.n_iter_}")
expected = model.covariance_ * np.outer(scales, scales)
difference = np.max(
    np.abs(rescaled.covariance_ - expected) / np.outer(std * scales, std * scales)
)
print(f"largest difference from the rescaled estimate: {difference:.1e}")

# %%
# Plot
# ----
#
# ``history_`` stores the objective in whitened coordinates, where it differs
# from ``objective_`` by a constant. Its distance to the final value and the
# largest gradient entry fall together until the gradient is below ``tol``
# (1e-8 by default). The last points of the objective's curve sit at the
# rounding error of the objective (about 1e-15 relative): there the gradient,
# not the objective, measures progress, which is why the stopping rule uses it.
import matplotlib.pyplot as plt

fig, (ax_obj, ax_grad) = plt.subplots(1, 2, figsize=(11, 4.2))
for fitted, label, style in [
    (model, "original units", "-o"),
    (rescaled, "features rescaled by 1e-3 ... 1e6", "--x"),
]:
    history = np.asarray(fitted.history_)
    gap = history[:, 0] - history[-1, 0]
    iterations = np.arange(len(history))
    ax_obj.semilogy(iterations[:-1], gap[:-1], style, label=label)
    ax_grad.semilogy(iterations, history[:, 1], style, label=label)
ax_grad.axhline(1e-8, color="grey", linestyle=":", label="tol")
ax_obj.set_xlabel("iteration")
ax_obj.set_ylabel("objective - final objective")
ax_obj.set_title("Objective (mean negative log-likelihood)")
ax_grad.set_xlabel("iteration")
ax_grad.set_ylabel("largest gradient entry (whitened)")
ax_grad.set_title("Gradient")
for ax in (ax_obj, ax_grad):
    ax.legend(fontsize="small")
fig.tight_layout()

# %%
# L-BFGS-B converges superlinearly once close to the optimum: about twenty
# iterations take the gradient from order ten to below 1e-8, each costing
# :math:`O(d^3)` on the sufficient statistics whatever the number of samples,
# and the curves are the same whatever the units of the features.
plt.show()
