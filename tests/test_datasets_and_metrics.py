import numpy as np
import pytest

from skebm import ContrastiveDivergenceEBM
from skebm.datasets import (
    eight_gaussians_log_density,
    make_eight_gaussians,
    make_ellipse,
    make_rings,
    rings_log_density,
)
from skebm.metrics import hyvarinen_scorer, log_likelihood_scorer, mmd, mmd_scorer


@pytest.mark.parametrize(("log_density", "half_width"), [(eight_gaussians_log_density, 4.0), (rings_log_density, 4.0)])
def test_toy_densities_integrate_to_one(log_density, half_width):
    # Midpoints of 800 cells per axis: the rings density has an integrable 1/r singularity at the origin.
    step = 2 * half_width / 800
    g = -half_width + step * (np.arange(800) + 0.5)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(log_density(grid)).sum() * step**2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_generators_are_reproducible():
    np.testing.assert_array_equal(make_rings(50, random_state=1), make_rings(50, random_state=1))
    np.testing.assert_array_equal(make_eight_gaussians(50, random_state=1), make_eight_gaussians(50, random_state=1))


def test_ellipse_points_lie_on_the_ellipse():
    Y = make_ellipse(24, rho=(2.0, 1.5))
    np.testing.assert_allclose((Y[:, 0] / 2.0) ** 2 + (Y[:, 1] / 1.5) ** 2, 1.0)


def test_mmd_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    assert abs(mmd(a, b)) < 0.01
    assert mmd(a, b + 1.0) > 0.1


def test_scorers_rank_a_trained_model_above_an_untrained_one():
    X = make_eight_gaussians(1000, random_state=0)
    X_test = make_eight_gaussians(500, random_state=1)
    fast = dict(hidden_layer_sizes=(32, 32), n_sample_steps=100, random_state=0)
    # One epoch at a negligible learning rate: the network as initialized. (One epoch at the
    # default rate already samples eight Gaussians well enough that MMD's sampling noise, about
    # 1e-3 with these sizes, can rank it either way against the trained model.)
    untrained = ContrastiveDivergenceEBM(max_iter=1, learning_rate=1e-9, **fast).fit(X)
    trained = ContrastiveDivergenceEBM(max_iter=30, **fast).fit(X)
    assert log_likelihood_scorer(trained, X_test) > log_likelihood_scorer(untrained, X_test)
    assert hyvarinen_scorer(trained, X_test) > hyvarinen_scorer(untrained, X_test)
    assert mmd_scorer(trained, X_test) > mmd_scorer(untrained, X_test)
