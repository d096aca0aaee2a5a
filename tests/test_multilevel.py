"""Multi-level denoising score matching: the noise-conditional energy, its loss, the probability-flow
density and annealed sampling (ScoreMatchingEBM(method="multilevel"))."""

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

import skebm
from skebm import ScoreMatchingEBM
from skebm._random import make_generator
from skebm.datasets import eight_gaussians_log_density, make_eight_gaussians
from skebm.energies import ConvolvedGaussianMixture, ProbabilityFlowEnergy
from skebm.losses import multilevel_denoising_score_matching_loss
from skebm.partition import grid_log_partition
from skebm.samplers import annealed_langevin

EIGHT_CENTERS = np.c_[2 * np.cos(np.arange(8) * np.pi / 4), 2 * np.sin(np.arange(8) * np.pi / 4)]


def eight_gaussians_smoothed():
    """The eight-Gaussians density (std 0.2) with noise of every scale added, exactly."""
    covariances = np.broadcast_to(0.04 * np.eye(2), (8, 2, 2))
    return ConvolvedGaussianMixture(EIGHT_CENTERS, covariances, np.full(8, 1 / 8)).double()


def small_fit(**params):
    X = make_eight_gaussians(400, random_state=0)
    settings = dict(method="multilevel", hidden_layer_sizes=(16, 16), max_updates=30, batch_size=64, random_state=0)
    return ScoreMatchingEBM(**{**settings, **params}).fit(X), X


def test_convolved_mixture_is_the_mixture_with_widened_covariances():
    X = make_eight_gaussians(500, random_state=0)
    gmm = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    mixture = ConvolvedGaussianMixture.from_sklearn(gmm, n_components=5).double()  # two zero-weight pads
    sigma = 0.7
    widened = GaussianMixture(3, covariance_type="full")
    widened.weights_, widened.means_ = gmm.weights_, gmm.means_
    widened.covariances_ = gmm.covariances_ + sigma**2 * np.eye(2)
    widened.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(widened.covariances_))
    energies = mixture(torch.as_tensor(X[:50]), torch.full((50,), sigma, dtype=torch.float64))
    np.testing.assert_allclose(-energies.numpy(), widened.score_samples(X[:50]), rtol=1e-5)


def test_probability_flow_recovers_the_exact_smoothed_density():
    # With the exact noise-conditional energy the ODE is only discretized: the default 16 Runge-Kutta
    # steps over 3.3 decades of sigma leave about 0.002 nats on average (fourth order: 0.0001 at 32).
    flow = ProbabilityFlowEnergy(eight_gaussians_smoothed(), 2).double()
    flow.set_levels(0.01, 20.0, mean=np.zeros(2), covariance=2.02 * np.eye(2))
    X = make_eight_gaussians(1000, random_state=1)
    log_density = -flow(torch.as_tensor(X)).numpy()
    truth = eight_gaussians_log_density(X, std=math.sqrt(0.04 + 0.01**2))
    assert abs(log_density.mean() - truth.mean()) < 0.01
    assert np.abs(log_density - truth).max() < 0.05


def test_multilevel_loss_is_smallest_at_the_true_noise_conditional_energy():
    X = torch.as_tensor(make_eight_gaussians(4000, random_state=0))
    truth = eight_gaussians_smoothed()

    def too_wide(x, sigma):
        return truth(x, sigma * 1.5)

    def loss(energy, seed):
        generator = torch.Generator().manual_seed(seed)
        return float(multilevel_denoising_score_matching_loss(energy, X, 0.05, 10.0, generator).detach())

    # Same noise draws for both: the paired difference is the systematic one.
    assert all(loss(truth, seed) < loss(too_wide, seed) for seed in range(3))


def test_annealed_chains_weigh_separated_modes_by_their_mass_and_one_level_does_not():
    gen = torch.Generator().manual_seed(0)
    weights, n = np.array([0.5, 0.3, 0.2]), 6000
    energy = ConvolvedGaussianMixture([[-3.0], [0.0], [3.0]], np.full((3, 1, 1), 0.01), weights)
    # Both start where the estimator starts them: the data's Gaussian widened by the largest level
    # (data mean -0.9, variance 5.5; sigma_max 6), and both take 20 x 20 MALA steps.
    start = -0.9 + math.sqrt(5.5 + 36.0) * torch.randn(n, 1, generator=gen)
    annealed = annealed_langevin(energy, start, np.geomspace(6.0, 0.05, 20), 20, gen).numpy()[:, 0]
    one_level = annealed_langevin(energy, start, np.full(20, 0.05), 20, gen).numpy()[:, 0]

    def masses(x):
        return np.array([(x < -1.5).mean(), (np.abs(x) <= 1.5).mean(), (x > 1.5).mean()])

    # Four binomial standard errors at 6,000 draws.
    assert np.all(np.abs(masses(annealed) - weights) < 4 * np.sqrt(weights * (1 - weights) / n)), masses(annealed)
    # At the smallest level alone the barriers hold every chain in the basin it started in, so the
    # masses are the start's: P(x < -1.5), P(|x| <= 1.5), P(x > 1.5) under N(-0.9, 41.5) are
    # 0.46, 0.18, 0.36, off the truth by up to 0.16, some 25 standard errors.
    assert np.abs(masses(one_level) - weights).max() > 0.1, masses(one_level)


def test_the_ode_carries_the_largest_level_gaussian_to_the_density_it_defines():
    # The exact noise-conditional energy of three modes (0.5 / 0.3 / 0.2, variance 0.01): draws from
    # the Gaussian at the largest level, carried down the ODE, land on each mode in its proportion
    # and with its spread at the smallest level, sqrt(0.01 + 0.05^2).
    gen = torch.Generator().manual_seed(0)
    weights, n = np.array([0.5, 0.3, 0.2]), 6000
    energy = ConvolvedGaussianMixture([[-3.0], [0.0], [3.0]], np.full((3, 1, 1), 0.01), weights).double()
    flow = ProbabilityFlowEnergy(energy, 1).double()
    flow.set_levels(0.05, 6.0, mean=[-0.9], covariance=[[5.5]])  # the data's mean and variance
    x = flow.transport(flow.draw_endpoint(n, gen)).numpy()[:, 0]
    masses = np.array([(x < -1.5).mean(), (np.abs(x) <= 1.5).mean(), (x > 1.5).mean()])
    # Four binomial standard errors at 6,000 draws; for the spread of the 1,200 draws of the last
    # mode, four standard errors of a standard deviation, sigma / sqrt(2 n).
    assert np.all(np.abs(masses - weights) < 4 * np.sqrt(weights * (1 - weights) / n)), masses
    spread = math.sqrt(0.01 + 0.05**2)
    assert abs(x[x > 1.5].std() - spread) < 4 * spread / math.sqrt(2 * 0.2 * n)


def test_sampler_ode_draws_reproducibly_and_only_for_multilevel():
    model, X = small_fit(sampler="ode")
    a, b = model.sample(50, random_state=3), model.sample(50, random_state=3)
    assert a.shape == (50, 2) and np.array_equal(a, b) and np.all(np.isfinite(a))
    start = model.module_.draw_endpoint(50, make_generator(0, "cpu"))
    np.testing.assert_allclose(model.module_.transport(start).numpy(), model.sample(50, random_state=0), rtol=1e-6)
    with pytest.raises(ValueError, match="sampler='ode'"):
        ScoreMatchingEBM(method="denoising", sampler="ode", max_iter=1, log_partition=None).fit(X)
    single = ScoreMatchingEBM(method="denoising", max_iter=1, log_partition=None, random_state=0).fit(X)
    with pytest.raises(ValueError, match="sampler='ode'"):
        single.set_params(sampler="ode").sample(5)


def test_noise_conditional_fourier_bandwidth_is_twice_scotts_on_the_scaled_rows():
    # At Scott's bandwidth the network learned the training rows of rings (0.03 nats from the truth
    # on them, 0.10 on fresh rows); twice Scott's generalizes (energies.fit_scale).
    from skebm.energies import NoiseConditionalEnergy

    X = np.random.default_rng(0).normal(size=(500, 2)) * [1.0, 3.0]
    energy = NoiseConditionalEnergy(2, (8,), n_frequencies=4, generator=torch.Generator().manual_seed(0))
    drawn = energy.features.frequencies.clone()
    energy.fit_scale(X)
    scaled = X / math.sqrt(np.mean(np.var(X, axis=0)))
    bandwidth = 2 * scaled.std(0) * 500 ** (-1 / 6)
    torch.testing.assert_close(energy.features.frequencies, drawn / torch.as_tensor(bandwidth, dtype=torch.float32))


def test_auto_training_parameters_are_the_multilevel_budget_there_and_unchanged_for_one_level():
    X = make_eight_gaussians(300, random_state=0)
    many = ScoreMatchingEBM(method="multilevel", max_updates=4, random_state=0).fit(X)
    for name in ("hidden_layer_sizes", "batch_size", "max_iter", "learning_rate", "learning_rate_schedule"):
        assert many._setting(name) == skebm.MULTILEVEL_PARAMS[name], name
    assert [r["learning_rate"] for r in many.history_][-1] < 3e-3  # the cosine has fallen
    one = ScoreMatchingEBM(method="denoising", max_iter=2, random_state=0).fit(X)
    assert one._learning_rate_schedule() == "constant" and one.optimizer_.param_groups[0]["lr"] == 1e-3
    assert (one._setting("hidden_layer_sizes"), one._setting("batch_size"), one._setting("max_updates")) == (
        (128, 128),
        64,
        2000,
    )


def test_multilevel_fit_is_a_normalized_density():
    model, X = small_fit()
    assert model.method_ == "multilevel" and model.log_partition_ == 0.0
    assert model.noise_levels_[0] > model.noise_levels_[-1] > 0
    low, high = X.min(axis=0) - 3, X.max(axis=0) + 3

    def energy(x):
        return torch.as_tensor(model.energy(x.numpy()))

    # The ODE's density is normalized by construction, up to its discretization and the grid's.
    assert abs(grid_log_partition(energy, low, high, n_points=80)) < 0.05
    scores = model.score_samples(X)
    assert np.all(np.isfinite(scores)) and scores.dtype == np.float64


def test_multilevel_samples_are_reproducible_and_shaped():
    model, _ = small_fit(n_sample_steps=40)
    a, b = model.sample(50, random_state=3), model.sample(50, random_state=3)
    assert a.shape == (50, 2) and np.array_equal(a, b)
    assert np.all(np.isfinite(a))


def test_multilevel_round_trips_through_safe_save(tmp_path):
    model, X = small_fit()
    path = tmp_path / "multilevel.skebm"
    skebm.save(model, path)
    loaded = skebm.load(path)
    np.testing.assert_allclose(loaded.score_samples(X[:20]), model.score_samples(X[:20]), rtol=1e-10)


def test_multilevel_base_holds_only_the_fitted_components(tmp_path):
    # 40 rows of 7 features give each full covariance its 8 rows in 5 components, not the most (8):
    # every training row and ODE step pays for each component the base holds.
    X = np.random.default_rng(0).normal(size=(40, 7))
    model = ScoreMatchingEBM(method="multilevel", hidden_layer_sizes=(8,), max_updates=2, random_state=0).fit(X)
    assert model.n_mixture_components_ == 5
    assert model.module_.conditional.base.means.shape == (5, 7)
    path = tmp_path / "five.skebm"
    skebm.save(model, path)
    np.testing.assert_allclose(skebm.load(path).score_samples(X[:5]), model.score_samples(X[:5]), rtol=1e-10)


def test_load_reads_files_without_the_mixture_count_and_refuses_one_out_of_range(tmp_path):
    from test_persistence_redteam import forge, read_parts

    model, X = small_fit()
    assert model.n_mixture_components_ == 8  # what files saved before the count was kept all held
    path = tmp_path / "genuine.skebm"
    skebm.save(model, path)
    header, tensors = read_parts(path)
    count = header["fitted"].pop("n_mixture_components_")
    older = skebm.load(forge(tmp_path / "older.skebm", header, tensors))
    np.testing.assert_allclose(older.score_samples(X[:5]), model.score_samples(X[:5]), rtol=1e-10)
    header["fitted"]["n_mixture_components_"] = dict(count, value=10**9)
    with pytest.raises(ValueError, match="n_mixture_components_"):
        skebm.load(forge(tmp_path / "forged.skebm", header, tensors))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(base="gaussian"), "own base"),
        (dict(network="conv", image_shape=(1, 1, 2)), "network"),
        (dict(noise_levels=[0.5]), "noise_levels"),
        (dict(noise_levels=[1.0, -0.1]), "noise_levels"),
    ],
)
def test_multilevel_refuses_settings_it_cannot_use(params, message):
    with pytest.raises(ValueError, match=message):
        small_fit(**params)


def test_given_levels_are_used_largest_first():
    model, _ = small_fit(noise_levels=[0.1, 5.0, 1.0])
    np.testing.assert_array_equal(model.noise_levels_, [5.0, 1.0, 0.1])
    assert torch.allclose(model.module_.levels, torch.tensor([0.1, 5.0]))


def test_level_energies_are_the_conditional_energy_at_each_level():
    model, X = small_fit()
    energies = model.level_energies(X[:7])
    assert energies.shape == (7, len(model.noise_levels_)) and energies.dtype == np.float64
    conditional = model.module_.conditional.double()
    rows = torch.as_tensor(X[:7])
    for k in (0, len(model.noise_levels_) - 1):
        sigma = torch.full((7,), float(model.noise_levels_[k]), dtype=torch.float64)
        np.testing.assert_allclose(energies[:, k], conditional(rows, sigma).detach().numpy(), rtol=1e-12)
    with pytest.raises(AttributeError, match="multilevel"):
        ScoreMatchingEBM(method="denoising", max_iter=1, log_partition=None, random_state=0).fit(X).level_energies(X)


def test_plot_chain_shows_the_annealed_chains_from_the_gaussian_start():
    import matplotlib

    matplotlib.use("Agg")
    from skebm.plotting import plot_chain

    model, X = small_fit(n_sample_steps=40)
    fig = plot_chain(model, n_chains=200, n_snapshots=3, random_state=1)
    start, end = (fig.axes[k].collections[0].get_offsets() for k in (0, -1))
    np.testing.assert_allclose(end, model.sample(200, random_state=1))
    # The chains start from the data's Gaussian widened by the largest level (several units here),
    # far wider than the rows' radii (2, with a spread of about 0.2).
    assert np.linalg.norm(start, axis=1).std() > 2 * np.linalg.norm(X, axis=1).std()
