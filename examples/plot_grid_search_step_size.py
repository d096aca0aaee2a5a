"""
Choosing a Langevin step size with GridSearchCV
===============================================

``score`` is the held-out log-likelihood (log Z by quadrature in two
dimensions), so ``GridSearchCV`` can choose the step size of the Langevin
chains that contrastive divergence trains with, without labels, as it chooses
``KernelDensity``'s bandwidth. Steps too small leave the negatives where the
replay buffer started them, in uniform noise; steps too large jump over the
modes. The independence jumps of the defaults (``n_jumps``) move the chains
between modes whatever the step size and hide most of this, so the example
turns them off. The figure shows the cross-validated score of each step size,
and the energy and score field of the refitted best model with its chains'
snapshots.

Run: ``python examples/plot_grid_search_step_size.py [--output DIR]``
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV

from skebm import ContrastiveDivergenceEBM
from skebm.datasets import make_moons
from skebm.plotting import plot_chain, plot_energy_2d


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="examples_output", help="folder for the figures")
    args = parser.parse_args(argv)
    X = make_moons(1000, random_state=0)
    estimator = ContrastiveDivergenceEBM(
        hidden_layer_sizes=(32, 32), max_iter=10, sampler="langevin", n_jumps=0, random_state=0
    )
    steps = [1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1]
    search = GridSearchCV(estimator, {"step_size": steps}, cv=3).fit(X)
    means, stds = search.cv_results_["mean_test_score"], search.cv_results_["std_test_score"]
    for step, mean, std in zip(steps, means, stds):
        print(f"step_size={step:<8g} held-out log-likelihood {mean:7.3f} +- {std:.3f}")
    print(f"best: {search.best_params_}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    left.errorbar(steps, means, yerr=stds, marker="o", capsize=3)
    left.set_xscale("log")
    left.set_xlabel("Langevin step_size")
    left.set_ylabel("3-fold held-out log-likelihood (nats)")
    plot_energy_2d(search.best_estimator_, X, ax=right)
    right.set_title(f"refitted at step_size={search.best_params_['step_size']:g}")
    fig.tight_layout()
    chains = plot_chain(search.best_estimator_, n_chains=300, n_snapshots=5, random_state=0)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fig.savefig(output / "grid_search_step_size.png", dpi=80)
    chains.savefig(output / "grid_search_chains.png", dpi=80)


if __name__ == "__main__":
    main()
