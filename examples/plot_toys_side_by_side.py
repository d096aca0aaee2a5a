"""
Every estimator on 2-D toys, with exactly normalized log-likelihoods
====================================================================

Five energy-based models fitted to eight Gaussians and to two moons, beside
scikit-learn's ``KernelDensity`` and ``GaussianMixture``. In two dimensions
log Z is computed by quadrature (or learned, for NCE), so the test
log-likelihoods in the table are exact and comparable; the heat maps show each
model's density. Settings are shortened so that the script runs in about a
minute on two cores: ``benchmarks/`` holds the full-length comparisons.

Run: ``python examples/plot_toys_side_by_side.py [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from skebm.datasets import eight_gaussians_log_density, make_eight_gaussians, make_moons

MODELS = {
    "CD": lambda: ContrastiveDivergenceEBM(max_iter=15, random_state=0),
    "score matching": lambda: ScoreMatchingEBM(max_iter=15, random_state=0),
    "NCE": lambda: NCEEBM(max_iter=15, random_state=0),
    "RBM (Gaussian)": lambda: RBM(visible="gaussian", n_components=16, max_iter=30, random_state=0),
    "latent (MLP, 1-D)": lambda: LatentVariableEBM(decoder="mlp", latent_dim=1, latent_range=(-2, 2), random_state=0),
    "KernelDensity": lambda: GridSearchCV(KernelDensity(), {"bandwidth": np.logspace(-1.5, 0, 8)}),
    "GaussianMixture": lambda: GaussianMixture(8, random_state=0),
}


def fit(name, X):
    model = MODELS[name]().fit(X)
    return getattr(model, "best_estimator_", model)  # the bandwidth search's KernelDensity


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figure")
    args = parser.parse_args(argv)
    toys = {"eight Gaussians": make_eight_gaussians, "two moons": make_moons}
    fig, axes = plt.subplots(len(toys), len(MODELS), figsize=(2.6 * len(MODELS), 5.4))
    print(f"{'model':<20}" + "".join(f"{name:>18}" for name in toys))
    scores = {}
    for row, (toy, make) in enumerate(toys.items()):
        X, X_test = make(2000, random_state=0), make(2000, random_state=1)
        g = np.linspace(X.min() - 0.5, X.max() + 0.5, 100)
        grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        for column, name in enumerate(MODELS):
            model = fit(name, X)
            scores[name, toy] = model.score_samples(X_test).mean()
            ax = axes[row, column]
            ax.imshow(np.exp(model.score_samples(grid)).reshape(100, 100), origin="lower", cmap="magma")
            ax.set_title(f"{name}\n{scores[name, toy]:.3f}", fontsize=9)
            ax.set_axis_off()
    for name in MODELS:
        print(f"{name:<20}" + "".join(f"{scores[name, toy]:18.3f}" for toy in toys))
    truth = eight_gaussians_log_density(make_eight_gaussians(2000, random_state=1)).mean()
    print(f"{'true density':<20}{truth:18.3f}{'':>18}")
    fig.suptitle("density and mean test log-likelihood (nats)")
    fig.tight_layout()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fig.savefig(output / "toys_side_by_side.png", dpi=80)


if __name__ == "__main__":
    main()
