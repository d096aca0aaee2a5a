"""
Outlier detection on real data
==============================

Every skebm estimator is a scikit-learn outlier detector: the energy ranks
rows, ``contamination`` sets the threshold, ``predict`` returns +1 or -1. This
example builds an anomaly-detection task from scikit-learn's breast cancer
data (all benign tumours and a few malignant ones, 5% of the rows, as the
anomalies), trains on 70% of it without labels, and draws the ROC curves of two
skebm detectors beside ``IsolationForest`` and ``GaussianMixture`` on the other
30%. The skebm detectors read standardized features in a ``Pipeline`` and
run at their defaults: for more than two features ``ScoreMatchingEBM``
learns, by denoising score matching, the density smoothed at 0.3 of each
feature's spread, the setting ``benchmarks/bench_outliers.py`` measures.

``predict`` thresholds at the ``contamination`` percentile of the training
scores, so it flags about that share of new rows only when the model scores
new rows like training rows. The script prints how many test rows each skebm
detector flags: NCE's default noise, a mixture of 8 full-covariance Gaussians,
is fitted on 375 rows of 30 features and scores the training rows far above
new ones, so its threshold flags most of the test set even though its ranking
(the ROC-AUC) is good. Rank with ``score_samples``, or set the threshold on
held-out rows, when a model can memorize its training rows.

Run: ``python examples/plot_outlier_detection.py [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import IsolationForest
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skebm import NCEEBM, ScoreMatchingEBM


def anomaly_task(random_state=0):
    data = load_breast_cancer()
    benign, malignant = data.data[data.target == 1], data.data[data.target == 0]
    n_anomalies = round(0.05 * len(benign) / 0.95)
    rng = np.random.default_rng(random_state)
    X = np.vstack([benign, malignant[rng.choice(len(malignant), n_anomalies, replace=False)]])
    y = np.r_[np.zeros(len(benign)), np.ones(n_anomalies)]  # 1 = anomaly
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


DETECTORS = {
    "ScoreMatchingEBM": lambda: make_pipeline(StandardScaler(), ScoreMatchingEBM(log_partition=None, random_state=0)),
    "NCEEBM": lambda: make_pipeline(StandardScaler(), NCEEBM(random_state=0)),
    "IsolationForest": lambda: IsolationForest(random_state=0),
    "GaussianMixture(8)": lambda: make_pipeline(StandardScaler(), GaussianMixture(8, random_state=0)),
}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figure")
    args = parser.parse_args(argv)
    X_train, X_test, _, y_test = anomaly_task()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, build in DETECTORS.items():
        detector = build().fit(X_train)  # no labels
        anomaly_score = -detector.score_samples(X_test)
        print(f"{name:<34} ROC-AUC {roc_auc_score(y_test, anomaly_score):.3f}")
        RocCurveDisplay.from_predictions(y_test, anomaly_score, name=name, ax=ax)
    for name in ["ScoreMatchingEBM", "NCEEBM"]:
        flagged = DETECTORS[name]().fit(X_train).predict(X_test) == -1  # threshold: contamination=0.1
        print(f"{name} flags {flagged.sum()} of {len(X_test)} test rows, {int(y_test[flagged].sum())} malignant")
    ax.set_title("malignant tumours as anomalies")
    fig.tight_layout()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fig.savefig(output / "outlier_detection.png", dpi=80)


if __name__ == "__main__":
    main()
