"""ContrastiveDivergenceEBM against its peers, measured in one run.

(a) Exactly normalized test NLL (nats) on eight Gaussians and rings, beside
    KernelDensity (bandwidth by 3-fold CV), GaussianMixture (components by BIC)
    and the true density.
(b) Langevin throughput (chain-steps per second) of a 2-128-128-1 swish MLP at
    1,024 chains, against plain autograd loops, as ratios.
(c) TorchEBM and ebmkit on two moons, when installed (``pip install -e .[bench]``).

Every timing is the median of repeats, CPU time beside wall time: the machines are shared.

Run: ``python benchmarks/bench_cd.py [--max-iter N]``.
"""

import argparse
import importlib.util
import math

import numpy as np
import torch
from _timing import timed
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skebm import ContrastiveDivergenceEBM
from skebm.datasets import eight_gaussians_log_density, make_eight_gaussians, make_rings, rings_log_density
from skebm.energies import MLPEnergy
from skebm.samplers import make_kernel, run_chain


def fit_cd(X, max_iter):
    return ContrastiveDivergenceEBM(max_iter=max_iter, random_state=0).fit(X)


def fit_kde(X, max_iter):
    search = GridSearchCV(KernelDensity(), {"bandwidth": np.geomspace(0.03, 0.5, 12)}, cv=3)
    return search.fit(X).best_estimator_


def fit_gmm(X, max_iter):
    return min((GaussianMixture(k, random_state=0).fit(X) for k in range(1, 21)), key=lambda g: g.bic(X))


TOYS = [
    ("eight gaussians", make_eight_gaussians, eight_gaussians_log_density),
    ("rings", make_rings, rings_log_density),
]
MODELS = [("CD-EBM (defaults)", fit_cd), ("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)]


def nll_table(max_iter):
    print(f"(a) test NLL in nats (lower is better), 5,000 training and 5,000 test points; CD-EBM {max_iter} epochs")
    print(f"{'data':<16}{'model':<22}{'NLL':>8}{'gap':>8}{'wall s':>9}{'cpu s':>9}")
    for name, make, log_density in TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = -log_density(X_test).mean()
        print(f"{name:<16}{'true density':<22}{truth:8.3f}{0.0:8.3f}")
        for label, fit in MODELS:
            wall, cpu, model = timed(lambda fit=fit, X=X: fit(X, max_iter))
            nll = -model.score_samples(X_test).mean()
            print(f"{'':<16}{label:<22}{nll:8.3f}{nll - truth:8.3f}{wall:9.1f}{cpu:9.1f}")


def langevin_throughput(n_chains=1024, n_steps=200, repeats=7):
    print(f"\n(b) Langevin throughput, 2-128-128-1 swish MLP, {n_chains} chains, {n_steps} steps, median of {repeats}")
    torch.manual_seed(0)
    energy = MLPEnergy(2, (128, 128))
    x0 = torch.randn(n_chains, 2)
    step, noise = 0.01, math.sqrt(0.02)

    def obvious_loop():
        # As tutorials write it: parameters still require grad, .backward() fills x.grad.
        x = x0.clone()
        for _ in range(n_steps):
            x = x.detach().requires_grad_(True)
            energy(x).sum().backward()
            x = x - step * x.grad + noise * torch.randn_like(x)
        energy.zero_grad(set_to_none=True)
        return x

    def autograd_grad_loop():
        x = x0.clone()
        for _ in range(n_steps):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x).sum(), x)
            x = x - step * grad + noise * torch.randn_like(x)
        return x

    generator = torch.Generator().manual_seed(0)
    kernel = make_kernel("langevin", step)
    rows = {
        "plain loop (.backward())": obvious_loop,
        "plain loop (autograd.grad)": autograd_grad_loop,
        "skebm run_chain": lambda: run_chain(kernel, energy, x0, n_steps, generator),
    }
    results = {label: timed(fn, repeats)[:2] for label, fn in rows.items()}
    ours = results["skebm run_chain"][0]
    print(f"{'loop':<30}{'chain-steps/s':>15}{'wall s':>9}{'cpu s':>9}{'skebm speed-up':>16}")
    for label, (wall, cpu) in results.items():
        print(f"{label:<30}{n_chains * n_steps / wall:15.0f}{wall:9.3f}{cpu:9.3f}{wall / ours:16.2f}")


def peers():
    print("\n(c) peers on two moons")
    for package in ("torchebm", "ebmkit"):
        if importlib.util.find_spec(package) is None:
            print(f"{package}: not installed, skipped (pip install -e '.[bench]' to include it)")
        else:
            print(f"{package}: installed, but its side-by-side run is not written yet")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=50, help="CD-EBM epochs (50 is the default)")
    args = parser.parse_args()
    nll_table(args.max_iter)
    langevin_throughput()
    peers()


if __name__ == "__main__":
    main()
