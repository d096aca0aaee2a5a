"""An energy trained against a generator network: a flow that learns to sample the energy."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._checks import evenly_spaced_rows, user_stacklevel
from ._contrastive_divergence import ContrastiveDivergenceEBM
from ._flow import FlowDensity, StandardizedFlow, build_flow
from ._random import fixed_generator, numpy_seed
from .losses import generator_loss
from .samplers import run_chain

__all__ = ["AdversarialEBM"]

# Above this KL(q || p) in nats the generator covers about a quarter of the model's mass or less
# (-log 0.25). A flow too smooth for thin rings sits at 0.55 to 0.72 nats without missing any ring
# (seeds 0-2 at the defaults), so a half (log 2) would name healthy fits.
_COLLAPSE_KL = math.log(4.0)
# Draws of the generator that estimate KL(q || p) after a fit.
_KL_DRAWS = 4096
# Rows the generator's maximum-likelihood start is fitted on, at most.
_PRETRAINING_ROWS = 20_000


class AdversarialEBM(ContrastiveDivergenceEBM):
    """Energy-based model trained against a generator that learns to sample it.

    Two networks train together, and no MCMC chain runs while they do. The
    energy ``E`` is trained as in :class:`ContrastiveDivergenceEBM` (lower
    on data, higher on negatives, with the energy-magnitude penalty
    ``alpha``), but its negatives are draws of a generator ``q``, a neural
    spline flow (zuko). The generator minimizes ``mean(E(x) + log q(x))``
    over its own draws, which is ``KL(q || p) - log Z``: it moves towards the
    model ``p = exp(-E) / Z`` while its exact entropy ``-log q`` keeps it from
    collapsing onto the energy's minima (maximum-entropy generators, Kumar et
    al., 2019; VERA, Grathwohl et al., 2021, with the entropy exact instead
    of estimated because the generator is a flow). The generator is always a
    little behind the energy it chases, so each negative is weighted by its
    self-normalized importance weight ``p(x) / q(x)``: the contrast then
    estimates the model's own expectation whatever the lag, for as long as
    ``q`` covers ``p`` (``effective_sample_size`` in ``history_`` says how
    well). The generator starts as the flow fitted to the data by maximum
    likelihood, so the first negatives already cover every mode.

    :meth:`sample` is one pass through the generator (plus
    ``n_sample_steps`` MCMC steps if asked), with no chain to run.
    ``log_partition_`` is exact by grid quadrature for one or two features
    and estimated by AIS otherwise, as for contrastive divergence, so
    ``score_samples`` is a normalized log-density of the energy, not of the
    generator. After a fit, ``generator_kl_`` is the generator's
    ``KL(q || p)`` from the model, and a warning names a generator that
    covers about a quarter of the model's mass or less.

    Needs the optional ``zuko`` package (``pip install 'skebm[flow]'``).

    Parameters
    ----------
    network : {"mlp", "fourier", "conv"} or torch.nn.Module, default="mlp"
        The energy network, as in :class:`ContrastiveDivergenceEBM`.
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
    image_shape : tuple of int, default=None
    alpha : float, default=0.01
        Weight of the energy-magnitude penalty.
    negative_ratio : int, default=4
        Generator draws per data row in each update. Fewer leave too few
        draws with weight in each mode: on rings one per row left the model
        0.81 nats from the truth, four 0.03 (seed 0).
    sampler : {"mala", "langevin", "hmc", "metropolis", "uniform_jump"}, default="mala"
        The MCMC kernel of ``n_sample_steps``.
    step_size : float, default=0.01
    noise_scale : float or None, default=None
    grad_clip : float or None, default=None
    bounds : tuple (low, high), default=None
        The box of the energy (the data range widened by 10% when None).
    data_noise : float, default=0.005
    base : {"auto", "gaussian"} or None, default="auto"
        As in :class:`ContrastiveDivergenceEBM`.
    generator_learning_rate : float, default=3e-3
        Adam's rate for the generator, on the same schedule as the energy's.
    generator_pretraining : int, default=500
        Maximum-likelihood updates (of 512 rows) of the generator on the
        data before adversarial training; 0 starts it as a Gaussian with
        the data's mean and spread.
    n_sample_steps : int, default=0
        MCMC steps :meth:`sample` runs from the generator's draws, to bring
        them nearer the energy's own distribution.
    max_iter : int, default=50
    max_updates : int or None, default=600
    batch_size : int, default=256
    learning_rate : float, default=3e-2
        Adam's rate for the energy at the start of a fit.
    learning_rate_schedule : {"cosine", "constant"}, default="cosine"
    weight_averaging : float, default=0.2
    validation_fraction : float, default=None
    n_iter_no_change : int, default=10
    log_partition : {"auto", "grid", "ais"} or None, default="auto"
    ais_steps : int, default=1000
    contamination : float, default=0.1
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted energy (:class:`~skebm.energies.BoxedEnergy`); the
        generator is its submodule ``generator_flow``.
    generator_kl_ : float
        ``KL(q || p)`` of the generator from the fitted model, in nats,
        estimated from 4,096 draws (NaN when ``log_partition=None``).
    base_ : {"gaussian"} or None
    history_ : list of dict
        Per epoch: ``loss``, ``cdiv``, ``reg``, ``real_energy``,
        ``fake_energy``, ``effective_sample_size`` (the share of the
        negatives the importance weights leave), ``log_z_bound``
        (``mean(-E(x) - log q(x))`` over the generator's draws, a lower bound
        on ``log Z`` that is tight when ``q = p``), times, and with
        validation ``val_loss``.
    log_partition_, log_partition_std_, offset_, decision_scores_, threshold_, labels_
    n_features_in_, feature_names_in_

    Examples
    --------
    >>> from skebm import AdversarialEBM
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(500, random_state=0)
    >>> ebm = AdversarialEBM(max_updates=20, generator_pretraining=20, random_state=0).fit(X)
    >>> ebm.sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints = {
        **{
            name: constraints
            for name, constraints in ContrastiveDivergenceEBM._parameter_constraints.items()
            if name not in {"buffer_size", "fresh_fraction", "n_jumps", "n_steps", "n_sample_steps"}
        },
        "alpha": [Interval(Real, 0, None, closed="left")],
        "sampler": ContrastiveDivergenceEBM._parameter_constraints["sampler"][:-1],
        "step_size": [Interval(Real, 0, None, closed="neither")],
        "negative_ratio": [Interval(Integral, 1, None, closed="left")],
        "noise_scale": [None, Interval(Real, 0, None, closed="left")],
        "grad_clip": [None, Interval(Real, 0, None, closed="neither")],
        "generator_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "generator_pretraining": [Interval(Integral, 0, None, closed="left")],
        "n_sample_steps": [Interval(Integral, 0, None, closed="left")],
        "max_updates": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": ContrastiveDivergenceEBM._parameter_constraints["learning_rate_schedule"][:-1],
    }

    def __init__(
        self,
        *,
        network="mlp",
        hidden_layer_sizes=(128, 128, 128),
        image_shape=None,
        alpha=0.01,
        negative_ratio=4,
        sampler="mala",
        step_size=0.01,
        noise_scale=None,
        grad_clip=None,
        bounds=None,
        data_noise=0.005,
        base="auto",
        generator_learning_rate=3e-3,
        generator_pretraining=500,
        n_sample_steps=0,
        max_iter=50,
        max_updates=600,
        batch_size=256,
        learning_rate=3e-2,
        learning_rate_schedule="cosine",
        weight_averaging=0.2,
        validation_fraction=None,
        n_iter_no_change=10,
        log_partition="auto",
        ais_steps=1000,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.network = network
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.alpha = alpha
        self.sampler = sampler
        self.step_size = step_size
        self.negative_ratio = negative_ratio
        self.noise_scale = noise_scale
        self.grad_clip = grad_clip
        self.bounds = bounds
        self.data_noise = data_noise
        self.base = base
        self.generator_learning_rate = generator_learning_rate
        self.generator_pretraining = generator_pretraining
        self.n_sample_steps = n_sample_steps
        self.max_iter = max_iter
        self.max_updates = max_updates
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_averaging = weight_averaging
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.log_partition = log_partition
        self.ais_steps = ais_steps
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _auto_settings(self):
        return {}  # every parameter is set explicitly: the chains start at the generator's draws, not a buffer

    # ------------------------------------------------------------ training
    def _new_module(self, n_features, box=None, generator=None):
        module = super()._new_module(n_features, box, generator)
        # The generator lives on the energy module, so that averaging, early stopping, Ctrl-C and
        # skebm.save keep the two together.
        flow = build_flow(n_features, generator)
        module.generator_flow = StandardizedFlow(flow, torch.zeros(n_features), torch.ones(n_features))
        return module

    def _initialize_negatives(self, X):
        rows, generator = evenly_spaced_rows(X, _PRETRAINING_ROWS), self.module_.generator_flow
        if self.generator_pretraining:
            density = FlowDensity(self.generator_pretraining, random_state=numpy_seed(self._generator)).fit(rows)
            generator.flow.load_state_dict(density.flow_.state_dict())
            mean, scale = density.mean_, density.scale_
        else:
            mean, scale = rows.mean(0), np.where(rows.std(0) > 0, rows.std(0), 1.0)
        generator.mean.copy_(torch.as_tensor(mean))
        generator.scale.copy_(torch.as_tensor(scale))
        self.optimizer_ = self._make_optimizer()

    def _parameter_groups(self):
        # The generator on its own rate, decayed on the energy's schedule.
        rate = self.generator_learning_rate
        return [
            {"params": list(self._energy_parameters().values())},
            {
                "params": list(self.module_.generator_flow.parameters()),
                "lr": rate,
                "lr_scale": rate / self.learning_rate,
            },
        ]

    def _divergence_advice(self):
        advice = super(ContrastiveDivergenceEBM, self)._divergence_advice()  # no chain: step_size plays no part
        return (
            f"{advice}, lower generator_learning_rate (now {self.generator_learning_rate:g}) or raise alpha "
            f"(now {self.alpha:g})"
        )

    def _energy_parameters(self):
        return {
            name: parameter
            for name, parameter in self.module_.named_parameters()
            if not name.startswith("generator_flow.")
        }

    def _batch_loss(self, batch, epoch=None):
        n_draws = self.negative_ratio * len(batch)
        drawn, log_q = self.module_.generator_flow.rsample_and_log_prob(n_draws, self._generator)
        loss, metrics = self._contrast(self._noised(batch), drawn.detach(), {}, log_q.detach())
        # The generator's loss moves the generator only: the energy it sees is held fixed.
        sampler_loss = generator_loss(self._fixed_energy(drawn), log_q)
        return loss + sampler_loss, {**metrics, "log_z_bound": -float(sampler_loss.detach())}

    def _fixed_energy(self, x):
        """The energy at ``x``, differentiable in ``x`` but not in the energy's weights."""
        fixed = {name: parameter.detach() for name, parameter in self._energy_parameters().items()}
        return torch.func.functional_call(self.module_, fixed, (x,))

    # ---------------------------------------------------------- after fit
    def _finalize(self, X, weights=None):
        super()._finalize(X, weights)
        self.generator_kl_ = self._generator_kl()
        if self.generator_kl_ > _COLLAPSE_KL:
            warnings.warn(
                f"The generator is {self.generator_kl_:.2f} nats from the model (KL(q || p)): its draws cover "
                f"about {math.exp(-self.generator_kl_):.0%} of the model's mass, so sample() misses modes the "
                "energy has. Raise n_sample_steps to refine its draws by MCMC, or raise generator_pretraining "
                "or generator_learning_rate.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    def _generator_kl(self):
        """``KL(q || p) = E_q[E(x) + log q(x)] + log Z`` from a fixed set of the generator's draws."""
        if self.log_partition is None:
            return math.nan
        with torch.no_grad():
            draws = fixed_generator(device=self.device_)
            x, log_q = self.module_.generator_flow.rsample_and_log_prob(_KL_DRAWS, draws)
            kl = float((self.module_(x) + log_q).double().mean()) + self.log_partition_
        return max(kl, 0.0)  # below zero only by the draws' error

    # ---------------------------------------------------------- sampling
    def _sample(self, n_samples, generator, callback=None):
        with torch.no_grad():
            x, _ = self.module_.generator_flow.rsample_and_log_prob(n_samples, generator)
        if callback is not None:
            callback(-1, x)
        if not self.n_sample_steps:
            return x
        snapshot = None if callback is None else (lambda step, state: callback(step, state.position))
        x, _ = run_chain(self._kernel(), self.module_, x, self.n_sample_steps, generator, snapshot)
        return x
