"""Multi-level score matching as an outlier detector on the ADBench tables (issue 17, item 3).

Ranks the test rows of each table by three scores of one ``ScoreMatchingEBM(method="multilevel")``
fit at one level's training budget (what the estimator's defaults were for every method when the
README's figures were measured, 2026-12-04; its "auto" budget for multilevel is now
``MULTILEVEL_PARAMS``, two and a half times the updates at four times the rows): the mean of
``level_energies`` over the levels, the energy at the smallest level alone, and (on tables of at
most 8 features) the probability-flow density. Beside them, in the same run on the same splits:
the single-level default detector (``ScoreMatchingEBM()``, denoising on tables) and IsolationForest.

The protocol is ``bench_outliers.py``'s (stratified 70/30 split per seed, at most 10,000 training
rows, MinMax then standard scaling fitted on the training part, labels unused in training, ROC-AUC
on the test part), with two changes for cost: the test part is capped at 3,000 rows (a stratified
subset), and the multilevel fit skips its outlier thresholds. Those score every training row by the
ODE, at a backward pass per feature per Runge-Kutta stage, and only rankings are measured here.
InternetAds (1,555 features) is left out: the mixture base alone takes minutes there.

Prints one row per table and the mean over each half (SELECTION, where the mean over levels was
chosen, and HELD_OUT), with its range over the seeds.

Run: ``python benchmarks/sweep_multilevel_outliers.py [--half selection|held-out] [--seeds S ...]``.
"""

import argparse
import warnings

import numpy as np
import torch
from bench_outliers import DEFAULT_DATA, HELD_OUT, SELECTION, split_table, table_name
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skebm import ScoreMatchingEBM
from skebm._score_matching import _SINGLE_LEVEL_BUDGET as SINGLE_LEVEL_BUDGET

MAX_TRAIN, MAX_TEST, MAX_ODE_FEATURES = 10_000, 3_000, 8
LEFT_OUT = ("InternetAds",)


class _RankingOnly(ScoreMatchingEBM):
    """Multilevel without the ODE pass over the training rows that sets the outlier thresholds."""

    def _set_outlier_thresholds(self, X, weights=None):
        pass


def split(X, y, seed):
    """``bench_outliers``'s split, the test part capped at ``MAX_TEST`` stratified rows, then standardized."""
    X_train, X_test, y_test = split_table(X, y, seed, MAX_TRAIN)
    if len(X_test) > MAX_TEST:
        X_test, _, y_test, _ = train_test_split(X_test, y_test, train_size=MAX_TEST, stratify=y_test, random_state=seed)
    scaling = StandardScaler().fit(X_train)
    return scaling.transform(X_train), scaling.transform(X_test), y_test


def table_aucs(X_train, X_test, y_test, seed):
    aucs = {"IsolationForest": -IsolationForest(random_state=seed).fit(X_train).score_samples(X_test)}
    aucs["SM default (one level)"] = ScoreMatchingEBM(log_partition=None, random_state=seed).fit(X_train).energy(X_test)
    multilevel = _RankingOnly(method="multilevel", **SINGLE_LEVEL_BUDGET, random_state=seed).fit(X_train)
    levels = multilevel.level_energies(X_test)
    aucs["multilevel, level mean"] = levels.mean(axis=1)
    aucs["multilevel, smallest"] = levels[:, -1]
    if X_train.shape[1] <= MAX_ODE_FEATURES:
        aucs["multilevel, ODE"] = multilevel.energy(X_test)
    return {name: roc_auc_score(y_test, scores) for name, scores in aucs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=["selection", "held-out"], default="held-out")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(1)
    members = SELECTION if args.half == "selection" else HELD_OUT
    paths = [
        p for p in sorted(DEFAULT_DATA.glob("*.npz")) if table_name(p) in members and table_name(p) not in LEFT_OUT
    ]
    if not paths:
        print(f"skipped: no ADBench .npz files in {DEFAULT_DATA}")
        return
    table = {}
    for path in paths:
        data = np.load(path, allow_pickle=False)
        X, y = data["X"].astype(np.float64), data["y"].astype(int)
        per_seed = [table_aucs(*split(X, y, seed), seed) for seed in args.seeds]
        table[table_name(path)] = {name: [aucs[name] for aucs in per_seed] for name in per_seed[0]}
        print(table_name(path), X.shape, {k: round(float(np.mean(v)), 3) for k, v in table[table_name(path)].items()})
    names = [name for name in next(iter(table.values())) if all(name in row for row in table.values())]
    print(f"\nmean ROC-AUC over the {len(table)} {args.half} tables, seeds {args.seeds} (range over seeds)")
    for name in names:
        per_seed = np.mean([row[name] for row in table.values()], axis=0)
        print(f"{name:<28}{per_seed.mean():7.3f}  ({per_seed.min():.3f} to {per_seed.max():.3f})")


if __name__ == "__main__":
    main()
