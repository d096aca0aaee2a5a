"""Restricted Boltzmann machines trained by CD-k, persistent CD or parallel tempering."""

import contextlib
import functools
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import partition
from ._base import BaseEBM, single_threaded
from ._checks import user_stacklevel, warn_if_far_from_standardized
from ._random import fixed_generator, make_generator
from .energies import RBMEnergy, RBMParams
from .samplers import (
    SAMPLERS,
    GibbsState,
    RandomPool,
    TemperingState,
    bernoulli,
    gibbs_step,
    parallel_tempering_step,
    run_chain,
    sample_hidden,
    sample_visible,
)

__all__ = ["RBM"]

# Layers up to this size are enumerated for an exact log Z when log_partition="auto".
_EXACT_MAX_UNITS = 20


class RBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEBM):
    """Restricted Boltzmann machine with a true log-likelihood.

    The energy of visible units ``v`` and binary hidden units ``h`` is
    ``E(v, h) = -b.v - c.h - h.W.v`` (Bernoulli visible units) or
    ``|v - b|^2 / 2 - c.h - h.W.v`` (Gaussian visible units of unit variance:
    standardize the data first). Categorical visible units read a table of
    discrete codes: each feature becomes a group of one-hot units, one per
    category seen in ``fit``, with the Bernoulli energy on the one-hot rows
    and exactly one unit of each group on (a Potts or softmax layer). Summing out ``h`` gives the free energy
    ``F(v)``, the estimator's :meth:`energy`, and ``p(v) = exp(-F(v)) / Z``.

    Training follows the gradient of the log-likelihood, estimated by
    contrastive divergence: CD-k restarts ``n_gibbs_steps`` block Gibbs steps
    from the minibatch, persistent CD (PCD, Tieleman 2008) continues
    ``batch_size`` chains from one update to the next, and parallel tempering
    (PT, Desjardins et al. 2010) continues them at ``n_temperatures``
    temperatures with swaps between neighbours, so that the chains cross
    between modes where PCD's get stuck. Updates are stochastic
    gradient steps with momentum and weight decay (Hinton, 2010).

    Every method that reads rows accepts scipy sparse matrices, as
    ``BernoulliRBM`` does: ``fit`` densifies them once to float32 (the form
    training runs in, 4 bytes per entry), scoring one block of 8,192 rows at
    a time.

    ``log_partition_`` is exact when one layer is small enough to enumerate
    (at most 20 units, or the visible layer for Bernoulli units), and
    estimated otherwise by annealed importance sampling from a base-rate model
    (Salakhutdinov & Murray, 2008), so :meth:`score_samples` is ``log p(v)``
    and :meth:`score` works for model selection without a custom scorer.

    Fitted attributes carry scikit-learn's ``BernoulliRBM`` names, and
    :meth:`transform` gives ``P(h = 1 | v)``, so the model drops into the same
    pipelines (``Pipeline([("rbm", RBM()), ("clf", LogisticRegression())])``)
    and stacks into deep belief nets.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    visible : {"bernoulli", "categorical", "gaussian"}, default="bernoulli"
        Binary visible units (data in [0, 1]; fractions are read as
        probabilities, as ``BernoulliRBM`` does), categorical ones (each
        feature a discrete code, numbers such as 0, 1, 2 or 3.5; its
        categories are the values seen in ``fit``, in ``categories_``, and a
        value not seen there is refused with a ValueError, since the model
        gives it no probability), or real-valued units of unit variance.
    method : {"pcd", "cd", "pt"}, default="pcd"
        Persistent or plain contrastive divergence, or parallel tempering
        (:func:`~skebm.samplers.parallel_tempering_step`).
    n_gibbs_steps : int, default=1
        Gibbs steps per update (the k of CD-k; tempering steps for PT).
    n_temperatures : int, default=10
        Replicas of the chains for ``method="pt"``, at inverse temperatures
        spaced evenly from 1 (the RBM) to 0 (independent visible units at
        the data's base rates). Each update costs about this many times a
        PCD update's sampling; ``swap_rate`` in ``history_`` is the fraction
        of swaps accepted (raise ``n_temperatures`` when it is near 0).
    learning_rate : float or "auto", default="auto"
        Step of the gradient ascent. ``"auto"`` is 0.1 for Bernoulli visible
        units and 0.01 for Gaussian ones, whose unbounded activations make
        steps of 0.1 run away (Hinton's practical guide advises one to two
        orders of magnitude less for them).
    learning_rate_schedule : {"linear", "constant"}, default="linear"
        ``"linear"`` lowers the learning rate linearly over the epochs of each
        call to ``fit``, from ``learning_rate`` to ``learning_rate / max_iter``
        (``partial_fit`` steps at the full rate), so that the noise of the
        stochastic updates settles instead of being frozen into the final
        weights.
    momentum : float, default=0.5
        Momentum of the stochastic gradient updates.
    weight_decay : float, default=1e-4
        L2 penalty on the weights (not the biases).
    batch_size : int, default=20
    max_iter : int, default=20
        Epochs.
    max_updates : int or None, default=10000
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full epochs.
    validation_fraction : float, default=None
        Rows held out to monitor ``val_loss`` and stop early: the negative
        pseudo-log-likelihood (Bernoulli units, with fixed flipped units) or the
        squared reconstruction error (Gaussian units).
    n_iter_no_change : int, default=10
    log_partition : {"auto", "exact", "ais"} or None, default="auto"
        How ``log_partition_`` is obtained; None leaves scores unnormalized.
    ais_steps : int, default=10000
        Intermediate temperatures of AIS.
    ais_runs : int, default=100
        Independent AIS runs.
    n_sample_steps : int, default=1000
        Gibbs steps :meth:`sample` runs from random states (burn-in).
    contamination : float, default=0.1
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_visible_units)
        The weights ``W``. ``n_visible_units`` is ``n_features``, or for
        categorical units the number of categories of all features, the
        columns of each feature's categories in the order of ``categories_``.
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (n_visible_units,)
    categories_ : list of ndarray
        For ``visible="categorical"``: the sorted values of each feature
        seen in ``fit``, as ``OneHotEncoder``'s.
    module_ : skebm.energies.RBMEnergy
    persistent_hidden_ : torch.Tensor of shape (batch_size, n_components)
        Hidden states of the persistent chains (``method="pcd"``), as
        ``BernoulliRBM``'s ``h_samples_``.
    tempering_chains_ : torch.Tensor of shape (n_temperatures, batch_size, n_features)
        Visible states of the replicas (``method="pt"``), the first at
        temperature 1; with ``temperatures_`` (the inverse temperatures) and
        ``base_visible_bias_`` (the visible biases of the hottest one).
    velocity_ : list of torch.Tensor
        Momentum buffers of the weights and biases.
    learning_rate_ : float
        The learning rate of the last epoch: ``learning_rate`` with "auto"
        resolved and the schedule applied.
    log_partition_ : float
    log_partition_std_ : float
        Standard error of the AIS estimate (0 when exact).
    history_ : list of dict
        Per epoch: ``loss`` (negative pseudo-log-likelihood for Bernoulli
        units, the cross-entropy of the one-step reconstruction of each
        feature's category for categorical ones, squared reconstruction error
        for Gaussian ones, on up to 500
        training rows), ``learning_rate``, times, and with validation ``val_loss`` (the same on
        the held-out rows).
    offset_, decision_scores_, threshold_, labels_, n_features_in_, feature_names_in_

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : PCD-1 with plain SGD and a pseudo-likelihood.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skebm import RBM
    >>> X = (load_digits().data > 8).astype(float)
    >>> rbm = RBM(n_components=16, max_iter=2, random_state=0).fit(X)
    >>> rbm.transform(X[:3]).shape
    (3, 16)
    >>> bool(rbm.score(X) > -64 * 0.6932)   # better than a fair coin per pixel
    True
    """

    _parameter_constraints = {
        **BaseEBM._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "visible": [StrOptions({"bernoulli", "categorical", "gaussian"})],
        "method": [StrOptions({"pcd", "cd", "pt"})],
        "n_gibbs_steps": [Interval(Integral, 1, None, closed="left")],
        "n_temperatures": [Interval(Integral, 2, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "learning_rate_schedule": [StrOptions({"linear", "constant"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "log_partition": [StrOptions({"auto", "exact", "ais"}), None],
        "ais_steps": [Interval(Integral, 1, None, closed="left")],
        "ais_runs": [Interval(Integral, 2, None, closed="left")],
        "n_sample_steps": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_components=256,
        visible="bernoulli",
        method="pcd",
        n_gibbs_steps=1,
        n_temperatures=10,
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
        self.visible = visible
        self.method = method
        self.n_gibbs_steps = n_gibbs_steps
        self.n_temperatures = n_temperatures
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

    # ------------------------------------------------------------ training
    def _check_input(self, X):
        super()._check_input(X)
        _warn_outside_unit_interval(self, X)
        if self.visible == "gaussian":  # unit variance: the data must be standardized
            warn_if_far_from_standardized(self, X)

    def _new_module(self, n_features, box=None, generator=None):
        groups = self._category_counts(n_features) if self.visible == "categorical" else None
        n_units = n_features if groups is None else sum(groups)
        return RBMEnergy(n_units, self.n_components, self.visible, generator=generator, groups=groups)

    def _category_counts(self, n_features):
        counts = tuple(len(values) for values in self.categories_)
        if len(counts) != n_features:
            raise ValueError(f"categories_ holds {len(counts)} features, not n_features_in_={n_features}")
        return counts

    def _initialize(self, X):
        if self.visible == "categorical":
            self.categories_ = _fit_categories(X)
        self.module_ = self._new_module(X.shape[1], generator=self._generator).to(self.device_)
        start = getattr(self, "_start_params", None)  # set by a DBN for a layer tied to the one below
        if start is not None:
            with torch.no_grad():
                for parameter, value in zip(self.module_.parameters(), start[:3], strict=True):
                    parameter.copy_(value)
        elif self.visible == "categorical":
            # The visible biases start at the log-frequencies of the categories (Hinton, 2010, section 8):
            # the hidden units then learn how the features depend on each other, not their marginals,
            # which with many categories took them most of a default fit.
            with torch.no_grad():
                self.module_.visible_bias.copy_(
                    partition.base_rate_visible_bias(self.module_.params(), self._as_rows(X))
                )
        self.velocity_ = [torch.zeros_like(p) for p in self.module_.parameters()]
        self._initialize_chains(X)

    def _initialize_chains(self, X):
        """Hook: the persistent chains' first states."""
        # The chains' hidden states, as BernoulliRBM's h_samples_: all off at first.
        self.persistent_hidden_ = torch.zeros(self.batch_size, self.n_components, device=self.device_)
        if self.method == "pt":
            self._initialize_tempering(self._as_rows(X))

    def _initialize_tempering(self, rows):
        """The replicas' first states and base rates, from rows as the energy reads them (a tensor)."""
        rbm = self.module_.params()
        self.temperatures_ = torch.linspace(1.0, 0.0, self.n_temperatures, device=self.device_)
        self.base_visible_bias_ = partition.base_rate_visible_bias(rbm, rows)
        # Every replica starts from the hottest one's distribution, independent units at the base rates.
        base = rbm.tempered(0.0, self.base_visible_bias_)
        hidden = torch.zeros(self.n_temperatures * self.batch_size, self.n_components, device=self.device_)
        start = sample_visible(base, hidden, RandomPool(self._generator))
        self.tempering_chains_ = start.view(self.n_temperatures, self.batch_size, -1)

    def _train_step(self, v, epoch):
        """One stochastic gradient step on the CD estimate of the log-likelihood gradient.

        The gradient is written out rather than left to autograd: data
        statistics minus model statistics, ``<h v^T>_data - <h v^T>_model`` and
        the like for the biases. At the small batches RBMs train with, the cost
        is per-operation overhead, so data and negatives share one product.
        """
        rbm, pool = epoch.rbm, epoch.pool
        negatives = self._negatives(v, rbm, pool)
        n = v.shape[0]
        both = torch.cat([v, negatives])
        hidden = rbm.hidden_probability(both)
        if self.method == "pcd":
            self.persistent_hidden_ = bernoulli(hidden[n:], pool)
        column, row = _signed_means(n, negatives.shape[0], both.device)  # +1/n for data, -1/m for negatives
        weighted = both * column
        # W, c, b, as module_.parameters(); the weight decay enters the first product. (Not with
        # beta=-0.0: CUDA's addmm then skips copying the weights but still reads the uninitialized output.)
        weight_ascent = (
            torch.addmm(rbm.weight, hidden.T, weighted, beta=-self.weight_decay)
            if self.weight_decay
            else hidden.T @ weighted
        )
        ascent = [weight_ascent, row @ hidden, weighted.sum(0)]
        if self.momentum:
            torch._foreach_add_(ascent, self.velocity_, alpha=self.momentum)
            self.velocity_ = ascent
        torch._foreach_add_(list(rbm[:3]), ascent, alpha=epoch.learning_rate)
        return {}

    def _negatives(self, v, rbm, pool):
        """The model's samples for this update: ``n_gibbs_steps`` steps of the method's chains."""
        if self.method == "pt":
            chains = getattr(self, "tempering_chains_", None)
            if chains is None or chains.shape[:2] != (self.n_temperatures, self.batch_size):
                self._initialize_tempering(v)  # a warm start that changed method, n_temperatures or batch_size
            state = TemperingState(self.tempering_chains_)
            for _ in range(self.n_gibbs_steps):
                state, info = parallel_tempering_step(state, rbm, pool, self.temperatures_, self.base_visible_bias_)
                self._swap_rates.append(info.swap_rate)
            self.tempering_chains_ = state.position
            return state.position[0]
        h = self.persistent_hidden_ if self.method == "pcd" else sample_hidden(rbm, v, pool)
        negatives = sample_visible(rbm, h, pool)
        for _ in range(self.n_gibbs_steps - 1):
            negatives = sample_visible(rbm, sample_hidden(rbm, negatives, pool), pool)
        return negatives

    # The gradient is written out (see _train_step): no autograd bookkeeping at all.
    _updates_use_autograd = False
    # Binary tables are often sparse (bag of words, one-hot codes), and BernoulliRBM accepts them.
    _accept_sparse = "csr"

    @contextlib.contextmanager
    def _fit_scope(self, n_epochs, n_updates):
        work = 2 * self.batch_size * self.n_features_in_ * self.n_components  # multiply-adds of the largest product
        with single_threaded(self.device_.type == "cpu" and work < 1e6):
            yield _Run(RandomPool(self._generator), first_epoch=len(self.history_), n_epochs=n_epochs)

    def _begin_epoch(self, run, n_rows):
        self.learning_rate_ = self._scheduled_learning_rate(run)
        self._swap_rates = []  # tensors, one per tempering step (method="pt")
        # The parameter tensors are updated in place, so one view of them serves the whole epoch.
        return _Epoch(self.module_.params(), self.learning_rate_, run.pool)

    def _auto_settings(self):
        return {"learning_rate": 0.01 if self.visible == "gaussian" else 0.1}

    def _scheduled_learning_rate(self, run):
        """``learning_rate``, falling linearly over the epochs of this call to ``fit`` if so scheduled."""
        rate = self._setting("learning_rate")
        if self.learning_rate_schedule == "constant":
            return rate
        return rate * (1 - (len(self.history_) - run.first_epoch) / run.n_epochs)

    def _end_epoch(self, record, data):
        record["learning_rate"] = self.learning_rate_
        if self._swap_rates:  # read once per epoch: a float per update would wait on the device each time
            record["swap_rate"] = float(torch.stack(self._swap_rates).mean())
            self._swap_rates = []
        record["loss"] = self._monitor(data[:500])  # a fixed subset: comparable from epoch to epoch

    def _validation_metrics(self, X_val):
        return {"val_loss": self._monitor(X_val)}

    @torch.no_grad()
    def _monitor(self, v):
        """Negative pseudo-log-likelihood (Bernoulli), reconstruction cross-entropy or squared error (Gaussian)."""
        rbm = self.module_.params()
        if self.visible != "bernoulli":
            reconstruction = rbm.visible_mean(rbm.hidden_probability(v))
            if self.visible == "categorical":  # -log of the reconstructed probability of each feature's category
                return -float((v * reconstruction.clamp_min(1e-12).log()).sum(-1).mean())
            return float(((v - reconstruction) ** 2).sum(-1).mean())
        generator = fixed_generator(device=v.device)  # the same flipped units every epoch
        return -float(_pseudo_likelihood(self.module_, v, generator).mean())

    # ---------------------------------------------------------- log Z
    def _compute_log_partition(self, X):
        method = self.log_partition
        if method is None:
            return 0.0, float("nan")
        rbm = self.module_.params()
        # Only Bernoulli visible layers are enumerated; the others are summed out given the hidden units.
        smallest = min(self.n_components, X.shape[1]) if self.visible == "bernoulli" else self.n_components
        if method == "auto":
            method = "exact" if smallest <= _EXACT_MAX_UNITS else "ais"
        if method == "exact":
            return partition.rbm_exact_log_partition(rbm), 0.0
        # The base rates of AIS are the means of the units: of the one-hot codes for categorical ones.
        return partition.rbm_ais_log_partition(
            rbm, self._as_rows(X), n_betas=self.ais_steps, n_runs=self.ais_runs, generator=self._generator
        )

    # ---------------------------------------------------- sklearn's names
    @property
    def components_(self):
        return self.module_.weight.detach().cpu().double().numpy()

    @property
    def intercept_hidden_(self):
        return self.module_.hidden_bias.detach().cpu().double().numpy()

    @property
    def intercept_visible_(self):
        return self.module_.visible_bias.detach().cpu().double().numpy()

    @property
    def _n_features_out(self):
        return self.n_components

    # ------------------------------------------------------------ public
    def _validated(self, X):
        check_is_fitted(self, "module_")
        X = validate_data(self, X, accept_sparse=self._accept_sparse, dtype=np.float64, reset=False)
        return self._as_rows(X, torch.float64)

    def _as_rows(self, X, dtype=torch.float32):
        if self.visible != "categorical":
            return super()._as_rows(X, dtype)
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        return self._as_tensor(_one_hot(X, self.categories_), dtype)

    def _as_user_rows(self, x):
        if self.visible != "categorical":
            return super()._as_user_rows(x)
        codes = self.module_.groups.argmax(x.detach()).cpu().numpy()
        return np.stack([values[column] for values, column in zip(self.categories_, codes.T, strict=True)], 1)

    def free_energy(self, X):
        """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of each row; the same as :meth:`energy`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        free_energy : ndarray of shape (n_samples,), float64
        """
        return self.energy(X)

    def transform(self, X):
        """Hidden-unit probabilities ``P(h = 1 | v)``: the learned features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        H : ndarray of shape (n_samples, n_components), float64
        """
        check_is_fitted(self, "module_")
        X = validate_data(self, X, accept_sparse=self._accept_sparse, dtype=np.float64, reset=False)
        rbm = self._float64_energy().params()
        with torch.no_grad():
            return self._map_blocks(rbm.hidden_probability, X)

    def gibbs(self, V):
        """One block Gibbs step ``v -> h -> v'`` from each row, as ``BernoulliRBM.gibbs``.

        Successive calls draw fresh randomness from the model's generator.

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
            state, _ = gibbs_step(GibbsState(v), self._float64_energy().params(), pool)
            return self._as_user_rows(state.position + 0.0)  # no -0.0

    def pseudo_likelihood(self, X, random_state=None):
        """``BernoulliRBM``'s stochastic pseudo-log-likelihood, for comparison.

        For each row one visible unit, chosen at random, is flipped, and the
        result is ``n_features * log sigmoid(F(v_flipped) - F(v))``. Use
        :meth:`score_samples` for the log-likelihood itself.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : int, RandomState instance or None, default=None
            Chooses the flipped units.

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
        """
        if self.visible != "bernoulli":
            raise ValueError("pseudo_likelihood needs visible='bernoulli'.")
        v = self._validated(X)
        generator = make_generator(random_state, v.device)
        with torch.no_grad():
            return _pseudo_likelihood(self._float64_energy(), v, generator).cpu().numpy()

    def _sample(self, n_samples, generator, callback=None):
        rbm, pool = self.module_.params(), RandomPool(generator)
        h = torch.zeros(n_samples, self.n_components, device=self.device_)  # chains start from p(v | h = 0)
        snapshot = None if callback is None else (lambda step, state: callback(step, state.position))
        with torch.no_grad():
            v = sample_visible(rbm, h, pool)
            if callback is not None:
                callback(-1, v)
            v, _ = run_chain(SAMPLERS["gibbs"], rbm, v, self.n_sample_steps, pool, snapshot)
        return v + 0.0  # no -0.0


class _Run(NamedTuple):
    """What the epochs of one call to ``fit`` share."""

    pool: RandomPool
    first_epoch: int
    n_epochs: int


class _Epoch(NamedTuple):
    """What the updates of one epoch share."""

    rbm: RBMParams
    learning_rate: float
    pool: RandomPool


@functools.lru_cache(maxsize=16)  # every full batch asks for the same weights
def _signed_means(n_data, n_negatives, device):
    """Row weights, as a column and a row, that turn sums into ``mean over data - mean over negatives``."""
    row = torch.cat([torch.full((n_data,), 1.0 / n_data), torch.full((n_negatives,), -1.0 / n_negatives)]).to(device)
    return row[:, None], row


def _pseudo_likelihood(module, v, generator):
    """``n_features * log sigmoid(F(v with one random unit flipped) - F(v))`` per row."""
    flip = torch.randint(v.shape[1], (v.shape[0],), generator=generator, device=v.device)
    rows = torch.arange(v.shape[0], device=v.device)
    flipped = v.clone()
    flipped[rows, flip] = 1 - flipped[rows, flip]
    return v.shape[1] * torch.nn.functional.logsigmoid(module(flipped) - module(v))


def _fit_categories(X):
    """The sorted distinct values of each column, with a warning where a column looks continuous."""
    categories = [np.unique(column) for column in np.asarray(X).T]
    n_rows = X.shape[0]
    many = [(j, len(values)) for j, values in enumerate(categories) if len(values) > max(20, n_rows // 2)]
    if many:
        j, count = many[0]
        warnings.warn(
            f"visible='categorical' makes a category of each distinct value, and feature {j} has {count} of them "
            f"in {n_rows} rows: values not seen in fit will be refused. Bin continuous features first "
            "(sklearn.preprocessing.KBinsDiscretizer), or use visible='gaussian' on standardized data.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return categories


def _one_hot(X, categories):
    """Rows of category values as one-hot float32 rows, the groups of the features side by side."""
    sizes = [len(values) for values in categories]
    offsets = np.cumsum([0, *sizes[:-1]])
    codes = np.empty(X.shape, dtype=np.int64)
    for j, values in enumerate(categories):
        code = np.searchsorted(values, X[:, j]).clip(max=len(values) - 1)
        unseen = values[code] != X[:, j]
        if unseen.any():
            raise ValueError(
                f"Feature {j} holds {X[unseen.argmax(), j].item()!r}, a value not seen in fit (categories_[{j}] has "
                f"{sizes[j]}): categorical units give unseen categories no probability. Map it to a known "
                "category, or refit on data that has it."
            )
        codes[:, j] = code + offsets[j]
    rows = np.zeros((X.shape[0], sum(sizes)), dtype=np.float32)
    np.put_along_axis(rows, codes, 1.0, axis=1)
    return rows


def _warn_outside_unit_interval(estimator, X):
    # A warning, not an error: the free energy is defined for any row, as in BernoulliRBM.
    if estimator.visible == "bernoulli" and (X.min() < 0 or X.max() > 1):
        warnings.warn(
            "visible='bernoulli' expects X in [0, 1] (binary data, or probabilities); "
            f"got values in [{X.min():.3g}, {X.max():.3g}], for which scores are not log-probabilities. "
            "Scale X to [0, 1], or use visible='gaussian' on standardized data.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
