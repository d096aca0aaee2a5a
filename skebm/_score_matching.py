"""Score matching: exact, sliced and denoising."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._checks import evenly_spaced_rows
from ._neural import NeuralEBM
from .losses import (
    denoising_score_matching_loss,
    exact_score_matching_loss,
    sliced_score_matching_loss,
)

__all__ = ["ScoreMatchingEBM"]

# Denoising noise as a fraction of each feature's spread (noise_std="auto"); chosen on the
# selection half of the ADBench tables (benchmarks/bench_outliers.py).
_NOISE_FRACTION = 0.3
# Widest data that method="auto" fits with the exact, unsmoothed objective.
_UNSMOOTHED_MAX_FEATURES = 2


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
      the model learns the data smoothed at that scale.

    After training, ``log_partition_`` comes from grid quadrature (one or two
    features) or AIS, as for :class:`ContrastiveDivergenceEBM`, so
    :meth:`score_samples` is a normalized log-density; :meth:`sample` runs
    MCMC on the learned energy.

    Parameters
    ----------
    method : {"auto", "exact", "sliced", "sliced_vr", "denoising"}, default="auto"
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
    base : {"gaussian"} or None, default=None
        ``"gaussian"``: the energy is ``-log q(x) + network(x)`` with ``q`` the
        Gaussian with the data's mean and Ledoit-Wolf shrunk covariance; the
        network's correction starts at zero and learns where the data depart
        from ``q``, and regions with no data keep the Gaussian's decay.
    network, hidden_layer_sizes, image_shape, bounds
        The energy network, as in :class:`ContrastiveDivergenceEBM` (the
        default MLP is smooth, as score matching needs second derivatives).
    sampler, step_size, noise_scale, grad_clip, n_sample_steps
        MCMC settings for :meth:`sample`.
    max_iter : int, default=50
    max_updates : int or None, default=2000
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full epochs.
    batch_size : int, default=64
    learning_rate : float, default=1e-3
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
        "method": [StrOptions({"auto", "exact", "sliced", "sliced_vr", "denoising"})],
        "n_projections": [Interval(Integral, 1, None, closed="left")],
        "projection": [StrOptions({"rademacher", "gaussian"})],
        "noise_std": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "base": [StrOptions({"gaussian"}), None],
    }

    def __init__(
        self,
        *,
        method="auto",
        n_projections=1,
        projection="rademacher",
        noise_std="auto",
        base=None,
        network="mlp",
        hidden_layer_sizes=(128, 128),
        image_shape=None,
        bounds=None,
        sampler="mala",
        step_size=0.01,
        noise_scale=None,
        grad_clip=None,
        n_sample_steps=200,
        max_iter=50,
        max_updates=2000,
        batch_size=64,
        learning_rate=1e-3,
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

    def _initialize(self, X):
        self.method_ = self._auto_method(X.shape[1]) if self.method == "auto" else self.method
        auto = self.noise_std == "auto"
        self.noise_std_ = relative_noise_scales(evenly_spaced_rows(X)) if auto else self.noise_std
        super()._initialize(X)

    @staticmethod
    def _auto_method(n_features):
        # In one or two dimensions the density itself is the goal and log Z is exact: the exact
        # trace learns it unsmoothed. Above, the data are sparse and (on real tables) contaminated,
        # and the density smoothed at a fraction of each feature's spread ranks rows more reliably.
        return "exact" if n_features <= _UNSMOOTHED_MAX_FEATURES else "denoising"

    def _base_density(self, n_features):
        return self.base

    def _batch_loss(self, batch, epoch=None):
        loss = self._loss(batch)
        return loss, {"loss": float(loss.detach())}

    def _loss(self, batch):
        if self.method_ == "exact":
            return exact_score_matching_loss(self.module_, batch)
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
