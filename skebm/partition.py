"""The log partition function ``log Z = log integral exp(-E(x)) dx``.

Two estimators of it:

- :func:`grid_log_partition`: quadrature on a regular grid, exact up to the
  grid's resolution, for one or two features;
- :func:`ais_log_partition`: annealed importance sampling (Neal, 2001) from a
  Gaussian fitted to the data to ``exp(-E)``, through tempered distributions
  moved by MALA, for any number of features.
"""

import itertools
import math

import numpy as np
import torch

from .samplers import mala_step
from .samplers._state import ChainState

__all__ = ["ais_log_partition", "grid_log_partition"]


def grid_log_partition(energy, low, high, n_points=None):
    """``log Z`` by the midpoint rule on a regular grid over the box ``[low, high]``.

    Parameters
    ----------
    energy : callable
        Maps a float64 tensor of shape ``(n, d)``, d in {1, 2}, to energies ``(n,)``.
    low, high : array-like of shape (d,)
        The box; it must hold essentially all of the mass of ``exp(-E)``.
    n_points : int, default=None
        Grid points per axis (4096 in 1-D, 400 in 2-D when None).

    Returns
    -------
    log_z : float

    Examples
    --------
    >>> import math
    >>> from skebm.partition import grid_log_partition
    >>> log_z = grid_log_partition(lambda x: 0.5 * (x**2).sum(-1), [-8, -8], [8, 8])
    >>> abs(log_z - math.log(2 * math.pi)) < 1e-6
    True
    """
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    d = low.shape[0]
    if d not in (1, 2):
        raise ValueError(f"Grid quadrature needs 1 or 2 features; got {d}.")
    n_points = n_points or (4096 if d == 1 else 400)
    width = (high - low) / n_points
    axes = [torch.as_tensor(lo + w * (np.arange(n_points) + 0.5)) for lo, w in zip(low, width)]
    grid = torch.cartesian_prod(*axes).reshape(-1, d)
    with torch.no_grad():
        energies = energy(grid).double()
    return float(torch.logsumexp(-energies, 0)) + float(np.sum(np.log(width)))


class _Tempered:
    """``(1 - beta) * (-log q) + beta * E``: the energy between the base q and the target."""

    def __init__(self, energy, base, beta):
        self.energy, self.base, self.beta = energy, base, beta

    def parts(self, x):
        from .samplers import energy_and_grad

        target, target_grad = energy_and_grad(self.energy, x)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            base = -self.base.log_prob(x)
            (base_grad,) = torch.autograd.grad(base.sum(), x)
        return target, target_grad, base.detach(), base_grad

    def energy_and_grad(self, x):
        target, target_grad, base, base_grad = self.parts(x)
        b = self.beta
        return (1 - b) * base + b * target, (1 - b) * base_grad + b * target_grad

    def __call__(self, x):
        return self.energy_and_grad(x)[0]


def _fit_gaussian(X, device):
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    mean = X.mean(0)
    cov = torch.cov(X.T).reshape(X.shape[1], X.shape[1])
    # Widen a little so the base covers the target's tails and constant features.
    jitter = 0.05 * torch.diagonal(cov).mean().clamp_min(1e-6)
    cov = 1.1 * cov + jitter * torch.eye(X.shape[1], device=device)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def ais_log_partition(energy, X, n_steps=1000, n_chains=256, generator=None, device="cpu"):
    """``log Z`` by annealed importance sampling from a Gaussian fitted to ``X``.

    Chains start from the base Gaussian q and pass through ``n_steps``
    distributions ``q^(1 - beta) exp(-beta E)`` with ``beta`` rising on a
    geometric schedule, each followed by one MALA step whose step size adapts
    towards an acceptance rate of about 0.6. The importance weights give an
    unbiased estimate of Z; its log is returned with a delta-method standard
    error.

    Parameters
    ----------
    energy : callable
        Maps ``(n, d)`` float32 tensors to energies.
    X : array-like of shape (n_samples, d)
        Data the base Gaussian is fitted to.
    n_steps : int, default=1000
        Intermediate distributions: the budget. Cost is ``n_steps * n_chains``
        energy-gradient evaluations.
    n_chains : int, default=256
        Independent AIS runs.
    generator : torch.Generator, default=None
    device : str or torch.device, default="cpu"

    Returns
    -------
    log_z : float
    log_z_std : float
        Standard error of ``log_z``.

    Examples
    --------
    >>> import math, numpy as np
    >>> from skebm.partition import ais_log_partition
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> log_z, std = ais_log_partition(lambda x: 0.5 * (x**2).sum(-1), X, n_steps=100)
    >>> abs(log_z - 1.5 * math.log(2 * math.pi)) < 0.05
    True
    """
    generator = generator if generator is not None else torch.Generator(device=device).manual_seed(0)
    base = _fit_gaussian(X, device)
    x = base.mean + torch.randn(n_chains, base.mean.shape[0], generator=generator, device=device) @ base.scale_tril.T
    betas = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, n_steps)])
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=device)
    step_size = 0.1 * float(torch.diagonal(base.covariance_matrix).mean())
    for beta_prev, beta in itertools.pairwise(betas):
        tempered = _Tempered(energy, base, beta)
        target, target_grad, base_energy, base_grad = tempered.parts(x)
        log_w += (beta - beta_prev) * (base_energy - target).double()
        energies = (1 - beta) * base_energy + beta * target
        state = ChainState(x, energies, (1 - beta) * base_grad + beta * target_grad)
        state, info = mala_step(state, tempered, generator, step_size)
        x = state.position
        step_size *= 1.02 if info["acceptance_rate"] > 0.6 else 0.98
    log_w = torch.nan_to_num(log_w, nan=-math.inf)
    log_z = torch.logsumexp(log_w, 0) - math.log(n_chains)
    weights = torch.exp(log_w - log_w.max())
    relative_se = float(weights.std() / weights.mean()) / math.sqrt(n_chains)
    return float(log_z), relative_se
