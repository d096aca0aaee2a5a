"""Score matching: exact, sliced and denoising."""

from numbers import Integral, Real

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import NeuralEBM
from .energies import GaussianMixtureEnergy
from .losses import (
    EXACT_TRACE_MAX_FEATURES,
    denoising_score_matching_loss,
    exact_score_matching_loss,
    sliced_score_matching_loss,
)

__all__ = ["ScoreMatchingEBM"]


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
        ``"auto"`` is ``"exact"`` up to 16 features and ``"sliced_vr"`` above:
        both estimate the same objective, the second at a cost that does not
        grow with the number of features (see ``method_``).
    n_projections : int, default=1
        Random projections per row for the sliced forms.
    projection : {"rademacher", "gaussian"}, default="rademacher"
    noise_std : float, default=0.05
        Perturbation scale of ``"denoising"``.
    base : {"gaussian"} or None, default=None
        ``"gaussian"``: the energy is ``-log q(x) + network(x)`` with ``q`` a
        Gaussian fitted to the data (full covariance), so the network learns
        where the data depart from it and regions with no data keep the
        Gaussian's decay.
    network, hidden_layer_sizes, image_shape, bounds
        The energy network, as in :class:`ContrastiveDivergenceEBM` (the
        default MLP is smooth, as score matching needs second derivatives).
    sampler, step_size, noise_scale, grad_clip, n_sample_steps
        MCMC settings for :meth:`sample`.
    max_iter : int, default=50
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
        "noise_std": [Interval(Real, 0, None, closed="neither")],
        "base": [StrOptions({"gaussian"}), None],
    }

    def __init__(
        self,
        *,
        method="auto",
        n_projections=1,
        projection="rademacher",
        noise_std=0.05,
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
        # The exact trace costs one backward pass per feature; a random projection costs one in all.
        exact = X.shape[1] <= EXACT_TRACE_MAX_FEATURES
        self.method_ = ("exact" if exact else "sliced_vr") if self.method == "auto" else self.method
        super()._initialize(X)
        if self.base == "gaussian":
            gaussian = GaussianMixture(1, covariance_type="full", reg_covar=1e-6).fit(X)
            fitted = GaussianMixtureEnergy.from_sklearn(gaussian).state_dict()
            self.module_.network.base.load_state_dict(fitted)

    def _new_module(self, n_features, box=None, generator=None):
        # A placeholder Gaussian of the right shapes: _initialize fits it, skebm.load reads it.
        base = None
        if self.base == "gaussian":
            base = GaussianMixtureEnergy(np.zeros((1, n_features)), np.eye(n_features)[None], np.ones(1))
        return self._build_energy(n_features, box, generator, base)

    def _batch_loss(self, batch):
        loss = self._loss(batch)
        return loss, {"loss": float(loss.detach())}

    def _loss(self, batch):
        if self.method_ == "exact":
            return exact_score_matching_loss(self.module_, batch)
        if self.method_ == "denoising":
            return denoising_score_matching_loss(self.module_, batch, self.noise_std, self._generator)
        return sliced_score_matching_loss(
            self.module_,
            batch,
            self.n_projections,
            self.projection,
            variance_reduced=self.method_ == "sliced_vr",
            generator=self._generator,
        )

    def _validation_metrics(self, X_val):
        # The loss needs input gradients, so it cannot run under no_grad; the graph is dropped at once.
        return {"val_loss": float(self._loss(X_val).detach())}
