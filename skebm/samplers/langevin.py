"""Unadjusted Langevin dynamics, in the textbook form and the chapter-7 form."""

import math
from typing import NamedTuple

import torch

from ._state import ChainState, energy_and_grad, with_gradient


class LangevinInfo(NamedTuple):
    """What a Langevin step reports: nothing, as it has no acceptance step."""


def langevin_step(state, energy, generator, step_size, noise_scale=None, grad_clip=None, bounds=None):
    """One unadjusted Langevin step for every chain.

    ``x' = clamp(x - step_size * clip(grad E(x)) + noise_scale * z)`` with
    ``z ~ N(0, I)``.

    With the defaults (``noise_scale = sqrt(2 * step_size)``, no clipping) this
    is the textbook discretization of the Langevin diffusion, whose stationary
    law approaches ``exp(-E)`` as the step size shrinks. The chapter-7 form of
    "Generative Deep Learning" decouples the two: a large step size with a
    tiny ``noise_scale``, the gradient clipped to ``+-grad_clip`` and the
    chains clamped to the data range ``bounds``.

    Parameters
    ----------
    state : ChainState
        Current positions with cached energies and gradients.
    energy : callable
        The energy; see :func:`energy_and_grad`.
    generator : torch.Generator
        Source of the noise.
    step_size : float
        Gradient step.
    noise_scale : float, default=None
        Standard deviation of the added noise; ``sqrt(2 * step_size)`` when None.
    grad_clip : float, default=None
        Clip each gradient coordinate to ``[-grad_clip, grad_clip]``.
    bounds : tuple of torch.Tensor, default=None
        ``(low, high)``; positions are clamped into this box.

    Returns
    -------
    state : ChainState
    info : LangevinInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_state, langevin_step
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> state = init_state(energy, torch.zeros(100, 2))
    >>> state, info = langevin_step(state, energy, gen, step_size=0.01)
    >>> state.position.shape
    torch.Size([100, 2])
    """
    if noise_scale is None:
        noise_scale = math.sqrt(2.0 * step_size)
    state = with_gradient(state, energy)
    grad = state.grad if grad_clip is None else state.grad.clamp(-grad_clip, grad_clip)
    noise = torch.randn(state.position.shape, generator=generator, device=state.position.device)
    x = torch.add(state.position, grad, alpha=-step_size).add_(noise, alpha=noise_scale)
    if bounds is not None:
        x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
    return ChainState(x, *energy_and_grad(energy, x)), LangevinInfo()
