"""NCEEBM against the classic density estimators, measured in one run.

On eight Gaussians and rings (5,000 training and 5,000 test points):

(a) test NLL of NCEEBM at its defaults beside KernelDensity (bandwidth by
    3-fold CV), GaussianMixture (components by BIC) and the true density,
    with the learned log Z against the log Z of the learned energy by
    quadrature (self-normalization);
(b) the effect of noise_ratio (1, 4, 16) and of the noise family (Gaussian,
    uniform, GMM, GMM without the residual energy) on NLL and fit time.

Timings are wall and CPU seconds of one fit each: the machines are shared.

Run: ``python benchmarks/bench_nce.py [--max-iter N] [--no-sweep]``.
"""

import argparse
from functools import partial

from _timing import timed
from bench_cd import TOYS, fit_gmm, fit_kde

from skebm import NCEEBM
from skebm.partition import grid_log_partition


def nce_row(label, X, X_test, truth, **params):
    wall, cpu, model = timed(lambda: NCEEBM(random_state=0, **params).fit(X))
    nll = -model.score(X_test)
    quadrature = grid_log_partition(model._score_energy, *model.module_.support_box())
    print(
        f"{'':<16}{label:<30}{nll:8.3f}{nll - truth:8.3f}{wall:8.1f}{cpu:8.1f}"
        f"{model.log_partition_:10.3f}{quadrature - model.log_partition_:10.3f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=50, help="NCE epochs (50 is the default)")
    parser.add_argument("--no-sweep", action="store_true", help="skip (b)")
    args = parser.parse_args()
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
