"""
The latent-variable EBM of the ellipse: free energy with its score arrows
=========================================================================

LeCun's lecture: points ``y = (2 cos theta, 1.5 sin theta)`` observed without
their angle, a decoder ``g(z) = (w1 cos z, w2 sin z)`` and the energy
``E(y, z) = |y - g(z)|^2``. Fitting lowers the free energy ``F(y) = min_z E(y, z)``
of the data; the heat map of ``F`` over the lecture's mesh is the squared
distance to the fitted ellipse, and its arrows point to it. A second panel
shows the free energy at inverse temperature ``beta = 1``, a softer minimum.

Run: ``python examples/plot_latent_ellipse.py [--output DIR]`` (a few seconds).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from skebm import LatentVariableEBM
from skebm.datasets import make_ellipse
from skebm.plotting import plot_energy_2d


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figure")
    args = parser.parse_args(argv)
    Y = make_ellipse(24)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, beta in zip(axes, [None, 1.0]):
        model = LatentVariableEBM(beta=beta, random_state=0).fit(Y)
        w1, w2 = model.module_.decoder.w.tolist()
        plot_energy_2d(model, Y, bounds=(-3, 3, -2, 2), ax=ax)
        temperature = "zero temperature" if beta is None else f"beta = {beta:g}"
        ax.set_title(f"free energy, {temperature}: fitted (w1, w2) = ({w1:.2f}, {w2:.2f})")
        print(f"{temperature}: w1 = {w1:.3f}, w2 = {w2:.3f}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(output / "latent_ellipse.png", dpi=90)
    print(f"wrote {output / 'latent_ellipse.png'}")


if __name__ == "__main__":
    main()
