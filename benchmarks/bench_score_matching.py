"""ScoreMatchingEBM's methods, measured in one run.

(a) Test NLL (exactly normalized: by quadrature, or by the ODE for multilevel) on
    eight Gaussians and rings (5,000 training and 5,000 test points) for each
    method at the estimator's defaults (multilevel's are ``MULTILEVEL_PARAMS``), the median over training seeds (score
    matching at one level cannot see the relative mass of separated modes, so
    the seed moves it by a tenth of a nat), beside KernelDensity (bandwidth by
    3-fold CV), GaussianMixture (components by BIC) and the true density.
(b) Cost of one training step (loss and backward, batch 64, the default
    128-128 MLP) of exact, sliced, denoising and multi-level denoising score
    matching at d = 2, 8, 32, 128, as ratios to denoising (multilevel with the
    same MLP; its mixture base and noise-level input are the extra work).
(c) ``--multilevel``: ``method="multilevel"`` at ``MULTILEVEL_PARAMS`` on eight Gaussians and
    rings (its settings were chosen there, at seed 0) and on spirals and checkerboard (held
    out), beside KernelDensity (CV) and GaussianMixture (BIC): test NLL, the median over
    training seeds with the range, and the mass its annealed samples put on each mode or ring
    (truth 1/8 or 1/3). Spirals and checkerboard have no closed-form density: NLL only; its
    Fourier bandwidth was chosen on rings, spirals and checkerboard at seed 0.
    ``--multilevel --held-out``: the same on the four shapes of ``bench_nce.py --shapes`` that no
    multilevel setting was chosen on (circles, swiss roll, S-curve, blobs).
(d) ``--moons``: two moons (8,192 points, noise 0.05, standardized; 8,192 more to test), multilevel
    at ``MULTILEVEL_PARAMS`` beside ebmkit's NCSN (when installed: its noise-conditional MLP of the
    same widths, its multi-level denoising loss, on the same levels, with the same number and size of
    updates, Adam at a constant rate of 1e-3 as it ships) and KernelDensity and GaussianMixture. The
    NCSN's density is read two ways: by ebmkit's own probability-flow estimator (Euler on 200 levels,
    Hutchinson trace with 4 probes) and by skebm's ODE (RK4, exact trace) on its trained energy.

Timings are medians, wall time beside CPU time: the machines are shared.

Run: ``python benchmarks/bench_score_matching.py [--max-iter N] [--seeds N] [--no-nll]
[--multilevel [--held-out]] [--moons]``.
"""

import argparse
import importlib.util
import statistics
from functools import partial

import numpy as np
import torch
from _timing import median_over_seeds, timed
from bench_cd import TOYS, _train_peer, fit_gmm, fit_kde
from bench_nce import HELD_OUT_SHAPES

from skebm import ScoreMatchingEBM
from skebm._score_matching import MULTILEVEL_PARAMS
from skebm.datasets import make_checkerboard, make_moons, make_spirals
from skebm.energies import ProbabilityFlowEnergy

METHODS = ["exact", "sliced", "sliced_vr", "denoising", "multilevel"]


def _fit_method(X, method, max_iter, seed):
    return ScoreMatchingEBM(method=method, max_iter=max_iter or "auto", random_state=seed).fit(X)


def nll_table(max_iter, seeds):
    epochs = f"{max_iter} epochs" if max_iter else "each method's default budget"
    print(f"(a) test NLL in nats (lower is better); score matching at {epochs}, median over seeds {seeds}")
    print(f"{'data':<16}{'model':<26}{'NLL':>8}{'gap':>8}{'gaps over seeds':>18}{'wall s':>8}{'cpu s':>8}")
    for name, make, log_density in TOYS:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = -log_density(X_test).mean()
        print(f"{name:<16}{'true density':<26}{truth:8.3f}{0.0:8.3f}")
        for label, fit in (("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)):
            wall, cpu, model = timed(partial(fit, X))
            nll = -model.score_samples(X_test).mean()
            print(f"{'':<16}{label:<26}{nll:8.3f}{nll - truth:8.3f}{'':>18}{wall:8.1f}{cpu:8.1f}")
        for method in METHODS:
            gap, spread, wall, cpu = median_over_seeds(
                partial(_fit_method, X, method, max_iter),
                seeds,
                lambda model, X_test=X_test, truth=truth: -model.score_samples(X_test).mean() - truth,
            )
            label = f"ScoreMatchingEBM {method}"
            print(f"{'':<16}{label:<26}{truth + gap:8.3f}{gap:8.3f}{spread:>18}{wall:8.1f}{cpu:8.1f}")


def _mode_masses(name, samples):
    """Fraction of samples nearest each mode (eight Gaussians) or ring (rings); None elsewhere."""
    if name == "eight gaussians":
        angles = np.round(np.arctan2(samples[:, 1], samples[:, 0]) / (np.pi / 4)) % 8
        return np.bincount(angles.astype(int), minlength=8) / len(samples)
    if name == "rings":
        rings = np.clip(np.round(np.linalg.norm(samples, axis=1)), 1, 3).astype(int) - 1
        return np.bincount(rings, minlength=3) / len(samples)
    return None


def multilevel_table(seeds, held_out=False):
    print(f"\n(c) method='multilevel' at MULTILEVEL_PARAMS: test NLL, median over seeds {seeds} (range)")
    print(f"{'data':<22}{'model':<26}{'NLL':>8}{'NLL over seeds':>18}{'cpu s':>8}  sample masses (worst off)")
    shapes = [*TOYS, ("spirals", make_spirals, None), ("checkerboard", make_checkerboard, None)]
    if held_out:
        shapes = [(name, make, None) for name, make in HELD_OUT_SHAPES]
    for name, make, log_density in shapes:
        X, X_test = make(5000, random_state=0), make(5000, random_state=1)
        truth = f"{-log_density(X_test).mean():8.3f}" if log_density else "   (none)"
        print(f"{name:<22}{'true density':<26}{truth}")
        for label, fit in (("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)):
            print(f"{'':<22}{label:<26}{-fit(X).score_samples(X_test).mean():8.3f}")
        fits = [timed(partial(ScoreMatchingEBM(**MULTILEVEL_PARAMS, random_state=seed).fit, X)) for seed in seeds]
        nlls = sorted(-model.score_samples(X_test).mean() for _, _, model in fits)
        worst = []
        for _, _, model in fits:
            masses = _mode_masses(name, model.sample(4000, random_state=0))
            if masses is not None:
                worst.append(np.abs(masses - 1 / len(masses)).max())
        off = " / ".join(f"{100 * w:.2f}" for w in worst) + " pp by seed" if worst else ""
        cpu = statistics.median(c for _, c, _ in fits)
        nll_range = f"{nlls[0]:.3f} to {nlls[-1]:.3f}"
        print(
            f"{'':<22}{'ScoreMatchingEBM multilevel':<26}{statistics.median(nlls):8.3f}{nll_range:>18}{cpu:8.1f}  {off}"
        )


def moons_table(seeds):
    X = make_moons(16384, random_state=0)
    X, X_test = X[:8192], X[8192:]
    print(f"\n(d) two moons, 8,192 points: test NLL, median over seeds {seeds} (range); cpu s per fit")
    for label, fit in (("KernelDensity (CV)", fit_kde), ("GaussianMixture (BIC)", fit_gmm)):
        print(f"{label:<36}{-fit(X).score_samples(X_test).mean():8.3f}")
    rows, has_ebmkit = {}, importlib.util.find_spec("ebm") is not None
    for seed in seeds:
        _, cpu, model = timed(partial(ScoreMatchingEBM(**MULTILEVEL_PARAMS, random_state=seed).fit, X))
        rows.setdefault("skebm multilevel", []).append((-model.score(X_test), cpu))
        for name, nll, cpu in _ncsn(X, X_test, model, seed) if has_ebmkit else ():
            rows.setdefault(name, []).append((nll, cpu))
    for label, results in rows.items():
        nlls = sorted(nll for nll, _ in results)
        cpu = statistics.median(c for _, c in results)
        print(f"{label:<36}{statistics.median(nlls):8.3f}{f'{nlls[0]:.3f} to {nlls[-1]:.3f}':>18}{cpu:8.1f}")
    if not has_ebmkit:
        print("ebmkit: not installed, skipped (pip install -e '.[bench]' to include it)")


def _ncsn(X, X_test, ours, seed):
    """ebmkit's NCSN on our levels and budget; its test NLL by its own ODE estimator and by ours."""
    import ebm

    levels = torch.as_tensor(ours.noise_levels_.copy(), dtype=torch.float32)
    torch.manual_seed(seed)
    net = ebm.nets.NoiseConditionalMLPEnergy(2, hidden=MULTILEVEL_PARAMS["hidden_layer_sizes"])
    loss = ebm.MultiSigmaDenoisingScoreMatching(levels)
    _epochs, _rows, n_updates = ours._epoch_plan(len(X), ours._setting("max_iter"))  # the updates our fit made
    budget = (n_updates, ours.batch_size)
    _, cpu, _ = timed(partial(_train_peer, net, X, *budget, seed, lambda batch: loss(net, batch).loss))
    test = torch.as_tensor(X_test, dtype=torch.float32)
    fine = torch.as_tensor(np.geomspace(levels[0], levels[-1], 200), dtype=torch.float32)
    own = torch.cat(
        [ebm.eval.likelihood.pf_ode_log_likelihood(net, rows, fine, n_hutchinson=4) for rows in test.split(2048)]
    )
    flow = ProbabilityFlowEnergy(net, 2).double()
    sigma_min, sigma_max = ours.module_.levels.tolist()
    flow.set_levels(sigma_min, sigma_max, ours.module_.mean.cpu(), ours.module_.covariance.cpu())
    with torch.no_grad():
        ode = torch.cat([flow(rows) for rows in test.double().split(2048)])
    return [
        ("ebmkit NCSN, its ODE estimator", -float(own.mean()), cpu),
        ("ebmkit NCSN, skebm's ODE", float(ode.mean()), cpu),
    ]


def step_cost(repeats=5, steps=20):
    """(b): one training update (loss, backward to the weights, Adam) of each method, timed in turns.

    Each figure is the median over ``repeats`` blocks of ``steps`` updates, the methods' blocks
    interleaved, so that a burst of load on the shared machine falls on all of them alike.
    """
    print(f"\n(b) ms per training update (batch 64, MLP 128-128), median of {repeats} blocks of {steps}, wall and CPU;")
    print("ratio of wall time to denoising")
    print(f"{'d':>5}" + "".join(f"{m:>22}" for m in METHODS))
    for d in (2, 8, 32, 128):
        X = torch.randn(256, d, generator=torch.Generator().manual_seed(0)).numpy()
        updates = {method: _update(method, X) for method in METHODS}
        blocks = {method: [] for method in METHODS}
        for _ in range(repeats):
            for method, update in updates.items():
                blocks[method].append(timed(lambda update=update: [update() for _ in range(steps)])[:2])
        costs = {m: [statistics.median(block[i] for block in b) / steps for i in (0, 1)] for m, b in blocks.items()}
        base = costs["denoising"][0]
        row = "".join(f"{1000 * w:8.2f} {1000 * c:6.2f} {w / base:5.2f}x" for w, c in costs.values())
        print(f"{d:>5}{row}")
    print("(goals: at d = 128, sliced at least 10 times faster per step than exact; multilevel at most 1.5x denoising)")


def _update(method, X):
    """One training update of a model of ``method`` fitted for an epoch to ``X``, on its first 64 rows."""
    sizes = (128, 128)  # one network for every method: multilevel's own budget has three layers
    params = dict(
        method=method, network="mlp", hidden_layer_sizes=sizes, max_iter=1, log_partition=None, random_state=0
    )
    model = ScoreMatchingEBM(**params).fit(X)
    model._decay = None  # the constant rate: the schedule belongs to a call to fit
    batch = model._as_tensor(X[:64])
    model._train_step(batch, None)  # the first update allocates what the others reuse
    return partial(model._train_step, batch, None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=None, help="epochs (default: each method's own)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per method (3)")
    parser.add_argument("--no-nll", action="store_true", help="skip (a)")
    parser.add_argument("--multilevel", action="store_true", help="run (c) only")
    parser.add_argument("--held-out", action="store_true", help="with --multilevel: the held-out shapes")
    parser.add_argument("--moons", action="store_true", help="run (d) only")
    args = parser.parse_args()
    if args.moons:
        moons_table(list(range(args.seeds)))
        return
    if args.multilevel:
        multilevel_table(list(range(args.seeds)), args.held_out)
        return
    if not args.no_nll:
        nll_table(args.max_iter, list(range(args.seeds)))
    step_cost()


if __name__ == "__main__":
    main()
