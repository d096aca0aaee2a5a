"""Gibbs sweeps of a Boltzmann machine with visible-visible couplings.

The hidden units are independent given the visible ones and are drawn in one
block; the visible units are coupled to each other, so they are drawn one at a
time, each from its conditional given the hidden units and the other visible
units as they stand. One sweep leaves the machine's distribution invariant.
"""

import torch

from .gibbs import bernoulli

__all__ = ["boltzmann_sweep"]


def boltzmann_sweep(v, bm, pool):
    """One Gibbs sweep ``v -> h -> v'`` of many chains, the visible units in turn.

    Parameters
    ----------
    v : torch.Tensor of shape (n_chains, n_visible)
    bm : skebm.energies.BoltzmannParams
    pool : skebm.samplers.RandomPool

    Returns
    -------
    v : torch.Tensor of shape (n_chains, n_visible)
        A new tensor; the input is left as it was.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import BoltzmannParams
    >>> from skebm.samplers import RandomPool, boltzmann_sweep
    >>> bm = BoltzmannParams(torch.zeros(1, 2), torch.zeros(1), torch.full((2,), 50.0), torch.zeros(2, 2))
    >>> (boltzmann_sweep(torch.zeros(3, 2), bm, RandomPool(torch.Generator().manual_seed(0))) + 0.0).tolist()
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    h = bernoulli(bm.hidden_probability(v), pool)
    v = v.clone()
    field = torch.addmm(bm.visible_bias, h, bm.weight)  # b + W^T h, without the couplings
    uniform = pool.uniform(*v.shape)
    for unit in range(v.shape[1]):
        # The couplings' diagonal is zero, so the unit's own current value does not enter.
        logit = field[:, unit] + v @ bm.coupling[:, unit]
        v[:, unit] = (uniform[:, unit] < torch.sigmoid(logit)).to(v.dtype)
    return v
