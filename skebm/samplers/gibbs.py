"""Block Gibbs sampling of a restricted Boltzmann machine.

Given the visible units the hidden units are independent, and the other way
round, so one step samples a whole layer at once: ``v -> h ~ p(h | v) ->
v' ~ p(v | h)``, for many chains in parallel.

RBMs train with small batches, where a step costs a handful of tiny tensor
operations and the fixed cost of each call dominates. So random numbers come
from a :class:`RandomPool`, drawn from the generator in large blocks, and a
Bernoulli draw is one subtraction and a rounding.
"""

import torch

__all__ = ["RandomPool", "bernoulli", "gibbs_step", "run_gibbs", "sample_hidden", "sample_visible"]


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
    """``v ~ p(v | h)``: Bernoulli draws, or the Gaussian mean plus unit noise.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    h : torch.Tensor of shape (n_chains, n_hidden)
    pool : RandomPool

    Returns
    -------
    v : torch.Tensor of shape (n_chains, n_visible)
    """
    mean = rbm.visible_mean(h)
    if rbm.visible == "bernoulli":
        return bernoulli(mean, pool)
    return mean.add_(pool.normal(*mean.shape))


def gibbs_step(rbm, v, pool):
    """One block Gibbs step ``v -> h -> v'``.

    Parameters
    ----------
    rbm : skebm.energies.RBMParams
    v : torch.Tensor of shape (n_chains, n_visible)
    pool : RandomPool

    Returns
    -------
    v : torch.Tensor of shape (n_chains, n_visible)

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.samplers import RandomPool, gibbs_step
    >>> rbm = RBMParams(torch.zeros(3, 2), torch.zeros(3), torch.full((2,), 50.0))
    >>> (gibbs_step(rbm, torch.zeros(4, 2), RandomPool(torch.Generator().manual_seed(0))) + 0.0).tolist()
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    return sample_visible(rbm, sample_hidden(rbm, v, pool), pool)


@torch.no_grad()
def run_gibbs(rbm, v, n_steps, pool, callback=None):
    """``n_steps`` block Gibbs steps from ``v``, without autograd.

    ``callback(step, v)``, if given, is called after each step (for snapshots).

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMParams
    >>> from skebm.samplers import RandomPool, run_gibbs
    >>> rbm = RBMParams(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2))
    >>> run_gibbs(rbm, torch.zeros(5, 2), 10, RandomPool(torch.Generator().manual_seed(0))).shape
    torch.Size([5, 2])
    """
    for step in range(n_steps):
        v = gibbs_step(rbm, v, pool)
        if callback is not None:
            callback(step, v)
    return v
