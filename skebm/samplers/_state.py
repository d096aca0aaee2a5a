"""What the kernels for continuous energies share: their states and the energy-and-gradient call."""

import math
from contextlib import contextmanager
from typing import NamedTuple

import torch


class ChainState(NamedTuple):
    """The state of the gradient kernels: positions of many chains with their energies and energy gradients.

    Caching the energy and gradient at the current position means each kernel
    evaluates the network once per step (at the proposal), never twice.
    """

    position: torch.Tensor
    energy: torch.Tensor
    grad: torch.Tensor


class EnergyState(NamedTuple):
    """The state of random-walk Metropolis: positions with their energies and no gradient.

    A kernel that needs no gradient keeps none, rather than a stale one; a
    gradient kernel handed this state computes the gradient first
    (:func:`with_gradient`).
    """

    position: torch.Tensor
    energy: torch.Tensor


def energy_and_grad(energy, x):
    """Energies of ``x`` and their gradient with respect to ``x``.

    Uses ``energy.energy_and_grad`` when the energy provides one (a hand-written
    backward pass, as :class:`skebm.energies.MLPEnergy` has), and autograd
    otherwise. Only the input gradient is computed, never parameter gradients.

    Parameters
    ----------
    energy : callable
        Maps a tensor of shape ``(n, d)`` to energies of shape ``(n,)``.
    x : torch.Tensor of shape (n, d)
        Positions.

    Returns
    -------
    energies : torch.Tensor of shape (n,)
    grad : torch.Tensor of shape (n, d)

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import energy_and_grad
    >>> e, g = energy_and_grad(lambda x: 0.5 * (x**2).sum(-1), torch.ones(2, 3))
    >>> g.tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    fast = getattr(energy, "energy_and_grad", None)
    if fast is not None:
        return fast(x)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        energies = energy(x)
        (grad,) = torch.autograd.grad(energies.sum(), x)
    return energies.detach(), grad


def with_gradient(state, energy):
    """``state`` as a :class:`ChainState`, its energy gradient computed only when it has none.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import EnergyState, with_gradient
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> x = torch.ones(2, 3)
    >>> with_gradient(EnergyState(x, energy(x)), energy).grad.tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if isinstance(state, ChainState):
        return state
    return ChainState(state.position, *energy_and_grad(energy, state.position))


def init_state(energy, x):
    """Start chains at ``x``: evaluate and cache the energy and its gradient.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_state
    >>> state = init_state(lambda x: (x**2).sum(-1), torch.zeros(4, 2))
    >>> state.energy.shape
    torch.Size([4])
    """
    return ChainState(x, *energy_and_grad(energy, x))


@contextmanager
def frozen_parameters(module):
    """Switch off ``requires_grad`` on a module's parameters for the block.

    Sampling needs input gradients only; frozen parameters stop autograd from
    keeping the activations a parameter gradient would need.
    """
    params = [p for p in module.parameters() if p.requires_grad] if isinstance(module, torch.nn.Module) else []
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def inside(x, bounds):
    """Boolean mask of the rows of ``x`` lying within ``bounds = (low, high)``."""
    if bounds is None:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    low, high = bounds
    return ((x >= low) & (x <= high)).all(-1)


def metropolis_select(state, proposal, log_accept, generator):
    """Accept each chain's proposal with probability ``min(1, exp(log_accept))``.

    ``state`` and ``proposal`` are states of one type; every field is chosen
    row by row. Returns the new state, the mean acceptance probability (a 0-d
    tensor: reading it as a number would wait for the device at every step, so
    chains add it up and read it once) and which chains moved.
    """
    log_accept = torch.nan_to_num(log_accept, nan=-math.inf)  # an overflowing proposal is rejected
    log_u = torch.log(torch.rand(log_accept.shape, generator=generator, device=log_accept.device))
    accept = log_u < log_accept
    chosen = (
        torch.where(accept.view(-1, *(1,) * (new.dim() - 1)), new, old)
        for new, old in zip(proposal, state, strict=True)
    )
    rate = torch.exp(torch.clamp(log_accept, max=0.0)).mean()
    return type(state)(*chosen), rate, accept
