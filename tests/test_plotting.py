import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from skebm import LatentVariableEBM
from skebm.datasets import make_ellipse
from skebm.plotting import plot_energy_2d


@pytest.fixture(scope="module")
def ellipse_model():
    return LatentVariableEBM(random_state=0).fit(make_ellipse(24))


def test_heat_map_is_the_free_energy_and_arrows_point_to_the_ellipse(ellipse_model):
    ax = plot_energy_2d(ellipse_model, make_ellipse(24), bounds=(-3, 3, -2, 2), resolution=60, n_arrows=10)
    (image,) = ax.images
    g1, g2 = np.linspace(-3, 3, 60), np.linspace(-2, 2, 60)
    expected = ellipse_model.energy(np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)).reshape(60, 60)
    np.testing.assert_allclose(np.asarray(image.get_array()), expected)
    quiver = next(c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver))
    # Outside the ellipse the arrows point inwards: against the position vector.
    positions, arrows = quiver.get_offsets(), np.stack([quiver.U, quiver.V], 1)
    outside = (positions[:, 0] / 2) ** 2 + (positions[:, 1] / 1.5) ** 2 > 1.5
    assert outside.sum() > 10 and np.all((positions[outside] * arrows[outside]).sum(1) < 0)


def test_needs_bounds_or_two_dimensional_points(ellipse_model):
    with pytest.raises(ValueError, match="bounds"):
        plot_energy_2d(ellipse_model)


def test_latent_ellipse_example_writes_its_figure(tmp_path, monkeypatch):
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["plot_latent_ellipse.py", "--output", str(tmp_path)])
    runpy.run_path("examples/plot_latent_ellipse.py", run_name="__main__")
    assert (tmp_path / "latent_ellipse.png").stat().st_size > 10_000
