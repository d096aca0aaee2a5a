"""Noise-contrastive estimation with a learned log Z."""

import copy
import inspect
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._checks import evenly_spaced_rows
from ._flow import FlowDensity, FlowEnergy
from ._mixtures import FIT_ROWS, mixture_components, widened_mixture
from ._neural import NeuralEBM, _data_box
from ._random import numpy_seed
from .energies import GaussianMixtureEnergy, ResidualEnergy
from .losses import nce_loss
from .samplers import ENERGY_SAMPLERS

__all__ = ["NCEEBM"]

# Proposals drawn from the noise per sample returned by sampler="sir".
_SIR_PROPOSALS = 64
# Share of the noise drawn uniformly from the data box, whatever the noise family.
_UNIFORM_FRACTION = 0.1
# network="auto" reads Fourier features of this many features or fewer (see the class docstring).
_FOURIER_MAX_FEATURES = 2


class NCEEBM(NeuralEBM):
    """Energy-based model trained by noise-contrastive estimation, with log Z learned.

    Training is logistic regression of the data against ``noise_ratio``
    samples per data point of a known noise density ``q``, with the logit
    ``-E(x) - c - log(noise_ratio * q(x))``. The constant ``c`` is learned
    beside the energy, and at the optimum ``exp(-E(x) - c)`` is the data
    density, so the model is self-normalized: ``log_partition_`` is ``c``, and
    :meth:`score_samples` needs no quadrature or AIS (Gutmann & Hyvarinen
    2010, 2012). No MCMC runs during training.

    The closer ``q`` is to the data, the harder and more informative the
    classification. The default noise is a ``GaussianMixture`` fitted to the
    data, and the network learns a correction to its energy
    (``residual=True``): on eight Gaussians and rings this reaches test
    log-likelihoods that a Gaussian noise does not approach in the same
    number of epochs (see ``benchmarks/bench_nce.py``).

    A network on raw coordinates learns smooth corrections first and sharp
    ones slowly, too slowly to carve the edges of a checkerboard or a thin
    ring out of the noise's density in a budget of 2,000 updates. So on one
    or two features the default network reads random Fourier features of its
    input (``network="fourier"``, Tancik et al., 2020), their frequencies set
    by the data's spread and Scott's bandwidth factor: on rings, spirals,
    checkerboard and three held-out shapes it then overtakes both
    ``KernelDensity`` and a ``GaussianMixture`` chosen by BIC. On tables of
    three features or more the same features lowered the outlier ranking
    (mean ROC-AUC over 30 ADBench tables 0.739 against 0.759), so there the
    network reads the raw features.

    Parameters
    ----------
    network : {"auto", "mlp", "fourier", "conv"} or torch.nn.Module, default="auto"
        ``"auto"`` is ``"fourier"`` for one or two features and ``"mlp"``
        above. ``"fourier"`` is an MLP on the raw features and 64 random
        sinusoids of them (:class:`~skebm.energies.FourierMLPEnergy`).
    hidden_layer_sizes : tuple of int, default=(128, 128)
    image_shape : tuple of int, default=None
    noise : {"gaussian", "uniform", "gmm", "flow"} or estimator, default="gmm"
        The noise density: a Gaussian with the data's mean and covariance,
        uniform on the box around the data, a ``GaussianMixture`` of full
        components fitted to the data (8, or fewer where the rows do not give
        each ``n_features + 1``), a neural spline flow fitted to the data by
        maximum likelihood (``"flow"``: 1,000 updates of three spline coupling
        layers, which needs the optional ``zuko`` package), or any object with ``sample`` and
        ``score_samples`` (``KernelDensity``, ``GaussianMixture``, a fitted
        skebm model...), used as it is when fitted, fitted to ``X`` otherwise.
        The ``"gaussian"`` and ``"gmm"`` components are no narrower than a
        tenth of a standard deviation on any axis (a variance of a hundredth
        of the mean feature variance), so that repeated rows do not draw a
        component into a spike. Except for ``"uniform"``, a tenth of the
        noise is drawn uniformly from the data box, so that the classifier
        sees every region where the energy could put mass and the learned
        ``log Z`` misses none.
    noise_ratio : int, default=8
        Noise samples per data sample, drawn afresh each epoch.
    noise_learning_rate : float or None, default=None
        With ``noise="flow"``, train the flow against the energy at this Adam
        rate (on the energy's schedule): flow contrastive estimation (Gao et
        al., 2020). Each update moves the energy down the NCE loss and the
        flow up it, so that the flow keeps chasing the model and the
        classification stays hard; the flow's draws then come fresh with
        every minibatch. The residual energy keeps the flow it started from
        as its base. None holds the flow fixed after its maximum-likelihood fit:
        at 1e-3 on five 2-D shapes the model ended level with the fixed flow's
        (within 0.01 nats) at three times the cost, and the flow a little further
        from the data (see the README).
    residual : bool, default=True
        When the noise is a Gaussian, a full-covariance ``GaussianMixture`` or
        the flow, let the network learn a correction to the noise's energy:
        ``E(x) = -log q(x) + network(x)``. Training then starts from the
        noise density and only has to learn where the data depart from it.
        Ignored for other noise.
    sampler : {"sir", "mala", "langevin", "hmc", "metropolis", "uniform_jump"}, default="sir"
        How :meth:`sample` draws: ``"sir"`` resamples 64 noise proposals per
        sample by their importance weights ``p / q`` (exact as proposals grow,
        and free of step sizes); the others run MCMC on the learned energy
        from uniform noise in the data box.
    step_size, noise_scale, grad_clip, n_sample_steps, bounds
        MCMC settings for :meth:`sample`, as in :class:`ContrastiveDivergenceEBM`.
    max_iter : int, default=50
    max_updates : int or None, default=2000
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full epochs.
    batch_size : int, default=32
    learning_rate : float, default=3e-3
        Adam's rate at the start of a fit; it decays to zero on a cosine over
        the updates of the budget (with ``max_updates=None``, it stays
        constant), so that the learned ``log Z`` settles instead of moving
        with the noise of the last minibatches.
    weight_averaging : float, default=0.0
        Fraction of the last epochs whose end-of-epoch weights are averaged
        into the fitted energy, as in :class:`ContrastiveDivergenceEBM`. Off
        by default: NCE's classification loss settles on its own.
    validation_fraction : float, default=None
    n_iter_no_change : int, default=10
    contamination : float, default=0.1
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted energy; its parameter ``log_normalizer`` is ``c``.
    noise_ : estimator
        The fitted noise density.
    log_partition_ : float
        The learned ``c``.
    log_partition_std_ : float
        NaN: ``c`` is learned, not estimated by sampling.
    history_ : list of dict
        Per epoch: ``loss``, ``data_accuracy`` and ``noise_accuracy`` (how
        often the classifier labels data and noise right), times, and with
        validation ``val_loss``.
    offset_, decision_scores_, threshold_, labels_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from skebm import NCEEBM
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(500, random_state=0)
    >>> nce = NCEEBM(max_iter=2, random_state=0).fit(X)
    >>> nce.sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints = {
        **NeuralEBM._parameter_constraints,
        "noise": [StrOptions({"gaussian", "uniform", "gmm", "flow"}), HasMethods(["sample", "score_samples"])],
        "noise_ratio": [Interval(Integral, 1, None, closed="left")],
        "noise_learning_rate": [None, Interval(Real, 0, None, closed="neither")],
        "residual": ["boolean"],
        "sampler": [StrOptions({"sir", *ENERGY_SAMPLERS})],
        "network": [StrOptions({"auto", "mlp", "fourier", "conv"}), torch.nn.Module],
    }

    def __init__(
        self,
        *,
        network="auto",
        hidden_layer_sizes=(128, 128),
        image_shape=None,
        noise="gmm",
        noise_ratio=8,
        noise_learning_rate=None,
        residual=True,
        sampler="sir",
        step_size=0.01,
        noise_scale=None,
        grad_clip=None,
        n_sample_steps=200,
        bounds=None,
        max_iter=50,
        max_updates=2000,
        batch_size=32,
        learning_rate=3e-3,
        weight_averaging=0.0,
        validation_fraction=None,
        n_iter_no_change=10,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.network = network
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.noise = noise
        self.noise_ratio = noise_ratio
        self.noise_learning_rate = noise_learning_rate
        self.residual = residual
        self.sampler = sampler
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.grad_clip = grad_clip
        self.n_sample_steps = n_sample_steps
        self.bounds = bounds
        self.max_iter = max_iter
        self.max_updates = max_updates
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_averaging = weight_averaging
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------ training
    def _initialize(self, X):
        if self.noise_learning_rate is not None and not (isinstance(self.noise, str) and self.noise == "flow"):
            raise ValueError(f"noise_learning_rate trains a flow noise: it needs noise='flow', not {self.noise!r}.")
        self.noise_ = self._fit_noise(X)
        super()._initialize(X)

    def _trains_noise(self):
        return self.noise_learning_rate is not None

    def _parameter_groups(self):
        groups = super()._parameter_groups()
        if self._trains_noise():  # the flow's weights, on their own rate and the energy's schedule
            rate, flow = self.noise_learning_rate, self.noise_.base.flow_.requires_grad_(True)
            groups.append({"params": list(flow.parameters()), "lr": rate, "lr_scale": rate / self.learning_rate})
        return groups

    def _new_module(self, n_features, box=None, generator=None):
        base = self._residual_base()
        module = self._build_energy(n_features, box, generator, base)
        # c lives on the module, so that early stopping, Ctrl-C and pickling keep it with the weights.
        # It starts at log Z of the untrained energy: about 0 on top of a normalized base, else
        # about the log volume of the box.
        log_z = 0.0
        if base is None and box is not None:  # skebm.load brings c from the file
            low, high = module.support_box()
            log_z = float(np.log(high - low).sum())
        module.log_normalizer = torch.nn.Parameter(torch.tensor(log_z))
        return module

    def _network_kind(self, n_features):
        if self.network == "auto":
            return "fourier" if n_features <= _FOURIER_MAX_FEATURES else "mlp"
        return self.network

    def _residual_base(self):
        """The noise's energy ``-log q`` in torch, when ``residual`` asks for it and the noise has one."""
        base = getattr(self.noise_, "base", None)
        if not self.residual:
            return None
        if isinstance(base, FlowDensity):  # a flow trained on against the energy leaves the base its start
            return FlowEnergy(copy.deepcopy(base) if self._trains_noise() else base)
        if not isinstance(base, GaussianMixture) or base.covariance_type != "full":
            return None
        return GaussianMixtureEnergy.from_sklearn(base)

    def _fit_noise(self, X):
        box = _data_box(X, self.bounds)
        if isinstance(self.noise, str) and self.noise == "uniform":
            return _UniformBox(*box)
        if isinstance(self.noise, str) and self.noise == "flow":
            base = FlowDensity(random_state=numpy_seed(self._generator)).fit(evenly_spaced_rows(X, FIT_ROWS))
        elif isinstance(self.noise, str):
            n_components = 1 if self.noise == "gaussian" else mixture_components(*X.shape)
            base = widened_mixture(X, n_components, numpy_seed(self._generator))
        else:
            try:
                check_is_fitted(self.noise)
                base = copy.deepcopy(self.noise)
            except NotFittedError:
                base = clone(self.noise).fit(X)
        # Part of the noise covers the whole box: the classifier must see every region where the
        # energy could put mass, or the learned log Z misses that mass (by over a nat on eight
        # Gaussians with noise="gmm" alone).
        return _WithUniform(base, *box, _UNIFORM_FRACTION)

    def _draw_noise(self, n, generator=None, with_log_density=True):
        """``n`` noise rows and their log-density (or None), as float32 tensors on the device."""
        seed = numpy_seed(self._generator if generator is None else generator)
        rows = _draw(self.noise_, n, np.random.RandomState(seed))
        log_density = self._as_tensor(self.noise_.score_samples(rows)) if with_log_density else None
        return self._as_tensor(rows), log_density

    def _base_is_shared(self):
        """Whether the energy is a correction on the noise's own base density (``residual`` with a base)."""
        residual = isinstance(self.module_.network, ResidualEnergy)
        return residual and isinstance(self.noise_, _WithUniform) and not self._trains_noise()

    def _log_densities(self, x, log_q=None):
        """``log p(x) = -E(x) - c`` of the model and ``log q(x)`` of the noise, at the rows ``x``.

        With the energy a correction on the noise's base, ``E = network + base + wall`` and
        ``log q = log((1 - f) exp(-base) + f u)``: one evaluation of the base gives both, where
        scoring the noise apart would evaluate it twice per row (a flow: most of a fit's time).
        With the flow noise trained (``noise_learning_rate``), ``log q`` is the flow's as it is now,
        its gradient reversed. Otherwise ``log_q`` (None: the noise's ``score_samples``) is the noise's.
        """
        c = self.module_.log_normalizer
        if self._trains_noise():
            if log_q is None:
                log_q = _reversed_gradient(self._mixture_log_density(x, self._noise_flow().log_prob(x)))
            return -self.module_(x) - c, log_q
        if not self._base_is_shared():
            if log_q is None:
                log_q = self._as_tensor(self.noise_.score_samples(x.double().cpu().numpy()))
            return -self.module_(x) - c, log_q
        residual = self.module_.network
        base_energy = residual.base(x)
        log_p = -(residual.network(x) + base_energy + self.module_.wall(x)) - c
        return log_p, self._mixture_log_density(x, -base_energy)

    def _mixture_log_density(self, x, log_base):
        """``log((1 - f) q_base(x) + f u(x))``, the noise's log-density, from its base's at ``x``."""
        fraction = self.noise_.fraction
        low, high = (self._as_tensor(side) for side in (self.noise_.box.low, self.noise_.box.high))
        inside = ((x >= low) & (x <= high)).all(-1)
        log_uniform = torch.where(inside, -torch.log(high - low).sum(), -torch.inf)
        return torch.logaddexp(math.log1p(-fraction) + log_base, math.log(fraction) + log_uniform)

    def _noise_flow(self):
        """The flow noise as a torch module in the rows' own units (its weights shared with ``noise_``)."""
        return FlowEnergy(self.noise_.base).to(self.device_)

    def _draw_trained_noise(self, n):
        """``n`` rows of the noise and their log q, both differentiable in the flow's weights, gradients reversed.

        The flow maximizes the loss the energy minimizes: reversing the gradient that reaches its draws and
        its log-densities lets one backward pass and one Adam step move both.
        """
        flow, generator = self._noise_flow(), self._generator
        n_uniform = int((torch.rand(n, generator=generator, device=generator.device) < self.noise_.fraction).sum())
        drawn, log_flow = flow.rsample_and_log_prob(n - n_uniform, generator)
        seed = numpy_seed(generator)
        uniform = self._as_tensor(self.noise_.box.sample(n_uniform, np.random.RandomState(seed)))
        rows = torch.cat([drawn, uniform])
        log_q = self._mixture_log_density(rows, torch.cat([log_flow, flow.log_prob(uniform)]))
        return _reversed_gradient(rows), _reversed_gradient(log_q)

    def _learning_rate_schedule(self):
        # The learned log Z is one more weight of the classifier: at a constant rate it moves with the
        # minibatch noise to the last update (0.03 nats off the quadrature on eight Gaussians);
        # decayed to zero it settles within 0.002.
        return "cosine"

    def _begin_epoch(self, run, n_rows):
        # Fresh noise for every epoch, handed out batch by batch; its log q comes with the energy
        # when the energy is a correction on the noise's base (see _log_densities). A trained
        # noise is drawn by each batch from the flow as it is then.
        if self._trains_noise():
            return None
        rows, log_q = self._draw_noise(n_rows * self.noise_ratio, with_log_density=not self._base_is_shared())
        return _NoiseStream(rows, log_q)

    def _end_epoch(self, record, data):
        """Refuse an epoch whose loss is far worse than guessing from the noise ratio alone.

        The best classifier that ignores x says "data" with probability 1 / (1 + nu), for a loss
        of log(1 + nu) + nu log(1 + 1 / nu); training starts near it. An energy that runs away
        under a huge step keeps finite losses and energies while the loss grows past it
        (a thousand times it at learning_rate=1e3): ten times it is no fit at all.
        """
        nu = self.noise_ratio
        chance = math.log1p(nu) + nu * math.log1p(1 / nu)
        if record["loss"] > 10 * chance:
            self._diverged(
                f"the loss reached {record['loss']:.3g}, where guessing from the noise ratio scores {chance:.3g}"
            )

    def _batch_loss(self, batch, epoch=None):
        n_noise = len(batch) * self.noise_ratio
        if self._trains_noise():
            noise, log_q_noise = self._draw_trained_noise(n_noise)
        else:
            noise, log_q_noise = epoch.take(n_noise) if epoch is not None else self._draw_noise(n_noise)
        log_p_data, log_q_data = self._log_densities(batch)
        log_p_noise, log_q_noise = self._log_densities(noise, log_q_noise)
        loss = nce_loss(log_p_data, log_q_data, log_p_noise, log_q_noise, self.noise_ratio)
        log_nu = math.log(self.noise_ratio)
        # The accuracies stay tensors: summed on the device, read once per epoch.
        metrics = {
            "loss": float(loss.detach()),
            "data_accuracy": (log_p_data - log_q_data > log_nu).float().mean().detach(),
            "noise_accuracy": (log_p_noise - log_q_noise < log_nu).float().mean().detach(),
        }
        return loss, metrics

    # ---------------------------------------------------------- log Z
    def _compute_log_partition(self, X):
        return float(self.module_.log_normalizer.detach()), math.nan

    # ---------------------------------------------------------- sampling
    def _sample(self, n_samples, generator, callback=None):
        if self.sampler != "sir":
            return super()._sample(n_samples, generator, callback)
        if callback is not None:
            raise ValueError("sampler='sir' resamples noise and runs no chain; pick an MCMC sampler, say 'mala'.")
        proposals, log_q = self._draw_noise(n_samples * _SIR_PROPOSALS, generator)
        with torch.no_grad():
            log_weights = -self.module_(proposals) - log_q
        # One multinomial draw per sample, each from its own block of proposals.
        weights = torch.softmax(log_weights.reshape(n_samples, _SIR_PROPOSALS), dim=1)
        picks = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        return proposals.reshape(n_samples, _SIR_PROPOSALS, -1)[torch.arange(n_samples), picks]


class _ReversedGradient(torch.autograd.Function):
    """The identity forward, the gradient negated backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _reversed_gradient(x):
    return _ReversedGradient.apply(x)


class _NoiseStream:
    """One epoch's noise rows and their log-densities, handed out in order, batch by batch."""

    def __init__(self, rows, log_density):
        self.rows, self.log_density, self.cursor = rows, log_density, 0

    def take(self, n):
        start, self.cursor = self.cursor, self.cursor + n
        log_density = None if self.log_density is None else self.log_density[start : self.cursor]
        return self.rows[start : self.cursor], log_density


class _WithUniform:
    """The mixture ``(1 - fraction) * base + fraction * uniform on the box``."""

    def __init__(self, base, low, high, fraction):
        self.base, self.box, self.fraction = base, _UniformBox(low, high), fraction

    def sample(self, n_samples, random_state=None):
        rng = check_random_state(random_state)
        n_uniform = rng.binomial(n_samples, self.fraction)
        rows = np.concatenate([_draw(self.base, n_samples - n_uniform, rng), self.box.sample(n_uniform, rng)])
        return rows[rng.permutation(n_samples)]

    def score_samples(self, X):
        return np.logaddexp(
            np.log1p(-self.fraction) + self.base.score_samples(X), np.log(self.fraction) + self.box.score_samples(X)
        )


def _draw(density, n, rng):
    """``n`` rows from any estimator with ``sample``, whichever way it takes its randomness."""
    if "random_state" in inspect.signature(density.sample).parameters:
        drawn = density.sample(n, random_state=rng)
    else:  # GaussianMixture reads its random_state attribute: the caller owns this copy
        density.random_state = rng
        drawn = density.sample(n) if n > 0 else np.empty((0, density.n_features_in_))
    return np.asarray(drawn[0] if isinstance(drawn, tuple) else drawn, dtype=np.float64)


class _UniformBox:
    """The uniform density on a box, with the ``sample`` / ``score_samples`` interface of the noise."""

    def __init__(self, low, high):
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)

    def sample(self, n_samples, random_state=None):
        rng = check_random_state(random_state)
        return self.low + rng.uniform(size=(n_samples, self.low.shape[0])) * (self.high - self.low)

    def score_samples(self, X):
        inside = np.all((X >= self.low) & (X <= self.high), axis=1)
        return np.where(inside, -np.log(self.high - self.low).sum(), -np.inf)
