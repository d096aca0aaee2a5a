"""Metropolis-adjusted Langevin algorithm."""

import math
from typing import NamedTuple

import torch

from ._state import ChainState, energy_and_grad, inside, metropolis_select, with_gradient


class MALAInfo(NamedTuple):
    """What a MALA step reports, as tensors.

    Attributes
    ----------
    acceptance_rate : torch.Tensor of shape ()
        Mean Metropolis-Hastings acceptance probability over the chains.
    is_accepted : torch.Tensor of shape (n_chains,)
        Which chains moved.
    """

    acceptance_rate: torch.Tensor
    is_accepted: torch.Tensor


def _log_proposal(to, frm, grad_frm, step_size):
    """Log density (up to a constant) of the Langevin proposal from ``frm`` to ``to``."""
    diff = to - frm + step_size * grad_frm
    return -(diff * diff).sum(-1) / (4.0 * step_size)


def mala_step(state, energy, generator, step_size, bounds=None):
    """One MALA step for every chain.

    A Langevin proposal ``x' = x - step_size * grad E(x) + sqrt(2 step_size) z``
    is accepted with the Metropolis-Hastings probability, so the chains leave
    ``exp(-E)`` (restricted to ``bounds`` when given) exactly invariant, at
    any step size. Proposals outside ``bounds`` are rejected.

    Parameters
    ----------
    state : ChainState
    energy : callable
    generator : torch.Generator
    step_size : float
    bounds : tuple of torch.Tensor, default=None

    Returns
    -------
    state : ChainState
    info : MALAInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_state, mala_step
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> state, info = mala_step(init_state(energy, torch.zeros(50, 2)), energy, gen, 0.1)
    >>> 0.0 < float(info.acceptance_rate) <= 1.0
    True
    """
    state = with_gradient(state, energy)
    x = state.position
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    proposed_x = torch.add(x, state.grad, alpha=-step_size).add_(noise, alpha=math.sqrt(2.0 * step_size))
    proposal = ChainState(proposed_x, *energy_and_grad(energy, proposed_x))
    # The forward move's log density is -|noise|^2 / 2: the proposal minus its mean is sqrt(2 step_size) noise.
    forward_log_proposal = -0.5 * (noise * noise).sum(-1)
    log_accept = (
        state.energy - proposal.energy + _log_proposal(x, proposed_x, proposal.grad, step_size) - forward_log_proposal
    )
    log_accept = torch.where(inside(proposed_x, bounds), log_accept, -math.inf)
    state, rate, accepted = metropolis_select(state, proposal, log_accept, generator)
    return state, MALAInfo(rate, accepted)
