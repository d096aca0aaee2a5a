"""Latent-variable energy-based models with free-energy inference."""

import copy
import itertools
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from . import partition
from ._base import GradientEBM
from ._checks import check_interval, check_layer_sizes
from .energies import initialized_layer
from .samplers import frozen_parameters

# Values of one block of grid differences (rows x grid points x features): 64 MiB in float32.
_BLOCK_VALUES = 2**24
# Values of the decoded grid and the decoder's activations on it: 256 MiB in float32.
_GRID_VALUES = 2**26

__all__ = ["EllipseDecoder", "LatentEnergy", "LatentVariableEBM"]


class EllipseDecoder(nn.Module):
    """The decoder of the latent-variable lecture: ``g(z) = (w1 cos z, w2 sin z)``.

    Parameters
    ----------
    w1, w2 : float, default=1.0
        Initial half-axes.

    Examples
    --------
    >>> import torch
    >>> from skebm import EllipseDecoder
    >>> EllipseDecoder(2.0, 1.5)(torch.zeros(1, 1)).tolist()
    [[2.0, 0.0]]
    """

    def __init__(self, w1=1.0, w2=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(w1), float(w2)]))

    def forward(self, z):
        return torch.stack([self.w[0] * torch.cos(z[:, 0]), self.w[1] * torch.sin(z[:, 0])], dim=1)


def _mlp_decoder(latent_dim, n_features, hidden_layer_sizes, generator=None):
    """A swish MLP from latents to outputs, its initial weights drawn from ``generator``."""
    sizes = [latent_dim, *hidden_layer_sizes]
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [initialized_layer(nn.Linear, a, b, generator=generator), nn.SiLU()]
    return nn.Sequential(*layers, initialized_layer(nn.Linear, sizes[-1], n_features, generator=generator))


class LatentEnergy(nn.Module):
    """Free energy ``F(y)`` of ``E(y, z) = |y - g(z)|^2`` with the latent inferred.

    At zero temperature (``beta=None``) ``F(y) = min_z E(y, z)``: the latent
    ``z_check`` is found without gradients, and ``F`` is ``E(y, z_check)``,
    whose gradient in ``y`` or in the decoder is the gradient of ``F`` itself
    (the envelope theorem). At inverse temperature ``beta``,
    ``F(y) = -1/beta log integral exp(-beta E(y, z)) dz`` by quadrature over
    the latent box.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps latents ``(n, latent_dim)`` to outputs ``(n, n_features)``.
    latent_low, latent_high : sequence of float
        The latent box.
    inference : {"grid", "gd", "lbfgs"}, default="grid"
    n_grid : int, default=2048
        Grid points per latent dimension (``"grid"``; also the quadrature of ``beta``).
    n_restarts : int, default=8
        Starting points of ``"gd"`` and ``"lbfgs"``, spread over the latent box.
    beta : float, default=None

    Examples
    --------
    >>> import torch
    >>> from skebm import EllipseDecoder, LatentEnergy
    >>> energy = LatentEnergy(EllipseDecoder(2.0, 1.5), [0.0], [2 * 3.14159265])
    >>> round(float(energy(torch.tensor([[3.0, 0.0]]))), 4)   # one unit from the ellipse
    1.0
    """

    def __init__(self, decoder, latent_low, latent_high, inference="grid", n_grid=2048, n_restarts=8, beta=None):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("latent_low", torch.as_tensor(latent_low, dtype=torch.float32))
        self.register_buffer("latent_high", torch.as_tensor(latent_high, dtype=torch.float32))
        self.inference, self.n_grid, self.n_restarts, self.beta = inference, n_grid, n_restarts, beta

    def joint_energy(self, y, z):
        """``E(y, z)`` for rows ``y`` of shape (n, d) and per-row latents of shape (n, m, k): (n, m)."""
        decoded = self.decoder(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], -1)
        return ((y[:, None, :] - decoded) ** 2).sum(-1)

    def latent_grid(self, points_per_dim=None):
        """The midpoints of a regular grid over the latent box, and the volume of one cell."""
        n = points_per_dim or self.n_grid
        width = (self.latent_high - self.latent_low) / n
        axes = [
            lo + w * (torch.arange(n, device=w.device, dtype=w.dtype) + 0.5) for lo, w in zip(self.latent_low, width)
        ]
        return torch.cartesian_prod(*axes).reshape(-1, len(axes)), float(torch.prod(width))

    def reduce_over_grid(self, y, reduce):
        """``reduce(energies, grid, cell)`` for blocks of rows, concatenated.

        ``energies`` holds ``E(y, z)`` of a block of rows at every point of the
        latent grid. The grid is decoded once for all rows; blocks are small
        enough that their ``(rows, grid points, features)`` differences stay
        near 2^24 values, so no grid size multiplies memory by the row count.
        """
        grid, cell = self.latent_grid()
        grid = grid.to(y.dtype)
        decoded = self.decoder(grid)
        rows = max(1, _BLOCK_VALUES // (len(grid) * y.shape[1]))
        return torch.cat([reduce(((block[:, None, :] - decoded) ** 2).sum(-1), grid, cell) for block in y.split(rows)])

    @torch.no_grad()
    def infer(self, y):
        """``z_check = argmin_z E(y, z)`` for each row."""
        if self.inference == "grid":
            return self.reduce_over_grid(y, lambda energies, grid, _cell: grid[energies.argmin(1)])
        return self._descend(y)

    def _descend(self, y):
        """Gradient descent or L-BFGS from restarts spread over the latent box; the best end wins."""
        fractions = (torch.arange(self.n_restarts, device=y.device, dtype=y.dtype) + 0.5) / self.n_restarts
        starts = self.latent_low.to(y.dtype) + fractions[:, None] * (self.latent_high - self.latent_low).to(y.dtype)
        z = starts.expand(len(y), -1, -1).clone().requires_grad_(True)
        with torch.enable_grad(), frozen_parameters(self.decoder):
            if self.inference == "lbfgs":
                optimizer = torch.optim.LBFGS([z], max_iter=100, line_search_fn="strong_wolfe")
            else:
                optimizer = torch.optim.Adam([z], lr=0.05)

            def closure():
                optimizer.zero_grad()
                loss = self.joint_energy(y, z).sum()  # rows and restarts are independent: one sum serves all
                loss.backward()
                return loss

            for _ in range(1 if self.inference == "lbfgs" else 300):
                optimizer.step(closure)
        energies = self.joint_energy(y, z.detach())
        return z.detach()[torch.arange(len(y)), energies.argmin(1)]

    def forward(self, y):
        if self.beta is None:
            z = self.infer(y)
            return ((y - self.decoder(z)) ** 2).sum(-1)

        def soft_min(energies, _grid, cell):
            return -(torch.logsumexp(-self.beta * energies, dim=1) + math.log(cell)) / self.beta

        return self.reduce_over_grid(y, soft_min)


class LatentVariableEBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, GradientEBM):
    """Energy ``E(y, z) = |y - g(z)|^2`` with a latent ``z`` and free-energy inference.

    Some outputs are not a function of anything observed: a point of an
    ellipse may sit at any angle. The model scores ``y`` by its free energy,
    the latent marginalized: ``F(y) = min_z E(y, z)`` at zero temperature
    (``beta=None``), or ``-1/beta log integral exp(-beta E(y, z)) dz``.
    Fitting moves the decoder ``g`` to lower the mean free energy of the
    data (LeCun's latent-variable EBM lecture: the ellipse). The decoder's
    form is what keeps the energy from collapsing, so no negative samples
    are needed.

    Parameters
    ----------
    decoder : {"ellipse", "mlp"} or torch.nn.Module, default="ellipse"
        ``"ellipse"`` is the lecture's ``(w1 cos z, w2 sin z)`` (two
        features, one latent); ``"mlp"`` a swish MLP of
        ``hidden_layer_sizes`` from the latents to the features; a module
        maps ``(n, latent_dim)`` to ``(n, n_features)``.
    latent_dim : int, default=1
    latent_range : tuple (low, high), default=(0, 2 pi)
        The latent box, the same for each latent dimension.
    hidden_layer_sizes : tuple of int, default=(32,)
        For ``decoder="mlp"``.
    inference : {"grid", "gd", "lbfgs"}, default="grid"
        Exhaustive search on a grid, gradient descent, or L-BFGS, the last two
        from ``n_restarts`` starts.
    n_grid : int, default=2048
        Grid points per latent dimension.
    n_restarts : int, default=8
    beta : float, default=None
        Inverse temperature; None for zero temperature.
    max_iter : int, default=200
    max_updates : int or None, default=2000
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full epochs.
    batch_size : int, default=256
    learning_rate : float, default=0.05
    validation_fraction, n_iter_no_change, contamination, device, random_state, verbose, warm_start
        As for the other estimators.

    Attributes
    ----------
    module_ : LatentEnergy
    log_partition_ : float
        ``log integral exp(-F(y)) dy`` by quadrature for one or two features,
        0 otherwise (``log_partition_std_`` is then NaN).
    history_ : list of dict
        Per epoch: ``loss`` (the mean free energy), times.
    offset_, decision_scores_, threshold_, labels_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from skebm import LatentVariableEBM
    >>> from skebm.datasets import make_ellipse
    >>> Y = make_ellipse(24)
    >>> model = LatentVariableEBM(random_state=0).fit(Y)
    >>> [round(w, 2) for w in model.module_.decoder.w.tolist()]
    [2.0, 1.5]
    """

    _parameter_constraints = {
        **GradientEBM._parameter_constraints,
        "decoder": [StrOptions({"ellipse", "mlp"}), nn.Module],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "latent_range": [tuple, list],
        "hidden_layer_sizes": [tuple, list],
        "inference": [StrOptions({"grid", "gd", "lbfgs"})],
        "n_grid": [Interval(Integral, 2, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "beta": [None, Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        decoder="ellipse",
        latent_dim=1,
        latent_range=(0.0, 2 * math.pi),
        hidden_layer_sizes=(32,),
        inference="grid",
        n_grid=2048,
        n_restarts=8,
        beta=None,
        max_iter=200,
        max_updates=2000,
        batch_size=256,
        learning_rate=0.05,
        validation_fraction=None,
        n_iter_no_change=10,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.latent_range = latent_range
        self.hidden_layer_sizes = hidden_layer_sizes
        self.inference = inference
        self.n_grid = n_grid
        self.n_restarts = n_restarts
        self.beta = beta
        self.max_iter = max_iter
        self.max_updates = max_updates
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _validate_params(self):
        super()._validate_params()
        check_layer_sizes(self, "hidden_layer_sizes")
        check_interval(self, "latent_range")

    def _check_input(self, X):
        super()._check_input(X)
        if self.decoder == "ellipse" and (X.shape[1] != 2 or self.latent_dim != 1):
            raise ValueError(
                f"decoder='ellipse' maps one latent to 2 features; X has {X.shape[1]} features and "
                f"latent_dim={self.latent_dim}. Use decoder='mlp' or a module of your own."
            )
        # The grid is decoded at once: its points times the decoder's widths must fit in memory.
        widths = sum(self.hidden_layer_sizes) if self.decoder == "mlp" else 0
        grid_values = self.n_grid**self.latent_dim * (widths + X.shape[1])
        uses_grid = self.inference == "grid" or self.beta is not None
        if uses_grid and grid_values > _GRID_VALUES:
            raise ValueError(
                f"n_grid={self.n_grid} with latent_dim={self.latent_dim} means {self.n_grid}^{self.latent_dim} "
                f"latents, decoded into {grid_values:.3g} values (at most {_GRID_VALUES:.3g}, 256 MiB, are "
                "allowed); lower n_grid, or use inference='gd' or 'lbfgs' with beta=None."
            )

    def _initialize(self, X):
        self.module_ = self._new_module(X.shape[1], generator=self._generator).to(self.device_)
        self.optimizer_ = self._make_optimizer()

    def _new_module(self, n_features, box=None, generator=None):
        if self.decoder == "ellipse":
            decoder = EllipseDecoder()
        elif self.decoder == "mlp":
            decoder = _mlp_decoder(self.latent_dim, n_features, tuple(self.hidden_layer_sizes), generator)
        else:
            decoder = copy.deepcopy(self.decoder)
        low, high = self.latent_range
        return LatentEnergy(
            decoder,
            [float(low)] * self.latent_dim,
            [float(high)] * self.latent_dim,
            self.inference,
            self.n_grid,
            self.n_restarts,
            self.beta,
        )

    def _end_epoch(self, record, data):
        # The loss is the mean squared distance from the rows to the decoder's image. A decoder
        # that outputs the rows' mean scores their total variance, and training starts below or
        # near the first epoch's loss: ten times the larger of the two is a runaway. (At
        # learning_rate=1e3 the ellipse's decoder is thrown about: 6e4 after three epochs.)
        start = self.history_[0]["loss"] if self.history_ else record["loss"]
        reference = max(start, float(data.var(dim=0, correction=0).sum()))
        if record["loss"] > 10 * reference:
            self._diverged(
                f"the loss reached {record['loss']:.3g}, ten times more than a constant decoder's or the first "
                f"epoch's ({reference:.3g})"
            )

    def _batch_loss(self, batch, epoch=None):
        loss = self.module_(batch).mean()
        return loss, {"loss": float(loss.detach())}

    def _compute_log_partition(self, X):
        """``log integral exp(-F(y)) dy`` by quadrature over the data box widened by 4 units."""
        if X.shape[1] > 2:
            return 0.0, math.nan
        # exp(-F) falls at least as fast as exp(-distance^2) away from the decoder's image: 4 units is e^-16.
        low, high = X.min(0) - 4.0, X.max(0) + 4.0
        return partition.grid_log_partition(
            self._score_energy, low, high, n_points=200 if X.shape[1] == 2 else 2000
        ), 0.0

    def free_energy(self, Y):
        """``F(y)``, the latent marginalized (zero temperature: minimized).

        Parameters
        ----------
        Y : array-like of shape (n_samples, n_features)

        Returns
        -------
        free_energy : ndarray of shape (n_samples,), float64
        """
        return self.energy(Y)

    @property
    def _n_features_out(self):
        return self.latent_dim

    def transform(self, Y):
        """The inferred latents ``z_check = argmin_z E(y, z)``.

        Parameters
        ----------
        Y : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim), float64
        """
        check_is_fitted(self, "module_")
        Y = validate_data(self, Y, dtype=np.float64, reset=False)
        return self._float64_energy().infer(self._as_tensor(Y, torch.float64)).cpu().numpy()

    def inverse_transform(self, Z):
        """Decode latents: ``g(z)``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)

        Returns
        -------
        Y : ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self, "module_")
        Z = np.asarray(Z, dtype=np.float64).reshape(-1, self.latent_dim)
        with torch.no_grad():
            return self._float64_energy().decoder(self._as_tensor(Z, torch.float64)).cpu().numpy()

    def _sample(self, n_samples, generator, callback=None):
        """Latents uniform in the box, decoded, plus the Gaussian noise of ``exp(-|y - g(z)|^2)``.

        Exact for ``beta=1`` (``exp(-F)`` is then that mixture); at zero temperature
        ``exp(-F(y)) = exp(-distance^2)`` is the same tube without the weighting by
        the decoder's speed, and the draws approximate it.
        """
        if callback is not None:
            raise ValueError("LatentVariableEBM draws decoded latents directly and runs no chain to follow.")
        low, high = self.module_.latent_low, self.module_.latent_high
        z = low + torch.rand(n_samples, len(low), generator=generator, device=low.device) * (high - low)
        with torch.no_grad():
            y = self.module_.decoder(z)
        return y + math.sqrt(0.5) * torch.randn(y.shape, generator=generator, device=y.device)
