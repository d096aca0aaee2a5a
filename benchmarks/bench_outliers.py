"""Outlier detection on real data: the skebm estimators beside scikit-learn's detectors.

The ADBench protocol ("Classical" datasets, Han et al. 2022), on every
``.npz`` in ``../shared/data/adbench`` (keys ``X`` and ``y``, 1 = anomaly):
a stratified 70/30 split per seed (seeds 1 to 3), MinMax scaling fitted on
the training part, the training part used without its labels (anomalies
included, as a user would have it), and the ROC-AUC of the anomaly score on
the test part. Every detector is fitted in the same run on the same splits.

The score of an skebm model is its energy (``-score_samples``); no log Z is
needed to rank rows, so the skebm models are fitted with ``log_partition=None``.
Each skebm model reads standardized features (a ``StandardScaler`` after the
protocol's MinMax scaling, inside a pipeline) and runs at its plain defaults
(for ``ContrastiveDivergenceEBM``, whose ``base="auto"`` is a Gaussian base on
every table here); ``SM gaussian base`` (``base="gaussian"``) is an option
under measurement, not a default. ``LatentVariableEBM`` is left out: it
models a manifold (``decoder`` and ``latent_dim``) rather than a table of
features.

The training part is capped at ``--max-train`` rows (10,000 by default, a
random subset per seed), so that the 31 tables, up to 619,326 rows, run in
one sitting; ``--max-train 0`` fits whole tables.

Settings may be chosen on the SELECTION half of the tables only, and every
figure is printed for that half, for the HELD_OUT half and for all tables: a
claim about defaults is a claim about the held-out half. SELECTION holds the
eight tables every earlier setting was chosen on (they were the only ones
here until 2026-11-24) and eight of the other 23 (every third by ADBench
number); HELD_OUT the remaining fifteen.

Prints one row per dataset (mean ROC-AUC over the seeds), the means over
each half and over all datasets with their range over the seeds (the
mean over the tables taken per seed), and the median wall and CPU seconds of one fit.

Run: ``python benchmarks/bench_outliers.py [--data DIR] [--only NAME ...] [--tables NAME ...]
[--half selection|held-out] [--max-train N] [--seeds S ...] [--verbose]``.
"""

import argparse
import resource
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
from _timing import timed
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import OneClassSVM

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, ScoreMatchingEBM

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "adbench"
SEEDS = (1, 2, 3)
SEEN_BEFORE = ("breastw", "cardio", "glass", "Ionosphere", "letter", "Pima", "thyroid", "wine")
OTHERS = (
    "ALOI", "campaign", "Cardiotocography", "celeba", "cover", "donors", "fault", "Hepatitis", "http",
    "InternetAds", "landsat", "magic.gamma", "mnist", "PageBlocks", "skin", "smtp", "SpamBase", "Stamps",
    "Waveform", "WDBC", "Wilt", "WPBC", "yeast",
)  # fmt: skip
SELECTION = SEEN_BEFORE + OTHERS[::3]
# Run only when named in --only: its fit grows with the square of the rows (three seeds of one
# 10,000-row table took 10 minutes on two cores).
OPT_IN = ("OneClassSVM",)
HELD_OUT = tuple(name for name in OTHERS if name not in SELECTION)


def kde_cv(seed):
    bandwidths = np.logspace(-2, 0, 12)
    return GridSearchCV(KernelDensity(), {"bandwidth": bandwidths}, cv=3)


def detectors(seed, verbose=0):
    """Name -> unfitted detector; each exposes ``score_samples`` (higher = more normal)."""
    skebm = {"log_partition": None, "random_state": seed, "verbose": verbose}
    return {
        "IsolationForest": IsolationForest(random_state=seed),
        "GaussianMixture(8, full)": GaussianMixture(8, covariance_type="full", random_state=seed),
        "KernelDensity (CV)": kde_cv(seed),
        "LocalOutlierFactor": LocalOutlierFactor(novelty=True),
        "OneClassSVM": OneClassSVM(),
        "NCEEBM": make_pipeline(StandardScaler(), NCEEBM(random_state=seed, verbose=verbose)),
        "ContrastiveDivergenceEBM": make_pipeline(StandardScaler(), ContrastiveDivergenceEBM(**skebm)),
        "ScoreMatchingEBM": make_pipeline(StandardScaler(), ScoreMatchingEBM(**skebm)),
        "RBM (gaussian)": make_pipeline(StandardScaler(), RBM(visible="gaussian", **skebm)),
        # A direction of issue 15: the energy as a correction to a shrunk Gaussian fitted to the data.
        "SM gaussian base": make_pipeline(StandardScaler(), ScoreMatchingEBM(base="gaussian", **skebm)),
    }


def anomaly_scores(detector, X):
    if isinstance(detector, GridSearchCV):
        detector = detector.best_estimator_
    return -detector.score_samples(X)


def table_name(path):
    """``"4_breastw"`` -> ``"breastw"``: the ADBench number dropped."""
    return path.stem.split("_", 1)[1]


def split_table(X, y, seed, max_train):
    """The protocol's split: stratified 70/30, at most ``max_train`` training rows, MinMax fitted on training."""
    X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if max_train and len(X_train) > max_train:
        X_train = X_train[np.random.default_rng(seed).choice(len(X_train), max_train, replace=False)]
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_test


def evaluate(path, only, max_train, seeds=SEEDS, verbose=0):
    data = np.load(path, allow_pickle=False)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    aucs, times = {}, {}
    for seed in seeds:
        X_train, X_test, y_test = split_table(X, y, seed, max_train)
        for name, detector in detectors(seed, verbose).items():
            if (only and name not in only) or (not only and name in OPT_IN):
                continue
            wall, cpu, fitted = timed(lambda detector=detector, X_train=X_train: detector.fit(X_train))
            aucs.setdefault(name, []).append(roc_auc_score(y_test, anomaly_scores(fitted, X_test)))
            times.setdefault(name, []).append((wall, cpu))
    return aucs, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of ADBench .npz files")
    parser.add_argument("--only", nargs="*", default=None, help="detector names to run (default: all)")
    parser.add_argument("--tables", nargs="*", default=None, help="table names to run (default: all)")
    parser.add_argument("--half", choices=["selection", "held-out"], default=None, help="run one half's tables only")
    parser.add_argument("--max-train", type=int, default=10_000, help="rows of the training part (0: all)")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS), help="split seeds (default: 1 2 3)")
    parser.add_argument("--verbose", action="store_true", help="progress bars of the skebm fits")
    args = parser.parse_args()
    files = sorted(args.data.glob("*.npz")) if args.data.is_dir() else []
    files = [path for path in files if not args.tables or table_name(path) in args.tables]
    if args.half:
        members = SELECTION if args.half == "selection" else HELD_OUT
        files = [path for path in files if table_name(path) in members]
    if not files:
        print(f"skipped: no ADBench .npz files in {args.data} (pass --data DIR)")
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    table, all_times = {}, {}
    for path in files:
        name = table_name(path)
        table[name], times = evaluate(path, args.only, args.max_train, args.seeds, int(args.verbose))
        for detector, pairs in times.items():
            all_times.setdefault(detector, []).extend(pairs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux
        means = {k: round(float(np.mean(v)), 3) for k, v in table[name].items()}
        cpu = {k: [round(c, 2) for _, c in pairs] for k, pairs in times.items()}  # to pool runs of the two halves
        print(name, means, "per seed", table[name], "cpu s", cpu, f"peak memory so far {peak:.2f} GB", flush=True)
    print_table(table, all_times, args.seeds)
    return 0


def print_table(table, all_times, seeds):
    """``table[dataset][detector]`` holds one ROC-AUC per seed."""
    names = list(next(iter(table.values())))
    print(f"\nROC-AUC on the test part, mean over seeds {seeds} (higher is better)")
    print(f"{'dataset':<20}" + "".join(f"{name[:14]:>15}" for name in names))
    for dataset, row in table.items():
        print(f"{dataset:<20}" + "".join(f"{np.mean(row[name]):15.3f}" for name in names))
    halves = {"mean selection": SELECTION, "mean held-out": HELD_OUT, "mean all": tuple(table)}
    for label, members in halves.items():
        rows = [row for dataset, row in table.items() if dataset in members]
        if not rows:
            continue
        # One mean over the tables per seed: the spread of the claim over seeds, not over tables.
        per_seed = {name: np.mean([row[name] for row in rows], axis=0) for name in names}
        print(f"{label + f' ({len(rows)})':<20}" + "".join(f"{per_seed[name].mean():15.3f}" for name in names))
        print(f"{'  seed range':<20}" + "".join(f"{_range(per_seed[name]):>15}" for name in names))
        reference = per_seed.get("IsolationForest")
        if reference is not None:
            print(f"{'  - IForest':<20}" + "".join(f"{(per_seed[name] - reference).mean():15.3f}" for name in names))
            print(f"{'  seed range':<20}" + "".join(f"{_range(per_seed[name] - reference):>15}" for name in names))
    if "IsolationForest" in names:
        # An inversion: a detector ranking anomalies as normal where IsolationForest ranks them well.
        hard = [row for row in table.values() if np.mean(row["IsolationForest"]) > 0.7]
        inversions = {name: sum(np.mean(row[name]) < 0.5 for row in hard) for name in names}
        print(f"{'AUC<.5, IF>.7':<20}" + "".join(f"{inversions[name]:15d}" for name in names))
    wall = {name: statistics.median(w for w, _ in all_times[name]) for name in names}
    cpu = {name: statistics.median(c for _, c in all_times[name]) for name in names}
    print(f"{'fit wall s':<20}" + "".join(f"{wall[name]:15.2f}" for name in names))
    print(f"{'fit cpu s':<20}" + "".join(f"{cpu[name]:15.2f}" for name in names))


def _range(values):
    return f"{min(values):.3f}..{max(values):.3f}"


if __name__ == "__main__":
    sys.exit(main())
