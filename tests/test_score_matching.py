import copy

import numpy as np
import pytest
import torch

from skebm import ScoreMatchingEBM
from skebm.energies import QuadraticEnergy
from skebm.losses import exact_score_matching_loss, sliced_score_matching_loss

METHODS = ["exact", "sliced", "sliced_vr", "denoising"]


@pytest.fixture(scope="module")
def gaussian_data():
    rng = np.random.default_rng(0)
    covariance = np.array([[1.0, 0.6, 0.0], [0.6, 2.0, -0.4], [0.0, -0.4, 0.5]])
    return rng.multivariate_normal(np.zeros(3), covariance, size=4000)


@pytest.mark.parametrize("method", METHODS)
def test_quadratic_energy_recovers_the_covariance(gaussian_data, method):
    X = gaussian_data
    params = dict(n_projections=4) if method.startswith("sliced") else {}
    if method == "denoising":  # its gradient carries noise of size 1 / noise_std: average it over whole batches
        params = dict(batch_size=len(X), max_iter=400)
    settings = dict(max_iter=60, batch_size=256, learning_rate=0.03, noise_std=0.1, log_partition=None)
    model = ScoreMatchingEBM(method=method, network=QuadraticEnergy(3), random_state=0, **{**settings, **params})
    model.fit(X)
    precision = model.module_.network.precision().detach().double().numpy()
    # Score matching is consistent, and on a Gaussian family its optimum is the empirical
    # covariance (E[x x^T] about the learned mean); denoising sees the data smoothed by noise_std^2.
    target = np.cov(X.T, bias=True) + (0.1**2 * np.eye(3) if method == "denoising" else 0)
    # The estimate's own sampling error is ~sqrt(2/n) relative (2%); allow 3 times that plus
    # the stochastic optimizer's last steps.
    np.testing.assert_allclose(np.linalg.inv(precision), target, atol=0.08 * np.abs(target).max())


def test_exact_and_sliced_losses_equal_the_closed_form_in_expectation():
    g = torch.Generator().manual_seed(0)
    d = 3
    x = torch.randn(20000, d, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    precision = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 3.0]], dtype=torch.float64)
    energy = lambda z: 0.5 * ((z @ precision) * z).sum(-1)  # noqa: E731
    second_moment = x.T @ x / len(x)
    # E[1/2 |P x|^2 - tr P] = 1/2 tr(P^2 S) - tr P, with S the second moment of the sample.
    closed_form = float(0.5 * torch.trace(precision @ precision @ second_moment) - torch.trace(precision))
    assert float(exact_score_matching_loss(energy, x)) == pytest.approx(closed_form, rel=1e-10)
    for reduced in (False, True):
        for projection in ("rademacher", "gaussian"):
            sliced = [float(sliced_score_matching_loss(energy, x, 1, projection, reduced, g)) for _ in range(20)]
            # Unbiased over projections: within 4 standard errors of the mean of 20 independent estimates.
            assert abs(np.mean(sliced) - closed_form) < 4 * np.std(sliced, ddof=1) / np.sqrt(20)


def test_denoising_learns_the_score_of_a_gaussian_mixture():
    rng = np.random.default_rng(0)
    centers, std, noise_std = np.array([[-1.5, 0.0], [1.5, 0.0]]), 0.5, 0.1
    X = centers[rng.integers(0, 2, 4000)] + std * rng.normal(size=(4000, 2))
    model = ScoreMatchingEBM(method="denoising", noise_std=noise_std, max_iter=40, log_partition=None, random_state=0)
    model.fit(X)
    x = torch.tensor(X[:500], dtype=torch.float32, requires_grad=True)
    (grad,) = torch.autograd.grad(model.module_(x).sum(), x)
    learned = -grad.numpy()
    # The score of the mixture smoothed by the perturbation: components of variance std^2 + noise_std^2.
    var = std**2 + noise_std**2
    diff = X[:500, None, :] - centers[None]
    log_w = -0.5 * (diff**2).sum(-1) / var
    w = np.exp(log_w - log_w.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    true = -(w[..., None] * diff).sum(1) / var
    relative_error = np.mean(((learned - true) ** 2).sum(1)) / np.mean((true**2).sum(1))
    assert relative_error < 0.05


@pytest.mark.parametrize("method", METHODS)
def test_every_method_fits_scores_and_samples(method):
    from skebm.datasets import make_eight_gaussians

    X = make_eight_gaussians(600, random_state=0)
    model = ScoreMatchingEBM(method=method, hidden_layer_sizes=(32, 32), max_iter=3, n_sample_steps=20, random_state=0)
    model.fit(X)
    assert np.isfinite(model.score(X)) and len(model.history_) == 3
    np.testing.assert_array_equal(model.sample(5, random_state=0), model.sample(5, random_state=0))


@pytest.mark.parametrize("n_features, expected", [(1, "exact"), (2, "exact"), (3, "denoising"), (40, "denoising")])
def test_auto_method_smooths_only_above_two_features(n_features, expected):
    X = np.random.default_rng(0).normal(size=(40, n_features))
    model = ScoreMatchingEBM(hidden_layer_sizes=(8,), max_iter=1, log_partition=None, random_state=0).fit(X)
    assert model.method_ == expected
    # An explicit method is used as given, whatever the width.
    assert (
        ScoreMatchingEBM(method="exact", hidden_layer_sizes=(8,), max_iter=1, log_partition=None).fit(X).method_
        == "exact"
    )


def test_auto_noise_is_a_fraction_of_each_features_spread():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=2000), 10 * rng.normal(size=2000), np.ones(2000)])
    X[:10, 0] = 1e6  # a few far-off rows: the interquartile range ignores them
    model = ScoreMatchingEBM(hidden_layer_sizes=(8,), max_iter=1, log_partition=None, random_state=0).fit(X)
    # Standard normal quantiles: the IQR over 1.349 estimates the std to about 3% at n = 2000.
    np.testing.assert_allclose(model.noise_std_[:2], [0.3, 3.0], rtol=0.1)
    assert model.noise_std_[2] == pytest.approx(np.median(model.noise_std_[:2]) / 1.0)  # constant: the others'
    fixed = ScoreMatchingEBM(noise_std=0.1, hidden_layer_sizes=(8,), max_iter=1, log_partition=None).fit(X[:100])
    assert fixed.noise_std_ == 0.1


def test_gaussian_base_is_the_shrunk_gaussian_fitted_to_the_data():
    from scipy.stats import multivariate_normal
    from sklearn.covariance import LedoitWolf

    X = np.random.default_rng(0).normal(size=(300, 3)) @ np.array([[2.0, 0.5, 0], [0, 1, 0.3], [0, 0, 0.2]])
    model = ScoreMatchingEBM(base="gaussian", hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X)
    gaussian = LedoitWolf().fit(X)
    expected = multivariate_normal(gaussian.location_, gaussian.covariance_).logpdf(X)
    base = copy.deepcopy(model.module_.network.base).double()  # a copy: the model stays float32
    np.testing.assert_allclose(-base(torch.as_tensor(X)).numpy(), expected, rtol=1e-5)
    # The correction starts at zero: before any update the energy is the Gaussian's.
    untrained = ScoreMatchingEBM(base="gaussian", hidden_layer_sizes=(8,), random_state=0)
    untrained._start(X)
    correction = untrained.module_.network.network(torch.as_tensor(X[:5], dtype=torch.float32))
    np.testing.assert_array_equal(correction.detach().numpy(), 0)
    # The base is fixed: training moves only the network's correction.
    before = {key: value.clone() for key, value in model.module_.network.base.state_dict().items()}
    model.set_params(warm_start=True, max_iter=2).fit(X)
    after = model.module_.network.base.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
