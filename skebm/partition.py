"""The log partition function ``log Z = log integral exp(-E(x)) dx``.

Two estimators of it:

- :func:`grid_log_partition`: quadrature on a regular grid, exact up to the
  grid's resolution, for one or two features;
- :func:`ais_log_partition`: annealed importance sampling (Neal, 2001) from a
  Gaussian fitted to the data to ``exp(-E)``, through tempered distributions
  moved by MALA, for any number of features.

and two for restricted Boltzmann machines, whose structure makes them cheaper:

- :func:`rbm_exact_log_partition`: a sum over every state of the smaller layer,
  the other layer summed (or integrated) out in closed form;
- :func:`rbm_ais_log_partition`: AIS from a base-rate model through tempered
  RBMs moved by block Gibbs steps (Salakhutdinov & Murray, 2008).
"""

import itertools
import math

import numpy as np
import torch
from torch.nn import functional as F

from ._random import fixed_generator
from .energies import GaussianMixtureEnergy
from .samplers import (
    ChainState,
    GibbsState,
    RandomPool,
    bernoulli,
    boltzmann_sweep,
    energy_and_grad,
    gibbs_step,
    mala_step,
    sample_visible,
)

__all__ = [
    "ais_log_partition",
    "boltzmann_ais_log_partition",
    "boltzmann_exact_log_partition",
    "grid_log_partition",
    "rbm_ais_log_partition",
    "rbm_exact_log_partition",
    "refined_grid_log_partition",
]


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
    return _midpoint_rule(energy, low, high, n_points)[0]


def _midpoint_rule(energy, low, high, n_points=None):
    """``log Z`` on the grid, and the mass-weighted mean change of the energy from a cell to the next."""
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
    log_sum = torch.logsumexp(-energies, 0)
    mass = torch.exp(-energies - log_sum).reshape((n_points,) * d)
    energies = energies.reshape((n_points,) * d)
    steps = [float((mass.narrow(axis, 0, n_points - 1) * energies.diff(dim=axis).abs()).sum()) for axis in range(d)]
    return float(log_sum) + float(np.sum(np.log(width))), max(steps)


# Mass-weighted mean change of the energy between neighbouring cells below which a grid resolves exp(-E).
_RESOLVED_ENERGY_STEP = 0.1


def refined_grid_log_partition(energy, low, high, tolerance=0.01):
    """``log Z`` by the midpoint rule, the grid doubled until two successive grids agree.

    The midpoint rule is accurate when ``exp(-E)`` is smooth on the scale of
    the grid: where the mass is, the energy should change by a small fraction
    of a nat from one cell to the next (for a Gaussian, 0.1 nats is about
    eight cells per standard deviation and an error below 1e-3 nats). An
    energy that runs away, or data far from standardized, can put the mass in
    a spike narrower than the grid, where two grids can even agree by chance.
    So the grid is doubled, from half the default (4,096 points in 1-D, 400
    per axis in 2-D) up to 65,536 points in 1-D and 1,600 per axis in 2-D,
    until the mass-weighted energy change per cell is below 0.1 nats and the
    last two grids agree to ``tolerance``. A smooth energy costs a quarter
    more than the default grid alone.

    Parameters
    ----------
    energy : callable
        Maps a float64 tensor of shape ``(n, d)``, d in {1, 2}, to energies ``(n,)``.
    low, high : array-like of shape (d,)
        The box; it must hold essentially all of the mass of ``exp(-E)``.
    tolerance : float, default=0.01
        Nats by which the last two grids may differ.

    Returns
    -------
    log_z : float
        The finest grid's estimate.
    error : float
        How far it moved from the grid half as fine (about three times its own
        error), or ``inf`` when even the largest grid does not resolve the
        energy: within ``tolerance`` unless the largest grid was reached first.

    Examples
    --------
    >>> import math
    >>> from skebm.partition import refined_grid_log_partition
    >>> log_z, error = refined_grid_log_partition(lambda x: 0.5 * (x**2).sum(-1), [-8], [8])
    >>> abs(log_z - 0.5 * math.log(2 * math.pi)) < 1e-6 and error < 0.01
    True
    """
    d = len(low)
    n_points, largest = (2048, 2**16) if d == 1 else (200, 1600)
    log_z, _ = _midpoint_rule(energy, low, high, n_points)
    while True:
        n_points *= 2
        finer, step = _midpoint_rule(energy, low, high, n_points)
        error, log_z = abs(finer - log_z), finer
        resolved = step <= _RESOLVED_ENERGY_STEP
        if (resolved and error <= tolerance) or n_points >= largest:
            return log_z, error if resolved else math.inf


def _ais_parts(energy, base, x):
    """The target's and the base's energies and gradients at ``x``: a tempered energy at any beta mixes them."""
    return (*energy_and_grad(energy, x), *base.energy_and_grad(x))


class _Tempered:
    """``(1 - beta) * (-log q) + beta * E``: the energy between the base q and the target.

    Keeps the parts of the last points it evaluated (MALA's proposals): they
    do not depend on beta, so the chains that accept start the next
    distribution without evaluating the energy again, which halves the cost.
    """

    def __init__(self, energy, base, beta):
        self.energy, self.base, self.beta = energy, base, beta
        self.last_parts = None

    def mix(self, parts):
        target, target_grad, base, base_grad = parts
        b = self.beta
        return (1 - b) * base + b * target, (1 - b) * base_grad + b * target_grad

    def energy_and_grad(self, x):
        self.last_parts = _ais_parts(self.energy, self.base, x)
        return self.mix(self.last_parts)

    def __call__(self, x):
        return self.energy_and_grad(x)[0]


def _fit_gaussian(X, device):
    """The base: ``-log q`` of a Gaussian fitted to ``X``, and the Cholesky factor of its covariance to draw from."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    mean = X.mean(0)
    cov = torch.cov(X.T).reshape(X.shape[1], X.shape[1])
    # Widen a little so the base covers the target's tails and constant features.
    jitter = 0.05 * torch.diagonal(cov).mean().clamp_min(1e-6)
    scale_tril = torch.linalg.cholesky(1.1 * cov + jitter * torch.eye(X.shape[1], dtype=torch.float64))
    # U = L^-T is a factor of the precision, U U^T = inv(L L^T), as GaussianMixtureEnergy reads it.
    precision_cholesky = torch.linalg.inv(scale_tril).T
    base = GaussianMixtureEnergy(mean[None].numpy(), precision_cholesky[None].numpy(), np.ones(1)).to(device)
    return base, mean.float().to(device), scale_tril.float().to(device)


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
    generator = generator if generator is not None else fixed_generator(device=device)
    base, mean, scale_tril = _fit_gaussian(X, device)
    x = mean + torch.randn(n_chains, mean.shape[0], generator=generator, device=device) @ scale_tril.T
    betas = np.concatenate([[0.0], np.geomspace(1e-4, 1.0, n_steps)])
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=device)
    step_size = 0.1 * float((scale_tril * scale_tril).sum(1).mean())  # a tenth of the mean variance
    parts = _ais_parts(energy, base, x)
    for beta_prev, beta in itertools.pairwise(betas):
        target, _, base_energy, _ = parts
        log_w += (beta - beta_prev) * (base_energy - target).double()
        tempered = _Tempered(energy, base, beta)
        state, info = mala_step(ChainState(x, *tempered.mix(parts)), tempered, generator, step_size)
        moved = info.is_accepted
        parts = tuple(
            torch.where(moved.view(-1, *(1,) * (new.dim() - 1)), new, old)
            for new, old in zip(tempered.last_parts, parts, strict=True)
        )
        x = state.position
        step_size *= 1.02 if info.acceptance_rate > 0.6 else 0.98
    return _log_mean_weight(log_w)


def _log_mean_weight(log_w):
    """The log of the mean importance weight, and its delta-method standard error."""
    log_w = torch.nan_to_num(log_w, nan=-math.inf)  # a run that overflowed carries no weight
    n_runs = log_w.shape[0]
    log_mean = torch.logsumexp(log_w, 0) - math.log(n_runs)
    weights = torch.exp(log_w - log_w.max())
    return float(log_mean), float(weights.std() / weights.mean()) / math.sqrt(n_runs)


def _binary_states(n_units, start, stop, dtype, device):
    codes = torch.arange(start, stop, device=device)
    return ((codes[:, None] >> torch.arange(n_units, device=device)) & 1).to(dtype)


def _log_weights_of_hidden_states(rbm, h):
    """``log sum_v exp(-E(v, h))`` for each hidden state: the visible layer summed out."""
    a = torch.addmm(rbm.visible_bias, h, rbm.weight)  # b + W^T h
    return h @ rbm.hidden_bias + rbm.units.log_sum_out(a, rbm.visible_bias)


def rbm_exact_log_partition(rbm, max_units=24, chunk_size=65536):
    """Exact ``log Z`` of an RBM by enumerating the states of its smaller layer.

    With the hidden layer enumerated, each visible unit is summed out in closed
    form (a categorical group by its categories, and for Gaussian units the
    visible vector integrated out); with the visible layer enumerated
    (Bernoulli units only), ``log Z = logsumexp(-F(v))``.
    The cost is ``2^k`` rows for the enumerated layer of ``k`` units: 2^16
    states take well under a second.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    max_units : int, default=24
        Refuse to enumerate more states than ``2^max_units``.
    chunk_size : int, default=65536
        States evaluated at once, to bound memory.

    Returns
    -------
    log_z : float

    Examples
    --------
    >>> import math, torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.partition import rbm_exact_log_partition
    >>> rbm = RBMParams(torch.zeros(3, 5), torch.zeros(3), torch.zeros(5))
    >>> round(rbm_exact_log_partition(rbm) / math.log(2), 6)  # 2^(3 + 5) states, all of energy 0
    8.0
    """
    rbm = rbm.detached(torch.float64)
    n_hidden, n_visible = rbm.weight.shape
    enumerate_hidden = not rbm.units.enumerable or n_hidden <= n_visible
    n_units = n_hidden if enumerate_hidden else n_visible
    if n_units > max_units:
        raise ValueError(f"Exact log Z would enumerate 2^{n_units} states (max_units={max_units}); use AIS instead.")
    device = rbm.weight.device
    parts = []
    with torch.no_grad():
        for start in range(0, 2**n_units, chunk_size):
            states = _binary_states(n_units, start, min(start + chunk_size, 2**n_units), torch.float64, device)
            parts.append(_log_weights_of_hidden_states(rbm, states) if enumerate_hidden else -rbm.free_energy(states))
    return float(torch.logsumexp(torch.cat(parts), 0))


def _ais_betas(n_betas):
    """Salakhutdinov & Murray's schedule, scaled: 1/29 of the steps up to 0.5, 8/29 up to 0.9, the rest to 1."""
    n1, n2 = max(1, n_betas // 29), max(1, 8 * n_betas // 29)
    n3 = max(1, n_betas - n1 - n2)
    return np.concatenate(
        [
            np.linspace(0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1, n3 + 1),
        ]
    )


def base_rate_visible_bias(rbm, X):
    """Visible biases of the independent model that matches the data's means."""
    mean = X.mean(0) if isinstance(X, torch.Tensor) else np.asarray(X).mean(0)
    mean = torch.as_tensor(mean, dtype=rbm.weight.dtype, device=rbm.weight.device)
    return rbm.units.bias_for_mean(mean)


def _base_rate_log_partition(rbm, base_bias):
    """``log Z`` of independent visible units at ``base_bias`` and free hidden units (no weights)."""
    visible = float(rbm.units.log_sum_out(base_bias[None], base_bias[None])[0])
    return visible + rbm.weight.shape[0] * math.log(2)


@torch.no_grad()
def rbm_ais_log_partition(rbm, X, n_betas=10000, n_runs=100, generator=None):
    """``log Z`` of an RBM by annealed importance sampling (Salakhutdinov & Murray, 2008).

    Runs start from a base-rate model (independent visible units matching the
    data's means, where ``Z`` is known) and pass through ``n_betas`` tempered
    RBMs (:meth:`~skebm.energies.RBMParams.tempered`), each moved by one block
    Gibbs step. The importance weights give an unbiased estimate of ``Z``; its
    log is returned with a delta-method standard error.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    X : array-like of shape (n_samples, n_visible)
        Training data, for the base-rate model.
    n_betas : int, default=10000
        Intermediate distributions (the paper used 14,500).
    n_runs : int, default=100
        Independent AIS runs.
    generator : torch.Generator, default=None

    Returns
    -------
    log_z : float
    log_z_std : float

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.partition import rbm_ais_log_partition, rbm_exact_log_partition
    >>> g = torch.Generator().manual_seed(0)
    >>> rbm = RBMParams(torch.randn(4, 6, generator=g), torch.zeros(4), torch.zeros(6))
    >>> X = np.random.default_rng(0).integers(0, 2, size=(100, 6))
    >>> log_z, std = rbm_ais_log_partition(rbm, X, n_betas=1000, generator=g)
    >>> abs(log_z - rbm_exact_log_partition(rbm)) < 0.1
    True
    """
    generator = generator if generator is not None else fixed_generator(device=rbm.weight.device)
    rbm = rbm.detached()
    base_bias = base_rate_visible_bias(rbm, X)
    n_hidden = rbm.weight.shape[0]
    zeros = torch.zeros(n_runs, n_hidden, dtype=rbm.weight.dtype, device=rbm.weight.device)
    pool = RandomPool(generator, dtype=rbm.weight.dtype)
    v = sample_visible(rbm.tempered(0.0, base_bias), zeros, pool)
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=v.device)
    for beta_prev, beta in itertools.pairwise(_ais_betas(n_betas)):
        logits = rbm.hidden_logits(v)
        log_w += (
            _tempered_log_f(rbm, base_bias, v, logits, beta) - _tempered_log_f(rbm, base_bias, v, logits, beta_prev)
        ).double()
        # The tempered RBM's hidden logits are beta times the target's, known already.
        state, _ = gibbs_step(GibbsState(v, beta * logits), rbm.tempered(beta, base_bias), pool)
        v = state.position
    log_mean_weight, log_z_std = _log_mean_weight(log_w)
    return log_mean_weight + _base_rate_log_partition(rbm, base_bias), log_z_std


def _tempered_log_f(rbm, base_bias, v, logits, beta):
    """``-F_beta(v)`` of the tempered RBM, reusing the hidden logits ``W v + c`` of the target."""
    visible_bias = (1 - beta) * base_bias + beta * rbm.visible_bias
    return -rbm.units.energy(v, visible_bias) + F.softplus(beta * logits).sum(-1)


def boltzmann_exact_log_partition(bm, max_units=24, chunk_size=65536):
    """Exact ``log Z`` of a Boltzmann machine with visible couplings, enumerating its visible states.

    The hidden units are summed out in closed form (they are independent given
    the visible ones), so ``log Z = logsumexp(-F(v))`` over the ``2^d`` visible
    states.

    Parameters
    ----------
    bm : skebm.energies.BoltzmannParams
    max_units : int, default=24
        Refuse more than ``2^max_units`` visible states.
    chunk_size : int, default=65536

    Returns
    -------
    log_z : float

    Examples
    --------
    >>> import math, torch
    >>> from skebm.energies import BoltzmannParams
    >>> from skebm.partition import boltzmann_exact_log_partition
    >>> bm = BoltzmannParams(torch.zeros(2, 3), torch.zeros(2), torch.zeros(3), torch.zeros(3, 3))
    >>> round(boltzmann_exact_log_partition(bm) / math.log(2), 6)  # 2^(2 + 3) states of energy 0
    5.0
    """
    bm = type(bm)(*(t.detach().double() for t in bm))
    n_visible = bm.weight.shape[1]
    if n_visible > max_units:
        raise ValueError(f"Exact log Z would enumerate 2^{n_visible} states (max_units={max_units}); use AIS instead.")
    with torch.no_grad():
        parts = [
            -bm.free_energy(
                _binary_states(
                    n_visible, start, min(start + chunk_size, 2**n_visible), bm.weight.dtype, bm.weight.device
                )
            )
            for start in range(0, 2**n_visible, chunk_size)
        ]
    return float(torch.logsumexp(torch.cat(parts), 0))


def boltzmann_ais_log_partition(bm, X, n_betas=10000, n_runs=100, generator=None):
    """``log Z`` of a Boltzmann machine with visible couplings by annealed importance sampling.

    As :func:`rbm_ais_log_partition`: runs start from independent visible units
    at the data's base rates and pass through ``n_betas`` tempered machines
    (:meth:`~skebm.energies.BoltzmannParams.tempered`), each moved by one Gibbs
    sweep (:func:`~skebm.samplers.boltzmann_sweep`).

    Parameters
    ----------
    bm : skebm.energies.BoltzmannParams
    X : array-like of shape (n_samples, n_visible)
        Training data, for the base-rate model.
    n_betas : int, default=10000
    n_runs : int, default=100
    generator : torch.Generator, default=None

    Returns
    -------
    log_z : float
    log_z_std : float

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skebm.energies import BoltzmannParams
    >>> from skebm.partition import boltzmann_ais_log_partition, boltzmann_exact_log_partition
    >>> g = torch.Generator().manual_seed(0)
    >>> coupling = torch.randn(5, 5, generator=g).triu(1)
    >>> bm = BoltzmannParams(torch.randn(3, 5, generator=g), torch.zeros(3), torch.zeros(5), coupling + coupling.T)
    >>> X = np.random.default_rng(0).integers(0, 2, size=(100, 5))
    >>> log_z, std = boltzmann_ais_log_partition(bm, X, n_betas=500, generator=g)
    >>> abs(log_z - boltzmann_exact_log_partition(bm)) < 0.1
    True
    """
    generator = generator if generator is not None else fixed_generator(device=bm.weight.device)
    bm = type(bm)(*(t.detach() for t in bm))
    base_bias = base_rate_visible_bias(bm, X)
    pool = RandomPool(generator, dtype=bm.weight.dtype)
    v = bernoulli(torch.sigmoid(base_bias).expand(n_runs, -1), pool)
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=v.device)
    for beta_prev, beta in itertools.pairwise(_ais_betas(n_betas)):
        log_w += (
            bm.tempered(beta_prev, base_bias).free_energy(v) - bm.tempered(beta, base_bias).free_energy(v)
        ).double()
        v = boltzmann_sweep(v, bm.tempered(beta, base_bias), pool)
    log_mean_weight, log_z_std = _log_mean_weight(log_w)
    return log_mean_weight + _base_rate_log_partition(bm, base_bias), log_z_std
