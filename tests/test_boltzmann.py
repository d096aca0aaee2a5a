import itertools
import math

import numpy as np
import pytest
import torch

from skebm import RBM, BoltzmannMachine, DivergenceError, load, save
from skebm.energies import BoltzmannParams
from skebm.partition import boltzmann_ais_log_partition, boltzmann_exact_log_partition
from skebm.samplers import RandomPool, boltzmann_sweep


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_machine(n_visible, n_hidden, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    upper = torch.randn(n_visible, n_visible, generator=g, dtype=dtype).triu(1)
    return BoltzmannParams(
        torch.randn(n_hidden, n_visible, generator=g, dtype=dtype),
        torch.randn(n_hidden, generator=g, dtype=dtype),
        torch.randn(n_visible, generator=g, dtype=dtype),
        upper + upper.T,
    )


@pytest.fixture(scope="module")
def pairs():
    # Eight binary features in four pairs that agree 90% of the time, pairs independent: a
    # correlation a single hidden unit cannot hold four times over, but four couplings can.
    rng = np.random.default_rng(0)
    first = rng.integers(0, 2, (1200, 4))
    second = np.abs(first - (rng.random(first.shape) < 0.1))
    X = np.stack([first, second], axis=2).reshape(1200, 8).astype(float)
    return X[:800], X[800:]


def test_exact_log_partition_equals_brute_force_over_visible_and_hidden():
    bm = random_machine(5, 3)
    v, h = states(5), states(3)
    joint = torch.stack([bm.joint_energy(v, hidden.expand(len(v), -1)) for hidden in h])
    assert boltzmann_exact_log_partition(bm) == pytest.approx(float(torch.logsumexp(-joint.flatten(), 0)), abs=1e-10)


def test_ais_agrees_with_exact_within_three_standard_errors():
    bm = random_machine(8, 4, seed=1, dtype=torch.float32)
    X = np.random.default_rng(0).integers(0, 2, (200, 8))
    log_z, std = boltzmann_ais_log_partition(bm, X, n_betas=2000, generator=torch.Generator().manual_seed(0))
    assert abs(log_z - boltzmann_exact_log_partition(bm)) < 3 * std + 1e-3


def test_gibbs_sweeps_reproduce_the_exact_distribution():
    bm = random_machine(4, 3, seed=2, dtype=torch.float32)
    exact = torch.softmax(-bm.free_energy(states(4).float()), 0).double()
    n, v = 20000, torch.zeros(20000, 4)
    pool = RandomPool(torch.Generator().manual_seed(0))
    for _ in range(60):
        v = boltzmann_sweep(v, bm, pool)
    codes = (v * 2 ** torch.arange(3, -1, -1)).sum(1).long()
    empirical = torch.bincount(codes, minlength=16).double() / n
    # As for the RBM: E[TV] <= 1/2 sum sqrt(p (1 - p) / n), plus McDiarmid's term at delta = 1e-4.
    tolerance = 0.5 * float(torch.sqrt(exact * (1 - exact) / n).sum()) + math.sqrt(math.log(1e4) / (2 * n))
    assert 0.5 * float((empirical - exact).abs().sum()) < tolerance


@pytest.fixture(scope="module")
def paired_machine(pairs):
    return BoltzmannMachine(n_components=1, random_state=0).fit(pairs[0])


def test_couplings_hold_correlations_a_small_rbm_cannot(pairs, paired_machine):
    X_train, X_test = pairs
    bm = paired_machine
    rbm = RBM(n_components=1, random_state=0).fit(X_train)
    assert bm.log_partition_std_ == 0.0  # eight visible units: enumerated
    # The true density on the same test rows: each pair contributes log 0.5 + log 0.9 (agree) or log 0.1.
    agree = X_test[:, 0::2] == X_test[:, 1::2]
    truth = float((math.log(0.5) + np.where(agree, math.log(0.9), math.log(0.1))).sum(1).mean())
    assert bm.score(X_test) > rbm.score(X_test) + 1.0
    # 800 rows fit 45 parameters: an excess loss near 45 / (2 * 800) nats, and some optimization error.
    assert bm.score(X_test) > truth - 0.15
    coupling = bm.coupling_
    assert np.allclose(coupling, coupling.T) and np.all(np.diag(coupling) == 0)
    partners = [coupling[2 * i, 2 * i + 1] for i in range(4)]
    assert min(partners) > np.abs(coupling - np.diag(np.diag(coupling))).max() / 2  # the pairs' couplings lead


def test_sample_gibbs_save_and_reproduce(pairs, paired_machine, tmp_path):
    X_train, _ = pairs
    again = BoltzmannMachine(n_components=1, random_state=0).fit(X_train)
    np.testing.assert_array_equal(paired_machine.coupling_, again.coupling_)
    samples = paired_machine.sample(2000, random_state=0)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    # The pairs agree in the samples as in the data (0.9; independent units would give 0.5).
    assert np.mean(samples[:, 0::2] == samples[:, 1::2]) > 0.8
    bm = BoltzmannMachine(n_components=2, max_iter=2, n_sample_steps=50, random_state=0).fit(X_train)
    assert bm.gibbs(X_train[:5]).shape == (5, 8)
    save(bm, tmp_path / "bm.skebm")
    loaded = load(tmp_path / "bm.skebm")
    np.testing.assert_array_equal(loaded.score_samples(X_train), bm.score_samples(X_train))
    assert not hasattr(bm, "persistent_hidden_") and bm.persistent_visible_.shape == (bm.batch_size, 8)


def test_rows_far_outside_the_unit_interval_stop_with_a_divergence_error():
    X = np.random.default_rng(0).normal(100, 1, (100, 3))
    with pytest.warns(UserWarning, match=r"expects X in \[0, 1\]"), pytest.raises(DivergenceError, match="energies"):
        BoltzmannMachine(n_components=2, max_iter=2, random_state=0).fit(X)
