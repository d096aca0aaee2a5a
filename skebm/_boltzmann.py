"""Boltzmann machines with visible-visible couplings, trained by persistent Gibbs sweeps."""

import torch
from sklearn.utils._param_validation import StrOptions

from . import partition
from ._rbm import RBM, _signed_means
from .energies import BoltzmannEnergy
from .samplers import RandomPool, boltzmann_sweep

__all__ = ["BoltzmannMachine"]

# Visible layers up to this size are enumerated for an exact log Z when log_partition="auto".
_EXACT_MAX_VISIBLE = 20


class BoltzmannMachine(RBM):
    """Boltzmann machine of binary units with visible-visible couplings.

    The energy is ``E(v, h) = -b.v - v.C.v / 2 - c.h - h.W.v``: an RBM whose
    visible units also interact with each other through the symmetric
    couplings ``C`` (a semi-restricted Boltzmann machine, Osindero & Hinton
    2008), so the hidden units need not explain every pairwise correlation.
    The hidden units stay independent given the visible ones, so the data's
    statistics and the free energy are exact; the model's statistics come
    from ``batch_size`` persistent chains, each moved by ``n_gibbs_steps``
    Gibbs sweeps (:func:`~skebm.samplers.boltzmann_sweep`) per update.
    Couplings between hidden units are not offered: they would make the
    data's statistics need a mean-field approximation.

    ``log_partition_`` is exact by enumerating the visible states (at most 20
    visible units with ``log_partition="auto"``) and estimated by annealed
    importance sampling otherwise, so :meth:`score_samples` is ``log p(v)``.
    Everything else (the learning rate schedule, momentum, weight decay,
    ``transform``, the outlier API) is as for :class:`RBM`, with binary
    visible units.

    Parameters
    ----------
    n_components : int, default=16
        Number of hidden units.
    n_gibbs_steps : int, default=1
        Gibbs sweeps of the persistent chains per update.
    learning_rate : float or "auto", default="auto"
        As for :class:`RBM` ("auto": 0.1).
    learning_rate_schedule : {"linear", "constant"}, default="linear"
    momentum : float, default=0.5
    weight_decay : float, default=1e-4
        L2 penalty on the weights and the couplings.
    batch_size : int, default=20
    max_iter : int, default=20
    max_updates : int or None, default=10000
    validation_fraction : float, default=None
    n_iter_no_change : int, default=10
    log_partition : {"auto", "exact", "ais"} or None, default="auto"
    ais_steps : int, default=10000
    ais_runs : int, default=100
    n_sample_steps : int, default=1000
        Gibbs sweeps :meth:`sample` runs from all units off.
    contamination : float, default=0.1
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    coupling_ : ndarray of shape (n_features, n_features)
        The visible-visible couplings ``C``.
    components_, intercept_hidden_, intercept_visible_
        As for :class:`RBM`.
    persistent_visible_ : torch.Tensor of shape (batch_size, n_features)
        The persistent chains.
    log_partition_, log_partition_std_, history_, offset_, n_features_in_

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skebm import BoltzmannMachine
    >>> X = (load_digits().data[:, :16] > 8).astype(float)
    >>> bm = BoltzmannMachine(n_components=4, max_iter=2, random_state=0).fit(X)
    >>> bm.coupling_.shape, bool(bm.score(X) > 16 * -0.6932)  # better than a fair coin per pixel
    ((16, 16), True)
    """

    _parameter_constraints = {
        **{key: value for key, value in RBM._parameter_constraints.items() if key not in ("visible", "method")},
        "log_partition": [StrOptions({"auto", "exact", "ais"}), None],
    }
    visible = "bernoulli"  # the RBM code reads these; they are not parameters here
    method = "pcd"

    def __init__(
        self,
        *,
        n_components=16,
        n_gibbs_steps=1,
        learning_rate="auto",
        learning_rate_schedule="linear",
        momentum=0.5,
        weight_decay=1e-4,
        batch_size=20,
        max_iter=20,
        max_updates=10000,
        validation_fraction=None,
        n_iter_no_change=10,
        log_partition="auto",
        ais_steps=10000,
        ais_runs=100,
        n_sample_steps=1000,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.n_gibbs_steps = n_gibbs_steps
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_updates = max_updates
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.log_partition = log_partition
        self.ais_steps = ais_steps
        self.ais_runs = ais_runs
        self.n_sample_steps = n_sample_steps
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _new_module(self, n_features, box=None, generator=None):
        return BoltzmannEnergy(n_features, self.n_components, generator=generator)

    def _initialize_chains(self, X):
        # The RBM's chains keep hidden states; these keep visible ones, all off at first.
        self.persistent_visible_ = torch.zeros(self.batch_size, X.shape[1], device=self.device_)

    def _negatives(self, v, bm, pool):
        for _ in range(self.n_gibbs_steps):
            self.persistent_visible_ = boltzmann_sweep(self.persistent_visible_, bm, pool)
        return self.persistent_visible_

    def _train_step(self, v, epoch):
        """The RBM's gradient step, with ``<v v^T>_data - <v v^T>_model`` (off the diagonal) for the couplings."""
        bm = epoch.rbm
        negatives = self._negatives(v, bm, epoch.pool)
        both = torch.cat([v, negatives])
        hidden = bm.hidden_probability(both)
        column, row = _signed_means(v.shape[0], negatives.shape[0], both.device)
        weighted = both * column
        coupling_ascent = both.T @ weighted - self.weight_decay * bm.coupling
        coupling_ascent.fill_diagonal_(0.0)
        ascent = [hidden.T @ weighted - self.weight_decay * bm.weight, row @ hidden, weighted.sum(0), coupling_ascent]
        if self.momentum:
            torch._foreach_add_(ascent, self.velocity_, alpha=self.momentum)
            self.velocity_ = ascent
        torch._foreach_add_(list(bm), ascent, alpha=epoch.learning_rate)
        return {}

    def _compute_log_partition(self, X):
        method = self.log_partition
        if method is None:
            return 0.0, float("nan")
        bm = self.module_.params()
        if method == "auto":
            method = "exact" if X.shape[1] <= _EXACT_MAX_VISIBLE else "ais"
        if method == "exact":
            return partition.boltzmann_exact_log_partition(bm), 0.0
        return partition.boltzmann_ais_log_partition(
            bm, X, n_betas=self.ais_steps, n_runs=self.ais_runs, generator=self._generator
        )

    @property
    def coupling_(self):
        return self.module_.coupling.detach().cpu().double().numpy()

    def gibbs(self, V):
        """One Gibbs sweep from each row (hidden units, then the visible units in turn).

        Parameters
        ----------
        V : array-like of shape (n_samples, n_features)

        Returns
        -------
        V_new : ndarray of shape (n_samples, n_features)
        """
        v = self._validated(V)
        with torch.no_grad():
            pool = RandomPool(self._generator, dtype=torch.float64)
            return (boltzmann_sweep(v, self._float64_energy().params(), pool) + 0.0).cpu().numpy()

    def _sample(self, n_samples, generator, callback=None):
        bm, pool = self.module_.params(), RandomPool(generator)
        v = torch.zeros(n_samples, self.n_features_in_, device=self.device_)
        if callback is not None:
            callback(-1, v)
        with torch.no_grad():
            for step in range(self.n_sample_steps):
                v = boltzmann_sweep(v, bm, pool)
                if callback is not None:
                    callback(step, v)
        return v + 0.0
