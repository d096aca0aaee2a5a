"""NCEEBM against the classic density estimators, measured in one run.

On eight Gaussians and rings (5,000 training and 5,000 test points):

(a) test NLL of NCEEBM at its defaults beside KernelDensity (bandwidth by
    3-fold CV), GaussianMixture (components by BIC) and the true density,
    with the learned log Z against the log Z of the learned energy by
    quadrature (self-normalization);
(b) the effect of noise_ratio (1, 4, 16) and of the noise family (Gaussian,
    uniform, GMM, GMM without the residual energy) on NLL and fit time;
(c) with ``--flow``: NCEEBM(noise="flow"), held fixed and trained against the
    energy (flow contrastive estimation, ``noise_learning_rate=1e-3``), against the
    default mixture noise and the flow alone, on rings, spirals, checkerboard and eight Gaussians, over
    ``--seeds`` (needs zuko: ``pip install 'skebm[flow]'``);
(d) with ``--adversarial``: AdversarialEBM at its defaults over ``--seeds`` on eight
    Gaussians and rings (beside the truth), moons, spirals and checkerboard, with
    KernelDensity and GaussianMixture, its generator's KL(q || p), and
    ``sample(10000)`` against ``ContrastiveDivergenceEBM(random_state=0).sample(10000)``
    at its defaults, as the median of three timings each (needs zuko);
(e) with ``--moons``: two moons (8,192 points, noise 0.05, standardized, as in
    bench_cd.py): NCEEBM at its defaults over ``--seeds`` beside GaussianMixture(8),
    KernelDensity and ebmkit's NoiseContrastiveEstimation given the same network,
    data, number and size of updates (``pip install -e .[bench]``), at its default
    noise (a standard normal, ``noise_ratio=1``) and at skebm's ratio of 8, with Adam
    at a constant 1e-3 (skebm's cosine-decayed rate is its own recipe). ebmkit's
    NLL is given with its own learned log Z and with log Z by skebm's quadrature;
(f) with ``--shapes``: NCEEBM at its defaults (Fourier features on two features) and
    with ``network="mlp"`` over ``--seeds`` on every 2-D shape of ``skebm.datasets``
    and four of scikit-learn's that no setting was chosen on, beside KernelDensity
    and GaussianMixture, with the learned log Z against quadrature.

Timings are wall and CPU seconds of one fit each: the machines are shared.

Run: ``python benchmarks/bench_nce.py [--max-iter N] [--no-sweep]
[--flow | --adversarial | --moons | --shapes] [--seeds 0 1 2]``.
"""

import argparse
import importlib.util
import math
import statistics
from functools import partial

import numpy as np
import torch
from _timing import timed
from bench_cd import TOYS, _boxed_nll, _format_nll, _train_peer, fit_gmm, fit_kde
from sklearn import datasets
from sklearn.mixture import GaussianMixture

from skebm import NCEEBM, AdversarialEBM, ContrastiveDivergenceEBM
from skebm._flow import FlowDensity
from skebm.datasets import make_checkerboard, make_eight_gaussians, make_moons, make_rings, make_spirals
from skebm.energies import MLPEnergy
from skebm.partition import grid_log_partition


def make_circles(n, random_state):
    return datasets.make_circles(n, factor=0.5, noise=0.05, random_state=random_state)[0]


def make_swiss_roll(n, random_state):
    return datasets.make_swiss_roll(n, noise=0.5, random_state=random_state)[0][:, [0, 2]] / 5


def make_s_curve(n, random_state):
    return datasets.make_s_curve(n, noise=0.05, random_state=random_state)[0][:, [0, 2]]


def make_blobs(n, random_state):
    """Five anisotropic blobs of different widths: a Gaussian mixture is the true family."""
    centers = np.random.RandomState(0).uniform(-4, 4, (5, 2))
    X, _ = datasets.make_blobs(n, centers=centers, cluster_std=[0.2, 0.4, 0.6, 0.3, 0.8], random_state=random_state)
    return X @ np.array([[0.8, -0.6], [0.4, 0.9]])


# Four 2-D shapes from scikit-learn that no setting was chosen on (bench_score_matching.py holds
# out the same four).
HELD_OUT_SHAPES = [
    ("circles (held out)", make_circles),
    ("swiss roll (held out)", make_swiss_roll),
    ("S-curve (held out)", make_s_curve),
    ("blobs (held out)", make_blobs),
]

# Every 2-D shape of skebm.datasets, then the held-out four.
SHAPES = [
    ("eight gaussians", make_eight_gaussians),
    ("rings", make_rings),
    ("moons", make_moons),
    ("spirals", make_spirals),
    ("checkerboard", make_checkerboard),
    *HELD_OUT_SHAPES,
]

FLOW_TOYS = [
    ("rings", make_rings),
    ("spirals", make_spirals),
    ("checkerboard", make_checkerboard),
    ("eight gaussians", make_eight_gaussians),
]


def quadrature_minus_learned(model):
    return grid_log_partition(model._score_energy, *model.module_.support_box()) - model.log_partition_


def nce_row(label, X, X_test, truth, **params):
    wall, cpu, model = timed(lambda: NCEEBM(random_state=0, **params).fit(X))
    nll = -model.score(X_test)
    print(
        f"{'':<16}{label:<30}{nll:8.3f}{nll - truth:8.3f}{wall:8.1f}{cpu:8.1f}"
        f"{model.log_partition_:10.3f}{quadrature_minus_learned(model):10.3f}"
    )


def flow_table(seeds):
    """(c): test NLL of the flow noise (fixed, and trained against the energy), the mixture noise and the flow alone."""
    print("(c) test NLL per seed; for NCE, quadrature minus learned log Z; CPU s of one fit; FCE at rate 1e-3")
    print(f"{'data':<16}{'seed':>5}", end="")
    for label in ("flow noise", "FCE", "gmm noise"):
        print(f"{label:>12}{'log Z':>8}{'cpu':>7}", end="")
    print(f"{'flow':>9}{'cpu':>7}")
    settings = ({"noise": "flow"}, {"noise": "flow", "noise_learning_rate": 1e-3}, {"noise": "gmm"})
    for name, make in FLOW_TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        for seed in seeds:
            print(f"{name:<16}{seed:>5}", end="")
            for params in settings:
                _, cpu, model = timed(partial(NCEEBM(random_state=seed, **params).fit, X))
                print(f"{-model.score(X_test):12.3f}{quadrature_minus_learned(model):8.3f}{cpu:7.1f}", end="")
            _, flow_cpu, flow = timed(partial(FlowDensity(random_state=seed).fit, X))
            print(f"{-flow.score(X_test):9.3f}{flow_cpu:7.1f}")


def adversarial_table(seeds):
    """(d): AdversarialEBM's test NLL over seeds beside KDE, GMM and the truth, and its sampling speed against CD's."""
    print(f"(d) AdversarialEBM at its defaults; test NLL, median over seeds {seeds} (range); truth where known")
    print(f"{'data':<16}{'NLL':>8}{'range':>18}{'KDE':>8}{'GMM':>8}{'truth':>8}{'KL(q||p)':>10}{'cpu s':>7}", end="")
    print(f"{'sample(10000) s':>17}{'CD sample s':>13}{'speed-up':>10}")
    held_out = [("moons", make_moons, None), ("spirals", make_spirals, None), ("checkerboard", make_checkerboard, None)]
    for name, make, log_density in [*TOYS, *held_out]:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = math.nan if log_density is None else -log_density(X_test).mean()
        peers = [-fit(X).score_samples(X_test).mean() for fit in (fit_kde, fit_gmm)]
        runs = [timed(partial(AdversarialEBM(random_state=seed).fit, X)) for seed in seeds]
        nlls = sorted(-model.score(X_test) for _, _, model in runs)
        cpu = statistics.median(run[1] for run in runs)
        kl = statistics.median(model.generator_kl_ for _, _, model in runs)
        cd = ContrastiveDivergenceEBM(random_state=0).fit(X)
        ours, _, _ = timed(partial(runs[0][2].sample, 10000, random_state=0), repeats=3)
        theirs, _, _ = timed(partial(cd.sample, 10000, random_state=0), repeats=3)
        spread = f"{nlls[0]:.3f} to {nlls[-1]:.3f}"
        print(f"{name:<16}{statistics.median(nlls):8.3f}{spread:>18}{peers[0]:8.3f}{peers[1]:8.3f}{truth:8.3f}", end="")
        print(f"{kl:10.3f}{cpu:7.1f}{ours:17.3f}{theirs:13.3f}{theirs / ours:10.1f}")


def shapes_table(seeds):
    """(f): NCEEBM at its defaults (Fourier features) and with the raw MLP on every shape, beside KDE and GMM."""
    print(f"(f) test NLL, median over seeds {seeds} (range); NCE's worst |quadrature - learned log Z|; CPU s")
    print(f"{'data':<24}{'NCEEBM()':>26}{'log Z':>7}{'cpu':>6}{'network=mlp':>26}{'KDE':>8}{'GMM':>8}")
    for name, make in SHAPES:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        row = f"{name:<24}"
        for network in ("auto", "mlp"):
            runs = [timed(partial(NCEEBM(network=network, random_state=seed).fit, X)) for seed in seeds]
            nlls = sorted(-model.score(X_test) for _, _, model in runs)
            row += f"{statistics.median(nlls):8.3f} ({nlls[0]:.3f} to {nlls[-1]:.3f})"
            if network == "auto":
                off = max(abs(quadrature_minus_learned(model)) for _, _, model in runs)
                row += f"{off:7.3f}{statistics.median(run[1] for run in runs):6.1f}"
        peers = [-fit(X).score_samples(X_test).mean() for fit in (fit_kde, fit_gmm)]
        print(row + f"{peers[0]:8.3f}{peers[1]:8.3f}")


def moons_table(seeds):
    """(e): NCE on bench_cd's two moons, skebm's defaults against ebmkit's NCE at the same budget."""
    X = make_moons(16384, random_state=0)
    X, X_test = X[:8192], X[8192:]
    print(f"(e) two moons (8,192 points, noise 0.05, standardized): test NLL, median over seeds {seeds} (range)")
    print(f"{'model':<40}{'NLL':>9}{'range':>18}{'NLL, quadrature':>17}{'cpu s':>8}")
    runs = [timed(partial(NCEEBM(random_state=seed).fit, X)) for seed in seeds]
    nce = runs[0][2]
    _epochs, _rows, n_updates = nce._epoch_plan(len(X), nce.max_iter)
    batch_size = nce.batch_size
    low, high = nce.module_.low, nce.module_.high
    _print_moons_row("skebm NCEEBM (defaults)", [-model.score(X_test) for _, _, model in runs], runs)
    for label, fit in (("GaussianMixture(8)", GaussianMixture(8, random_state=0).fit), ("KernelDensity (CV)", fit_kde)):
        _, cpu, model = timed(partial(fit, X))
        print(f"{label:<40}{_format_nll(-model.score_samples(X_test).mean())}{'':>35}{cpu:8.1f}")
    if importlib.util.find_spec("ebm") is None:
        print("ebmkit: not installed, skipped (pip install -e '.[bench]' to include it)")
        return
    from ebm.losses.nce import NoiseContrastiveEstimation

    for ratio in (1, 8):
        fits, own, quadrature = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)  # ebmkit draws its noise from the global generator
            network, loss_fn = MLPEnergy(2, nce.hidden_layer_sizes), NoiseContrastiveEstimation(noise_ratio=ratio)
            trained = torch.nn.ModuleList([network, loss_fn])  # its log Z is a weight of the loss
            batch_loss = lambda batch, network=network, loss_fn=loss_fn: loss_fn(network, batch).loss  # noqa: E731
            fits.append(timed(partial(_train_peer, trained, X, n_updates, batch_size, seed, batch_loss)))
            with torch.no_grad():
                energies = network(torch.as_tensor(X_test, dtype=torch.float32)).double()
                own.append(float(energies.mean() + loss_fn.log_z))
            quadrature.append(_boxed_nll(network, low, high, X_test))
        label = f"ebmkit NCE, noise_ratio={ratio}" + ("" if all(finite for *_, finite in fits) else " (diverged)")
        _print_moons_row(label, own, fits, quadrature)


def _print_moons_row(label, nlls, runs, quadrature=None):
    nlls = sorted(nlls)
    spread = f"{nlls[0]:.3f} to {nlls[-1]:.3f}"
    tail = f"{statistics.median(quadrature):17.3f}" if quadrature else f"{'':>17}"
    cpu = statistics.median(run[1] for run in runs)
    print(f"{label:<40}{_format_nll(statistics.median(nlls))}{spread:>18}{tail}{cpu:8.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=50, help="NCE epochs (50 is the default)")
    parser.add_argument("--no-sweep", action="store_true", help="skip (b)")
    parser.add_argument("--flow", action="store_true", help="run only (c), the flow noise")
    parser.add_argument("--adversarial", action="store_true", help="run only (d), AdversarialEBM")
    parser.add_argument("--moons", action="store_true", help="run only (e), NCE on two moons against ebmkit")
    parser.add_argument("--shapes", action="store_true", help="run only (f), NCE on nine 2-D shapes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of (c) to (f)")
    args = parser.parse_args()
    sections = {"flow": flow_table, "adversarial": adversarial_table, "moons": moons_table, "shapes": shapes_table}
    for name, table in sections.items():
        if getattr(args, name):  # each runs alone
            table(args.seeds)
            return
    print("test NLL in nats (lower is better); gap to the true density; log Z learned and quadrature minus learned")
    print(f"{'data':<16}{'model':<30}{'NLL':>8}{'gap':>8}{'wall s':>8}{'cpu s':>8}{'log Z':>10}{'quad-lrn':>10}")
    for name, make, log_density in TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = -log_density(X_test).mean()
        print(f"{name:<16}{'true density':<30}{truth:8.3f}{0.0:8.3f}")
        for label, fit in [("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)]:
            wall, cpu, model = timed(partial(fit, X))
            nll = -model.score_samples(X_test).mean()
            print(f"{'':<16}{label:<30}{nll:8.3f}{nll - truth:8.3f}{wall:8.1f}{cpu:8.1f}")
        nce_row("(a) NCEEBM defaults", X, X_test, truth, max_iter=args.max_iter)
        if args.no_sweep:
            continue
        for ratio in (1, 4, 16):
            nce_row(f"(b) noise_ratio={ratio}", X, X_test, truth, max_iter=args.max_iter, noise_ratio=ratio)
        for noise, residual in [("gaussian", True), ("uniform", False), ("gmm", False)]:
            label = f"(b) noise={noise}" + ("" if residual else ", residual=False")
            nce_row(label, X, X_test, truth, max_iter=args.max_iter, noise=noise, residual=residual)


if __name__ == "__main__":
    main()
