"""Block Gibbs sampling of a restricted Boltzmann machine.

Given the visible units the hidden units are independent, and the other way
round, so one step samples a whole layer at once: ``v -> h ~ p(h | v) ->
v' ~ p(v | h)``, for many chains in parallel. The step is a kernel like the
others (``(state, rbm, pool) -> (state, info)``), so :func:`run_chain` runs it
and annealed importance sampling moves its tempered RBMs with it.

RBMs train with small batches, where a step costs a handful of tiny tensor
operations and the fixed cost of each call dominates. So random numbers come
from a :class:`RandomPool`, drawn from the generator in large blocks, and a
Bernoulli draw is one subtraction and a rounding.
"""

from typing import NamedTuple

import torch

__all__ = [
    "GibbsInfo",
    "GibbsState",
    "RandomPool",
    "bernoulli",
    "draw_visible",
    "gibbs_step",
    "init_gibbs_state",
    "sample_hidden",
    "sample_visible",
]


class GibbsState(NamedTuple):
    """Visible units of many chains, with the hidden logits ``W v + c`` when they are known.

    A caller that has the logits already (annealed importance sampling needs
    them for its weights) passes them in and saves the step a product; the
    step returns None there, since its caller may not need them.
    """

    position: torch.Tensor
    hidden_logits: torch.Tensor = None


class GibbsInfo(NamedTuple):
    """What a Gibbs step reports: nothing, as every move is accepted."""


class RandomPool:
    """Uniform and standard normal numbers drawn from a generator in blocks.

    Each request for an ``(n, d)`` array is a slice of rows of the current
    ``(rows, d)`` block; a new block, with twice the rows of the last (up to
    ``max_block`` numbers), is drawn when it runs out. The numbers depend only
    on the generator's seed and the sequence of requests, so results stay
    reproducible.

    Parameters
    ----------
    generator : torch.Generator
    dtype : torch.dtype, default=torch.float32
    min_block, max_block : int, default=65536 and 4194304
        Numbers in the first block and the most in any block.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import RandomPool
    >>> pool = RandomPool(torch.Generator().manual_seed(0))
    >>> pool.uniform(3, 2).shape
    torch.Size([3, 2])
    """

    def __init__(self, generator, dtype=torch.float32, min_block=65536, max_block=2**22):
        self.generator, self.dtype = generator, dtype
        self.min_block, self.max_block = min_block, max_block
        self._uniform, self._normal = {}, {}  # width -> [block, next row]

    def _take(self, blocks, draw, n, d):
        entry = blocks.get(d)
        if entry is None or entry[1] + n > entry[0].shape[0]:
            rows = 2 * entry[0].shape[0] if entry is not None else 0
            rows = max(n, min(max(rows, self.min_block // d), self.max_block // d))
            entry = blocks[d] = [
                draw(rows, d, generator=self.generator, device=self.generator.device, dtype=self.dtype),
                0,
            ]
        row = entry[1]
        entry[1] = row + n
        return entry[0][row : row + n]

    def uniform(self, n, d):
        """An ``(n, d)`` array uniform on [0, 1)."""
        return self._take(self._uniform, torch.rand, n, d)

    def normal(self, n, d):
        """An ``(n, d)`` array of standard normal numbers."""
        return self._take(self._normal, torch.randn, n, d)


def bernoulli(probability, pool):
    """Draws of 0.0 or 1.0, each 1 with its ``probability`` (an ``(n, d)`` tensor).

    ``ceil(p - u)`` is 1 exactly when ``u < p``. Zeros may come out as -0.0,
    which is 0.0 in every comparison and product; add 0.0 to print them.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import RandomPool, bernoulli
    >>> (bernoulli(torch.tensor([[0.0, 1.0]]), RandomPool(torch.Generator().manual_seed(0))) + 0.0).tolist()
    [[0.0, 1.0]]
    """
    return torch.sub(probability, pool.uniform(*probability.shape)).ceil_()


def sample_hidden(rbm, v, pool):
    """``h ~ p(h | v)``.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    v : torch.Tensor of shape (n_chains, n_visible)
    pool : RandomPool

    Returns
    -------
    h : torch.Tensor of shape (n_chains, n_hidden)
    """
    return bernoulli(rbm.hidden_probability(v), pool)


def sample_visible(rbm, h, pool):
    """``v ~ p(v | h)``: Bernoulli or categorical draws, or the Gaussian mean plus unit noise.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    h : torch.Tensor of shape (n_chains, n_hidden)
    pool : RandomPool

    Returns
    -------
    v : torch.Tensor of shape (n_chains, n_visible)
    """
    return draw_visible(rbm, torch.addmm(rbm.visible_bias, h, rbm.weight), pool)


def draw_visible(rbm, pre, pool):
    """``v`` given the visible units' inputs ``pre = b + W^T h`` (overwritten): the draw of each unit type.

    Bernoulli units switch on with probability ``sigmoid(pre)``; a categorical
    group turns on one unit, drawn from the softmax of its inputs; Gaussian
    units are ``pre`` plus unit noise.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import CategoricalGroups, RBMParams
    >>> from skebm.samplers import RandomPool, draw_visible
    >>> rbm = RBMParams(torch.zeros(1, 5), torch.zeros(1), torch.zeros(5), "categorical", CategoricalGroups((2, 3)))
    >>> v = draw_visible(rbm, torch.tensor([[0.0, 50.0, 50.0, 0.0, 0.0]]), RandomPool(torch.Generator()))
    >>> v.tolist()  # one unit on in each group: the second of two, the first of three
    [[0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    if rbm.visible == "bernoulli":
        return bernoulli(pre.sigmoid_(), pool)
    if rbm.visible == "categorical":
        return rbm.groups.sample(pre, pool.uniform(pre.shape[0], len(rbm.groups.sizes)))
    return pre.add_(pool.normal(*pre.shape))


def init_gibbs_state(rbm, v):
    """Start Gibbs chains at the visible states ``v``.

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import init_gibbs_state
    >>> init_gibbs_state(None, torch.zeros(4, 2)).position.shape
    torch.Size([4, 2])
    """
    return GibbsState(v)


def gibbs_step(state, rbm, pool):
    """One block Gibbs step ``v -> h -> v'`` for every chain.

    Parameters
    ----------
    state : GibbsState
    rbm : skebm.energies.RBMParams
    pool : RandomPool
        The random numbers, drawn in blocks (a :class:`torch.Generator`'s
        place in the other kernels).

    Returns
    -------
    state : GibbsState
    info : GibbsInfo

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.samplers import GibbsState, RandomPool, gibbs_step
    >>> rbm = RBMParams(torch.zeros(3, 2), torch.zeros(3), torch.full((2,), 50.0))
    >>> pool = RandomPool(torch.Generator().manual_seed(0))
    >>> state, info = gibbs_step(GibbsState(torch.zeros(4, 2)), rbm, pool)
    >>> (state.position + 0.0).tolist()
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    if state.hidden_logits is None:
        h = sample_hidden(rbm, state.position, pool)
    else:
        h = bernoulli(torch.sigmoid(state.hidden_logits), pool)
    return GibbsState(sample_visible(rbm, h, pool)), GibbsInfo()
