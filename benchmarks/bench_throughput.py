"""Throughput of skebm's fits, chains and log-Z estimators, against another revision of skebm.

Refactors must change no fitted model and cost nothing: this prints, for a
fixed set of workloads (each estimator's fit at fixed settings, every kernel's
chains, both AIS estimators, RBM Gibbs sampling), the CPU and wall seconds of
this checkout beside those of a baseline revision measured in the same run,
and their ratio. The baseline is checked out into a temporary directory with
``git worktree``; each side is measured in its own single-threaded
subprocess, so each imports its own code, and the two take turns for
``--rounds`` rounds, so that the load of a shared machine, which drifts over
minutes, falls on both alike. A workload the baseline cannot run (an API it
lacks) reads ``n/a``.

Each figure is the median over rounds of the median over ``--repeats`` calls,
CPU time beside wall time (CPU time is the steadier of the two).

Run: ``python benchmarks/bench_throughput.py [--baseline REV] [--rounds N]``
(``--baseline 9d63b34`` is the revision before the hook and sampler refactor).
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from _timing import timed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _fits():
    """Each estimator fitted at fixed, small settings: the training loop's throughput."""
    from sklearn.datasets import load_digits

    from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
    from skebm.datasets import make_eight_gaussians

    X2 = make_eight_gaussians(2000, random_state=0)
    X8 = np.random.default_rng(0).standard_normal((4000, 8))
    digits = (load_digits().data > 7).astype(float)
    cases = {
        "fit CD, 2-D, 300 updates": (ContrastiveDivergenceEBM, dict(max_updates=300, log_partition=None), X2),
        "fit CD, 8-D, 300 updates": (ContrastiveDivergenceEBM, dict(max_updates=300, log_partition=None), X8),
        "fit SM, 8-D, 3 epochs": (ScoreMatchingEBM, dict(max_iter=3, log_partition=None), X8),
        "fit NCE, 8-D, 3 epochs": (NCEEBM, dict(max_iter=3), X8),
        "fit RBM, digits, 30 epochs": (RBM, dict(n_components=64, max_iter=30, log_partition=None), digits),
        "fit latent, ellipse, 20 epochs": (LatentVariableEBM, dict(max_iter=20), X2[:200]),
    }
    return {
        name: (lambda cls=cls, params=params, X=X: cls(random_state=0, **params).fit(X))
        for name, (cls, params, X) in cases.items()
    }


def _chains():
    """1,024 chains of every kernel on a 2-64-64-1 MLP energy, 100 steps each."""
    from skebm.energies import BoxedEnergy, MLPEnergy
    from skebm.samplers import make_kernel, run_chain

    torch.manual_seed(0)
    energy = BoxedEnergy(MLPEnergy(2, (64, 64)), np.full(2, -4.0), np.full(2, 4.0))
    x0 = torch.zeros(1024, 2)

    def chain(name, step_size):  # the kernel is made in the call: a baseline may lack it
        return lambda: run_chain(
            make_kernel(name, step_size, bounds=energy.bounds()), energy, x0, 100, torch.Generator().manual_seed(0)
        )

    cases = {f"chain {name}": chain(name, 0.05) for name in ("langevin", "mala", "hmc", "metropolis")}
    cases["chain uniform_jump"] = chain("uniform_jump", None)
    return cases


def _partition_and_gibbs():
    """Both AIS estimators of log Z, and Gibbs sampling of a fitted RBM."""
    from sklearn.datasets import load_digits

    from skebm import RBM
    from skebm.energies import MLPEnergy
    from skebm.partition import ais_log_partition, rbm_ais_log_partition

    torch.manual_seed(0)
    energy = MLPEnergy(8, (64, 64))
    X8 = np.random.default_rng(0).standard_normal((1000, 8))
    digits = (load_digits().data > 7).astype(float)
    rbm = RBM(n_components=64, max_iter=2, log_partition=None, random_state=0).fit(digits)
    params = rbm.module_.params()
    return {
        "AIS log Z, MLP 8-D, 300 steps": lambda: ais_log_partition(energy, X8, n_steps=300),
        "AIS log Z, RBM digits, 2000 betas": lambda: rbm_ais_log_partition(params, digits, n_betas=2000),
        "RBM sample, 1000 chains": lambda: rbm.set_params(n_sample_steps=200).sample(1000, random_state=0),
    }


WORKLOADS = (_fits, _chains, _partition_and_gibbs)


def measure(repeats, baseline=False):
    """``{workload: (median wall s, median CPU s)}``.

    A baseline may predate a workload's API: there it is None. This checkout must run them all.
    """
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    results = {}
    for build in WORKLOADS:
        for name, run in build().items():
            try:
                run()  # warm-up: first calls pay for lazy initialization
            except (AttributeError, ImportError, KeyError, TypeError):
                if not baseline:
                    raise
                results[name] = None
                continue
            wall, cpu, _ = timed(run, repeats)
            results[name] = (wall, cpu)
    return results


@contextlib.contextmanager
def checked_out(revision):
    """A temporary ``git worktree`` of ``revision`` of this repository."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def measure_in(tree, repeats, baseline):
    """:func:`measure` in a fresh single-threaded interpreter that imports skebm from ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    script = [sys.executable, str(HERE / "bench_throughput.py"), "--json", "--repeats", str(repeats)]
    done = subprocess.run(
        script + (["--as-baseline"] if baseline else []), env=env, cwd=tree.parent, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"Measuring {tree} failed:\n{done.stderr}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(measured["imported_from"]) != tree.resolve():  # an installed skebm shadowing the tree
        raise RuntimeError(f"The measurement imported skebm from {measured['imported_from']}, not {tree}.")
    return measured["results"]


def interleaved(revision, repeats, rounds):
    """Per workload, the median over ``rounds`` of this checkout's and the baseline's medians.

    The two are measured by turns, round after round, so that a shared machine's
    load, which drifts over minutes, falls on both alike.
    """
    ours, theirs = [], []
    with checked_out(revision) if revision else contextlib.nullcontext() as tree:
        for _ in range(rounds):
            ours.append(measure_in(ROOT, repeats, baseline=False))
            if tree is not None:
                theirs.append(measure_in(tree, repeats, baseline=True))
    return _median_of(ours), _median_of(theirs)


def _median_of(runs):
    if not runs:
        return {}
    return {
        name: None if runs[0][name] is None else tuple(statistics.median(run[name][i] for run in runs) for i in (0, 1))
        for name in runs[0]
    }


def _imported_from():
    import skebm

    return str(Path(skebm.__file__).resolve().parent.parent)


def table(ours, baseline, revision, rounds):
    print(
        f"Throughput, single-threaded; this checkout ({ROOT}) against {revision or 'nothing'}; "
        f"medians over {rounds} interleaved rounds"
    )
    print(f"{'workload':<36}{'wall s':>8}{'cpu s':>8}{'base cpu s':>12}{'cpu ratio':>11}")
    for name, (wall, cpu) in ours.items():
        base = baseline.get(name)
        base_cpu, ratio = ("n/a", "n/a") if base is None else (f"{base[1]:.3f}", f"{cpu / base[1]:.2f}")
        print(f"{name:<36}{wall:>8.3f}{cpu:>8.3f}{base_cpu:>12}{ratio:>11}")
    print("cpu ratio = this checkout's CPU seconds / the baseline's (below 1: faster now).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to compare with (default: none)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per workload and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one measuring subprocess
    parser.add_argument("--as-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        results = measure(args.repeats, baseline=args.as_baseline)
        print(json.dumps({"imported_from": _imported_from(), "results": results}))
        return
    ours, baseline = interleaved(args.baseline, args.repeats, args.rounds)
    table(ours, baseline, args.baseline, args.rounds)


if __name__ == "__main__":
    main()
