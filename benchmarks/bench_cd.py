"""ContrastiveDivergenceEBM against its peers, measured in one run.

(a) Exactly normalized test NLL (nats) on eight Gaussians and rings, beside
    KernelDensity (bandwidth by 3-fold CV), GaussianMixture (components by BIC)
    and the true density.
(b) Langevin throughput (chain-steps per second) of a 2-128-128-1 swish MLP at
    1,024 chains, against plain autograd loops and the peers' samplers, as ratios.
(c) Two moons: skebm's defaults beside GaussianMixture(8), KernelDensity and, when
    installed (``pip install -e .[bench]``), TorchEBM and ebmkit given the same
    network, data, number and size of updates, chain length and step size, at their
    own default energy penalty and at 0.1, with Adam at a constant 1e-3 (skebm's
    cosine-decayed rate is its own recipe, which the peers do not have). Every energy is normalized by the same
    quadrature in the same box.

Every timing is the median of repeats, CPU time beside wall time: the machines are shared.

Run: ``python benchmarks/bench_cd.py [--max-iter N] [--seeds N]``.
"""

import argparse
import importlib.util
import math
from functools import partial

import numpy as np
import torch
from _timing import median_over_seeds, timed
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skebm import ContrastiveDivergenceEBM
from skebm.datasets import eight_gaussians_log_density, make_eight_gaussians, make_moons, make_rings, rings_log_density
from skebm.energies import BoxedEnergy, MLPEnergy
from skebm.partition import grid_log_partition
from skebm.samplers import make_kernel, run_chain


def fit_kde(X):
    search = GridSearchCV(KernelDensity(), {"bandwidth": np.geomspace(0.03, 0.5, 12)}, cv=3)
    return search.fit(X).best_estimator_


def fit_gmm(X):
    return min((GaussianMixture(k, random_state=0).fit(X) for k in range(1, 21)), key=lambda g: g.bic(X))


TOYS = [
    ("eight gaussians", make_eight_gaussians, eight_gaussians_log_density),
    ("rings", make_rings, rings_log_density),
]


def nll_table(max_iter, seeds):
    print(
        "(a) test NLL in nats (lower is better), 5,000 training and 5,000 test points; "
        f"CD-EBM {max_iter} epochs, median over training seeds {seeds}"
    )
    print(f"{'data':<16}{'model':<22}{'NLL':>8}{'gap':>8}{'gaps over seeds':>18}{'wall s':>8}{'cpu s':>8}")
    for name, make, log_density in TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = -log_density(X_test).mean()
        print(f"{name:<16}{'true density':<22}{truth:8.3f}{0.0:8.3f}")
        for label, fit in (("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)):
            wall, cpu, model = timed(partial(fit, X))
            nll = -model.score_samples(X_test).mean()
            print(f"{'':<16}{label:<22}{nll:8.3f}{nll - truth:8.3f}{'':>18}{wall:8.1f}{cpu:8.1f}")
        gap, spread, wall, cpu = median_over_seeds(
            lambda seed, X=X: ContrastiveDivergenceEBM(max_iter=max_iter, random_state=seed).fit(X),
            seeds,
            lambda model, X_test=X_test, truth=truth: -model.score(X_test) - truth,
        )
        print(f"{'':<16}{'CD-EBM (defaults)':<22}{truth + gap:8.3f}{gap:8.3f}{spread:>18}{wall:8.1f}{cpu:8.1f}")


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
    rows.update(_peer_langevin_loops(energy, x0, step, n_steps))
    results = {label: timed(fn, repeats)[:2] for label, fn in rows.items()}
    ours = results["skebm run_chain"][0]
    print(f"{'loop':<30}{'chain-steps/s':>15}{'wall s':>9}{'cpu s':>9}{'skebm speed-up':>16}")
    for label, (wall, cpu) in results.items():
        print(f"{label:<30}{n_chains * n_steps / wall:15.0f}{wall:9.3f}{cpu:9.3f}{wall / ours:16.2f}")


def _peer_langevin_loops(energy, x0, step, n_steps):
    """The same chains run by TorchEBM's and ebmkit's Langevin samplers, where installed."""
    loops = {}
    if importlib.util.find_spec("torchebm") is not None:
        from torchebm.samplers import LangevinDynamics

        torchebm_sampler = LangevinDynamics(_torchebm_model(energy), step_size=step)
        loops["TorchEBM LangevinDynamics"] = lambda: torchebm_sampler.sample(x=x0.clone(), n_steps=n_steps)
    if importlib.util.find_spec("ebm") is not None:
        from ebm import LangevinDynamics

        ebmkit_sampler = LangevinDynamics(step_size=step, steps=n_steps)
        loops["ebmkit LangevinDynamics"] = lambda: ebmkit_sampler.sample(energy, x0)
    return loops


MOONS_STEPS, MOONS_STEP_SIZE = 20, 0.01  # skebm's defaults, given to every peer


def _torchebm_model(network):
    """TorchEBM wants its own BaseModel; this one only forwards to the network."""
    from torchebm.core import BaseModel

    class Energy(BaseModel):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, x):
            return self.network(x)

    return Energy()


def peer_torchebm(network, X, alpha, n_updates, batch_size, seed):
    from torchebm.losses import ContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    model = _torchebm_model(network)
    sampler = LangevinDynamics(model, step_size=MOONS_STEP_SIZE)
    loss_fn = ContrastiveDivergence(
        model, sampler, k_steps=MOONS_STEPS, persistent=True, buffer_size=8192, energy_reg_weight=alpha
    )
    generator = torch.Generator().manual_seed(seed)
    return _train_peer(model, X, n_updates, batch_size, seed, lambda batch: loss_fn(batch, generator=generator)[0])


def peer_ebmkit(network, X, alpha, n_updates, batch_size, seed):
    from ebm import ContrastiveDivergence, LangevinDynamics, ReplayBuffer

    sampler = LangevinDynamics(step_size=MOONS_STEP_SIZE, steps=MOONS_STEPS)
    buffer = ReplayBuffer(8192, (2,))
    loss_fn = ContrastiveDivergence(sampler, buffer=buffer, energy_reg=alpha)
    return _train_peer(network, X, n_updates, batch_size, seed, lambda batch: loss_fn(network, batch).loss)


def _train_peer(module, X, n_updates, batch_size, seed, batch_loss):
    """Adam at a constant 1e-3 (the peers have no schedule) over shuffled minibatches; False if the loss turns NaN."""
    torch.manual_seed(seed)  # ebmkit draws from the global generator
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    X = torch.as_tensor(X, dtype=torch.float32)
    n_epochs = math.ceil(n_updates * batch_size / len(X))
    batches = [batch for _ in range(n_epochs) for batch in torch.randperm(len(X)).split(batch_size)]
    for rows in batches[:n_updates]:
        loss = batch_loss(X[rows])
        if not torch.isfinite(loss):
            return False
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return True


def moons_table(max_iter, seed=0):
    """Same network, data, number and size of updates, chain length and step size for skebm and each peer."""
    X = make_moons(16384, random_state=seed)
    X, X_test = X[:8192], X[8192:]
    wall, cpu, cd = timed(lambda: ContrastiveDivergenceEBM(max_iter=max_iter, random_state=seed).fit(X))
    _epochs, _rows, n_updates = cd._epoch_plan(len(X), max_iter)
    batch_size = cd._setting("batch_size")
    print(
        "\n(c) two moons (8,192 points, noise 0.05, standardized): test NLL in nats, "
        f"{n_updates} updates of {batch_size} rows"
    )
    print(f"{'model':<34}{'NLL':>9}{'wall s':>9}{'cpu s':>9}")
    print(f"{'skebm CD-EBM (defaults)':<34}{_format_nll(-cd.score(X_test))}{wall:9.1f}{cpu:9.1f}")
    for label, fit in (
        ("GaussianMixture(8)", lambda: GaussianMixture(8, random_state=seed).fit(X)),
        ("KernelDensity (CV)", lambda: fit_kde(X)),
    ):
        wall, cpu, model = timed(fit)
        print(f"{label:<34}{_format_nll(-model.score_samples(X_test).mean())}{wall:9.1f}{cpu:9.1f}")
    low, high = cd.module_.low, cd.module_.high
    # (package, its import name, training function, its default energy penalty)
    peers = (("torchebm", "torchebm", peer_torchebm, 0.001), ("ebmkit", "ebm", peer_ebmkit, 0.0))
    for package, module_name, train, default_alpha in peers:
        if importlib.util.find_spec(module_name) is None:
            print(f"{package}: not installed, skipped (pip install -e '.[bench]' to include it)")
            continue
        for alpha in (default_alpha, 0.1):
            torch.manual_seed(seed)
            network = MLPEnergy(2, cd.hidden_layer_sizes)
            wall, cpu, finite = timed(partial(train, network, X, alpha, n_updates, batch_size, seed))
            nll = _boxed_nll(network, low, high, X_test) if finite else float("nan")
            label = f"{package} PCD, alpha={alpha:g}" + ("" if finite else " (diverged)")
            print(f"{label:<34}{_format_nll(nll)}{wall:9.1f}{cpu:9.1f}")


def _format_nll(nll):
    """Nine characters; a run-away energy gives NLLs too large for fixed point."""
    return f"{nll:9.3f}" if abs(nll) < 1e4 else f"{nll:9.1e}"


def _boxed_nll(network, low, high, X_test):
    """Test NLL of a peer's network in skebm's box, normalized by the same quadrature as skebm's."""
    boxed = BoxedEnergy(network, low, high)
    with torch.no_grad():
        log_z = grid_log_partition(lambda x: boxed(x.float()).double(), *boxed.support_box())
        energies = boxed(torch.as_tensor(X_test, dtype=torch.float32)).double()
    return float(energies.mean()) + log_z


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=50, help="CD-EBM epochs (50 is the default)")
    parser.add_argument("--seeds", type=int, default=3, help="CD-EBM training seeds in (a) (3)")
    args = parser.parse_args()
    nll_table(args.max_iter, list(range(args.seeds)))
    langevin_throughput()
    moons_table(args.max_iter)


if __name__ == "__main__":
    main()
