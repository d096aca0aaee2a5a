import math

import numpy as np
import pytest
import torch

from skebm.energies import QuadraticEnergy
from skebm.partition import ais_log_partition, grid_log_partition


def test_grid_is_exact_on_a_gaussian_in_two_dimensions():
    precision = np.array([[2.0, 0.3], [0.3, 1.0]])
    energy = QuadraticEnergy(2, mean=[0.5, -0.2], precision=precision).double()
    log_z = grid_log_partition(energy, [-8, -8], [8, 8])
    assert log_z == pytest.approx(energy.log_partition(), abs=1e-6)


def test_grid_is_exact_in_one_dimension():
    energy = QuadraticEnergy(1, precision=[[4.0]]).double()
    assert grid_log_partition(energy, [-6], [6]) == pytest.approx(energy.log_partition(), abs=1e-6)


def test_grid_refuses_three_dimensions():
    with pytest.raises(ValueError, match="1 or 2 features"):
        grid_log_partition(QuadraticEnergy(3), [0, 0, 0], [1, 1, 1])


def test_ais_recovers_a_known_log_partition():
    rng = np.random.default_rng(0)
    d = 5
    precision = np.diag(np.linspace(0.5, 4.0, d))
    energy = QuadraticEnergy(d, mean=np.ones(d), precision=precision)
    # The base is fitted to data that only roughly matches the target, so AIS has work to do.
    X = rng.normal(size=(1000, d)) * 1.5
    log_z, log_z_std = ais_log_partition(energy, X, n_steps=500, n_chains=256)
    assert abs(log_z - energy.log_partition()) < 0.05
    assert 0 <= log_z_std < 0.05
    assert math.isfinite(log_z)


def test_ais_evaluates_the_energy_once_per_distribution():
    # The accepted chains carry their proposal's energies into the next distribution: one call per step.
    energy, calls = QuadraticEnergy(3), []

    class Counted(torch.nn.Module):
        def energy_and_grad(self, x):
            calls.append(len(x))
            return energy.energy_and_grad(x)

    ais_log_partition(Counted(), np.random.default_rng(0).normal(size=(200, 3)), n_steps=50, n_chains=16)
    assert calls == [16] * 51  # the start, then each MALA proposal
