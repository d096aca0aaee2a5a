"""The main demo: fit skebm on built-in data, print scores, write sample plots.

Run ``python -m skebm.demo [--output DIR] [--quick]``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from . import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from .datasets import (
    eight_gaussians_log_density,
    load_digits_scaled,
    make_eight_gaussians,
    make_ellipse,
    make_moons,
)
from .metrics import frechet_distance


def _toy_table(max_iter):
    """Exactly normalized test log-likelihoods on two 2-D toys: three EBMs beside two classic estimators."""
    estimators = {
        "CD": lambda: ContrastiveDivergenceEBM(max_iter=max_iter, random_state=0),
        "NCE": lambda: NCEEBM(max_iter=max_iter, random_state=0),
        "SM": lambda: ScoreMatchingEBM(method="denoising", max_iter=max_iter, random_state=0),
    }
    rows, fitted = [], {}
    for name, make in [("eight gaussians", make_eight_gaussians), ("two moons", make_moons)]:
        X, X_test = make(4000, random_state=0), make(2000, random_state=1)
        scores, seconds = [], 0.0
        for label, build in estimators.items():
            start = time.perf_counter()
            model = build().fit(X)
            seconds += time.perf_counter() - start
            scores.append(model.score(X_test))
            fitted[f"{label}: {name}"] = model
        kde = KernelDensity(bandwidth=0.1).fit(X)
        gmm = GaussianMixture(8, random_state=0).fit(X)
        truth = eight_gaussians_log_density(X_test).mean() if name == "eight gaussians" else float("nan")
        rows.append((name, *scores, kde.score(X_test) / len(X_test), gmm.score(X_test), truth, seconds))
    print("test log-likelihood (nats, higher is better)")
    print(f"{'data':<16}{'CD-EBM':>9}{'NCE':>9}{'SM':>9}{'KDE':>9}{'GMM(8)':>9}{'truth':>9}{'fit s':>8}")
    for name, *values, seconds in rows:
        print(f"{name:<16}" + "".join(f"{v:9.3f}" for v in values) + f"{seconds:8.1f}")
    return {key: fitted[key] for key in ("CD: eight gaussians", "NCE: two moons")}


def _ellipse():
    """The latent-variable lecture: the ellipse's half-axes recovered from 24 points."""
    Y = make_ellipse(24)
    model = LatentVariableEBM(random_state=0).fit(Y)
    w1, w2 = model.module_.decoder.w.tolist()
    print(f"ellipse: fitted half-axes ({w1:.3f}, {w2:.3f}), true (2, 1.5)")
    return model, Y


def _digits(max_iter):
    """Short-run Langevin chains from noise to digits, judged by a classifier fitted on real digits."""
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits_scaled()
    X_train, X_test = X[:1500], X[1500:]
    # The image defaults (short-run Langevin chains from noise); log Z by AIS is left out, as only samples are shown.
    ebm = ContrastiveDivergenceEBM(
        network="conv", image_shape=(1, 8, 8), log_partition=None, max_iter=max_iter, random_state=0
    ).fit(X_train)
    samples = ebm.sample(64, random_state=0)
    judge = LogisticRegression(max_iter=2000).fit(X_train, y[:1500])
    noise = np.random.default_rng(0).uniform(-1, 1, samples.shape)
    # Equal sizes: the distance is biased upwards for small samples, alike for all three.
    distances = [frechet_distance(rows, X_test, features=judge) for rows in (samples, noise, X_train[: len(samples)])]
    print(
        "digits: Frechet distance to held-out digits in a classifier's logits: samples {:.2f}, "
        "uniform noise {:.2f}, real digits {:.2f}".format(*distances)
    )
    return samples


def _rbm_digits(max_iter):
    """An RBM with 16 hidden units on binarized digits: exact test log-likelihood, and samples."""
    X, _ = load_digits_scaled()
    X = (X > 0).astype(float)
    X_train, X_test = X[:1500], X[1500:]
    rbm = RBM(n_components=16, max_iter=max_iter, random_state=0).fit(X_train)
    p = X_train.mean(0).clip(1e-3, 1 - 1e-3)
    independent = (X_test * np.log(p) + (1 - X_test) * np.log1p(-p)).sum(1).mean()
    print(
        f"binary digits: RBM(16) test log-likelihood {rbm.score(X_test):.2f} nats (exact log Z), "
        f"independent pixels {independent:.2f}"
    )
    return rbm.sample(64, random_state=0)


def _plot(fitted, digit_samples, rbm_samples, ellipse, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(21, 4.3))
    for ax, (name, ebm) in zip(axes, fitted.items()):
        g = np.linspace(-3.2, 3.2, 160)
        grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        density = np.exp(ebm.score_samples(grid)).reshape(160, 160)
        ax.imshow(density, origin="lower", extent=[g[0], g[-1], g[0], g[-1]], cmap="viridis")
        samples = ebm.sample(500, random_state=0)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="w", alpha=0.6)
        ax.set_title(f"{name}, density and samples")
    for ax, images, title in [
        (axes[2], digit_samples, "CD-EBM: digits from noise"),
        (axes[3], rbm_samples, "RBM: Gibbs samples"),
    ]:
        ax.imshow(images[:64].reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(64, 64), cmap="gray_r")
        ax.set_title(title)
    model, Y = ellipse
    g1, g2 = np.linspace(-3, 3, 121), np.linspace(-2, 2, 81)
    mesh = np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)
    axes[4].imshow(model.free_energy(mesh).reshape(81, 121), origin="lower", extent=[-3, 3, -2, 2], cmap="magma_r")
    axes[4].scatter(Y[:, 0], Y[:, 1], s=8, c="c")
    axes[4].set_title("latent EBM: free energy of the ellipse")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    path = output / "skebm_demo.png"
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="skebm_demo_output", help="folder for the plots")
    parser.add_argument("--quick", action="store_true", help="few epochs, for a smoke test")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fitted = _toy_table(max_iter=3 if args.quick else 50)
    digit_samples = _digits(max_iter=2 if args.quick else 15)
    rbm_samples = _rbm_digits(max_iter=2 if args.quick else 20)
    _plot(fitted, digit_samples, rbm_samples, _ellipse(), output)


if __name__ == "__main__":
    main()
