"""
A restricted Boltzmann machine on digits: filters, samples, features
=====================================================================

An :class:`skebm.RBM` with Bernoulli units trained by persistent contrastive
divergence on scikit-learn's 8 x 8 digits, binarized. The figure shows the
weights of the hidden units (the filters), samples from long Gibbs chains and
one chain's snapshots. The script then prints the exact test log-likelihood
(log Z by enumerating the 16 hidden units), and the accuracy of a logistic
regression on the raw pixels, on the RBM's hidden units in a ``Pipeline``, and
on a stack of two RBMs.

Run: ``python examples/plot_rbm_digits.py [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skebm import RBM
from skebm.plotting import plot_chain, plot_samples


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figures")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    X = (digits.data > 7).astype(float)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.3, random_state=0)

    rbm = RBM(n_components=16, max_iter=30, random_state=0).fit(X_train)
    print(f"test log-likelihood: {rbm.score(X_test):.2f} nats per digit (log Z exact: {rbm.log_partition_:.2f})")
    figures = {
        "filters: the weights of the 16 hidden units": plot_samples(rbm.components_, n_cols=8),
        "samples after 1,000 Gibbs steps": plot_samples(rbm.sample(40, random_state=0), n_cols=10),
        "three Gibbs chains, from the start (left)": plot_chain(rbm, n_chains=3, n_snapshots=10),
    }
    for index, (title, fig) in enumerate(figures.items()):
        fig.suptitle(title)
        fig.savefig(output / f"rbm_digits_{index + 1}.png", dpi=80)

    classifiers = {
        "logistic regression on pixels": LogisticRegression(max_iter=2000),
        "RBM(256) -> logistic regression": make_pipeline(
            RBM(n_components=256, max_iter=20, log_partition=None, random_state=0), LogisticRegression(max_iter=2000)
        ),
        "RBM(256) -> RBM(64) -> logistic": make_pipeline(
            RBM(n_components=256, max_iter=20, log_partition=None, random_state=0),
            RBM(n_components=64, max_iter=20, log_partition=None, random_state=0),
            LogisticRegression(max_iter=2000),
        ),
    }
    for name, model in classifiers.items():
        print(f"{name:<34} test accuracy {model.fit(X_train, y_train).score(X_test, y_test):.3f}")


if __name__ == "__main__":
    main()
