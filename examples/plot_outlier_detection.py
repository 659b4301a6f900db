"""
=========================================================
Outlier detection: GaussianOutlierDetector and its peers
=========================================================

:class:`~sklearn_mvn.GaussianOutlierDetector` is a scikit-learn outlier
detector built on a fitted multivariate normal: ``score_samples`` is the
log-density, ``decision_function`` subtracts the threshold ``offset_`` set by
``contamination``, and ``predict`` returns +1 for inliers and -1 for outliers,
as :class:`~sklearn.covariance.EllipticEnvelope`,
:class:`~sklearn.ensemble.IsolationForest` and
:class:`~sklearn.neighbors.LocalOutlierFactor` do. First the four detectors
side by side on two-dimensional toy data, in the style of scikit-learn's
outlier detection comparison; then anomaly detection on the breast-cancer
data with test rows that miss some entries, which only
:class:`~sklearn_mvn.GaussianOutlierDetector` scores as they are (by the
marginal density of their observed entries).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

# %%
# Toy data
# --------
#
# Four data sets of 300 points, 15% of them outliers drawn uniformly over the
# square: a single Gaussian blob, two blobs of different spread, two blobs of
# equal spread, and two interleaved half moons. Every detector gets
# ``contamination=0.15``.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import make_blobs, make_moons
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from sklearn_mvn import GaussianOutlierDetector

n_samples, contamination = 300, 0.15
n_outliers = int(contamination * n_samples)
n_inliers = n_samples - n_outliers
blobs = {"n_samples": n_inliers, "n_features": 2, "random_state": 0}
toy = {
    "one blob": make_blobs(centers=[[0, 0], [0, 0]], cluster_std=0.5, **blobs)[0],
    "two blobs, unequal": make_blobs(
        centers=[[2, 2], [-2, -2]], cluster_std=[1.5, 0.3], **blobs
    )[0],
    "two blobs": make_blobs(centers=[[2, 2], [-2, -2]], cluster_std=0.5, **blobs)[0],
    "moons": 4.0 * (make_moons(n_samples=n_inliers, noise=0.05, random_state=0)[0]
                    - [0.5, 0.25]),
}  # fmt: skip
rng = np.random.RandomState(42)
toy = {
    name: np.concatenate([X, rng.uniform(-6, 6, size=(n_outliers, 2))])
    for name, X in toy.items()
}
detectors = {
    "GaussianOutlierDetector": GaussianOutlierDetector(contamination=contamination),
    "EllipticEnvelope": EllipticEnvelope(contamination=contamination, random_state=0),
    "IsolationForest": IsolationForest(contamination=contamination, random_state=0),
    "LocalOutlierFactor": LocalOutlierFactor(
        n_neighbors=35, contamination=contamination
    ),
}

# %%
# Each detector is fitted and predicts on the same points. The black line is
# the decision boundary (``decision_function == 0``; LocalOutlierFactor, an
# outlier detector without ``novelty=True``, labels only its training points).
xx, yy = np.meshgrid(np.linspace(-7, 7, 150), np.linspace(-7, 7, 150))
grid = np.c_[xx.ravel(), yy.ravel()]
fig, axes = plt.subplots(
    len(toy), len(detectors), figsize=(2.6 * len(detectors), 2.6 * len(toy))
)
for i, (data_name, X) in enumerate(toy.items()):
    for j, (name, detector) in enumerate(detectors.items()):
        start = time.perf_counter()
        labels = detector.fit_predict(X)
        seconds = time.perf_counter() - start
        ax = axes[i, j]
        if hasattr(detector, "decision_function") and name != "LocalOutlierFactor":
            levels = detector.decision_function(grid).reshape(xx.shape)
            ax.contour(xx, yy, levels, levels=[0], linewidths=2, colors="black")
        colors = np.where(labels == 1, "#377eb8", "#ff7f00")
        ax.scatter(X[:, 0], X[:, 1], s=6, color=colors)
        ax.set(xlim=(-7, 7), ylim=(-7, 7), xticks=(), yticks=())
        ax.text(6.6, -6.6, f"{seconds:.2f}s", ha="right", size=9)
        if i == 0:
            ax.set_title(name, size=10)
        if j == 0:
            ax.set_ylabel(data_name)
fig.tight_layout()

# %%
# :class:`~sklearn_mvn.GaussianOutlierDetector` fits the exact
# maximum-likelihood normal to *all* points, outliers included, so its
# boundary is an ellipse, wider than that of the robust
# :class:`~sklearn.covariance.EllipticEnvelope` (minimum covariance
# determinant), which ignores the most outlying points when it estimates the
# covariance. Like every single-Gaussian model, neither follows two blobs or
# moons: :class:`~sklearn.ensemble.IsolationForest` and
# :class:`~sklearn.neighbors.LocalOutlierFactor` do. On data that is close to
# Gaussian, the Gaussian detector gives a calibrated log-density, an exact fit
# with sample weights, regularisation chosen on held-out likelihood, and, as
# the next section shows, scores for rows with missing entries.
#
# Breast cancer: test rows with missing entries
# ---------------------------------------------
#
# The detectors learn "normal" from benign tumours (70% of them) and score
# held-out benign and malignant tumours. Then, in every test row, 5 of the
# 30 entries are removed at random.
# :class:`~sklearn_mvn.GaussianOutlierDetector` scores such a row by the
# marginal log-density of its 25 observed entries; scikit-learn's detectors
# reject NaN, so they are preceded by a
# :class:`~sklearn.impute.SimpleImputer` (training means) in a pipeline; and,
# in a third variant, by a :class:`~sklearn_mvn.GaussianImputer`, which fills
# in the conditional expectations under the normal fitted to the training
# rows.
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mvn import GaussianImputer

X, y = load_breast_cancer(return_X_y=True)  # y == 1: benign, y == 0: malignant
benign, malignant = X[y == 1], X[y == 0]
train, test_benign = train_test_split(benign, test_size=0.3, random_state=0)
X_test = np.concatenate([test_benign, malignant])
is_malignant = np.r_[np.zeros(len(test_benign)), np.ones(len(malignant))]
rng = np.random.RandomState(0)
X_test_missing = X_test.copy()
for row in X_test_missing:
    row[rng.choice(X.shape[1], 5, replace=False)] = np.nan


def make_detectors():
    return {
        "GaussianOutlierDetector": GaussianOutlierDetector(contamination=0.01),
        "EllipticEnvelope": EllipticEnvelope(contamination=0.01, random_state=0),
        "IsolationForest": IsolationForest(contamination=0.01, random_state=0),
        "LocalOutlierFactor": make_pipeline(
            StandardScaler(),
            LocalOutlierFactor(n_neighbors=35, contamination=0.01, novelty=True),
        ),
    }


results = {}
for name, detector in make_detectors().items():
    detector.fit(train)
    complete = roc_auc_score(is_malignant, -detector.score_samples(X_test))
    by_mean = make_pipeline(SimpleImputer(), make_detectors()[name]).fit(train)
    by_gauss = make_pipeline(GaussianImputer(), make_detectors()[name]).fit(train)
    results[name] = {
        "complete test rows": complete,
        "NaN as is": (
            roc_auc_score(is_malignant, -detector.score_samples(X_test_missing))
            if name == "GaussianOutlierDetector"
            else np.nan
        ),
        "SimpleImputer first": roc_auc_score(
            is_malignant, -by_mean.score_samples(X_test_missing)
        ),
        "GaussianImputer first": roc_auc_score(
            is_malignant, -by_gauss.score_samples(X_test_missing)
        ),
    }
print("ROC AUC, malignant against held-out benign tumours")
print(f"{'':24s}" + "".join(f"{key:>23s}" for key in results["EllipticEnvelope"]))
for name, row in results.items():
    print(f"{name:24s}" + "".join(f"{value:23.3f}" for value in row.values()))

# %%
# The scores as bars.
fig, ax = plt.subplots(figsize=(9, 4))
variants = list(results["EllipticEnvelope"])
width = 0.2
for k, variant in enumerate(variants):
    values = [results[name][variant] for name in results]
    ax.bar(np.arange(len(results)) + (k - 1.5) * width, values, width, label=variant)
ax.set_xticks(np.arange(len(results)), list(results), size=9)
ax.set_ylim(0.8, 1.0)
ax.set_ylabel("ROC AUC")
ax.set_title("5 of 30 entries missing in every test row")
ax.legend(fontsize="small", loc="lower left")
fig.tight_layout()

# %%
# With 5 of 30 entries missing, the marginal log-density keeps nearly all of
# the Gaussian detector's ranking power, without inventing values. Filling in
# training means hurts the two covariance-based detectors: it moves each
# incomplete row to the centre in its missing coordinates but leaves its
# observed ones as they are, a combination that a model of correlated
# features finds unusual in a benign row. Conditional expectations under the
# fitted normal (:class:`~sklearn_mvn.GaussianImputer`) agree with the
# observed entries, and every detector scores the filled rows about as well
# as the complete ones. :class:`~sklearn.ensemble.IsolationForest` and
# :class:`~sklearn.neighbors.LocalOutlierFactor` hardly depend on how the
# entries are filled in here.
#
# The threshold
# -------------
#
# ``contamination=0.01`` sets ``offset_`` at the 1% quantile of the training
# log-densities, so ``predict`` flags 1% of the training rows, within one row
# (``1/n``). A row with missing entries is scored by the density of fewer
# features, which is on another scale, and compared with the same
# ``offset_``: whether it flags the same fraction of such rows depends on the
# data. Here it does, as the last lines show.
detector = GaussianOutlierDetector(contamination=0.01).fit(train)
flagged_train = np.mean(detector.predict(train) == -1)
print(
    f"training rows flagged: {flagged_train:.2%} "
    f"(requested 1%, 1/n = {1 / len(train):.2%})"
)
for label, data in [("complete", X_test), ("5 entries missing", X_test_missing)]:
    flagged = detector.predict(data) == -1
    print(
        f"{label:>18s} test rows: flagged {flagged[is_malignant == 1].mean():.0%} of "
        f"malignant and {flagged[is_malignant == 0].mean():.0%} of benign tumours"
    )
plt.show()
