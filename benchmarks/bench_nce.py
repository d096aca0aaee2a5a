"""NCEEBM against the classic density estimators, measured in one run.

On eight Gaussians and rings (5,000 training and 5,000 test points):

(a) test NLL of NCEEBM at its defaults beside KernelDensity (bandwidth by
    3-fold CV), GaussianMixture (components by BIC) and the true density,
    with the learned log Z against the log Z of the learned energy by
    quadrature (self-normalization);
(b) the effect of noise_ratio (1, 4, 16) and of the noise family (Gaussian,
    uniform, GMM, GMM without the residual energy) on NLL and fit time;
(c) with ``--flow``: NCEEBM(noise="flow") against the default mixture noise and
    the flow alone, on rings, spirals, checkerboard and eight Gaussians, over
    ``--seeds`` (needs zuko: ``pip install 'skebm[flow]'``);
(d) with ``--adversarial``: AdversarialEBM at its defaults over ``--seeds`` on eight
    Gaussians and rings (beside the truth), moons, spirals and checkerboard, with
    KernelDensity and GaussianMixture, its generator's KL(q || p), and
    ``sample(10000)`` against ``ContrastiveDivergenceEBM(random_state=0).sample(10000)``
    at its defaults, as the median of three timings each (needs zuko).

Timings are wall and CPU seconds of one fit each: the machines are shared.

Run: ``python benchmarks/bench_nce.py [--max-iter N] [--no-sweep] [--flow | --adversarial] [--seeds 0 1 2]``.
"""

import argparse
import math
import statistics
from functools import partial

from _timing import timed
from bench_cd import TOYS, fit_gmm, fit_kde

from skebm import NCEEBM, AdversarialEBM, ContrastiveDivergenceEBM
from skebm._flow import FlowDensity
from skebm.datasets import make_checkerboard, make_eight_gaussians, make_moons, make_rings, make_spirals
from skebm.partition import grid_log_partition

FLOW_TOYS = [
    ("rings", make_rings),
    ("spirals", make_spirals),
    ("checkerboard", make_checkerboard),
    ("eight gaussians", make_eight_gaussians),
]


def nce_row(label, X, X_test, truth, **params):
    wall, cpu, model = timed(lambda: NCEEBM(random_state=0, **params).fit(X))
    nll = -model.score(X_test)
    quadrature = grid_log_partition(model._score_energy, *model.module_.support_box())
    print(
        f"{'':<16}{label:<30}{nll:8.3f}{nll - truth:8.3f}{wall:8.1f}{cpu:8.1f}"
        f"{model.log_partition_:10.3f}{quadrature - model.log_partition_:10.3f}"
    )


def flow_table(seeds):
    """(c): test NLL of the flow noise, the mixture noise and the flow alone, seed by seed."""
    print("(c) test NLL per seed; for NCE, quadrature minus learned log Z; CPU s of one fit")
    header = f"{'data':<16}{'seed':>5}{'flow noise':>12}{'log Z':>8}{'cpu':>7}{'gmm noise':>12}{'cpu':>7}"
    print(header + f"{'flow':>9}{'cpu':>7}")
    for name, make in FLOW_TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        for seed in seeds:
            figures = []
            for noise in ("flow", "gmm"):
                _, cpu, model = timed(partial(NCEEBM(noise=noise, random_state=seed).fit, X))
                quadrature = grid_log_partition(model._score_energy, *model.module_.support_box())
                figures.append((-model.score(X_test), quadrature - model.log_partition_, cpu))
            _, flow_cpu, flow = timed(partial(FlowDensity(random_state=seed).fit, X))
            (nll_flow, off, cpu_flow), (nll_gmm, _, cpu_gmm) = figures
            print(
                f"{name:<16}{seed:>5}{nll_flow:12.3f}{off:8.3f}{cpu_flow:7.1f}{nll_gmm:12.3f}{cpu_gmm:7.1f}"
                f"{-flow.score(X_test):9.3f}{flow_cpu:7.1f}"
            )


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=50, help="NCE epochs (50 is the default)")
    parser.add_argument("--no-sweep", action="store_true", help="skip (b)")
    parser.add_argument("--flow", action="store_true", help="run only (c), the flow noise")
    parser.add_argument("--adversarial", action="store_true", help="run only (d), AdversarialEBM")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of (c) and (d)")
    args = parser.parse_args()
    if args.flow:
        flow_table(args.seeds)
        return
    if args.adversarial:
        adversarial_table(args.seeds)
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
