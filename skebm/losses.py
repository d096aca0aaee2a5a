"""Training losses: pure functions, tensors in, a scalar tensor out."""

import math

import torch
from torch.nn import functional as F

# Up to this many features the Hessian trace is computed (one backward pass per feature); above,
# estimated by random projections, at a cost that does not grow with the features.
EXACT_TRACE_MAX_FEATURES = 16

__all__ = [
    "contrastive_divergence_loss",
    "denoising_score_matching_loss",
    "exact_score_matching_loss",
    "generator_loss",
    "hyvarinen_score",
    "multilevel_denoising_score_matching_loss",
    "nce_loss",
    "sliced_score_matching_loss",
]


def contrastive_divergence_loss(real_energy, fake_energy, alpha, fake_weights=None):
    """Contrastive divergence with an energy-magnitude penalty.

    ``mean E(real) - mean E(fake) + alpha * mean(E(real)^2 + E(fake)^2)``.

    The first two terms are the maximum-likelihood gradient estimate when the
    fake samples come from the model: lower the energy of data, raise it where
    the model puts mass that data does not. The penalty keeps energies near
    zero, which stops the unbounded drift of the contrast that otherwise makes
    training diverge ("Generative Deep Learning", chapter 7; Du & Mordatch 2019).

    Fakes drawn from another density ``q`` with known log-density give the
    same estimate when each is weighted by ``exp(-E(x) - log q(x))``,
    normalized to sum to one (self-normalized importance sampling): the
    means over fakes become weighted sums.

    Parameters
    ----------
    real_energy : torch.Tensor of shape (n,)
    fake_energy : torch.Tensor of shape (m,)
    alpha : float
        Weight of the penalty.
    fake_weights : torch.Tensor of shape (m,), default=None
        Weights of the fakes summing to one, held fixed (no gradient
        through them); None weighs them equally.

    Returns
    -------
    loss : torch.Tensor
        Scalar loss.
    parts : dict of torch.Tensor
        ``cdiv`` (the contrast) and ``reg`` (the weighted penalty).

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import contrastive_divergence_loss
    >>> loss, parts = contrastive_divergence_loss(torch.zeros(4), torch.ones(4), alpha=0.1)
    >>> round(float(loss), 6), round(float(parts["cdiv"]), 6), round(float(parts["reg"]), 6)
    (-0.9, -1.0, 0.1)
    """
    if fake_weights is None:
        fake_weights = torch.full_like(fake_energy, 1.0 / len(fake_energy))
    cdiv = real_energy.mean() - (fake_weights * fake_energy).sum()
    reg = alpha * ((real_energy**2).mean() + (fake_weights * fake_energy**2).sum())
    return cdiv + reg, {"cdiv": cdiv, "reg": reg}


def generator_loss(fake_energy, fake_log_density):
    """The loss of a sampler with a known density: ``mean(E(x) + log q(x))`` over its draws ``x ~ q``.

    For any density ``q``, ``E_q[-E(x) - log q(x)] = log Z - KL(q || p)`` with
    ``p = exp(-E) / Z``: minus this loss is a lower bound on ``log Z``, and
    minimizing it over ``q`` minimizes ``KL(q || p)``, the energy's samples'
    distance from the model. The ``log q`` term is minus the sampler's
    entropy: without it the sampler collapses onto the energy's minimum
    (Kumar et al., 2019; Grathwohl et al., 2021). The draws must be
    reparameterized (differentiable in the sampler's weights) and the energy
    held fixed while this loss is minimized.

    Parameters
    ----------
    fake_energy : torch.Tensor of shape (n,)
        Energies of the sampler's draws.
    fake_log_density : torch.Tensor of shape (n,)
        The sampler's log-density at its draws.

    Returns
    -------
    loss : torch.Tensor
        Scalar: ``KL(q || p) - log Z``, estimated from the draws.

    Examples
    --------
    >>> import math
    >>> import torch
    >>> from skebm.losses import generator_loss
    >>> x = torch.randn(100_000, 1, generator=torch.Generator().manual_seed(0))
    >>> log_q = -0.5 * x[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
    >>> # q is exactly p = N(0, 1) with E = x^2 / 2, so the loss is -log Z = -log sqrt(2 pi)
    >>> round(float(generator_loss(0.5 * x[:, 0] ** 2, log_q)), 3) == round(-0.5 * math.log(2 * math.pi), 3)
    True
    """
    return (fake_energy + fake_log_density).mean()


def hyvarinen_score(energy, x, n_projections=None, generator=None, create_graph=False):
    """Hyvarinen score of each row: ``1/2 |grad E(x)|^2 - tr(Hessian E(x))``.

    Integration by parts turns the Fisher divergence between data and model
    into the data mean of this quantity, plus a constant that does not depend
    on the model (Hyvarinen, 2005): lower is better, and ``Z`` never appears.
    With ``n_projections=None`` the trace is exact (one backward pass per
    feature); otherwise it is Hutchinson's estimate ``E_v[v^T H v]`` with
    Rademacher ``v``, one Hessian-vector product per projection.

    Parameters
    ----------
    energy : callable
        Maps ``(n, d)`` to ``(n,)``.
    x : torch.Tensor of shape (n, d)
    n_projections : int, default=None
    generator : torch.Generator, default=None
    create_graph : bool, default=False
        Keep the graph, to differentiate the score with respect to parameters.

    Returns
    -------
    scores : torch.Tensor of shape (n,)

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import hyvarinen_score
    >>> x = torch.zeros(3, 2)
    >>> hyvarinen_score(lambda x: 0.5 * (x**2).sum(-1), x).tolist()   # 0 - trace(I)
    [-2.0, -2.0, -2.0]
    """
    with torch.enable_grad():
        x, grad = _input_gradient(energy, x)
        if n_projections is None:
            trace = _hessian_trace(grad, x)
        else:
            trace = _projected_curvature(grad, x, n_projections, "rademacher", generator)[0]
        scores = 0.5 * (grad * grad).sum(-1) - trace
    return scores if create_graph else scores.detach()


def _input_gradient(energy, x):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(x).sum(), x, create_graph=True)
    return x, grad


def _hessian_trace(grad, x):
    """``tr(H)`` for every row at once: one backward pass per feature, none per row."""
    return sum(torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(x.shape[1]))


def _projected_curvature(grad, x, n_projections, projection, generator):
    """Mean over projections of ``v^T H v`` and of ``(v . grad)^2``, per row."""
    curvature, slope = 0.0, 0.0
    for _ in range(n_projections):
        if projection == "rademacher":
            v = torch.randint(0, 2, x.shape, generator=generator, device=x.device).to(x.dtype) * 2 - 1
        else:
            v = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        (hv,) = torch.autograd.grad((grad * v).sum(), x, create_graph=True)
        curvature = curvature + (hv * v).sum(-1) / n_projections
        slope = slope + (grad * v).sum(-1) ** 2 / n_projections
    return curvature, slope


def exact_score_matching_loss(energy, x):
    """Score matching with the exact Hessian trace (Hyvarinen, 2005).

    The Fisher divergence ``1/2 E_data |grad log p_data - grad log p|^2``
    contains the unknown data score; integrating by parts (the density
    vanishing at infinity) leaves, up to a constant,
    ``E_data[1/2 |grad E(x)|^2 - tr(Hessian E(x))]``. The trace costs one
    backward pass per feature, batched over the rows: practical up to a few
    dozen features, after which the sliced and denoising forms take over.

    Parameters
    ----------
    energy : callable
        Maps ``(n, d)`` to ``(n,)``.
    x : torch.Tensor of shape (n, d)

    Returns
    -------
    loss : torch.Tensor
        Scalar, differentiable with respect to the energy's parameters.

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import exact_score_matching_loss
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> float(exact_score_matching_loss(lambda x: 0.5 * (x**2).sum(-1), x).detach())   # 1/2 * 1 - 2
    -1.5
    """
    return hyvarinen_score(energy, x, create_graph=True).mean()


def sliced_score_matching_loss(
    energy, x, n_projections=1, projection="rademacher", variance_reduced=False, generator=None
):
    """Sliced score matching (Song et al., 2019).

    Project the scores on random directions ``v`` with ``E[v v^T] = I``: the
    Fisher divergence of the projections, integrated by parts as in
    :func:`exact_score_matching_loss`, is
    ``E_data E_v[1/2 (v . grad E)^2 - v^T H v]``, and ``v^T H v`` is one
    Hessian-vector product, whatever the dimension. Because
    ``E_v[(v . g)^2] = |g|^2``, the variance-reduced form replaces the first
    term by its expectation ``1/2 |grad E|^2``, computed exactly.

    Parameters
    ----------
    energy : callable
    x : torch.Tensor of shape (n, d)
    n_projections : int, default=1
    projection : {"rademacher", "gaussian"}, default="rademacher"
    variance_reduced : bool, default=False
    generator : torch.Generator, default=None

    Returns
    -------
    loss : torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import sliced_score_matching_loss
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> loss = sliced_score_matching_loss(lambda x: 0.5 * (x**2).sum(-1), x, variance_reduced=True)
    >>> float(loss.detach())   # v^T I v = d for Rademacher v, so the same as the exact loss here
    -1.5
    """
    with torch.enable_grad():
        x, grad = _input_gradient(energy, x)
        curvature, slope = _projected_curvature(grad, x, n_projections, projection, generator)
        first = (grad * grad).sum(-1) if variance_reduced else slope
        return (0.5 * first - curvature).mean()


def denoising_score_matching_loss(energy, x, noise_std, generator=None):
    """Denoising score matching (Vincent, 2011).

    Perturb each row, ``x~ = x + noise_std * eps``; the score of the
    perturbation kernel is ``-eps / noise_std``, and matching it,
    ``E[1/2 |-grad E(x~) + eps / noise_std|^2]``, has the same minimizer as
    the Fisher divergence to the perturbed data density ``p_data * N(0,
    noise_std^2)``. No second derivatives: one backward pass. The model learns
    the data smoothed at scale ``noise_std``, so keep it small against the
    data's own structure.

    Parameters
    ----------
    energy : callable
    x : torch.Tensor of shape (n, d)
    noise_std : float
    generator : torch.Generator, default=None

    Returns
    -------
    loss : torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import denoising_score_matching_loss
    >>> x = torch.zeros(1000, 1)
    >>> g = torch.Generator().manual_seed(0)
    >>> energy = lambda x: 0.5 * (x**2).sum(-1) / 0.01   # exactly N(0, 0.1^2), the perturbed data
    >>> round(float(denoising_score_matching_loss(energy, x, 0.1, g).detach()), 6)
    0.0
    """
    residual = _denoising_residual(energy, x, noise_std, generator)
    return 0.5 * (residual * residual).sum(-1).mean()


def _denoising_residual(energy, x, noise_std, generator):
    """Per row, ``grad E(x~) - eps / noise_std`` with ``x~ = x + noise_std * eps``: model score minus target."""
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    with torch.enable_grad():
        _, grad = _input_gradient(energy, x + noise_std * eps)
        return grad - eps / noise_std


def multilevel_denoising_score_matching_loss(energy, x, sigma_min, sigma_max, generator=None):
    """Denoising score matching at every noise level at once (Song & Ermon, 2019).

    For a noise-conditional energy ``E(x, sigma)``, the denoising loss at one
    level (:func:`denoising_score_matching_loss`) is
    ``L(sigma) = E[1/2 |grad E(x~, sigma) - eps / sigma|^2]`` with
    ``x~ = x + sigma eps``. Its minimizer is the score of the data smoothed at
    ``sigma`` whatever positive weight each level gets, and the weight
    ``lambda(sigma) = sigma^2`` makes every level's term of the same scale,
    since ``|eps / sigma|`` grows as ``1 / sigma``:

    ``sigma^2 L(sigma) = E[1/2 |sigma grad E(x~, sigma) - eps|^2]``.

    The loss is the mean of that over ``log sigma`` uniform on
    ``[log sigma_min, log sigma_max]``, each row drawing its own level, so one
    minibatch covers the whole range at the cost of one backward pass, as at
    a single level. Levels are continuous rather than a fixed ladder, so the
    learned energy is defined at every ``sigma`` in the range, as the
    probability-flow ODE needs (:class:`skebm.energies.ProbabilityFlowEnergy`).

    Parameters
    ----------
    energy : callable
        Maps ``(x, sigma)``, shapes ``(n, d)`` and ``(n,)``, to energies ``(n,)``.
    x : torch.Tensor of shape (n, d)
    sigma_min, sigma_max : float
    generator : torch.Generator, default=None

    Returns
    -------
    loss : torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skebm.losses import multilevel_denoising_score_matching_loss
    >>> x = torch.zeros(2000, 1)
    >>> g = torch.Generator().manual_seed(0)
    >>> energy = lambda x, sigma: 0.5 * x[:, 0] ** 2 / sigma**2   # data at 0: exactly N(0, sigma^2) at each level
    >>> round(float(multilevel_denoising_score_matching_loss(energy, x, 0.1, 10.0, g).detach()), 6)
    0.0
    """
    n = x.shape[0]
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    log_sigma = log_min + (log_max - log_min) * torch.rand(n, generator=generator, device=x.device, dtype=x.dtype)
    sigma = torch.exp(log_sigma)
    # Each row at its own level; sigma times the residual is sigma grad E(x~, sigma) - eps.
    residual = sigma[:, None] * _denoising_residual(lambda y: energy(y, sigma), x, sigma[:, None], generator)
    return 0.5 * (residual * residual).sum(-1).mean()


def nce_loss(log_model_data, log_noise_data, log_model_noise, log_noise_noise, noise_ratio):
    """Noise-contrastive estimation: logistic loss of telling data from noise.

    With ``nu = noise_ratio`` noise samples per data sample, the posterior
    probability that a point x is data is ``sigmoid(G(x))`` with the logit
    ``G(x) = log p_model(x) - log(nu q(x))``. The loss is the negative
    log-likelihood of the labels per data sample,
    ``-mean log sigmoid(G(data)) - nu * mean log sigmoid(-G(noise))``, written
    with ``logsigmoid`` so that no probability is ever formed. Its minimum is
    reached at ``p_model = p_data`` whatever ``log Z`` the energy started
    with, which is why a normalizing constant learned beside the energy ends
    up equal to the true one (Gutmann & Hyvarinen, 2010, 2012).

    Parameters
    ----------
    log_model_data, log_noise_data : torch.Tensor of shape (n,)
        ``log p_model`` and ``log q`` of the data.
    log_model_noise, log_noise_noise : torch.Tensor of shape (m,)
        The same for the noise samples.
    noise_ratio : float
        ``nu``: noise samples per data sample.

    Returns
    -------
    loss : torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> import math, torch
    >>> from skebm.losses import nce_loss
    >>> zero = torch.zeros(4)   # model = noise: every logit is -log(nu)
    >>> round(float(nce_loss(zero, zero, zero, zero, 1.0)), 6) == round(2 * math.log(2), 6)
    True
    """
    log_nu = math.log(noise_ratio)
    data_logit = log_model_data - log_noise_data - log_nu
    noise_logit = log_model_noise - log_noise_noise - log_nu
    return -(F.logsigmoid(data_logit).mean() + noise_ratio * F.logsigmoid(-noise_logit).mean())
