"""Parallel tempering of a restricted Boltzmann machine (Desjardins et al., AISTATS 2010).

Replicas of the chains run at inverse temperatures ``1 = beta_0 > ... >
beta_{K-1} >= 0`` on the path of :meth:`~skebm.energies.RBMParams.tempered`,
from the RBM (``beta=1``) to independent visible units at the data's base
rates (``beta=0``), which mix at once. Each step moves every replica by one
block Gibbs step at its temperature, then proposes to swap the states of
neighbouring replicas, accepted with the Metropolis ratio of the two
tempered densities. Each move leaves the product of the tempered
distributions invariant, so the ``beta=1`` replica samples the RBM, and
states cross between modes through the hot replicas, where persistent chains
at ``beta=1`` alone stay stuck.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .gibbs import bernoulli, draw_visible

__all__ = ["TemperingInfo", "TemperingState", "parallel_tempering_step"]


class TemperingState(NamedTuple):
    """Visible units of every replica: ``position[k]`` holds the chains at ``betas[k]``."""

    position: torch.Tensor  # (n_temperatures, n_chains, n_visible)


class TemperingInfo(NamedTuple):
    """The fraction of the proposed swaps between neighbouring replicas that were accepted."""

    swap_rate: torch.Tensor


def parallel_tempering_step(state, rbm, pool, betas, base_visible_bias):
    """One Gibbs step of each replica at its temperature, then swaps between neighbours.

    Swaps are proposed between replicas ``(k, k + 1)`` for every even ``k``
    or every odd ``k``, chosen at random; chain ``i`` of one replica swaps
    with chain ``i`` of the other.

    Parameters
    ----------
    state : TemperingState
    rbm : skebm.energies.RBMParams
    pool : skebm.samplers.RandomPool
    betas : torch.Tensor of shape (n_temperatures,)
        Inverse temperatures, decreasing from 1.
    base_visible_bias : torch.Tensor of shape (n_visible,)
        Visible biases of the ``beta=0`` model.

    Returns
    -------
    state : TemperingState
    info : TemperingInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.samplers import RandomPool, TemperingState, parallel_tempering_step
    >>> rbm = RBMParams(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2))
    >>> pool = RandomPool(torch.Generator().manual_seed(0))
    >>> state = TemperingState(torch.zeros(4, 5, 2))
    >>> state, info = parallel_tempering_step(state, rbm, pool, torch.linspace(1, 0, 4), torch.zeros(2))
    >>> state.position.shape, float(info.swap_rate)  # equal densities: every swap is accepted
    (torch.Size([4, 5, 2]), 1.0)
    """
    visible_bias = _tempered_visible_bias(rbm, betas, base_visible_bias)  # (K, 1, n_visible), for both moves
    v = _tempered_gibbs_step(state.position, rbm, pool, betas, visible_bias)
    v, swap_rate = _swap_neighbours(v, rbm, pool, betas, visible_bias)
    return TemperingState(v), TemperingInfo(swap_rate)


def _tempered_visible_bias(rbm, betas, base_visible_bias):
    beta = betas.view(-1, 1, 1)
    return (1 - beta) * base_visible_bias + beta * rbm.visible_bias  # (K, 1, n_visible)


def _tempered_gibbs_step(v, rbm, pool, betas, visible_bias):
    """``v -> h -> v'`` for all replicas in two products: the tempered RBM scales W and c by beta."""
    n_temperatures, n_chains, n_visible = v.shape
    beta = betas.view(-1, 1, 1)
    hidden_probability = (beta * (v @ rbm.weight.T + rbm.hidden_bias)).sigmoid_()
    h = bernoulli(hidden_probability.view(n_temperatures * n_chains, -1), pool).view(hidden_probability.shape)
    pre = beta * (h @ rbm.weight) + visible_bias
    flat = pre.view(n_temperatures * n_chains, n_visible)
    return draw_visible(rbm, flat, pool).view(v.shape)


def _log_f(v, logits, rbm, betas, visible_bias):
    """``-F_beta(v)`` of each replica's states at the temperatures ``betas``, from ``logits = W v + c``."""
    return -rbm.units.energy(v, visible_bias) + F.softplus(betas.view(-1, 1, 1) * logits).sum(-1)


def _swap_neighbours(v, rbm, pool, betas, visible_bias):
    n_temperatures = v.shape[0]
    parity = int(pool.uniform(1, 1)[0, 0] < 0.5)
    low = torch.arange(parity, n_temperatures - 1, 2, device=v.device)
    if len(low) == 0:
        return v, torch.zeros((), device=v.device)
    high = low + 1
    logits = v @ rbm.weight.T + rbm.hidden_bias
    v_low, v_high, logits_low, logits_high = v[low], v[high], logits[low], logits[high]
    bias_low, bias_high, beta_low, beta_high = visible_bias[low], visible_bias[high], betas[low], betas[high]
    stay = _log_f(v_low, logits_low, rbm, beta_low, bias_low) + _log_f(v_high, logits_high, rbm, beta_high, bias_high)
    swap = _log_f(v_high, logits_high, rbm, beta_low, bias_low) + _log_f(v_low, logits_low, rbm, beta_high, bias_high)
    accept = torch.log(pool.uniform(*stay.shape)) < swap - stay  # (pairs, n_chains)
    mask = accept.unsqueeze(-1)
    v = v.clone()
    v[low] = torch.where(mask, v_high, v_low)
    v[high] = torch.where(mask, v_low, v_high)
    return v, accept.float().mean()
