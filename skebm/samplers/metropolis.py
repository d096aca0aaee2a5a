"""Random-walk Metropolis-Hastings, and independence jumps across the box."""

import math
from typing import NamedTuple

import torch

from ._state import EnergyState, inside, metropolis_select


class MetropolisInfo(NamedTuple):
    """What a Metropolis-Hastings step (random walk or uniform jump) reports, as tensors.

    Attributes
    ----------
    acceptance_rate : torch.Tensor of shape ()
        Mean acceptance probability over the chains.
    is_accepted : torch.Tensor of shape (n_chains,)
        Which chains moved.
    """

    acceptance_rate: torch.Tensor
    is_accepted: torch.Tensor


def init_energy_state(energy, x):
    """Start random-walk chains at ``x``: evaluate and cache the energy only.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_energy_state
    >>> init_energy_state(lambda x: (x**2).sum(-1), torch.ones(4, 2)).energy.tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    with torch.no_grad():
        return EnergyState(x, energy(x))


def metropolis_step(state, energy, generator, step_size, bounds=None):
    """One random-walk Metropolis-Hastings step for every chain.

    Perturb ``x' = x + step_size * z`` and accept with probability
    ``min(1, exp(E(x) - E(x')))``: the plain MCMC of the CS236 notes. Needs
    energies only, no gradients: it returns an :class:`EnergyState`, and a
    gradient kernel that continues the chain computes the gradient.

    Parameters
    ----------
    state : EnergyState or ChainState
    energy : callable
    generator : torch.Generator
    step_size : float
        Standard deviation of the Gaussian perturbation.
    bounds : tuple of torch.Tensor, default=None
        Proposals outside this box are rejected.

    Returns
    -------
    state : EnergyState
    info : MetropolisInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_energy_state, metropolis_step
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> state, info = metropolis_step(init_energy_state(energy, torch.zeros(50, 2)), energy, gen, 0.5)
    >>> 0.0 < float(info.acceptance_rate) <= 1.0
    True
    """
    state = EnergyState(state.position, state.energy)
    x = state.position
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    proposal = init_energy_state(energy, torch.add(x, noise, alpha=step_size))
    log_accept = torch.where(inside(proposal.position, bounds), state.energy - proposal.energy, -math.inf)
    state, rate, accepted = metropolis_select(state, proposal, log_accept, generator)
    return state, MetropolisInfo(rate, accepted)


def uniform_jump_step(state, energy, generator, bounds):
    """One independence Metropolis-Hastings step proposing a uniform point of the box for every chain.

    The proposal ``x'`` is drawn uniformly in ``bounds``, whatever ``x`` is,
    and accepted with probability ``min(1, exp(E(x) - E(x')))`` (the uniform
    proposal density cancels). Local kernels such as MALA almost never cross
    the low-density gap between separated modes; this move crosses it in one
    step, so the chains share their time between modes in proportion to the
    modes' masses. It leaves ``exp(-E)`` restricted to the box invariant. In
    high dimension nearly every jump is rejected, and it only costs one
    evaluation of the energy, no gradient: it returns an
    :class:`EnergyState`, and a gradient kernel that continues the chains
    computes the gradient once, after all the jumps.

    Parameters
    ----------
    state : ChainState or EnergyState
        Chains inside ``bounds``.
    energy : callable
    generator : torch.Generator
    bounds : tuple of torch.Tensor
        ``(low, high)``, the box the proposals are drawn from.

    Returns
    -------
    state : EnergyState
    info : MetropolisInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_energy_state, uniform_jump_step
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> box = (torch.full((2,), -3.0), torch.full((2,), 3.0))
    >>> state, info = uniform_jump_step(init_energy_state(energy, torch.zeros(50, 2)), energy, gen, box)
    >>> 0.0 < float(info.acceptance_rate) < 1.0
    True
    """
    state = EnergyState(state.position, state.energy)
    low, high = bounds
    x = state.position
    u = torch.rand(x.shape, generator=generator, device=x.device)
    proposal = init_energy_state(energy, low + u * (high - low))
    state, rate, accepted = metropolis_select(state, proposal, state.energy - proposal.energy, generator)
    return state, MetropolisInfo(rate, accepted)
