"""
Score matching at one noise level and at many
=============================================

Denoising score matching at one small noise level learns the score of the
data smoothed at that level, and the score is blind to how much mass sits on
each of several separated pieces: between the pieces it is trained on no data
at all. Trained at many levels at once (``method="multilevel"``), the large
levels connect the pieces, and the density read down the levels by the
probability-flow ODE keeps their relative mass (Song & Ermon, 2019).

Three rings of equal mass, fitted with the same network and the same budget
(``MULTILEVEL_PARAMS``): left, denoising at the smallest level of the
multi-level fit only; right, every level. Top: the fitted log-densities (8 nats
of range). Bottom:
samples, by MALA at that one level (left) and by annealed MALA down the
levels (right), with the share of samples on each ring (truth: 1/3 each).
The printed test log-likelihoods are exactly normalized (grid quadrature on
the left, the ODE on the right).

Run: ``python examples/plot_multilevel_score_matching.py [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from skebm import MULTILEVEL_PARAMS, ScoreMatchingEBM
from skebm.datasets import make_rings, rings_log_density

BOX = (-4.0, 4.0, -4.0, 4.0)


def ring_shares(samples):
    """Fraction of samples nearest the ring of radius 1, 2 and 3."""
    rings = np.clip(np.round(np.linalg.norm(samples, axis=1)), 1, 3).astype(int) - 1
    return np.bincount(rings, minlength=3) / len(samples)


def log_density_on_grid(model, resolution=60):
    gx, gy = np.linspace(BOX[0], BOX[1], resolution), np.linspace(BOX[2], BOX[3], resolution)
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    return model.score_samples(grid).reshape(resolution, resolution)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figure")
    args = parser.parse_args(argv)
    X, X_test = make_rings(5000, random_state=0), make_rings(2000, random_state=1)
    many = ScoreMatchingEBM(**MULTILEVEL_PARAMS, random_state=0).fit(X)
    budget = {key: value for key, value in MULTILEVEL_PARAMS.items() if key != "method"}
    smallest = float(many.noise_levels_[-1])
    one = ScoreMatchingEBM(**budget, method="denoising", noise_std=smallest, random_state=0).fit(X)
    print(f"true density: test log-likelihood {rings_log_density(X_test).mean():.3f}")
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    for column, (label, model) in enumerate([(f"one level (sigma={smallest:.2f})", one), ("20 levels", many)]):
        samples = model.sample(3000, random_state=0)
        shares = ring_shares(samples)
        print(f"{label:<24} test log-likelihood {model.score(X_test):.3f}; sample shares per ring {shares.round(3)}")
        log_density = log_density_on_grid(model)
        top = log_density.max()
        axes[0, column].imshow(log_density, origin="lower", extent=BOX, cmap="magma", vmin=top - 8, vmax=top)
        axes[0, column].set_title(f"{label}: log-density")
        axes[1, column].scatter(*samples.T, s=2, alpha=0.4)
        axes[1, column].set_title("samples; per ring " + " / ".join(f"{share:.2f}" for share in shares))
        axes[1, column].set_xlim(BOX[:2])
        axes[1, column].set_ylim(BOX[2:])
        axes[1, column].set_aspect("equal")
    fig.tight_layout()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fig.savefig(output / "multilevel_score_matching.png", dpi=80)


if __name__ == "__main__":
    main()
