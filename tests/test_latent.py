import itertools

import numpy as np
import pytest

from skebm import LatentVariableEBM
from skebm.datasets import make_ellipse


def distance_to_ellipse(points, w1, w2, n=200000):
    """Squared distance to the ellipse (w1 cos t, w2 sin t), by brute force over a fine set of angles."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    curve = np.stack([w1 * np.cos(t), w2 * np.sin(t)], 1)
    return np.array([((curve - p) ** 2).sum(1).min() for p in points])


@pytest.fixture(scope="module")
def lecture():
    return LatentVariableEBM(random_state=0).fit(make_ellipse(24))


@pytest.mark.parametrize("n_samples, noise", [(24, 0.0), (1000, 0.05)])
def test_recovers_the_half_axes(n_samples, noise):
    Y = make_ellipse(n_samples, noise=noise, uniform_angles=n_samples == 24, random_state=0)
    model = LatentVariableEBM(random_state=0).fit(Y)
    np.testing.assert_allclose(model.module_.decoder.w.tolist(), [2.0, 1.5], atol=0.05)


def test_free_energy_is_the_squared_distance_on_the_lecture_mesh(lecture):
    # The lecture's 17 x 25 mesh.
    y1, y2 = np.meshgrid(np.linspace(-3, 3, 25), np.linspace(-2, 2, 17))
    mesh = np.stack([y1.ravel(), y2.ravel()], 1)
    w1, w2 = lecture.module_.decoder.w.tolist()
    np.testing.assert_allclose(lecture.free_energy(mesh), distance_to_ellipse(mesh, w1, w2), atol=1e-3)


@pytest.mark.parametrize("inference", ["gd", "lbfgs"])
def test_gradient_inference_agrees_with_brute_force(lecture, inference):
    Y = np.random.default_rng(0).uniform(-3, 3, size=(40, 2))
    lecture.module_.inference = inference
    try:
        free = lecture.free_energy(Y)
    finally:
        lecture.module_.inference = "grid"
    np.testing.assert_allclose(free, lecture.free_energy(Y), atol=1e-3)


def test_transform_finds_the_latent_and_inverse_transform_decodes(lecture):
    Y = make_ellipse(24)
    z = lecture.transform(Y)
    assert z.shape == (24, 1)
    np.testing.assert_allclose(lecture.inverse_transform(z), Y, atol=0.02)


def test_soft_free_energy_tends_to_the_minimum(lecture):
    Y = np.random.default_rng(1).uniform(-3, 3, size=(30, 2))
    hard = lecture.free_energy(Y)
    gaps = []
    for beta in [1.0, 10.0, 100.0, 1000.0]:
        lecture.module_.beta = beta
        try:
            gaps.append(np.abs(lecture.free_energy(Y) - hard).max())
        finally:
            lecture.module_.beta = None
    assert all(a > b for a, b in itertools.pairwise(gaps)) and gaps[-1] < 0.01


def test_density_is_normalized_and_outliers_flagged(lecture):
    g = np.linspace(-8, 8, 400)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(lecture.score_samples(grid)).sum() * (g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=0.01)
    assert lecture.predict([[0.0, 0.0], [2.0, 0.0]]).tolist() == [-1, 1]
    assert lecture.sample(10, random_state=0).shape == (10, 2)


def test_ellipse_decoder_needs_two_features():
    with pytest.raises(ValueError, match="decoder='ellipse'"):
        LatentVariableEBM().fit(np.zeros((5, 3)))
