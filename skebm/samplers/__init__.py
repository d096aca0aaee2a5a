"""MCMC kernels that advance many chains at once, and the replay buffer.

A kernel is a pure step ``(state, energy, generator, **params) -> (state,
info)``. Each kernel has its own state type (:class:`ChainState` caches
energies and gradients, :class:`EnergyState` energies only,
:class:`GibbsState` an RBM's visible units) and its own info type
(:class:`MALAInfo`, :class:`HMCInfo`, ...), whose diagnostics stay tensors on
the device until a chain ends. ``SAMPLERS`` is the one registry: each name
maps to a :class:`SamplingAlgorithm`, the step with the function that starts
chains for it. :func:`make_kernel` binds a step's parameters and
:func:`run_chain` runs any kernel, block Gibbs for restricted Boltzmann
machines included (its random numbers come from a :class:`RandomPool`).
Kernels know nothing of the estimators: the neural estimators pick one by
name with ``sampler=``.
"""

import inspect
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch

from ._state import ChainState, EnergyState, energy_and_grad, frozen_parameters, init_state, with_gradient
from .annealed import annealed_langevin
from .boltzmann import boltzmann_sweep
from .gibbs import (
    GibbsInfo,
    GibbsState,
    RandomPool,
    bernoulli,
    draw_visible,
    gibbs_step,
    init_gibbs_state,
    sample_hidden,
    sample_visible,
)
from .hmc import HMCInfo, hmc_step
from .langevin import LangevinInfo, langevin_step
from .mala import MALAInfo, mala_step
from .metropolis import MetropolisInfo, init_energy_state, metropolis_step, uniform_jump_step
from .replay_buffer import ReplayBuffer
from .tempering import TemperingInfo, TemperingState, parallel_tempering_step

__all__ = [
    "ENERGY_SAMPLERS",
    "SAMPLERS",
    "ChainState",
    "EnergyState",
    "GibbsInfo",
    "GibbsState",
    "HMCInfo",
    "LangevinInfo",
    "MALAInfo",
    "MetropolisInfo",
    "RandomPool",
    "ReplayBuffer",
    "SamplingAlgorithm",
    "TemperingInfo",
    "TemperingState",
    "advance_chain",
    "annealed_langevin",
    "bernoulli",
    "boltzmann_sweep",
    "draw_visible",
    "energy_and_grad",
    "frozen_parameters",
    "gibbs_step",
    "hmc_step",
    "init_energy_state",
    "init_gibbs_state",
    "init_state",
    "langevin_step",
    "make_kernel",
    "mala_step",
    "metropolis_step",
    "parallel_tempering_step",
    "run_chain",
    "sample_hidden",
    "sample_visible",
    "uniform_jump_step",
    "with_gradient",
]


class SamplingAlgorithm(NamedTuple):
    """A kernel: its step, and the function that starts chains in the step's state type.

    Calling it runs the step, so a bound kernel is used as ``kernel(state,
    energy, generator)``.

    Attributes
    ----------
    init : callable
        ``init(energy, positions) -> state``.
    step : callable
        ``step(state, energy, generator, **params) -> (state, info)``.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import SAMPLERS
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> mala = SAMPLERS["mala"]
    >>> state = mala.init(energy, torch.zeros(10, 2))
    >>> state, info = mala.step(state, energy, torch.Generator().manual_seed(0), step_size=0.1)
    >>> type(info).__name__
    'MALAInfo'
    """

    init: Callable
    step: Callable

    def __call__(self, state, energy, generator):
        return self.step(state, energy, generator)


SAMPLERS = {
    "langevin": SamplingAlgorithm(init_state, langevin_step),
    "mala": SamplingAlgorithm(init_state, mala_step),
    "metropolis": SamplingAlgorithm(init_energy_state, metropolis_step),
    "hmc": SamplingAlgorithm(init_state, hmc_step),
    "uniform_jump": SamplingAlgorithm(init_energy_state, uniform_jump_step),
    "gibbs": SamplingAlgorithm(init_gibbs_state, gibbs_step),
}

# The kernels for a continuous energy: what the neural estimators' ``sampler`` accepts.
ENERGY_SAMPLERS = frozenset(SAMPLERS) - {"gibbs"}


def make_kernel(name, step_size=None, noise_scale=None, grad_clip=None, n_leapfrog=5, bounds=None):
    """The kernel called ``name`` in ``SAMPLERS``, with its parameters bound.

    Each step takes the parameters its signature names and no others:
    ``noise_scale`` and ``grad_clip`` reach Langevin only, ``n_leapfrog`` HMC
    only, so a new kernel needs an entry in ``SAMPLERS`` and nothing here.

    Examples
    --------
    >>> from skebm.samplers import make_kernel
    >>> kernel = make_kernel("mala", step_size=0.05)
    >>> kernel.step.keywords
    {'step_size': 0.05, 'bounds': None}
    """
    algorithm = SAMPLERS[name]
    offered = {
        "step_size": step_size,
        "noise_scale": noise_scale,
        "grad_clip": grad_clip,
        "n_leapfrog": n_leapfrog,
        "bounds": bounds,
    }
    accepted = inspect.signature(algorithm.step).parameters
    if "step_size" in accepted and step_size is None:
        raise ValueError(f"The {name!r} kernel needs a step_size.")
    bound = {key: value for key, value in offered.items() if key in accepted}
    return algorithm._replace(step=partial(algorithm.step, **bound))


def run_chain(kernel, energy, x, n_steps, generator, callback=None):
    """Run ``n_steps`` of ``kernel`` on chains started at ``x``.

    Parameter gradients of ``energy`` are switched off for the run.

    Parameters
    ----------
    kernel : SamplingAlgorithm or callable
        A kernel with its parameters bound, as :func:`make_kernel` returns; a
        bare step function starts its chains with :func:`init_state`.
    energy : callable or torch.nn.Module
        The energy (an :class:`~skebm.energies.RBMParams` for Gibbs).
    x : torch.Tensor of shape (n_chains, n_features) or a state
        Starting positions, or a state whose energies and gradients are known
        (from :func:`advance_chain`), which saves evaluating them again.
    n_steps : int
    generator : torch.Generator or RandomPool
        What the kernel draws its random numbers from (a pool for Gibbs).
    callback : callable, default=None
        Called as ``callback(step, state)`` after each step (for snapshots).

    Returns
    -------
    positions : torch.Tensor of shape (n_chains, n_features)
    acceptance_rate : float or None
        Mean acceptance rate over the run, None for kernels without an
        acceptance step (Langevin, Gibbs).

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import make_kernel, run_chain
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> x, rate = run_chain(make_kernel("mala", 0.5), energy, torch.zeros(500, 2), 50, gen)
    >>> bool(abs(x.var(0).mean() - 1.0) < 0.2)
    True
    """
    state, rate = advance_chain(kernel, energy, x, n_steps, generator, callback)
    return state.position, rate


def advance_chain(kernel, energy, x, n_steps, generator, callback=None):
    """:func:`run_chain` returning the final state, to hand on to another kernel.

    A state from :func:`metropolis_step` carries no gradient; a gradient
    kernel handed it computes one first.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import advance_chain, make_kernel, run_chain
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> jump = make_kernel("uniform_jump", bounds=(torch.full((2,), -3.0), torch.full((2,), 3.0)))
    >>> state, rate = advance_chain(jump, energy, torch.zeros(100, 2), 5, gen)
    >>> x, rate = run_chain(make_kernel("mala", 0.5), energy, state, 5, gen)
    >>> x.shape
    torch.Size([100, 2])
    """
    total_rate, n_rates = 0.0, 0
    with frozen_parameters(energy):
        state = getattr(kernel, "init", init_state)(energy, x) if isinstance(x, torch.Tensor) else x
        for step in range(n_steps):
            state, info = kernel(state, energy, generator)
            rate = getattr(info, "acceptance_rate", None)
            if rate is not None:  # a tensor, summed on the device and read once
                total_rate, n_rates = total_rate + rate, n_rates + 1
            if callback is not None:
                callback(step, state)
    return state, (float(total_rate) / n_rates if n_rates else None)
