"""Annealed Langevin dynamics through the noise levels of a noise-conditional energy."""

import torch

from ._state import init_state
from .mala import mala_step

# Step of each level as a fraction of its variance sigma^2, the scale of that level's smoothed
# density. The Metropolis correction keeps each level's density exactly invariant at any step, so
# the step is set for mixing: on two modes holding 1/4 and 3/4 of the mass, 20 levels of 20 steps
# put 0.745 on the larger at 0.5 (0.742 at 0.2, 0.741 at 1.0); unadjusted steps of 0.05 sigma^2, 0.713.
LEVEL_STEP_FRACTION = 0.5


def annealed_langevin(energy, start, levels, steps_per_level, generator, callback=None):
    """MALA chains run at each noise level in turn, from the largest to the smallest (Song & Ermon, 2019).

    At a large level the smoothed density is nearly Gaussian and the chains
    mix between modes; each smaller level starts from where the last one
    left the chains, so they arrive at the small levels spread over the
    modes in proportion to their mass, which a chain at the smallest level
    alone, stuck in the mode it started near, would not find. Each level's
    step is ``LEVEL_STEP_FRACTION * sigma^2``: the scale of that level's
    smoothed density.

    Parameters
    ----------
    energy : callable
        Maps ``(x, sigma)``, shapes ``(n, d)`` and ``(n,)``, to energies ``(n,)``.
    start : torch.Tensor of shape (n, d)
        Starting positions, ideally draws from the density at the largest level.
    levels : sequence of float
        Noise levels, largest first.
    steps_per_level : int
    generator : torch.Generator
    callback : callable, default=None
        Called as ``callback(step, positions)`` after every step.

    Returns
    -------
    positions : torch.Tensor of shape (n, d)

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skebm.energies import ConvolvedGaussianMixture
    >>> from skebm.samplers import annealed_langevin
    >>> # modes at -2 and +2 holding a quarter and three quarters of the mass, every chain started at 0
    >>> energy = ConvolvedGaussianMixture([[-2.0], [2.0]], [[[0.01]], [[0.01]]], [0.25, 0.75])
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = annealed_langevin(energy, torch.zeros(4000, 1), np.geomspace(5.0, 0.1, 20), 20, gen)
    >>> abs(float((x > 0).double().mean()) - 0.75) < 0.03   # 4 binomial standard errors
    True
    """
    x, step = start, 0
    for sigma in levels:
        sigmas = torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)

        def at_level(y, sigmas=sigmas):
            return energy(y, sigmas[: y.shape[0]])

        state = init_state(at_level, x)
        for _ in range(steps_per_level):
            state, _ = mala_step(state, at_level, generator, LEVEL_STEP_FRACTION * float(sigma) ** 2)
            if callback is not None:
                callback(step, state.position)
            step += 1
        x = state.position
    return x
