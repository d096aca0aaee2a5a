"""MCMC kernels that advance many chains at once, and the replay buffer.

A kernel is a pure step ``(state, energy, generator, **params) -> (state, info)``
over a :class:`ChainState` (positions with cached energies and gradients);
``info`` carries diagnostics such as the acceptance rate. Kernels know nothing
of the estimators: the estimators pick one by name with ``sampler=`` and run
it with :func:`run_chain`. Restricted Boltzmann machines have their own
sampler, block Gibbs (:func:`gibbs_step`, :func:`run_gibbs`).
"""

import inspect
from functools import partial

from ._state import ChainState, energy_and_grad, frozen_parameters, init_state, with_gradient
from .gibbs import RandomPool, bernoulli, gibbs_step, run_gibbs, sample_hidden, sample_visible
from .hmc import hmc_step
from .langevin import langevin_step
from .mala import mala_step
from .metropolis import metropolis_step, uniform_jump_step
from .replay_buffer import ReplayBuffer

__all__ = [
    "SAMPLERS",
    "ChainState",
    "RandomPool",
    "ReplayBuffer",
    "advance_chain",
    "bernoulli",
    "energy_and_grad",
    "frozen_parameters",
    "gibbs_step",
    "hmc_step",
    "init_state",
    "langevin_step",
    "make_kernel",
    "mala_step",
    "metropolis_step",
    "run_chain",
    "run_gibbs",
    "sample_hidden",
    "sample_visible",
    "uniform_jump_step",
    "with_gradient",
]

SAMPLERS = {
    "langevin": langevin_step,
    "mala": mala_step,
    "metropolis": metropolis_step,
    "hmc": hmc_step,
}


def make_kernel(name, step_size, noise_scale=None, grad_clip=None, n_leapfrog=5, bounds=None):
    """The kernel called ``name`` in ``SAMPLERS``, with its parameters bound.

    Each kernel takes the parameters its signature names and no others:
    ``noise_scale`` and ``grad_clip`` reach Langevin only, ``n_leapfrog`` HMC
    only, so a new kernel needs an entry in ``SAMPLERS`` and nothing here.

    Examples
    --------
    >>> from skebm.samplers import make_kernel
    >>> kernel = make_kernel("mala", step_size=0.05)
    >>> kernel.keywords
    {'step_size': 0.05, 'bounds': None}
    """
    kernel = SAMPLERS[name]
    offered = {
        "step_size": step_size,
        "noise_scale": noise_scale,
        "grad_clip": grad_clip,
        "n_leapfrog": n_leapfrog,
        "bounds": bounds,
    }
    accepted = inspect.signature(kernel).parameters
    return partial(kernel, **{key: value for key, value in offered.items() if key in accepted})


def run_chain(kernel, energy, x, n_steps, generator, callback=None):
    """Run ``n_steps`` of ``kernel`` on chains started at ``x``.

    Parameter gradients of ``energy`` are switched off for the run.

    Parameters
    ----------
    kernel : callable
        A kernel with its parameters bound, as :func:`make_kernel` returns.
    energy : callable or torch.nn.Module
    x : torch.Tensor of shape (n_chains, n_features) or ChainState
        Starting positions, or a state whose energies and gradients are known
        (from :func:`advance_chain`), which saves evaluating them again.
    n_steps : int
    generator : torch.Generator
    callback : callable, default=None
        Called as ``callback(step, state)`` after each step (for snapshots).

    Returns
    -------
    positions : torch.Tensor of shape (n_chains, n_features)
    acceptance_rate : float or None
        Mean acceptance rate over the run, None for Langevin.

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
    """:func:`run_chain` returning the final :class:`ChainState`, to hand on to another kernel.

    A state from :func:`metropolis_step` carries no gradient; a gradient
    kernel handed it computes one first.

    Examples
    --------
    >>> import torch
    >>> from functools import partial
    >>> from skebm.samplers import advance_chain, make_kernel, run_chain, uniform_jump_step
    >>> energy = lambda x: 0.5 * (x**2).sum(-1)
    >>> gen = torch.Generator().manual_seed(0)
    >>> jump = partial(uniform_jump_step, bounds=(torch.full((2,), -3.0), torch.full((2,), 3.0)))
    >>> state, rate = advance_chain(jump, energy, torch.zeros(100, 2), 5, gen)
    >>> x, rate = run_chain(make_kernel("mala", 0.5), energy, state, 5, gen)
    >>> x.shape
    torch.Size([100, 2])
    """
    total_rate, n_rates = 0.0, 0
    with frozen_parameters(energy):
        state = x if isinstance(x, ChainState) else init_state(energy, x)
        for step in range(n_steps):
            state, info = kernel(state, energy, generator)
            if "acceptance_rate" in info:  # a tensor, summed on the device and read once
                total_rate, n_rates = total_rate + info["acceptance_rate"], n_rates + 1
            if callback is not None:
                callback(step, state)
    return state, (float(total_rate) / n_rates if n_rates else None)
