"""Score matching: exact, sliced and denoising."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import evenly_spaced_rows
from ._mixtures import MAX_COMPONENTS, mixture_components, widened_mixture
from ._neural import NeuralEBM
from ._random import numpy_seed
from .energies import ConvolvedGaussianMixture, NoiseConditionalEnergy, ProbabilityFlowEnergy
from .losses import (
    denoising_score_matching_loss,
    exact_score_matching_loss,
    multilevel_denoising_score_matching_loss,
    sliced_score_matching_loss,
)
from .samplers import ENERGY_SAMPLERS, annealed_langevin

__all__ = ["MULTILEVEL_PARAMS", "ScoreMatchingEBM"]

# Denoising noise as a fraction of each feature's spread (noise_std="auto"); chosen on the
# selection half of the ADBench tables (benchmarks/bench_outliers.py).
_NOISE_FRACTION = 0.3
# Widest data that method="auto" fits with the exact, unsmoothed objective.
_UNSMOOTHED_MAX_FEATURES = 2
# The smallest level of noise_levels="auto", as a fraction of the data's root mean feature variance;
# chosen on rings at seed 0 (0.01: +0.13 nats, 0.03: +0.08, 0.05: +0.10).
_SMALLEST_LEVEL_FRACTION = 0.03
_N_AUTO_LEVELS = 20
_ODE_NEEDS_MULTILEVEL = "sampler='ode' follows the probability-flow ODE of method='multilevel'; pick an MCMC sampler."

# What the "auto" training parameters stand for with one noise level.
_SINGLE_LEVEL_BUDGET = {
    "hidden_layer_sizes": (128, 128),
    "batch_size": 64,
    "max_iter": 50,
    "max_updates": 2000,
    "learning_rate": 1e-3,
    "learning_rate_schedule": "constant",
}

# One energy learns every level, so it needs more updates, larger batches and a deeper network
# than one level does; chosen on rings and eight Gaussians at seed 0. max_iter is high so that the
# 5,000 updates are the budget on small data too: at 50 epochs, 5,000 rows in batches of 256 get
# only 1,000 (rings, seeds 0-2: +0.186 nats from the truth at 1,000 updates, +0.121 at 5,000). The
# rate falls to zero on a cosine over the budget, which with the energy's Fourier bandwidth at
# twice Scott's (energies._MULTILEVEL_BANDWIDTH_WIDENING) took rings to +0.050 (0.043 to 0.056);
# both were chosen on rings, spirals and the checkerboard.
_MULTILEVEL_BUDGET = {
    "hidden_layer_sizes": (128, 128, 128),
    "batch_size": 256,
    "max_iter": 1000,
    "max_updates": 5000,
    "learning_rate": 3e-3,
    "learning_rate_schedule": "cosine",
}

#: ``method="multilevel"`` with the training budget its ``"auto"`` parameters resolve to, spelled
#: out: ``ScoreMatchingEBM(**MULTILEVEL_PARAMS)`` is ``ScoreMatchingEBM(method="multilevel")``.
MULTILEVEL_PARAMS = {"method": "multilevel", **_MULTILEVEL_BUDGET}


class ScoreMatchingEBM(NeuralEBM):
    """Energy-based model trained by score matching: no sampling and no Z during training.

    Score matching fits the model's score ``-grad E(x)`` to the data's, and
    integration by parts removes the unknown data score (Hyvarinen, 2005).
    Three forms of the loss (see :mod:`skebm.losses`):

    - ``"exact"``: ``1/2 |grad E|^2 - tr(Hessian E)``, one backward pass per
      feature for the trace: exact, practical up to a few dozen features;
    - ``"sliced"`` and ``"sliced_vr"``: the trace replaced by random
      projections ``v^T H v``, one Hessian-vector product each, whatever the
      dimension (Song et al., 2019; ``_vr`` is the variance-reduced form);
    - ``"denoising"``: match the score of the data perturbed by Gaussian
      noise of scale ``noise_std`` (Vincent, 2011): no second derivatives;
      the model learns the data smoothed at that scale;
    - ``"multilevel"``: denoising at every scale from the smallest of
      ``noise_levels`` to the largest at once, with a noise-conditional
      energy ``E(x, sigma)``: a Gaussian mixture fitted to the data, widened
      by ``sigma``, plus a learned correction
      (:class:`~skebm.energies.NoiseConditionalEnergy`). The density is the
      data smoothed at the smallest level, read by the probability-flow ODE
      from the largest level, where the smoothed data are Gaussian
      (:class:`~skebm.energies.ProbabilityFlowEnergy`): normalized by
      construction (``log_partition_`` is 0), and separated modes keep the
      relative mass the large levels give them, which no single level can
      weigh. :meth:`sample` runs annealed MCMC down the levels (Song &
      Ermon, 2019). The ODE costs a backward pass per feature per
      Runge-Kutta stage, and fitting scores every training row for the
      outlier thresholds: multilevel is for a few features. On tables, the
      default ``"denoising"`` ranks anomalies better than multilevel's
      :meth:`level_energies` averaged over levels (the README's ADBench
      figures). Its ``"auto"`` training parameters resolve to a budget of
      its own (``MULTILEVEL_PARAMS``): 5,000 updates of 256 rows.

    After training, ``log_partition_`` comes from grid quadrature (one or two
    features) or AIS, as for :class:`ContrastiveDivergenceEBM`, so
    :meth:`score_samples` is a normalized log-density; :meth:`sample` runs
    MCMC on the learned energy.

    Parameters
    ----------
    method : {"auto", "exact", "sliced", "sliced_vr", "denoising", "multilevel"}, default="auto"
        ``"auto"`` is ``"exact"`` for one or two features, where the density
        itself is wanted and its log Z is exact, and ``"denoising"`` above,
        where the smoothed density ranks the rows of real tables more
        reliably (see ``method_`` and the user guide).
    n_projections : int, default=1
        Random projections per row for the sliced forms.
    projection : {"rademacher", "gaussian"}, default="rademacher"
    noise_std : "auto" or float, default="auto"
        Perturbation scale of ``"denoising"``. ``"auto"`` gives each feature
        0.3 times its spread (the smaller of its standard deviation and its
        interquartile range over 1.349), so the smoothing follows the units of
        every feature; a float is one scale for all (see ``noise_std_``).
    noise_levels : "auto" or array-like of float, default="auto"
        The levels of ``"multilevel"``: training draws ``log sigma``
        uniform between the smallest and the largest, and :meth:`sample`
        anneals through them, largest first. ``"auto"``: 20 levels in
        geometric progression from the diagonal of the data's bounding box
        (noise at that scale reaches any mode from any other) down to 0.03
        times the root mean feature variance (see ``noise_levels_``).
    base : {"gaussian"} or None, default=None
        ``"gaussian"``: the energy is ``-log q(x) + network(x)`` with ``q`` the
        Gaussian with the data's mean and Ledoit-Wolf shrunk covariance; the
        network's correction starts at zero and learns where the data depart
        from ``q``, and regions with no data keep the Gaussian's decay.
    network : {"auto", "mlp", "fourier", "conv"} or torch.nn.Module, default="auto"
        As in :class:`ContrastiveDivergenceEBM`. ``"auto"`` is ``"fourier"``
        for ``"multilevel"`` on one or two features (its correction then
        carves thin shapes that a smooth MLP learns slowly) and ``"mlp"``
        otherwise. ``"multilevel"`` takes ``"mlp"`` or ``"fourier"`` only.
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        As in :class:`ContrastiveDivergenceEBM` (the MLP is smooth, as score
        matching needs second derivatives). ``"auto"``: ``(128, 128)``, and
        ``(128, 128, 128)`` for ``"multilevel"``.
    image_shape, bounds
        As in :class:`ContrastiveDivergenceEBM`.
    sampler, step_size, noise_scale, grad_clip, n_sample_steps
        MCMC settings for :meth:`sample`. With ``"multilevel"``, ``sampler="ode"``
        draws by the probability-flow ODE (:meth:`ProbabilityFlowEnergy.transport
        <skebm.energies.ProbabilityFlowEnergy.transport>`): from the Gaussian
        of the largest level, the map that defines the density run backwards,
        so the draws follow :meth:`score_samples`' density; any other sampler
        anneals MALA chains down the levels, ``n_sample_steps`` in all.
    max_iter : int or "auto", default="auto"
        Epochs. ``"auto"``: 50, and 1,000 for ``"multilevel"`` (so that its
        updates, not its epochs, end the fit).
    max_updates : int, None or "auto", default="auto"
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full epochs.
        ``"auto"``: 2,000, and 5,000 for ``"multilevel"``.
    batch_size : int or "auto", default="auto"
        ``"auto"``: 64, and 256 for ``"multilevel"``.
    learning_rate : float or "auto", default="auto"
        ``"auto"``: 1e-3, and 3e-3 for ``"multilevel"``.
    learning_rate_schedule : {"constant", "cosine"} or "auto", default="auto"
        As in :class:`ContrastiveDivergenceEBM`: ``"cosine"`` lowers the rate
        towards zero over the updates each ``fit`` plans. ``"auto"``:
        ``"cosine"`` for ``"multilevel"``, where at a constant rate one fit in
        three ended 0.1 to 0.15 nats behind the others (rings, seeds 0-2:
        +0.058, +0.070 and +0.20 from the truth, against +0.042, +0.055 and
        +0.050 on the cosine), and ``"constant"`` for one level, measured at
        the constant rate only. The cosine belongs with a budget long enough
        to spare the lower rates: at 2,000 updates of 64 rows it left
        multilevel rings under-trained (seed 0: +1.05 against +0.29).
    weight_averaging : float, default=0.2
        Fraction of the last epochs whose end-of-epoch weights are averaged
        into the fitted energy, as in :class:`ContrastiveDivergenceEBM`.
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
    method_ : str
        The method used: ``method``, with ``"auto"`` resolved.
    noise_std_ : float or ndarray of shape (n_features,)
        The denoising scale used: ``noise_std``, with ``"auto"`` resolved.
    noise_levels_ : ndarray of shape (n_levels,)
        With ``"multilevel"``: the levels used, largest first.
    n_mixture_components_ : int
        With ``"multilevel"``: the components of the Gaussian mixture under
        the energy (up to 8, each with ``n_features + 1`` rows).
    module_ : torch.nn.Module
    log_partition_ : float
    log_partition_std_ : float
    history_ : list of dict
        Per epoch: ``loss`` (the score-matching loss, lower is better),
        times, and with validation ``val_loss``.
    offset_, decision_scores_, threshold_, labels_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from skebm import ScoreMatchingEBM
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(500, random_state=0)
    >>> sm = ScoreMatchingEBM(method="sliced_vr", max_iter=2, random_state=0).fit(X)
    >>> sm.score_samples(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **NeuralEBM._parameter_constraints,
        "method": [StrOptions({"auto", "exact", "sliced", "sliced_vr", "denoising", "multilevel"})],
        "network": [StrOptions({"auto", "mlp", "fourier", "conv"}), torch.nn.Module],
        "noise_levels": [StrOptions({"auto"}), "array-like"],
        "n_projections": [Interval(Integral, 1, None, closed="left")],
        "projection": [StrOptions({"rademacher", "gaussian"})],
        "noise_std": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "base": [StrOptions({"gaussian"}), None],
        "sampler": [StrOptions({*ENERGY_SAMPLERS, "ode"})],
        "learning_rate_schedule": [StrOptions({"auto", "cosine", "constant"})],
        "hidden_layer_sizes": [StrOptions({"auto"}), tuple, list],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_updates": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        method="auto",
        n_projections=1,
        projection="rademacher",
        noise_std="auto",
        noise_levels="auto",
        base=None,
        network="auto",
        hidden_layer_sizes="auto",
        image_shape=None,
        bounds=None,
        sampler="mala",
        step_size=0.01,
        noise_scale=None,
        grad_clip=None,
        n_sample_steps=200,
        max_iter="auto",
        max_updates="auto",
        batch_size="auto",
        learning_rate="auto",
        learning_rate_schedule="auto",
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
        self.method = method
        self.n_projections = n_projections
        self.projection = projection
        self.noise_std = noise_std
        self.noise_levels = noise_levels
        self.base = base
        self.network = network
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.bounds = bounds
        self.sampler = sampler
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.grad_clip = grad_clip
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

    def _validate_params(self):
        super()._validate_params()
        if self.method != "multilevel":
            if self.sampler == "ode":
                raise ValueError(_ODE_NEEDS_MULTILEVEL)
            return
        if self.base is not None:
            raise ValueError("method='multilevel' has its own base (a Gaussian mixture); leave base=None.")
        if not (isinstance(self.network, str) and self.network in {"auto", "mlp", "fourier"}):
            raise ValueError(f"method='multilevel' takes network='auto', 'mlp' or 'fourier', not {self.network!r}.")
        if not isinstance(self.noise_levels, str):
            levels = np.asarray(self.noise_levels, dtype=float)
            if levels.ndim != 1 or levels.size < 2 or not np.all(np.isfinite(levels) & (levels > 0)):
                raise ValueError(f"noise_levels must be 'auto' or at least two positive floats; got {levels}.")

    def _initialize(self, X):
        self.method_ = self._auto_method(X.shape[1]) if self.method == "auto" else self.method
        auto = self.noise_std == "auto"
        self.noise_std_ = relative_noise_scales(evenly_spaced_rows(X)) if auto else self.noise_std
        if self.method_ == "multilevel":
            self._initialize_multilevel(X)
        else:
            super()._initialize(X)

    def _initialize_multilevel(self, X):
        rows = evenly_spaced_rows(X)
        self.noise_levels_ = self._levels(rows)
        self.module_ = self._new_module(X.shape[1], generator=self._generator)
        mixture = widened_mixture(X, mixture_components(*X.shape), numpy_seed(self._generator))
        # The base holds the fitted components only: a base padded to the most a fit can use makes every
        # row pay for the placeholders (seven of eight on 256 rows of 128 features).
        self.n_mixture_components_ = mixture.n_components
        conditional = self.module_.conditional
        conditional.base = ConvolvedGaussianMixture.from_sklearn(mixture)
        conditional.fit_scale(rows)
        covariance = np.atleast_2d(np.cov(rows, rowvar=False))
        self.module_.set_levels(self.noise_levels_[-1], self.noise_levels_[0], rows.mean(axis=0), covariance)
        self.module_.to(self.device_)
        self.optimizer_ = self._make_optimizer()

    def _levels(self, rows):
        """``noise_levels`` as an array, largest first, with ``"auto"`` resolved from the rows."""
        if not isinstance(self.noise_levels, str):
            return np.sort(np.asarray(self.noise_levels, dtype=float))[::-1]
        largest = float(np.linalg.norm(np.ptp(rows, axis=0)))
        smallest = _SMALLEST_LEVEL_FRACTION * float(np.sqrt(np.mean(np.var(rows, axis=0))))
        if not smallest > 0:  # every row the same: any scale will do
            smallest = _SMALLEST_LEVEL_FRACTION
        return np.geomspace(max(largest, 2 * smallest), smallest, _N_AUTO_LEVELS)

    def _new_module(self, n_features, box=None, generator=None):
        if self.method != "multilevel":
            return super()._new_module(n_features, box, generator)
        # A placeholder mixture: _initialize fits it, skebm.load reads it. Files saved before the
        # count was kept hold the most components a fit uses, padded with zero weights.
        n_components = getattr(self, "n_mixture_components_", MAX_COMPONENTS)
        if not isinstance(n_components, int) or not 1 <= n_components <= MAX_COMPONENTS:
            raise ValueError(f"n_mixture_components_ must be an integer from 1 to {MAX_COMPONENTS}: {n_components!r}")
        eye = np.broadcast_to(np.eye(n_features), (n_components, n_features, n_features))
        base = ConvolvedGaussianMixture(np.zeros((n_components, n_features)), eye, np.ones(n_components))
        n_frequencies = 64 if self._network_kind(n_features) == "fourier" else 0
        sizes = tuple(self._setting("hidden_layer_sizes"))
        conditional = NoiseConditionalEnergy(n_features, sizes, base, n_frequencies, generator=generator)
        return ProbabilityFlowEnergy(conditional, n_features)

    def _network_kind(self, n_features):
        if self.network == "auto":
            multilevel = self.method == "multilevel"
            return "fourier" if multilevel and n_features <= _UNSMOOTHED_MAX_FEATURES else "mlp"
        return self.network

    def _compute_log_partition(self, X):
        if self.method_ == "multilevel":
            return 0.0, 0.0  # the probability-flow density is normalized by construction
        return super()._compute_log_partition(X)

    def _sample(self, n_samples, generator, callback=None):
        """Multilevel: from the Gaussian of the largest level, annealed MALA down ``noise_levels_`` or the ODE."""
        if self.method_ != "multilevel":
            if self.sampler == "ode":
                raise ValueError(_ODE_NEEDS_MULTILEVEL)
            return super()._sample(n_samples, generator, callback)
        flow = self.module_
        start = flow.draw_endpoint(n_samples, generator)
        if callback is not None:
            callback(-1, start)
        if self.sampler == "ode":
            return flow.transport(start, callback)
        steps_per_level = max(1, self._setting("n_sample_steps") // len(self.noise_levels_))
        return annealed_langevin(flow.conditional, start, self.noise_levels_, steps_per_level, generator, callback)

    def level_energies(self, X):
        """``E(x, sigma)`` of each row at each level of ``noise_levels_`` (``method="multilevel"``).

        Each column is the energy of the data smoothed at that level: the
        widened mixture's ``-log`` density plus the learned correction, up to a
        constant per level. One forward pass per level and no ODE: a cheap
        view of how a row looks at every scale (their mean over levels is an
        outlier score; on the ADBench tables it did not rank better than
        the single-level ``"denoising"`` detector).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        energies : ndarray of shape (n_samples, n_levels), float64
            Largest level first, as in ``noise_levels_``.

        Examples
        --------
        >>> from skebm import ScoreMatchingEBM
        >>> from skebm.datasets import make_rings
        >>> X = make_rings(300, random_state=0)
        >>> sm = ScoreMatchingEBM(method="multilevel", max_updates=20, random_state=0).fit(X)
        >>> sm.level_energies(X[:5]).shape
        (5, 20)
        """
        check_is_fitted(self, "module_")
        if self.method_ != "multilevel":
            raise AttributeError(
                f"level_energies needs method='multilevel'; this model was fitted with {self.method_!r}."
            )
        X = validate_data(self, X, accept_sparse=self._accept_sparse, dtype=np.float64, reset=False)
        conditional = self._float64_energy().conditional

        def at_every_level(rows):
            return torch.stack(
                [conditional(rows, torch.full_like(rows[:, 0], sigma)) for sigma in self.noise_levels_], 1
            )

        with torch.no_grad():
            return self._map_blocks(at_every_level, X)

    @staticmethod
    def _auto_method(n_features):
        # In one or two dimensions the density itself is the goal and log Z is exact: the exact
        # trace learns it unsmoothed. Above, the data are sparse and (on real tables) contaminated,
        # and the density smoothed at a fraction of each feature's spread ranks rows more reliably.
        return "exact" if n_features <= _UNSMOOTHED_MAX_FEATURES else "denoising"

    def _base_density(self, n_features):
        return None if self.method == "multilevel" else self.base

    def _auto_settings(self):
        return _MULTILEVEL_BUDGET if self.method == "multilevel" else _SINGLE_LEVEL_BUDGET

    def _batch_loss(self, batch, epoch=None):
        loss = self._loss(batch)
        return loss, {"loss": float(loss.detach())}

    def _loss(self, batch):
        if self.method_ == "exact":
            return exact_score_matching_loss(self.module_, batch)
        if self.method_ == "multilevel":
            low, high = float(self.noise_levels_[-1]), float(self.noise_levels_[0])
            return multilevel_denoising_score_matching_loss(self.module_.conditional, batch, low, high, self._generator)
        if self.method_ == "denoising":
            return denoising_score_matching_loss(self.module_, batch, self._noise_std_tensor(), self._generator)
        return sliced_score_matching_loss(
            self.module_,
            batch,
            self.n_projections,
            self.projection,
            variance_reduced=self.method_ == "sliced_vr",
            generator=self._generator,
        )

    def _noise_std_tensor(self):
        return torch.as_tensor(self.noise_std_, dtype=torch.float32, device=self.device_)

    def _validation_metrics(self, X_val):
        # The loss needs input gradients, so it cannot run under no_grad; the graph is dropped at once.
        return {"val_loss": float(self._loss(X_val).detach())}


def relative_noise_scales(X, fraction=_NOISE_FRACTION):
    """Per-feature noise scales: ``fraction`` of each feature's spread.

    The spread is the smaller of the standard deviation and the interquartile
    range over 1.349 (both equal the standard deviation for Gaussian data; the
    second ignores heavy tails and a few far-off rows). A feature with no
    spread by either measure gets the median spread of the others, or 1.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    fraction : float, default=0.3

    Returns
    -------
    scales : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> from skebm._score_matching import relative_noise_scales
    >>> X = np.random.default_rng(0).normal(scale=[1.0, 10.0], size=(10_000, 2))
    >>> relative_noise_scales(X).round(1)
    array([0.3, 3. ])
    """
    quartiles = np.percentile(X, [25, 75], axis=0)
    std = X.std(axis=0)
    spread = np.minimum(std, (quartiles[1] - quartiles[0]) / 1.349)
    spread = np.where(spread > 0, spread, std)  # a feature mostly at one value: its std
    positive = spread[spread > 0]
    spread = np.where(spread > 0, spread, np.median(positive) if positive.size else 1.0)
    return fraction * spread
