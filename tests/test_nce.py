import numpy as np
import pytest
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from skebm import NCEEBM
from skebm.datasets import eight_gaussians_log_density, make_checkerboard, make_eight_gaussians, make_rings
from skebm.losses import nce_loss
from skebm.partition import grid_log_partition

FAST = dict(hidden_layer_sizes=(32, 32), max_iter=8, random_state=0)


@pytest.fixture(scope="module")
def eight():
    return make_eight_gaussians(2000, random_state=0), make_eight_gaussians(2000, random_state=1)


@pytest.fixture(scope="module")
def fitted(eight):
    return NCEEBM(**FAST).fit(eight[0])


def quadrature_log_partition(model):
    return grid_log_partition(model._score_energy, *model.module_.support_box())


@pytest.mark.parametrize("make", [make_eight_gaussians, make_rings])
def test_learned_log_partition_matches_quadrature(make):
    model = NCEEBM(**FAST).fit(make(2000, random_state=0))
    assert model.log_partition_ == pytest.approx(quadrature_log_partition(model), abs=0.05)
    assert np.isnan(model.log_partition_std_)


def test_close_to_the_true_density_on_eight_gaussians(fitted, eight):
    gap = eight_gaussians_log_density(eight[1]) - fitted.score_samples(eight[1])
    # Within 0.1 nats, plus three standard errors of the paired mean for the finite test set.
    assert gap.mean() < 0.1 + 3 * gap.std() / np.sqrt(len(gap))


def test_improves_on_its_gaussian_mixture_noise_on_rings():
    X, X_test = make_rings(5000, random_state=0), make_rings(2000, random_state=1)
    noise = GaussianMixture(8, random_state=0).fit(X)
    model = NCEEBM(noise=noise, random_state=0).fit(X)  # the defaults: 50 epochs
    gain = model.score_samples(X_test) - noise.score_samples(X_test)
    assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))


@pytest.mark.parametrize("noise", ["uniform", KernelDensity(bandwidth=0.2)])
def test_other_noise_families_train(eight, noise):
    model = NCEEBM(noise=noise, **{**FAST, "max_iter": 2}).fit(eight[0])
    assert np.isfinite(model.score(eight[1]))
    assert noise == "uniform" or not hasattr(noise, "tree_")  # an unfitted estimator is cloned, not fitted


def test_sir_and_mcmc_samples_reproduce(fitted):
    for sampler in ["sir", "mala"]:
        model = fitted.set_params(sampler=sampler, n_sample_steps=20)
        a, b = model.sample(200, random_state=0), model.sample(200, random_state=0)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (200, 2)
    # Resampled noise follows the model: most samples near one of the eight modes (radius 2).
    radius = np.linalg.norm(fitted.set_params(sampler="sir").sample(500, random_state=0), axis=1)
    assert np.mean(np.abs(radius - 2) < 0.6) > 0.8


def test_loss_is_minimal_when_the_model_is_the_data_density():
    import torch

    g = torch.Generator().manual_seed(0)
    data, noise = torch.randn(20000, generator=g), torch.randn(80000, generator=g) * 2
    log_q = lambda x: -0.5 * (x / 2) ** 2 - np.log(2 * np.sqrt(2 * np.pi))  # noqa: E731
    losses = []
    for scale in [0.8, 1.0, 1.25]:  # the model N(0, scale^2); the data are N(0, 1)
        log_p = lambda x, s=scale: -0.5 * (x / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))  # noqa: E731
        losses.append(float(nce_loss(log_p(data), log_q(data), log_p(noise), log_q(noise), 4)))
    assert losses[1] < losses[0] and losses[1] < losses[2]


def test_noise_components_do_not_collapse_onto_repeated_rows():
    # Forty copies of one row: EM's likelihood grows without bound as a component shrinks onto
    # them, and the energy built on such a noise rates that row the likeliest by tens of nats.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((400, 3)), np.full((40, 3), 2.0)])
    model = NCEEBM(max_iter=1, random_state=0).fit(X)
    floor = 1e-2 * X.var(axis=0).mean()
    smallest = min(np.linalg.eigvalsh(c).min() for c in model.noise_.base.covariances_)
    assert smallest >= floor * (1 - 1e-9)
    # The densest the noise can be at the copies: all its mass in one Gaussian of that width.
    assert model.noise_.score_samples(X[-1:])[0] <= -1.5 * np.log(2 * np.pi * floor)


def test_auto_network_reads_fourier_features_of_one_or_two_features():
    from skebm.energies import FourierMLPEnergy, MLPEnergy

    X = np.random.default_rng(0).normal(size=(300, 3))
    two = NCEEBM(max_updates=2, random_state=0).fit(X[:, :2])
    three = NCEEBM(max_updates=2, random_state=0).fit(X)
    assert isinstance(two.module_.network.network, FourierMLPEnergy)
    assert type(three.module_.network.network) is MLPEnergy
    # The correction starts at zero, so the fit starts from the noise's density.
    start = NCEEBM(max_updates=1, learning_rate=1e-12, random_state=0).fit(X[:, :2])
    np.testing.assert_allclose(start.score_samples(X[:5, :2]), start.noise_.base.score_samples(X[:5, :2]), atol=1e-4)


def test_fourier_frequencies_follow_the_spread_and_scotts_factor():
    import torch

    from skebm.energies import FourierFeatures

    X = np.random.default_rng(0).normal(size=(1000, 2)) * [1.0, 10.0]
    features = FourierFeatures(2, n_frequencies=8, generator=torch.Generator().manual_seed(0))
    drawn = features.frequencies.clone()
    features.fit_bandwidth(X)
    bandwidth = X.std(0) * 1000 ** (-1 / 6)  # Scott: n ** (-1 / (d + 4)) standard deviations
    torch.testing.assert_close(features.frequencies, drawn / torch.as_tensor(bandwidth, dtype=torch.float32))
    x = torch.as_tensor(X[:4], dtype=torch.float32)
    out = features(x)
    assert out.shape == (4, 2 + 2 * 8)
    torch.testing.assert_close(out[:, :2], x)  # the raw features stay among the inputs
    torch.testing.assert_close(out[:, 2:10] ** 2 + out[:, 10:] ** 2, torch.ones(4, 8))


def test_fourier_features_carve_edges_the_raw_network_cannot():
    X, X_test = make_checkerboard(2000, random_state=0), make_checkerboard(2000, random_state=1)
    fits = {net: NCEEBM(network=net, max_updates=300, random_state=0).fit(X) for net in ("fourier", "mlp")}
    nll = {net: -model.score(X_test) for net, model in fits.items()}
    noise = -NCEEBM(max_updates=1, learning_rate=1e-12, random_state=0).fit(X).score(X_test)
    # A Gaussian mixture cannot hold a square's uniform density and its edges; in 300 updates the
    # Fourier features take 0.09 nats off the mixture (0.06 to 0.21 over seeds 0-2), the raw MLP none.
    assert nll["fourier"] < noise - 0.03
    assert nll["fourier"] < nll["mlp"] - 0.03


@pytest.mark.parametrize("make", [make_rings, make_checkerboard])
def test_defaults_beat_kernel_density_and_mixture_on_shapes(make):
    from sklearn.model_selection import GridSearchCV

    X, X_test = make(5000, random_state=0), make(5000, random_state=1)
    model = NCEEBM(random_state=0).fit(X)
    kde = GridSearchCV(KernelDensity(), {"bandwidth": np.geomspace(0.03, 0.5, 12)}, cv=3).fit(X).best_estimator_
    gmm = min((GaussianMixture(k, random_state=0).fit(X) for k in range(1, 21)), key=lambda g: g.bic(X))
    ours = model.score_samples(X_test)
    for peer in (kde, gmm):
        # Ahead on the same test rows by more than twice the standard error of the paired mean difference.
        difference = ours - peer.score_samples(X_test)
        assert difference.mean() > 2 * difference.std() / np.sqrt(len(difference))
    assert abs(quadrature_log_partition(model) - model.log_partition_) < 0.05
