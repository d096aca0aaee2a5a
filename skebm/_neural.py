"""The base of the estimators whose energy is a neural network sampled by MCMC.

:class:`NeuralEBM` adds to :class:`~skebm._base.GradientEBM` what
``ContrastiveDivergenceEBM``, ``ScoreMatchingEBM`` and ``NCEEBM`` share: the
network (an MLP or the chapter-7 convolutional energy, boxed to the data's
range, optionally on top of a Gaussian base), the MCMC sampler, and ``log Z`` by
grid quadrature (one or two features) or annealed importance sampling.
"""

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from . import partition
from ._base import BaseEBM, GradientEBM
from ._checks import check_interval, check_layer_sizes, evenly_spaced_rows, warn_if_far_from_standardized
from .energies import (
    BoxedEnergy,
    ConvEnergy,
    FourierFeatures,
    FourierMLPEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    ResidualEnergy,
    shrunk_gaussian_energy,
)
from .samplers import ENERGY_SAMPLERS, make_kernel, run_chain

__all__ = ["NeuralEBM"]

# Nats by which log Z by quadrature may move when its grid is doubled.
_QUADRATURE_TOLERANCE = 0.01


class NeuralEBM(GradientEBM):
    """Base of the estimators whose energy is a neural network sampled by MCMC.

    Holds the parameters shared by :class:`ContrastiveDivergenceEBM`,
    ``ScoreMatchingEBM`` and ``NCEEBM``: the network, the sampler and the box
    the chains live in.
    """

    _parameter_constraints = {
        **BaseEBM._parameter_constraints,
        "network": [StrOptions({"mlp", "fourier", "conv"}), torch.nn.Module],
        "hidden_layer_sizes": [tuple, list],
        "image_shape": [None, tuple, list],
        "bounds": [None, tuple, list],
        "sampler": [StrOptions(set(ENERGY_SAMPLERS))],
        "step_size": [Interval(Real, 0, None, closed="neither")],
        "noise_scale": [None, Interval(Real, 0, None, closed="left")],
        "grad_clip": [None, Interval(Real, 0, None, closed="neither")],
        "n_sample_steps": [Interval(Integral, 1, None, closed="left")],
        "weight_averaging": [Interval(Real, 0, 1, closed="both")],
        "log_partition": [StrOptions({"auto", "grid", "ais"}), None],
        "ais_steps": [Interval(Integral, 1, None, closed="left")],
    }

    def _n_averaged_epochs(self, n_epochs):
        return math.ceil(self.weight_averaging * n_epochs)

    def _learning_rate_schedule(self):
        # The estimators here take a learning_rate_schedule parameter, "auto" resolved per estimator;
        # NCEEBM, which has none, overrides this.
        return self._setting("learning_rate_schedule")

    def _validate_params(self):
        super()._validate_params()
        if not isinstance(self.hidden_layer_sizes, str):  # "auto" is resolved by _auto_settings
            check_layer_sizes(self, "hidden_layer_sizes")
        if self.image_shape is not None:
            check_layer_sizes(self, "image_shape")
        if self.bounds is not None:
            check_interval(self, "bounds")

    def _check_input(self, X):
        super()._check_input(X)
        if self.image_shape is None:  # pixels share one scale and keep their place, constant or not
            warn_if_far_from_standardized(self, X)
        if self.image_shape is not None and int(np.prod(self.image_shape)) != X.shape[1]:
            raise ValueError(
                f"image_shape={tuple(self.image_shape)} holds {int(np.prod(self.image_shape))} values, "
                f"but X has {X.shape[1]} features."
            )
        if self.network == "conv" and self.image_shape is None:
            raise ValueError("network='conv' needs image_shape=(channels, height, width).")

    def _initialize(self, X):
        self.module_ = self._new_module(X.shape[1], _data_box(X, self.bounds), self._generator).to(self.device_)
        rows = evenly_spaced_rows(X)
        if self._base_density(X.shape[1]) == "gaussian":
            self.module_.network.base.load_state_dict(shrunk_gaussian_energy(rows).state_dict())
        if self._network_kind(X.shape[1]) == "fourier":  # the data's scales set the frequencies
            for features in self.module_.modules():
                if isinstance(features, FourierFeatures):
                    features.fit_bandwidth(rows)
        self.optimizer_ = self._make_optimizer()

    def _base_density(self, n_features):
        """Hook: the density fitted to data of ``n_features`` under the network, ``"gaussian"`` or None (none here)."""
        return None

    def _new_module(self, n_features, box=None, generator=None):
        # With a base, a placeholder Gaussian of the right shapes: _initialize fits it, skebm.load reads it.
        base = None
        if self._base_density(n_features) == "gaussian":
            base = GaussianMixtureEnergy(np.zeros((1, n_features)), np.eye(n_features)[None], np.ones(1))
        return self._build_energy(n_features, box, generator, base)

    def _build_energy(self, n_features, box=None, generator=None, base=None):
        """The network named by ``network`` (or a copy of the given module), boxed to ``box``.

        With a ``base`` energy, the network learns a correction to it (:class:`ResidualEnergy`).
        """
        kind = self._network_kind(n_features)
        if kind == "mlp":
            network = MLPEnergy(n_features, tuple(self._setting("hidden_layer_sizes")), generator=generator)
        elif kind == "fourier":
            network = FourierMLPEnergy(n_features, tuple(self._setting("hidden_layer_sizes")), generator=generator)
        elif kind == "conv":
            network = ConvEnergy(tuple(self.image_shape), generator=generator)
        else:
            network = copy.deepcopy(self.network)
        if base is not None:
            network = ResidualEnergy(network, base)
        low, high = box if box is not None else (np.zeros(n_features), np.ones(n_features))
        return BoxedEnergy(network, low, high)

    def _network_kind(self, n_features):
        """Hook: the network ``network`` names for data of ``n_features`` (itself here; a subclass resolves "auto")."""
        return self.network

    def _sample(self, n_samples, generator, callback=None):
        """MCMC from uniform noise in the data box with the estimator's sampler."""
        start = self.module_.uniform_noise(n_samples, generator)
        if callback is not None:
            callback(-1, start)
        snapshot = None if callback is None else (lambda step, state: callback(step, state.position))
        x, _ = run_chain(
            self._sampling_kernel(), self.module_, start, self._setting("n_sample_steps"), generator, snapshot
        )
        return x

    def _sampling_kernel(self):
        """Hook: the kernel :meth:`sample` runs (the training kernel here)."""
        return self._kernel()

    def _kernel(self):
        return make_kernel(
            self._setting("sampler"),
            self._setting("step_size"),
            noise_scale=self._setting("noise_scale"),
            grad_clip=self._setting("grad_clip"),
            bounds=self.module_.bounds(),
        )

    def _compute_log_partition(self, X):
        """``(log Z, its standard error)`` of the fitted energy, by the method ``log_partition`` asks for."""
        method = self.log_partition
        if method is None:
            return 0.0, math.nan
        if method == "auto":
            method = "grid" if X.shape[1] <= 2 else "ais"
        if method == "grid":
            if X.shape[1] > 2:
                raise ValueError(f"log_partition='grid' needs at most 2 features; X has {X.shape[1]}.")
            low, high = self._quadrature_box()
            log_z, error = partition.refined_grid_log_partition(self._score_energy, low, high, _QUADRATURE_TOLERANCE)
            if error > _QUADRATURE_TOLERANCE:
                what = (
                    "exp(-E) is a spike narrower than the finest quadrature grid resolves"
                    if math.isinf(error)
                    else f"log Z by quadrature still moved by {error:.3g} nats on the finest grid"
                )
                self._diverged(what, "after its last epoch")
            return log_z, error
        return partition.ais_log_partition(
            self.module_, X, n_steps=self.ais_steps, generator=self._generator, device=self.device_
        )

    def _quadrature_box(self):
        return self.module_.support_box()


def _data_box(X, bounds):
    """The box chains live in: ``bounds`` if given, else the data range widened by 10% each side."""
    if bounds is not None:
        low = np.full(X.shape[1], float(bounds[0]))
        high = np.full(X.shape[1], float(bounds[1]))
        return low, high
    low, high = X.min(axis=0), X.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return low - 0.1 * span, high + 0.1 * span
