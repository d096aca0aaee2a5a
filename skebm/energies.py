"""Energy networks: ``torch.nn.Module`` objects mapping a batch of flat rows to energies.

Every energy takes a tensor of shape ``(n, n_features)`` and returns a tensor of
shape ``(n,)``; lower energy means more likely. Images travel as flat rows, and
:class:`ConvEnergy` reshapes them with ``image_shape``, so scikit-learn pipelines
and cross-validation see ordinary 2-D arrays.

An energy may also define ``energy_and_grad(x)``, returning the energies and
their gradient with respect to ``x`` without building an autograd graph. The
samplers use it when present (see :func:`skebm.samplers.energy_and_grad`):
that is what makes Langevin chains on :class:`MLPEnergy` cheap.
"""

import functools
import itertools
import math
from typing import NamedTuple

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BoltzmannEnergy",
    "BoltzmannParams",
    "BoxedEnergy",
    "CategoricalGroups",
    "ConvEnergy",
    "ConvolvedGaussianMixture",
    "FourierFeatures",
    "FourierMLPEnergy",
    "GaussianMixtureEnergy",
    "MLPEnergy",
    "NoiseConditionalEnergy",
    "ProbabilityFlowEnergy",
    "QuadraticEnergy",
    "RBMEnergy",
    "RBMParams",
    "ResidualEnergy",
    "initialized_layer",
    "shrunk_gaussian_energy",
]


# The Fourier bandwidth of the multilevel energy in units of Scott's: chosen on rings, spirals and
# the checkerboard at seed 0 (1, 2 and 4 times Scott's tried), held out on four other shapes.
_MULTILEVEL_BANDWIDTH_WIDENING = 2.0


def initialized_layer(layer_class, *args, generator=None):
    """A ``Linear`` or ``Conv2d`` layer with torch's default initialization, drawn from ``generator``.

    Without a generator the layer is built as torch builds it, from the global
    stream. With one, the global stream is never read: two fits in two threads
    then neither depend on each other nor move the caller's ``torch.rand``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skebm.energies import initialized_layer
    >>> a = initialized_layer(nn.Linear, 3, 2, generator=torch.Generator().manual_seed(0))
    >>> b = initialized_layer(nn.Linear, 3, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    if generator is None:
        return layer_class(*args)
    layer = layer_class(*args, device="meta").to_empty(device=generator.device)
    with torch.no_grad():
        # torch's own scheme for these layers (see nn.Linear.reset_parameters).
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(layer.weight[0].numel())
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class MLPEnergy(nn.Module):
    """Multi-layer perceptron energy with swish (SiLU) activations.

    Parameters
    ----------
    n_features : int
        Size of each input row.
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Width of each hidden layer.
    generator : torch.Generator, default=None
        Draws the initial weights (see :func:`initialized_layer`).

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import MLPEnergy
    >>> energy = MLPEnergy(2, hidden_layer_sizes=(16, 16))
    >>> energy(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    def __init__(self, n_features, hidden_layer_sizes=(128, 128), generator=None):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes]
        pairs = itertools.pairwise(sizes)
        self.hidden = nn.ModuleList(initialized_layer(nn.Linear, a, b, generator=generator) for a, b in pairs)
        self.output = initialized_layer(nn.Linear, sizes[-1], 1, generator=generator)

    def forward(self, x):
        for layer in self.hidden:
            x = F.silu(layer(x))
        return self.output(x).squeeze(-1)

    @torch.no_grad()
    def energy_and_grad(self, x):
        """Energies and their input gradient by a hand-written backward pass.

        Avoids autograd's graph bookkeeping, which dominates the cost of a
        Langevin step for small networks.
        """
        pre_activations = []
        h = x
        for layer in self.hidden:
            z = torch.addmm(layer.bias, h, layer.weight.t())
            pre_activations.append(z)
            h = F.silu(z)
        energy = torch.addmm(self.output.bias, h, self.output.weight.t()).squeeze(-1)
        grad = self.output.weight.expand(x.shape[0], -1)
        for layer, z in zip(reversed(self.hidden), reversed(pre_activations)):
            grad = torch.ops.aten.silu_backward(grad, z) @ layer.weight
        return energy, grad


class FourierFeatures(nn.Module):
    """Random Fourier features: ``x -> [x, sin(x W^T), cos(x W^T)]`` with fixed random frequencies ``W``.

    An MLP on raw coordinates learns smooth functions first and sharp ones
    slowly (its spectral bias): in a training budget of a few thousand updates
    it cannot learn an edge or a thin ring as a correction to a smooth density.
    Sinusoids of random frequencies as extra inputs remove that bias (Tancik
    et al., 2020). The frequencies are standard normal draws until
    :meth:`fit_bandwidth` divides each by a bandwidth per feature; the raw
    ``x`` stays among the outputs, so nothing is lost where the sinusoids
    do not help.

    Parameters
    ----------
    n_features : int
    n_frequencies : int, default=64
    generator : torch.Generator, default=None
        Draws the frequencies.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import FourierFeatures
    >>> features = FourierFeatures(2, n_frequencies=8, generator=torch.Generator().manual_seed(0))
    >>> features(torch.zeros(5, 2)).shape
    torch.Size([5, 18])
    """

    def __init__(self, n_features, n_frequencies=64, generator=None):
        super().__init__()
        device = None if generator is None else generator.device
        frequencies = torch.randn(n_frequencies, n_features, generator=generator, device=device)
        self.register_buffer("frequencies", frequencies)

    @torch.no_grad()
    def fit_bandwidth(self, X, widening=1.0):
        """Scale the frequencies to the rows ``X``: each feature's by its standard deviation times Scott's factor.

        Scott's factor ``n ** (-1 / (d + 4))`` is the bandwidth, in standard
        deviations, at which a Gaussian kernel density estimate of ``n`` rows in
        ``d`` dimensions balances bias against variance: the finest structure
        the rows can resolve. It shrinks as rows grow and tends to one as
        features grow, where the sinusoids become as smooth as the data.
        Frequencies drawn this way span the functions of a Gaussian kernel of
        that bandwidth (Rahimi & Recht, 2007); ``widening`` multiplies the
        bandwidth, for a network that can fit the rows more closely than a
        kernel density can and so needs smoother inputs to generalize.
        """
        n, d = X.shape
        spread = widening * np.where(X.std(0) > 0, X.std(0), 1.0) * n ** (-1.0 / (d + 4))
        self.frequencies /= torch.as_tensor(spread, dtype=self.frequencies.dtype, device=self.frequencies.device)

    def forward(self, x):
        angles = x @ self.frequencies.t()
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


class FourierMLPEnergy(nn.Module):
    """An :class:`MLPEnergy` reading :class:`FourierFeatures` of its input instead of the raw coordinates.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int, default=(128, 128)
    n_frequencies : int, default=64
    generator : torch.Generator, default=None
        Draws the frequencies and the initial weights.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import FourierMLPEnergy
    >>> energy = FourierMLPEnergy(2, hidden_layer_sizes=(16,), generator=torch.Generator().manual_seed(0))
    >>> energy(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    def __init__(self, n_features, hidden_layer_sizes=(128, 128), n_frequencies=64, generator=None):
        super().__init__()
        self.features = FourierFeatures(n_features, n_frequencies, generator)
        self.mlp = MLPEnergy(n_features + 2 * n_frequencies, hidden_layer_sizes, generator)

    @property
    def output(self):
        """The last layer (which a residual energy starts at zero)."""
        return self.mlp.output

    def forward(self, x):
        return self.mlp(self.features(x))


class ConvEnergy(nn.Module):
    """Convolutional energy of "Generative Deep Learning", chapter 7.

    Four stride-2 convolutions with 16, 32, 64 and 64 channels and swish
    activations, a dense layer of 64 units and a linear output. Rows are
    reshaped to ``image_shape`` on the way in.

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one image.
    channels : tuple of int, default=(16, 32, 64, 64)
        Output channels of the convolutions.
    dense_size : int, default=64
        Width of the dense layer.
    generator : torch.Generator, default=None
        Draws the initial weights (see :func:`initialized_layer`).

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import ConvEnergy
    >>> energy = ConvEnergy(image_shape=(1, 8, 8))
    >>> energy(torch.zeros(3, 64)).shape
    torch.Size([3])
    """

    def __init__(self, image_shape, channels=(16, 32, 64, 64), dense_size=64, generator=None):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        layers, in_channels = [], self.image_shape[0]
        height, width = self.image_shape[1:]
        for i, out_channels in enumerate(channels):
            kernel = 5 if i == 0 else 3
            conv = initialized_layer(nn.Conv2d, in_channels, out_channels, kernel, 2, kernel // 2, generator=generator)
            layers += [conv, nn.SiLU()]
            in_channels = out_channels
            # A stride-2 convolution padded by kernel // 2 (kernel odd) halves each side, rounding up.
            height, width = (height + 1) // 2, (width + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_flat = in_channels * height * width
        self.head = nn.Sequential(
            initialized_layer(nn.Linear, n_flat, dense_size, generator=generator),
            nn.SiLU(),
            initialized_layer(nn.Linear, dense_size, 1, generator=generator),
        )

    def forward(self, x):
        images = x.reshape(x.shape[0], *self.image_shape)
        return self.head(self.features(images)).squeeze(-1)


class QuadraticEnergy(nn.Module):
    """Gaussian energy ``1/2 (x - mean)^T P (x - mean)`` with a learnable precision.

    The precision ``P = L L^T`` is parametrized by a lower-triangular factor
    with a positive diagonal, so it stays positive definite. Its normalizer is
    known in closed form (:meth:`log_partition`), which makes it the reference
    energy for testing samplers, partition functions and estimators.

    Parameters
    ----------
    n_features : int
        Dimension of the rows.
    mean : array-like of shape (n_features,), default=None
        Initial mean (zeros when None).
    precision : array-like of shape (n_features, n_features), default=None
        Initial precision matrix (identity when None).

    Examples
    --------
    >>> from skebm.energies import QuadraticEnergy
    >>> energy = QuadraticEnergy(2)
    >>> round(energy.log_partition(), 4)  # log(2 pi)
    1.8379
    """

    def __init__(self, n_features, mean=None, precision=None):
        super().__init__()
        mean = torch.zeros(n_features) if mean is None else torch.as_tensor(mean)
        precision = torch.eye(n_features) if precision is None else torch.as_tensor(precision)
        factor = torch.linalg.cholesky(precision.double()).float()
        self.mean = nn.Parameter(mean.float().clone())
        self.off_diagonal = nn.Parameter(torch.tril(factor, -1))
        self.log_diagonal = nn.Parameter(torch.log(torch.diagonal(factor)))

    def cholesky_factor(self):
        """The lower-triangular factor ``L`` with ``P = L L^T``."""
        return torch.tril(self.off_diagonal, -1) + torch.diag(torch.exp(self.log_diagonal))

    def precision(self):
        """The precision matrix ``P``."""
        factor = self.cholesky_factor()
        return factor @ factor.t()

    def _whitened(self, x):
        factor = self.cholesky_factor().to(x.dtype)
        return (x - self.mean.to(x.dtype)) @ factor, factor

    def forward(self, x):
        centered, _ = self._whitened(x)
        return 0.5 * (centered * centered).sum(-1)

    @torch.no_grad()
    def energy_and_grad(self, x):
        """Energies and their input gradient in closed form: ``P (x - mean)``.

        As the base under a network this is called at every step of every
        chain, where autograd's bookkeeping cost more than the network's own
        hand-written pass on a table of 30 features.
        """
        centered, factor = self._whitened(x)
        return 0.5 * (centered * centered).sum(-1), centered @ factor.t()

    def log_partition(self):
        """Exact ``log Z = d/2 log(2 pi) - 1/2 log det P``."""
        d = self.mean.shape[0]
        return float(0.5 * d * math.log(2 * math.pi) - self.log_diagonal.detach().sum())


class GaussianMixtureEnergy(nn.Module):
    """``-log q(x)`` of a Gaussian mixture with full covariances, as a fixed torch energy.

    Built from a fitted scikit-learn ``GaussianMixture`` with
    :meth:`from_sklearn`; its parameters are buffers, not trained.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.mixture import GaussianMixture
    >>> from skebm.energies import GaussianMixtureEnergy
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> gmm = GaussianMixture(2, random_state=0).fit(X)
    >>> energy = GaussianMixtureEnergy.from_sklearn(gmm).double()
    >>> np.allclose(-energy(torch.tensor(X[:3])).numpy(), gmm.score_samples(X[:3]))
    True
    """

    def __init__(self, means, precisions_cholesky, weights):
        super().__init__()
        self.register_buffer("means", torch.as_tensor(means, dtype=torch.float32))
        self.register_buffer("precisions_cholesky", torch.as_tensor(precisions_cholesky, dtype=torch.float32))
        self.register_buffer("log_weights", torch.log(torch.as_tensor(weights, dtype=torch.float32)))

    @classmethod
    def from_sklearn(cls, gmm):
        """The energy of a fitted ``GaussianMixture`` with ``covariance_type="full"``."""
        if gmm.covariance_type != "full":
            raise ValueError(f"GaussianMixtureEnergy needs covariance_type='full'; got {gmm.covariance_type!r}.")
        return cls(gmm.means_, gmm.precisions_cholesky_, gmm.weights_)

    def _whitened_and_log_joint(self, x):
        # y_k = (x - mu_k) U_k with U_k U_k^T the precision: log N = log det U_k - |y_k|^2 / 2 - d/2 log 2 pi.
        # The K factors side by side make one (d, K d) matrix, so all the components take one matmul: at
        # every step of every chain under a base, einsum's batched route cost more than the network.
        n_components, d, _ = self.precisions_cholesky.shape
        factors = self.precisions_cholesky.permute(1, 0, 2).reshape(d, n_components * d)
        shifts = (self.means.unsqueeze(1) @ self.precisions_cholesky).reshape(1, n_components * d)
        y = torch.addmm(-shifts, x, factors).view(-1, n_components, d)
        log_det = torch.diagonal(self.precisions_cholesky, dim1=1, dim2=2).log().sum(-1)
        log_normal = log_det - 0.5 * (y * y).sum(-1) - 0.5 * d * math.log(2 * math.pi)
        return y, self.log_weights + log_normal, factors

    def forward(self, x):
        return -torch.logsumexp(self._whitened_and_log_joint(x)[1], dim=1)

    @torch.no_grad()
    def energy_and_grad(self, x):
        """Energies and their input gradient in closed form: ``sum_k r_k(x) P_k (x - mu_k)``.

        ``r_k`` are the components' responsibilities; no autograd graph is built.
        """
        if len(self.log_weights) == 1:  # one Gaussian (the base under a network): no responsibilities to weigh
            return self._gaussian_energy_and_grad(x)
        y, log_joint, factors = self._whitened_and_log_joint(x)
        log_density = torch.logsumexp(log_joint, dim=1)
        weighted = torch.exp(log_joint - log_density.unsqueeze(1)).unsqueeze(-1) * y
        return -log_density, weighted.reshape(len(x), -1) @ factors.t()

    def _gaussian_energy_and_grad(self, x):
        # grad = P (x - mu) and E = (x - mu).grad / 2 + const: one (n, d) x (d, d) product where the
        # whitened route takes two, which at 1,555 features is most of a chain step.
        centered = x - self.means[0]
        grad = centered @ self._precision()
        log_det = torch.diagonal(self.precisions_cholesky[0]).log().sum()
        constant = 0.5 * x.shape[1] * math.log(2 * math.pi) - log_det - self.log_weights[0]
        return 0.5 * (centered * grad).sum(-1) + constant, grad

    def _precision(self):
        """``P = U U^T`` of the one component, kept until the buffers change (loading, ``.to``)."""
        factor = self.precisions_cholesky[0]
        key = (factor.data_ptr(), factor._version, factor.dtype, factor.device)
        if getattr(self, "_precision_key", None) != key:
            self._precision_cache, self._precision_key = factor @ factor.T, key
        return self._precision_cache


class ConvolvedGaussianMixture(nn.Module):
    """A Gaussian mixture's energy after adding Gaussian noise of scale ``sigma``: ``E(x, sigma)``.

    Adding ``N(0, sigma^2 I)`` noise to rows of a mixture widens every
    component's covariance to ``C_k + sigma^2 I``, so the noisy density is
    known in closed form at every level. Each covariance is kept as its
    eigendecomposition ``U_k diag(lambda_k) U_k^T``: widening it only adds
    ``sigma^2`` to the eigenvalues, so rows at different levels cost one
    rotation per component and no factorization.

    Parameters
    ----------
    means : array-like of shape (n_components, n_features)
    covariances : array-like of shape (n_components, n_features, n_features)
    weights : array-like of shape (n_components,)
        Non-negative, summing to one; a component of weight zero is ignored
        (a placeholder that keeps the number of components fixed).

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import ConvolvedGaussianMixture
    >>> mixture = ConvolvedGaussianMixture([[0.0]], [[[1.0]]], [1.0])
    >>> # N(0, 1) with noise of scale 1 is N(0, 2): at 0 the energy is log(2 pi 2) / 2
    >>> round(float(mixture(torch.zeros(1, 1), torch.ones(1))), 4)
    1.2655
    """

    def __init__(self, means, covariances, weights):
        super().__init__()
        eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariances, dtype=np.float64))
        for name, value in [("means", means), ("eigenvectors", eigenvectors), ("eigenvalues", eigenvalues)]:
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=torch.float32))
        self.register_buffer("weights", torch.as_tensor(np.asarray(weights), dtype=torch.float32))

    @classmethod
    def from_sklearn(cls, gmm, n_components=None):
        """The mixture of a fitted full-covariance ``GaussianMixture``, padded with zero-weight components."""
        n_components = n_components or gmm.n_components
        pad = n_components - gmm.n_components
        n_features = gmm.means_.shape[1]
        means = np.concatenate([gmm.means_, np.zeros((pad, n_features))])
        identities = np.broadcast_to(np.eye(n_features), (pad, n_features, n_features))
        covariances = np.concatenate([gmm.covariances_, identities])
        return cls(means, covariances, np.concatenate([gmm.weights_, np.zeros(pad)]))

    def forward(self, x, sigma):
        variances = self.eigenvalues + sigma[:, None, None] ** 2  # (n, components, features)
        rotated = torch.einsum("nkd,kde->nke", x[:, None, :] - self.means, self.eigenvectors)
        log_normal = -0.5 * ((rotated * rotated) / variances + torch.log(2 * math.pi * variances)).sum(-1)
        return -torch.logsumexp(torch.log(self.weights) + log_normal, dim=-1)


class NoiseConditionalEnergy(nn.Module):
    """A learned energy of the data after Gaussian noise of scale ``sigma``: ``E(x, sigma)``.

    ``E(x, sigma) = base(x, sigma) + network(features(x / c), log sigma) / sigma``
    with ``c = sqrt(sigma^2 + scale^2)``. Each part is there for a reason:

    - the base, a :class:`ConvolvedGaussianMixture` fitted to the data, is
      exact at large ``sigma`` (where the noisy data are nearly Gaussian) and
      carries the relative mass of separated modes at every level; the
      network, whose output layer starts at zero, learns only the correction;
    - dividing by ``c`` gives the network inputs of about unit spread at
      every level (Karras et al., 2022), and dividing its output by ``sigma``
      lets it predict the noise, ``sigma`` times the score, which has unit
      scale at every level (Song & Ermon, 2020);
    - Fourier features (:class:`FourierFeatures`) let the correction carve
      edges and thin shapes that a smooth MLP learns only slowly. Their
      bandwidth is twice Scott's: on ``n`` rows the denoising target at a
      small ``sigma`` is the score of the rows' own kernel density at that
      bandwidth, and at Scott's the network learned the training rows
      rather than their density (see ``fit_scale``).

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
    base : ConvolvedGaussianMixture, default=None
        None: no base, the network is the whole energy.
    n_frequencies : int, default=64
        Fourier frequencies; 0 feeds the network the scaled coordinates alone.
    generator : torch.Generator, default=None

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import NoiseConditionalEnergy
    >>> energy = NoiseConditionalEnergy(2, (16,), generator=torch.Generator().manual_seed(0))
    >>> energy(torch.zeros(5, 2), torch.full((5,), 0.1)).shape
    torch.Size([5])
    """

    def __init__(self, n_features, hidden_layer_sizes=(128, 128, 128), base=None, n_frequencies=64, generator=None):
        super().__init__()
        self.base = base
        self.features = FourierFeatures(n_features, n_frequencies, generator) if n_frequencies else nn.Identity()
        self.network = MLPEnergy(n_features + 2 * n_frequencies + 1, hidden_layer_sizes, generator)
        self.register_buffer("scale", torch.ones(()))
        if base is not None:  # the correction starts at zero: training starts from the base
            nn.init.zeros_(self.network.output.weight)
            nn.init.zeros_(self.network.output.bias)

    @torch.no_grad()
    def fit_scale(self, X):
        """Set ``scale`` to the rows' root mean feature variance, and the Fourier bandwidth to the scaled rows.

        The bandwidth is twice Scott's (``_MULTILEVEL_BANDWIDTH_WIDENING``).
        At Scott's, a fit of 5,000 rings rows came within 0.03 nats of the
        true density on its training rows and 0.10 on fresh ones; at twice
        Scott's, 0.01 and 0.06 (see the README's multilevel benchmark for
        the shapes it was chosen on and those held out).
        """
        self.scale.fill_(float(np.sqrt(np.mean(np.var(X, axis=0)))) or 1.0)
        if isinstance(self.features, FourierFeatures):
            self.features.fit_bandwidth(X / float(self.scale), _MULTILEVEL_BANDWIDTH_WIDENING)

    def forward(self, x, sigma):
        scaled = x / torch.sqrt(sigma[:, None] ** 2 + self.scale**2)
        inputs = torch.cat([self.features(scaled), torch.log(sigma)[:, None]], dim=-1)
        energy = self.network(inputs) / sigma
        return energy if self.base is None else energy + self.base(x, sigma)


class ProbabilityFlowEnergy(nn.Module):
    """``-log p(x)`` of the data smoothed at ``sigma_min``, by the probability-flow ODE of a noise-conditional energy.

    Noise added at a growing scale ``sigma`` moves the density along
    ``dx / dsigma = sigma grad_x E(x, sigma)``, an ODE whose flow carries
    ``p_sigma_min`` to ``p_sigma_max`` (Song et al., 2021). With ``t = log
    sigma`` the field is ``f = sigma^2 grad E``, the log-density changes by
    ``-div f = -sigma^2 laplacian E`` along each path (the instantaneous
    change of variables), and at ``sigma_max`` the smoothed data are the
    Gaussian with the data's mean and covariance plus ``sigma_max^2 I``. So

    ``log p(x) = log N(x(sigma_max)) + integral sigma^2 laplacian E(x(t), sigma) dt``,

    integrated by the classical Runge-Kutta rule on ``n_steps`` steps. The
    density is normalized by construction (``log Z = 0``), and each path
    follows the data as they are smoothed, so the energy is only read where
    training put noisy rows, and separated modes keep the relative mass they
    have at the large levels. The Laplacian is exact: one backward pass per
    feature per evaluation.

    Parameters
    ----------
    conditional : NoiseConditionalEnergy
        Or any module mapping ``(x, sigma)`` to energies.
    n_features : int
    n_steps : int, default=16
        Runge-Kutta steps. The rule's error falls as ``n_steps^-4``: on the
        exact eight-Gaussians energy over 3.3 decades of ``sigma`` the mean
        log-density is off by 0.002 nats at 16 steps and 0.0001 at 32, and a
        fitted model's test log-likelihood moves by 0.001 from 16 to 32.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import ConvolvedGaussianMixture, ProbabilityFlowEnergy
    >>> point = ConvolvedGaussianMixture([[0.0]], [[[1e-12]]], [1.0])   # noisy data at 0: N(0, sigma^2)
    >>> flow = ProbabilityFlowEnergy(point, 1)
    >>> flow.set_levels(0.1, 10.0, mean=[0.0], covariance=[[0.0]])
    >>> round(float(flow(torch.zeros(1, 1))), 4) == round(0.5 * math.log(2 * math.pi * 0.01), 4)
    True
    """

    def __init__(self, conditional, n_features, n_steps=16):
        super().__init__()
        self.conditional, self.n_steps = conditional, n_steps
        self.register_buffer("levels", torch.ones(2))  # sigma_min, sigma_max
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("covariance", torch.eye(n_features))

    @torch.no_grad()
    def set_levels(self, sigma_min, sigma_max, mean, covariance):
        """The range of noise levels, and the data's moments that fix the Gaussian at ``sigma_max``."""
        self.levels.copy_(torch.as_tensor([sigma_min, sigma_max]))
        self.mean.copy_(torch.as_tensor(np.asarray(mean)))
        self.covariance.copy_(torch.as_tensor(np.asarray(covariance)))

    def _field(self, x, log_sigma, with_laplacian=True):
        """``sigma^2 grad E`` and ``sigma^2 laplacian E`` (None without ``with_laplacian``) at ``x``, one level."""
        sigma = torch.exp(log_sigma).expand(x.shape[0])
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            energy = self.conditional(x, sigma).sum()
            (grad,) = torch.autograd.grad(energy, x, create_graph=with_laplacian)
            if not with_laplacian:
                return sigma[:, None] ** 2 * grad.detach(), None
            laplacian = sum(
                torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1])
            )
        return sigma[:, None] ** 2 * grad.detach(), sigma**2 * laplacian.detach()

    def _integrate(self, x, start, stop, with_laplacian=True, callback=None):
        """Runge-Kutta from ``log sigma = start`` to ``stop``: the rows' ends and the Laplacian term's integral."""
        h = (stop - start) / self.n_steps
        change = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(self.n_steps):
            t = start + i * h
            k1, l1 = self._field(x, t, with_laplacian)
            k2, l2 = self._field(x + 0.5 * h * k1, t + 0.5 * h, with_laplacian)
            k3, l3 = self._field(x + 0.5 * h * k2, t + 0.5 * h, with_laplacian)
            k4, l4 = self._field(x + h * k3, t + h, with_laplacian)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            if with_laplacian:
                change = change + h / 6 * (l1 + 2 * l2 + 2 * l3 + l4)
            if callback is not None:
                callback(i, x)
        return x, change

    def forward(self, x):
        x, change = self._integrate(x, torch.log(self.levels[0]), torch.log(self.levels[1]))
        return -(self._endpoint_log_density(x) + change)

    @torch.no_grad()
    def transport(self, z, callback=None):
        """Rows drawn from the Gaussian of the largest level, carried down the ODE: draws from this density.

        The map that defines the density, run backwards: ``z`` drawn from
        ``N(mean, covariance + sigma_max^2 I)`` (:meth:`draw_endpoint`) lands
        distributed as ``exp(-forward(x))``, up to the Runge-Kutta error. No
        Laplacian is needed, so a step costs one backward pass.

        Parameters
        ----------
        z : torch.Tensor of shape (n, n_features)
        callback : callable, default=None
            Called as ``callback(step, rows)`` after each Runge-Kutta step.

        Returns
        -------
        x : torch.Tensor of shape (n, n_features)

        Examples
        --------
        >>> import torch
        >>> from skebm.energies import ConvolvedGaussianMixture, ProbabilityFlowEnergy
        >>> point = ConvolvedGaussianMixture([[0.0]], [[[1e-12]]], [1.0])   # noisy data at 0: N(0, sigma^2)
        >>> flow = ProbabilityFlowEnergy(point, 1).double()
        >>> flow.set_levels(0.1, 10.0, mean=[0.0], covariance=[[0.0]])
        >>> x = flow.transport(flow.draw_endpoint(20000, torch.Generator().manual_seed(0)))
        >>> round(float(x.std()), 2)   # the density at sigma_min: N(0, 0.1^2)
        0.1
        """
        return self._integrate(z, torch.log(self.levels[1]), torch.log(self.levels[0]), False, callback)[0]

    def draw_endpoint(self, n, generator=None):
        """``n`` rows of the Gaussian at the largest level, where the ODE starts its draws and ends its paths."""
        covariance = self._endpoint_covariance()
        noise = torch.randn(n, len(self.mean), generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + noise @ torch.linalg.cholesky(covariance).T

    def _endpoint_covariance(self):
        eye = torch.eye(len(self.mean), dtype=self.mean.dtype, device=self.mean.device)
        return self.covariance + self.levels[1] ** 2 * eye

    def _endpoint_log_density(self, x):
        return torch.distributions.MultivariateNormal(self.mean, self._endpoint_covariance()).log_prob(x)


class ResidualEnergy(nn.Module):
    """A fixed base energy plus a learned correction: ``E(x) = base(x) + network(x)``.

    With the base a density fitted to the data, the network only learns where
    the data depart from it, and training starts from that density.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import MLPEnergy, QuadraticEnergy, ResidualEnergy
    >>> energy = ResidualEnergy(MLPEnergy(2, (8,)), QuadraticEnergy(2))
    >>> energy(torch.zeros(3, 2)).shape
    torch.Size([3])
    """

    def __init__(self, network, base):
        super().__init__()
        self.network, self.base = network, base
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        if isinstance(network, (MLPEnergy, FourierMLPEnergy)):  # the correction starts at zero: from the base
            nn.init.zeros_(network.output.weight)
            nn.init.zeros_(network.output.bias)

    def forward(self, x):
        return self.network(x) + self.base(x)

    def energy_and_grad(self, x):
        """Energies and input gradients, each part by its fast path when it has one."""
        from .samplers import energy_and_grad

        network_energy, network_grad = energy_and_grad(self.network, x)
        base_energy, base_grad = energy_and_grad(self.base, x)
        return network_energy + base_energy, network_grad + base_grad


class BoxedEnergy(nn.Module):
    """An energy confined to a box: the network inside, a quadratic wall outside.

    Chains are kept inside the box ``[low, high]`` while training (the data
    range, widened a little). Outside it the network was never trained, so
    the wall ``|distance outside the box|^2 / (2 w^2)``, with ``w`` 5% of the
    box's width, is added: it leaves the energy unchanged inside the box and
    makes ``exp(-E)`` integrable over all of space, so that ``log Z`` and the
    log-likelihood of points outside the box are well defined.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(n, d)`` to ``(n,)``.
    low, high : array-like of shape (d,)
        Corners of the box.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import BoxedEnergy, MLPEnergy
    >>> energy = BoxedEnergy(MLPEnergy(2, (8,)), low=[-1, -1], high=[1, 1])
    >>> energy(torch.zeros(4, 2)).shape
    torch.Size([4])
    """

    def __init__(self, network, low, high):
        super().__init__()
        self.network = network
        low = torch.as_tensor(low, dtype=torch.float32)
        high = torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.register_buffer("wall_width", 0.05 * (high - low))

    def _excess(self, x):
        return (x - torch.clamp(x, self.low, self.high)) / self.wall_width

    def forward(self, x):
        return self.network(x) + self.wall(x)

    def wall(self, x):
        """The wall's part of the energy: zero inside the box."""
        excess = self._excess(x)
        return 0.5 * (excess * excess).sum(-1)

    def energy_and_grad(self, x):
        """Energies and input gradients, using the network's fast path when it has one."""
        from .samplers import energy_and_grad

        energies, grad = energy_and_grad(self.network, x)
        excess = self._excess(x)
        return energies + 0.5 * (excess * excess).sum(-1), torch.addcdiv(grad, excess, self.wall_width)

    def bounds(self):
        """``(low, high)`` tensors, for the samplers."""
        return self.low, self.high

    def support_box(self):
        """A box holding all but a negligible part of the mass: five wall widths past the data box."""
        margin = 5.0 * self.wall_width
        return (self.low - margin).cpu().numpy(), (self.high + margin).cpu().numpy()

    def uniform_noise(self, n, generator):
        """``n`` points uniform in the box: the fresh starts of chains."""
        u = torch.rand(n, self.low.shape[0], generator=generator, device=self.low.device)
        return self.low + u * (self.high - self.low)


class CategoricalGroups(NamedTuple):
    """Visible units in one-hot groups: each group is one categorical feature.

    The units of feature ``j`` are the ``sizes[j]`` consecutive columns after
    those of the features before it; exactly one of them is on. Group-wise
    operations pad the groups to the largest size, so that every group is
    handled by the same few tensor operations, whatever the number of
    features.

    Parameters
    ----------
    sizes : tuple of int
        Categories of each feature, in column order.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import CategoricalGroups
    >>> groups = CategoricalGroups((2, 3))
    >>> groups.softmax(torch.zeros(1, 5)).tolist()
    [[0.5, 0.5, 0.3333333432674408, 0.3333333432674408, 0.3333333432674408]]
    """

    sizes: tuple

    @property
    def n_units(self):
        return sum(self.sizes)

    def padded_index(self, device):
        """``(n_groups, largest size)`` column of each group's units; padding points one past the last unit."""
        return _group_layout(self.sizes, torch.device(device))[0]

    def _padded(self, x, fill):
        """``x`` of shape ``(n, n_units)`` as ``(n, n_groups, largest size)``, the padding set to ``fill``."""
        index = self.padded_index(x.device)
        wide = torch.cat([x, x.new_full((x.shape[0], 1), fill)], 1)
        return wide[:, index]

    def softmax(self, x):
        """Softmax over the units of each group."""
        index = self.padded_index(x.device)
        probabilities = self._padded(x, -math.inf).softmax(-1)
        out = x.new_empty(x.shape[0], x.shape[1] + 1)
        out[:, index] = probabilities  # the padding all lands in the spare last column
        return out[:, :-1]

    def logsumexp(self, x):
        """``sum over groups of log sum over a group's units of exp(x)``, per row."""
        return torch.logsumexp(self._padded(x, -math.inf), -1).sum(-1)

    def sample(self, logits, uniform):
        """One-hot draws from each group's softmax of ``logits``, given one uniform number per row and group."""
        index, sizes = _group_layout(self.sizes, logits.device)
        # Softmax and cumulative sums in the padded layout, without going back to the flat one between.
        cumulative = self._padded(logits, -math.inf).softmax(-1).cumsum(-1)
        # The first unit whose cumulative probability reaches u; rounding can leave the last short of 1.
        chosen = (cumulative < uniform.unsqueeze(-1)).sum(-1).clamp_(max=sizes - 1)
        on = index.gather(1, chosen.T).T  # (n, n_groups) columns
        return logits.new_zeros(logits.shape).scatter_(1, on, 1.0)

    def argmax(self, v):
        """The index of the largest unit of each group, as ``(n, n_groups)``."""
        return self._padded(v, -math.inf).argmax(-1)

    # The visible-unit interface shared with _BernoulliUnits and _GaussianUnits (see RBMParams.units).
    enumerable = False

    def energy(self, v, bias):
        return -torch.linalg.vecdot(v, bias)

    def mean(self, pre):
        return self.softmax(pre)

    def log_sum_out(self, pre, bias):
        return self.logsumexp(pre)  # one category of each group is on

    def bias_for_mean(self, mean):
        return torch.log(mean.clamp(min=1e-3))  # a group's softmax of log-frequencies gives back the frequencies


@functools.lru_cache(maxsize=32)
@torch.inference_mode(False)  # plain tensors, even when first asked for in training: autograd may index with them
def _group_layout(sizes, device):
    """The padded index of :meth:`CategoricalGroups.padded_index` and the sizes, as tensors on ``device``."""
    largest, n_units = max(sizes), sum(sizes)
    index = torch.full((len(sizes), largest), n_units, dtype=torch.long)
    start = 0
    for group, size in enumerate(sizes):
        index[group, :size] = torch.arange(start, start + size)
        start += size
    return index.to(device), torch.as_tensor(sizes, device=device)


class _BernoulliUnits:
    """Binary visible units, ``E_v(v) = -b.v``: the pieces of an RBM's maths that depend on the unit type.

    The same interface as :class:`CategoricalGroups` and :class:`_GaussianUnits`, so
    that free energies, Gibbs steps, exact and AIS log Z and tempering are each
    written once, for every unit type. ``bias`` may be broadcast against ``v``
    (tempering stacks one bias per temperature).
    """

    enumerable = True  # the visible states can be enumerated for exact log Z

    def energy(self, v, bias):
        """The visible units' own energy, the part of ``E(v, h)`` that does not involve ``h``."""
        return -torch.linalg.vecdot(v, bias)

    def mean(self, pre):
        """``E[v | h]`` from the inputs ``pre = b + W^T h`` (overwritten)."""
        return pre.sigmoid_()

    def log_sum_out(self, pre, bias):
        """``log sum_v exp(-energy(v, bias) + v.(pre - bias))``: the visible layer summed out given ``h``."""
        return F.softplus(pre).sum(-1)

    def bias_for_mean(self, mean):
        """The biases of independent units with these means: AIS's base-rate model."""
        mean = mean.clamp(1e-3, 1 - 1e-3)  # as if each unit had been seen on and off at least once
        return torch.log(mean) - torch.log1p(-mean)


class _GaussianUnits:
    """Real-valued visible units of unit variance, ``E_v(v) = |v - b|^2 / 2`` (see :class:`_BernoulliUnits`)."""

    enumerable = False

    def energy(self, v, bias):
        return 0.5 * ((v - bias) ** 2).sum(-1)

    def mean(self, pre):
        return pre

    def log_sum_out(self, pre, bias):
        # The Gaussian integral of exp(-|v - b|^2 / 2 + v.W^T h), with pre = b + W^T h.
        n_visible = pre.shape[-1]
        return 0.5 * (pre * pre).sum(-1) - 0.5 * (bias * bias).sum(-1) + 0.5 * n_visible * math.log(2 * math.pi)

    def bias_for_mean(self, mean):
        return mean


_UNITS = {"bernoulli": _BernoulliUnits(), "gaussian": _GaussianUnits()}


class RBMParams(NamedTuple):
    """The tensors of a restricted Boltzmann machine and the maths on them.

    The joint energy is ``E(v, h) = -b.v - c.h - h.W.v`` for Bernoulli visible
    units, and for categorical ones (one-hot groups, given by ``groups``), and
    ``E(v, h) = |v - b|^2 / 2 - c.h - h.W.v`` for Gaussian ones (unit
    variance: standardize the data). A plain tuple rather than a module, so
    that annealed importance sampling can build the tempered RBMs it walks
    through without copying any module.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMParams
    >>> rbm = RBMParams(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2))
    >>> rbm.hidden_probability(torch.ones(1, 2)).tolist()
    [[0.5, 0.5, 0.5]]
    """

    weight: torch.Tensor  # (n_hidden, n_visible)
    hidden_bias: torch.Tensor
    visible_bias: torch.Tensor
    visible: str = "bernoulli"  # or "categorical", or "gaussian"
    groups: CategoricalGroups = None  # the one-hot groups of categorical units

    def hidden_logits(self, v):
        return torch.addmm(self.hidden_bias, v, self.weight.T)

    def hidden_probability(self, v):
        """``P(h_j = 1 | v)``."""
        return self.hidden_logits(v).sigmoid_()

    @property
    def units(self):
        """The visible unit type's maths: energy, mean, summing out, base rates."""
        return self.groups if self.visible == "categorical" else _UNITS[self.visible]

    def visible_mean(self, h):
        """``E[v | h]``: probabilities (of each unit, or of each category in its group), or the Gaussian's mean."""
        return self.units.mean(torch.addmm(self.visible_bias, h, self.weight))

    def visible_term(self, v):
        """The part of the free energy that does not involve the hidden units."""
        return self.units.energy(v, self.visible_bias)

    def free_energy(self, v):
        """``F(v) = -log sum_h exp(-E(v, h))``, so that ``p(v) = exp(-F(v)) / Z``."""
        return self.visible_term(v) - F.softplus(self.hidden_logits(v)).sum(-1)

    def joint_energy(self, v, h):
        """``E(v, h)``, for checks by brute force."""
        return self.visible_term(v) - h @ self.hidden_bias - (h @ self.weight * v).sum(-1)

    def tempered(self, beta, base_visible_bias):
        """The RBM at inverse temperature ``beta`` on the path from a base-rate model.

        Weights and hidden biases are scaled by ``beta``; the visible bias moves
        from ``base_visible_bias`` (``beta=0``: independent visible units) to
        this RBM's (``beta=1``). Salakhutdinov & Murray (2008), section 3.
        """
        visible_bias = (1 - beta) * base_visible_bias + beta * self.visible_bias
        return self._replace(weight=beta * self.weight, hidden_bias=beta * self.hidden_bias, visible_bias=visible_bias)

    def detached(self, dtype=None, device=None):
        """The same RBM with its tensors detached (and moved), for computations outside training."""
        tensors = (t.detach().to(device=device, dtype=dtype) for t in self[:3])
        return self._replace(**dict(zip(("weight", "hidden_bias", "visible_bias"), tensors, strict=True)))


class RBMEnergy(nn.Module):
    """A restricted Boltzmann machine whose energy is the free energy of the visible units.

    Parameters
    ----------
    n_visible, n_hidden : int
    visible : {"bernoulli", "categorical", "gaussian"}, default="bernoulli"
        Binary visible units, one-hot groups of them (``groups``), or
        real-valued ones with unit variance.
    generator : torch.Generator, default=None
        Draws the initial weights; ``None`` uses torch's global stream.
    groups : tuple of int, default=None
        For ``visible="categorical"``: the number of units of each group, in
        column order, summing to ``n_visible``.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import RBMEnergy
    >>> rbm = RBMEnergy(6, 4)
    >>> rbm(torch.ones(2, 6)).shape
    torch.Size([2])
    """

    def __init__(self, n_visible, n_hidden, visible="bernoulli", generator=None, groups=None):
        super().__init__()
        # Small random weights break the symmetry between hidden units (Hinton, 2010).
        device = None if generator is None else generator.device
        self.weight = nn.Parameter(0.01 * torch.randn(n_hidden, n_visible, generator=generator, device=device))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.visible = visible
        self.groups = None
        if visible == "categorical":
            self.groups = CategoricalGroups(tuple(int(size) for size in groups))
            if self.groups.n_units != n_visible or min(self.groups.sizes) < 1:
                raise ValueError(f"groups {self.groups.sizes} must be positive sizes that sum to n_visible={n_visible}")

    def params(self):
        """The parameters as an :class:`RBMParams`."""
        return RBMParams(self.weight, self.hidden_bias, self.visible_bias, self.visible, self.groups)

    def forward(self, v):
        return self.params().free_energy(v)


class BoltzmannParams(NamedTuple):
    """The tensors of a Boltzmann machine with visible-visible couplings, and the maths on them.

    The joint energy of binary visible units ``v`` and hidden units ``h`` is
    ``E(v, h) = -b.v - v.C.v / 2 - c.h - h.W.v`` with ``C`` symmetric and zero
    on the diagonal. The hidden units are still independent given the visible
    ones (a semi-restricted Boltzmann machine, Osindero & Hinton 2008), so the
    free energy is exact; the visible units given the hidden ones are not.

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import BoltzmannParams
    >>> bm = BoltzmannParams(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    >>> bm.free_energy(torch.tensor([[1.0, 1.0]])) + 3 * torch.log(torch.tensor(2.0))  # the coupling: -1
    tensor([-1.])
    """

    weight: torch.Tensor  # (n_hidden, n_visible)
    hidden_bias: torch.Tensor
    visible_bias: torch.Tensor
    coupling: torch.Tensor  # (n_visible, n_visible), symmetric, zero diagonal

    visible = "bernoulli"
    units = _UNITS["bernoulli"]

    def hidden_logits(self, v):
        return torch.addmm(self.hidden_bias, v, self.weight.T)

    def hidden_probability(self, v):
        """``P(h_j = 1 | v)``."""
        return self.hidden_logits(v).sigmoid_()

    def free_energy(self, v):
        """``F(v) = -log sum_h exp(-E(v, h))``."""
        return (
            -(v @ self.visible_bias)
            - 0.5 * ((v @ self.coupling) * v).sum(-1)
            - F.softplus(self.hidden_logits(v)).sum(-1)
        )

    def joint_energy(self, v, h):
        """``E(v, h)``, for checks by brute force."""
        visible = v @ self.visible_bias + 0.5 * ((v @ self.coupling) * v).sum(-1)
        return -visible - h @ self.hidden_bias - (h @ self.weight * v).sum(-1)

    def tempered(self, beta, base_visible_bias):
        """The machine at inverse temperature ``beta`` on the path from independent visible units.

        As :meth:`RBMParams.tempered`, with the couplings scaled by ``beta`` too.
        """
        visible_bias = (1 - beta) * base_visible_bias + beta * self.visible_bias
        return BoltzmannParams(beta * self.weight, beta * self.hidden_bias, visible_bias, beta * self.coupling)


class BoltzmannEnergy(nn.Module):
    """A Boltzmann machine with visible-visible couplings; its energy is the free energy of ``v``.

    Parameters
    ----------
    n_visible, n_hidden : int
    generator : torch.Generator, default=None
        Draws the initial weights (the couplings start at zero).

    Examples
    --------
    >>> import torch
    >>> from skebm.energies import BoltzmannEnergy
    >>> BoltzmannEnergy(6, 4)(torch.ones(2, 6)).shape
    torch.Size([2])
    """

    def __init__(self, n_visible, n_hidden, generator=None):
        super().__init__()
        device = None if generator is None else generator.device
        self.weight = nn.Parameter(0.01 * torch.randn(n_hidden, n_visible, generator=generator, device=device))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.coupling = nn.Parameter(torch.zeros(n_visible, n_visible))

    def params(self):
        """The parameters as a :class:`BoltzmannParams`."""
        return BoltzmannParams(self.weight, self.hidden_bias, self.visible_bias, self.coupling)

    def forward(self, v):
        return self.params().free_energy(v)


def shrunk_gaussian_energy(X):
    """``-log q`` of the Gaussian with the data's mean and the Ledoit-Wolf shrunk covariance.

    Shrinking the sample covariance towards a multiple of the identity, by the
    amount that minimizes the expected squared error (Ledoit & Wolf, 2004),
    keeps the precision well conditioned when the rows are few for the
    features, where the sample covariance would make every new row look far;
    1e-6 is added to the variances, as ``GaussianMixture``'s ``reg_covar`` does.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skebm.energies import shrunk_gaussian_energy
    >>> X = np.random.default_rng(0).normal(size=(50, 40))  # fewer rows than a covariance needs
    >>> energy = shrunk_gaussian_energy(X)
    >>> bool(torch.isfinite(energy(torch.zeros(1, 40))).all())
    True
    """
    fitted = LedoitWolf().fit(X)
    # As GaussianMixture's reg_covar: constant data (no spread to shrink towards) stays a density.
    covariance = fitted.covariance_ + 1e-6 * np.eye(X.shape[1])
    precision_cholesky = np.linalg.cholesky(np.linalg.inv(covariance))
    return GaussianMixtureEnergy(fitted.location_[None], precision_cholesky[None], np.ones(1))
