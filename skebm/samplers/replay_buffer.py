"""Replay buffer of past negative samples (Du & Mordatch, 2019)."""

import torch


class ReplayBuffer:
    """A first-in first-out store of chain end points that restarts new chains.

    Short-run chains restarted from where earlier chains stopped behave like
    long persistent chains, at the cost of a short run each. A fraction of the
    restarts are fresh noise instead, so that new modes keep being explored.

    Parameters
    ----------
    capacity : int
        Most samples kept; the oldest are overwritten first.
    n_features : int
        Size of each sample.
    noise : callable
        ``noise(n, generator)`` returns ``n`` fresh starting points.
    fresh_fraction : float, default=0.05
        Probability that a restart is fresh noise rather than a buffered sample.
    device : torch.device or str, default="cpu"

    Examples
    --------
    >>> import torch
    >>> from skebm.samplers import ReplayBuffer
    >>> noise = lambda n, g: torch.rand(n, 2, generator=g) * 2 - 1
    >>> buffer = ReplayBuffer(capacity=100, n_features=2, noise=noise)
    >>> gen = torch.Generator().manual_seed(0)
    >>> starts = buffer.sample(10, gen)   # all fresh noise: the buffer is empty
    >>> buffer.push(starts)
    >>> len(buffer)
    10
    """

    def __init__(self, capacity, n_features, noise, fresh_fraction=0.05, device="cpu"):
        self.capacity = int(capacity)
        self.noise = noise
        self.fresh_fraction = float(fresh_fraction)
        self.storage = torch.empty(self.capacity, n_features, device=device)
        self.size = 0
        self.next_index = 0

    @classmethod
    def restore(cls, storage, noise, fresh_fraction, size, next_index):
        """A buffer around saved ``storage`` (capacity, n_features) holding ``size`` samples.

        What :func:`skebm.load` uses: the storage is taken as it is, not allocated anew.
        """
        capacity = len(storage)
        if storage.ndim != 2 or not (0 <= int(size) <= capacity and 0 <= int(next_index) < max(capacity, 1)):
            raise ValueError(f"a replay buffer of {capacity} rows cannot hold {size} samples from row {next_index}")
        buffer = cls(0, storage.shape[1], noise, fresh_fraction, storage.device)
        buffer.capacity, buffer.storage, buffer.size, buffer.next_index = capacity, storage, int(size), int(next_index)
        return buffer

    def __len__(self):
        return self.size

    def sample(self, n, generator):
        """Starting points for ``n`` chains: buffered samples or, with probability ``fresh_fraction``, noise."""
        fresh = self.noise(n, generator)
        if self.size == 0:
            return fresh
        device = self.storage.device
        index = torch.randint(self.size, (n,), generator=generator, device=device)
        keep = torch.rand(n, generator=generator, device=device) >= self.fresh_fraction
        return torch.where(keep[:, None], self.storage[index], fresh)

    def push(self, samples):
        """Store ``samples``, overwriting the oldest ones once full."""
        samples = samples.detach()[-self.capacity :]
        positions = (self.next_index + torch.arange(len(samples), device=samples.device)) % self.capacity
        self.storage[positions] = samples.to(self.storage.dtype)
        self.next_index = int((self.next_index + len(samples)) % self.capacity)
        self.size = min(self.size + len(samples), self.capacity)
