"""Do the image EBMs draw digits? Samples judged by a classifier trained on real digits.

``load_digits`` scaled to [-1, 1] is split into 1,257 training rows and 540
held-out rows. A logistic regression on pixels, fitted on the training rows,
is the judge (its held-out accuracy is printed). Each model is fitted on the
training rows for ``--epochs`` epochs and draws 500 samples from noise; the
table gives, median over ``--seeds`` training seeds (with the range):

- the squared Frechet distance between the samples and the held-out digits in
  the judge's 10 logits (:func:`skebm.metrics.frechet_distance`), and its ratio
  to that of 500 real training digits (the floor a perfect model reaches);
- the kernel distance (KID) in the same logits;
- the judge's mean top-class probability on the samples, beside real digits'.

Uniform noise and real digits set the two ends of the scale. Issue 20's goal:
the conv defaults within 10 times the real digits' Frechet distance, with a
mean top-class probability at least 0.8 of real digits'. Each model samples
with its own ``n_sample_steps`` (200 for ``CHAPTER7_PARAMS``; at the image
defaults, the training chains' length). The conv models skip log Z
(``log_partition=None``: AIS would add about 10 s to each fit and nothing to
the samples).

Run: ``python benchmarks/bench_digits.py [--epochs N] [--seeds N]``.
"""

import argparse
import statistics

import numpy as np
from _timing import timed
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skebm import CHAPTER7_PARAMS, RBM, ContrastiveDivergenceEBM
from skebm.metrics import frechet_distance, kernel_distance

N_SAMPLES = 500


def data():
    digits = load_digits()
    X = digits.data / 8.0 - 1.0  # pixels 0..16 to [-1, 1]
    return train_test_split(X, digits.target, test_size=540, random_state=0, stratify=digits.target)


def candidates(epochs):
    conv = dict(network="conv", image_shape=(1, 8, 8), max_iter=epochs, log_partition=None)
    return {
        "CD conv defaults": lambda seed: ContrastiveDivergenceEBM(random_state=seed, **conv),
        "CD CHAPTER7_PARAMS": lambda seed: ContrastiveDivergenceEBM(
            image_shape=(1, 8, 8), max_iter=epochs, random_state=seed, **CHAPTER7_PARAMS
        ),
        "RBM (Gaussian, 64 hidden)": lambda seed: RBM(
            n_components=64, visible="gaussian", max_iter=epochs, log_partition=None, random_state=seed
        ),
    }


def judged(samples, judge, X_test):
    return (
        frechet_distance(samples, X_test, features=judge),
        kernel_distance(samples, X_test, features=judge),
        float(judge.predict_proba(samples).max(1).mean()),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = data()
    judge = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    print(f"judge: logistic regression on pixels, held-out accuracy {judge.score(X_test, y_test):.3f}")
    rng = np.random.default_rng(0)
    real = judged(X_train[rng.choice(len(X_train), N_SAMPLES, replace=False)], judge, X_test)
    noise = judged(rng.uniform(-1, 1, size=(N_SAMPLES, 64)), judge, X_test)
    print(f"{N_SAMPLES} samples each; Frechet and KID in the judge's logits against {len(X_test)} held-out digits")
    header = f"{'model':<28}{'Frechet':>9}{'x real':>8}{'range':>18}{'KID':>9}{'top prob':>10}{'wall s':>8}{'cpu s':>8}"
    print(header)
    print(f"{'real digits (train)':<28}{real[0]:>9.3f}{1.0:>8.1f}{'':>18}{real[1]:>9.3f}{real[2]:>10.3f}")
    print(f"{'uniform noise':<28}{noise[0]:>9.3f}{noise[0] / real[0]:>8.1f}{'':>18}{noise[1]:>9.3f}{noise[2]:>10.3f}")
    for name, make in candidates(args.epochs).items():
        runs = []
        for seed in range(args.seeds):
            wall, cpu, model = timed(lambda make=make, seed=seed: make(seed).fit(X_train))
            runs.append((*judged(model.sample(N_SAMPLES, random_state=seed), judge, X_test), wall, cpu))
        frechet = sorted(run[0] for run in runs)
        median = [statistics.median(run[i] for run in runs) for i in range(5)]
        print(
            f"{name:<28}{median[0]:>9.3f}{median[0] / real[0]:>8.1f}{f'{frechet[0]:.2f} to {frechet[-1]:.2f}':>18}"
            f"{median[1]:>9.3f}{median[2]:>10.3f}{median[3]:>8.1f}{median[4]:>8.1f}"
        )
    print(f"Goal (issue 20): conv defaults within 10x real digits' Frechet, top prob >= {0.8 * real[2]:.3f}.")


if __name__ == "__main__":
    main()
