"""MCMC kernels against a Gaussian energy whose moments are known exactly."""

import itertools
import math
from functools import partial

import numpy as np
import pytest
import torch

from skebm.energies import MLPEnergy, QuadraticEnergy, RBMParams
from skebm.samplers import (
    ENERGY_SAMPLERS,
    SAMPLERS,
    GibbsInfo,
    GibbsState,
    HMCInfo,
    LangevinInfo,
    MALAInfo,
    MetropolisInfo,
    RandomPool,
    ReplayBuffer,
    TemperingState,
    energy_and_grad,
    gibbs_step,
    init_state,
    make_kernel,
    mala_step,
    parallel_tempering_step,
    run_chain,
)

MEAN = np.array([1.0, -1.0])
COV = np.array([[1.0, 0.5], [0.5, 2.0]])
N_CHAINS = 4000

# name, step size, steps, relative variance bias of the kernel (ULA inflates the variance by about step/(2 sigma^2))
KERNELS = [
    ("langevin", 0.02, 800, 0.02),
    ("mala", 0.4, 300, 0.0),
    ("metropolis", 1.0, 600, 0.0),
    ("hmc", 0.3, 100, 0.0),
]


def gaussian_energy():
    return QuadraticEnergy(2, mean=MEAN, precision=np.linalg.inv(COV))


@pytest.mark.parametrize(("name", "step_size", "n_steps", "bias"), KERNELS)
def test_kernels_sample_the_gaussian(name, step_size, n_steps, bias):
    energy = gaussian_energy()
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(N_CHAINS, 2, generator=generator)
    x, rate = run_chain(make_kernel(name, step_size), energy, start, n_steps, generator)
    x = x.double().numpy()
    # Five standard errors of independent draws: mean SE sqrt(S_ii / n); covariance SE sqrt((S_ii S_jj + S_ij^2) / n).
    mean_tol = 5 * np.sqrt(np.diag(COV) / N_CHAINS)
    cov_tol = 5 * np.sqrt((np.outer(np.diag(COV), np.diag(COV)) + COV**2) / N_CHAINS) + bias * np.abs(COV)
    np.testing.assert_array_less(np.abs(x.mean(0) - MEAN), mean_tol)
    np.testing.assert_array_less(np.abs(np.cov(x.T) - COV), cov_tol)
    if name == "langevin":
        assert rate is None
    else:
        assert 0.0 < rate < 1.0


def test_langevin_chapter7_form_clips_and_clamps():
    energy = gaussian_energy()
    generator = torch.Generator().manual_seed(0)
    low, high = torch.full((2,), -0.5), torch.full((2,), 0.5)
    kernel = make_kernel("langevin", 10.0, noise_scale=0.005, grad_clip=0.03, bounds=(low, high))
    start = torch.zeros(100, 2)
    x, _ = run_chain(kernel, energy, start, 1, generator)
    # One step moves at most step_size * grad_clip plus the noise, and never leaves the box.
    assert float((x - start).abs().max()) <= 10.0 * 0.03 + 6 * 0.005
    x, _ = run_chain(kernel, energy, start, 50, generator)
    assert bool(((x >= low) & (x <= high)).all())


@pytest.mark.parametrize("name", ["mala", "metropolis", "hmc"])
def test_corrected_kernels_reject_proposals_outside_bounds(name):
    energy = gaussian_energy()
    generator = torch.Generator().manual_seed(0)
    bounds = (torch.full((2,), -0.3), torch.full((2,), 0.3))
    x, _ = run_chain(make_kernel(name, 0.5, bounds=bounds), energy, torch.zeros(500, 2), 30, generator)
    assert bool(((x >= bounds[0]) & (x <= bounds[1])).all())


def test_sampling_builds_no_parameter_gradients():
    energy = gaussian_energy()
    generator = torch.Generator().manual_seed(0)
    run_chain(make_kernel("mala", 0.1), energy, torch.zeros(10, 2), 5, generator)
    assert all(p.grad is None for p in energy.parameters())
    assert all(p.requires_grad for p in energy.parameters())


def _mixture_energy(n_features, n_components=3):
    from sklearn.mixture import GaussianMixture

    from skebm.energies import GaussianMixtureEnergy

    X = np.random.default_rng(0).normal(size=(200, n_features)) @ np.diag(np.arange(1, n_features + 1))
    return GaussianMixtureEnergy.from_sklearn(GaussianMixture(n_components, random_state=0).fit(X))


def _residual_energy(n_features):
    from skebm.energies import ResidualEnergy

    energy = ResidualEnergy(MLPEnergy(n_features, (16, 8)), _mixture_energy(n_features))
    torch.nn.init.normal_(energy.network.output.weight)  # a non-zero correction, so both parts count
    return energy


def _quadratic_energy(n_features):
    from skebm.energies import QuadraticEnergy

    a = torch.randn(n_features, n_features, generator=torch.Generator().manual_seed(1))
    return QuadraticEnergy(n_features, mean=torch.randn(n_features), precision=a @ a.T + torch.eye(n_features))


@pytest.mark.parametrize(
    "make_energy",
    [
        lambda d: MLPEnergy(d, (16, 8)),
        _mixture_energy,
        partial(_mixture_energy, n_components=1),
        _quadratic_energy,
        _residual_energy,
    ],
    ids=["mlp", "mixture", "gaussian", "quadratic", "residual"],
)
def test_fast_gradient_matches_autograd(make_energy):
    torch.manual_seed(0)
    energy = make_energy(3).double()
    x = 2 * torch.randn(20, 3, dtype=torch.float64)
    fast_e, fast_g = energy_and_grad(energy, x)
    slow_e, slow_g = energy_and_grad(lambda z: energy(z), x)
    torch.testing.assert_close(fast_e, slow_e)
    torch.testing.assert_close(fast_g, slow_g)


def test_gaussian_gradient_follows_new_buffers():
    # The one-component energy keeps its precision matrix between calls: loading other buffers must renew it.
    energy = _mixture_energy(3, n_components=1)
    x = torch.randn(5, 3)
    energy_and_grad(energy, x)
    other = type(energy)(np.ones((1, 3)), 2 * np.eye(3)[None], np.ones(1))
    energy.load_state_dict(other.state_dict())
    torch.testing.assert_close(energy_and_grad(energy, x)[1], 4 * (x - 1))


def test_same_generator_seed_gives_same_chains():
    energy = gaussian_energy()
    runs = [
        run_chain(make_kernel("mala", 0.3), energy, torch.zeros(50, 2), 20, torch.Generator().manual_seed(3))[0]
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_replay_buffer_fresh_fraction_and_fifo():
    noise = lambda n, g: torch.full((n, 1), -1.0)  # noqa: E731
    buffer = ReplayBuffer(capacity=1000, n_features=1, noise=noise, fresh_fraction=0.05)
    generator = torch.Generator().manual_seed(0)
    assert bool((buffer.sample(10, generator) == -1).all())  # empty: all fresh
    buffer.push(torch.ones(1000, 1))
    starts = buffer.sample(20000, generator)
    fresh = float((starts == -1).double().mean())
    # Binomial proportion: 5 standard errors around 0.05.
    assert abs(fresh - 0.05) < 5 * math.sqrt(0.05 * 0.95 / 20000)
    buffer.push(torch.full((600, 1), 2.0))
    assert len(buffer) == 1000
    assert int((buffer.storage == 2).sum()) == 600  # the oldest 600 were overwritten


def test_uniform_jumps_share_chains_between_modes_by_their_masses():
    # Two far-apart modes with masses 0.8 and 0.2; every chain starts in the light one. Local
    # kernels never cross the gap; independence jumps converge geometrically, at a rate of at
    # least 1 / max(p / q) = 1 / 90 per step here, so after 800 steps the start is forgotten to 1e-4.
    weights, centers, std = torch.tensor([0.8, 0.2]), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.3

    def energy(x):
        sq = ((x[:, None, :] - centers) ** 2).sum(-1) / (2 * std**2)
        return -torch.logsumexp(torch.log(weights) - sq - math.log(2 * math.pi * std**2), dim=1)

    n_chains = 4000
    box = (torch.full((2,), -4.0), torch.full((2,), 4.0))
    jump = make_kernel("uniform_jump", bounds=box)
    start = centers[1].repeat(n_chains, 1)
    x, rate = run_chain(jump, energy, start, 800, torch.Generator().manual_seed(0))
    heavy = float((x[:, 0] < 0).double().mean())
    assert heavy == pytest.approx(0.8, abs=4 * math.sqrt(0.8 * 0.2 / n_chains))  # 4 binomial SE
    assert 0 < rate < 1 and bool(((x >= box[0]) & (x <= box[1])).all())


@pytest.mark.parametrize("name", ["metropolis", "uniform_jump"])
def test_a_gradient_kernel_after_an_energy_only_kernel_uses_a_fresh_gradient(name):
    energy = gaussian_energy()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(1))
    kernel = make_kernel(name, 0.5, bounds=(torch.full((2,), -3.0), torch.full((2,), 3.0)))
    walked, info = kernel(init_state(energy, x), energy, torch.Generator().manual_seed(2))
    assert 0 < float(info.is_accepted.double().mean()) < 1  # some chains moved, some stayed
    assert not hasattr(walked, "grad")  # never a stale gradient from before the move
    after, _ = mala_step(walked, energy, torch.Generator().manual_seed(3), 0.1)
    fresh, _ = mala_step(init_state(energy, walked.position), energy, torch.Generator().manual_seed(3), 0.1)
    torch.testing.assert_close(after.position, fresh.position)
    torch.testing.assert_close(after.grad, energy_and_grad(energy, after.position)[1])


INFO_TYPES = {
    "langevin": LangevinInfo,
    "mala": MALAInfo,
    "metropolis": MetropolisInfo,
    "hmc": HMCInfo,
    "uniform_jump": MetropolisInfo,
}


@pytest.mark.parametrize("name", sorted(ENERGY_SAMPLERS))
def test_each_kernel_reports_its_own_info_as_tensors(name):
    assert set(INFO_TYPES) == ENERGY_SAMPLERS  # a new kernel needs its row here
    energy = gaussian_energy()
    kernel = make_kernel(name, step_size=0.5, bounds=(torch.full((2,), -4.0), torch.full((2,), 4.0)))
    state = kernel.init(energy, torch.randn(200, 2, generator=torch.Generator().manual_seed(0)))
    new, info = kernel(state, energy, torch.Generator().manual_seed(1))
    assert type(info) is INFO_TYPES[name]
    assert all(isinstance(value, torch.Tensor) for value in info)  # read once, at the end of a chain
    if "is_accepted" in info._fields:
        moved = (new.position != state.position).any(-1)
        torch.testing.assert_close(moved, info.is_accepted)
        assert 0 < int(info.is_accepted.sum()) < 200


def test_hmc_acceptance_rate_is_the_mean_metropolis_probability_of_its_energy_change():
    energy = gaussian_energy()
    state = init_state(energy, torch.randn(500, 2, generator=torch.Generator().manual_seed(0)))
    _, info = make_kernel("hmc", 0.6)(state, energy, torch.Generator().manual_seed(1))
    expected = torch.exp(torch.clamp(-info.energy_change, max=0.0)).mean()
    torch.testing.assert_close(info.acceptance_rate, expected)


def test_a_kernel_that_needs_a_step_size_says_so():
    with pytest.raises(ValueError, match="needs a step_size"):
        make_kernel("mala")


def test_gibbs_with_known_hidden_logits_takes_the_same_step():
    from skebm.energies import RBMParams

    g = torch.Generator().manual_seed(0)
    rbm = RBMParams(torch.randn(5, 7, generator=g), torch.randn(5, generator=g), torch.randn(7, generator=g))
    v = torch.randint(0, 2, (50, 7), generator=g).float()
    plain, info = gibbs_step(GibbsState(v), rbm, RandomPool(torch.Generator().manual_seed(1)))
    cached, _ = gibbs_step(GibbsState(v, rbm.hidden_logits(v)), rbm, RandomPool(torch.Generator().manual_seed(1)))
    torch.testing.assert_close(plain.position, cached.position, rtol=0, atol=0)
    assert type(info) is GibbsInfo


def _two_mode_rbm():
    # One hidden unit switches 12 visible units between all-off and all-on, each mode half the mass:
    # F(v) = 2 s - softplus(4 s - 24) with s the units on, symmetric under flipping every unit.
    return RBMParams(torch.full((1, 12), 4.0), torch.tensor([-24.0]), torch.full((12,), -2.0))


def test_parallel_tempering_finds_both_modes_where_gibbs_sticks():
    rbm, n_chains = _two_mode_rbm(), 4000
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=12)))
    exact = torch.softmax(-rbm.free_energy(states), 0)
    p_on = float(exact[states.sum(1) > 6].sum())  # about 0.5
    tolerance = 4 * math.sqrt(p_on * (1 - p_on) / n_chains)  # chains are independent: binomial error bars
    pool = RandomPool(torch.Generator().manual_seed(0))
    state = TemperingState(torch.zeros(8, n_chains, 12))
    betas, base = torch.linspace(1, 0, 8), torch.zeros(12)  # the hottest replica: fair coins
    rates = []
    for _ in range(200):
        state, info = parallel_tempering_step(state, rbm, pool, betas, base)
        rates.append(float(info.swap_rate))
    tempered = float((state.position[0].sum(1) > 6).float().mean())
    assert abs(tempered - p_on) < tolerance
    assert 0.05 < np.mean(rates) < 1
    stuck, _ = run_chain(SAMPLERS["gibbs"], rbm, torch.zeros(n_chains, 12), 200, pool)
    assert float((stuck.sum(1) > 6).float().mean()) < p_on - 10 * tolerance


def test_parallel_tempering_keeps_the_exact_distribution_of_a_small_rbm():
    g = torch.Generator().manual_seed(3)
    rbm = RBMParams(torch.randn(3, 4, generator=g), torch.randn(3, generator=g), torch.randn(4, generator=g))
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    exact = torch.softmax(-rbm.free_energy(states), 0).double()
    n = 20000
    state = TemperingState(torch.zeros(4, n, 4))
    pool = RandomPool(torch.Generator().manual_seed(1))
    for _ in range(100):
        state, _ = parallel_tempering_step(state, rbm, pool, torch.linspace(1, 0, 4), torch.zeros(4))
    codes = (state.position[0] * 2 ** torch.arange(3, -1, -1)).sum(1).long()
    empirical = torch.bincount(codes, minlength=16).double() / n
    # As for Gibbs: E[TV] <= 1/2 sum sqrt(p (1 - p) / n), plus McDiarmid's sqrt(log(1/delta) / 2n) at 1e-4.
    tolerance = 0.5 * float(torch.sqrt(exact * (1 - exact) / n).sum()) + math.sqrt(math.log(1e4) / (2 * n))
    assert 0.5 * float((empirical - exact).abs().sum()) < tolerance
