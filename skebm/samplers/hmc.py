"""Hamiltonian Monte Carlo: leapfrog integration and a Metropolis correction."""

import math
from typing import NamedTuple

import torch

from ._state import ChainState, energy_and_grad, inside, metropolis_select, with_gradient


class HMCInfo(NamedTuple):
    """What an HMC step reports, as tensors.

    Attributes
    ----------
    acceptance_rate : torch.Tensor of shape ()
        Mean Metropolis-Hastings acceptance probability over the chains.
    is_accepted : torch.Tensor of shape (n_chains,)
        Which chains moved.
    energy_change : torch.Tensor of shape (n_chains,)
        ``H_new - H_old`` along each trajectory: the leapfrog integrator's
        error, which grows with the step size (large values mean the step size
        is too large for the energy's curvature).
    """

    acceptance_rate: torch.Tensor
    is_accepted: torch.Tensor
    energy_change: torch.Tensor


def _leapfrog(state, momentum, energy, step_size, n_leapfrog):
    x, grad = state.position, state.grad
    momentum = momentum - 0.5 * step_size * grad
    for i in range(n_leapfrog):
        x = x + step_size * momentum
        energies, grad = energy_and_grad(energy, x)
        if i < n_leapfrog - 1:
            momentum = momentum - step_size * grad
    momentum = momentum - 0.5 * step_size * grad
    return ChainState(x, energies, grad), momentum


def hmc_step(state, energy, generator, step_size, n_leapfrog=5, bounds=None):
    """One HMC step for every chain.

    Draw a unit Gaussian momentum, follow ``n_leapfrog`` leapfrog steps of the
    Hamiltonian ``H = E(x) + |p|^2 / 2`` and accept with probability
    ``min(1, exp(H_old - H_new))``. Trajectories ending outside ``bounds`` are
    rejected.

    Parameters
    ----------
    state : ChainState
    energy : callable
    generator : torch.Generator
    step_size : float
        Leapfrog step.
    n_leapfrog : int, default=5
        Leapfrog steps per proposal.
    bounds : tuple of torch.Tensor, default=None

    Returns
    -------
    state : ChainState
    info : HMCInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import hmc_step, init_state
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> state, info = hmc_step(init_state(energy, torch.zeros(50, 2)), energy, gen, 0.2)
    >>> 0.0 < float(info.acceptance_rate) <= 1.0
    True
    """
    state = with_gradient(state, energy)
    x = state.position
    momentum = torch.randn(x.shape, generator=generator, device=x.device)
    proposal, new_momentum = _leapfrog(state, momentum, energy, step_size, n_leapfrog)
    h_old = state.energy + 0.5 * (momentum * momentum).sum(-1)
    h_new = proposal.energy + 0.5 * (new_momentum * new_momentum).sum(-1)
    log_accept = torch.where(inside(proposal.position, bounds), h_old - h_new, -math.inf)
    state, rate, accepted = metropolis_select(state, proposal, log_accept, generator)
    return state, HMCInfo(rate, accepted, h_new - h_old)
