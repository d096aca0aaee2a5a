import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
from sklearn.datasets import load_digits

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from skebm.datasets import make_ellipse, make_moons
from skebm.plotting import plot_chain, plot_energy_2d, plot_history, plot_samples


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


def test_plot_samples_draws_each_row_as_an_image():
    X = np.random.default_rng(0).random((7, 2 * 3 * 4))
    fig = plot_samples(X, image_shape=(2, 3, 4), n_cols=4)
    assert len(fig.axes) == 7
    for ax, row in zip(fig.axes, X):
        np.testing.assert_array_equal(ax.images[0].get_array(), row.reshape(2, 3, 4)[0])
    with pytest.raises(ValueError, match="image_shape"):
        plot_samples(np.zeros((2, 10)))


def test_plot_chain_ends_where_sample_ends():
    X = (load_digits().data[:300] > 7).astype(float)
    rbm = RBM(n_components=16, max_iter=2, n_sample_steps=30, random_state=0).fit(X)
    fig = plot_chain(rbm, n_chains=3, n_snapshots=4, random_state=5)
    assert len(fig.axes) == 12  # three chains (rows) of four snapshots
    final = rbm.sample(3, random_state=5)
    for chain in range(3):
        np.testing.assert_array_equal(fig.axes[4 * chain + 3].images[0].get_array(), final[chain].reshape(8, 8))


def test_plot_chain_follows_a_chain_whose_length_is_auto():
    X = load_digits().data[:64] / 8.0 - 1.0
    ebm = ContrastiveDivergenceEBM(network="conv", image_shape=(1, 8, 8), max_updates=1, log_partition=None)
    ebm.fit(X)  # n_sample_steps="auto": the 40 steps of the training chains
    fig = plot_chain(ebm, n_chains=2, n_snapshots=3, random_state=0)
    assert len(fig.axes) == 6  # snapshots at steps 0, 20 and 40
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), ebm.sample(2, random_state=0)[0].reshape(8, 8))


def test_plot_chain_of_a_two_dimensional_model_draws_points():
    X = make_moons(200, random_state=0)
    model = NCEEBM(hidden_layer_sizes=(8,), max_iter=1, sampler="mala", n_sample_steps=10, random_state=0).fit(X)
    fig = plot_chain(model, n_chains=30, n_snapshots=3, random_state=1)
    assert [ax.get_title() for ax in fig.axes] == ["step 0", "step 5", "step 10"]
    np.testing.assert_allclose(fig.axes[-1].collections[0].get_offsets(), model.sample(30, random_state=1))
    with pytest.raises(ValueError, match="sir"):
        plot_chain(model.set_params(sampler="sir"))
    with pytest.raises(ValueError, match="runs no chain"):
        plot_chain(LatentVariableEBM(max_iter=1).fit(make_ellipse(24)))


def test_plot_history_draws_each_diagnostic_per_epoch():
    X = make_moons(200, random_state=0)
    model = ContrastiveDivergenceEBM(hidden_layer_sizes=(8,), max_iter=3, buffer_size=64, random_state=0).fit(X)
    fig = plot_history(model)
    titles = [ax.get_title() for ax in fig.axes]
    assert {"loss", "cdiv", "real_energy", "fake_energy"} <= set(titles) and "wall_time" not in titles
    line = fig.axes[titles.index("cdiv")].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [record["cdiv"] for record in model.history_])


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: ScoreMatchingEBM(max_iter=1, n_sample_steps=6, random_state=0),
        lambda: RBM(n_components=4, max_iter=1, n_sample_steps=6, random_state=0),
    ],
)
def test_sample_callback_follows_the_chain_and_changes_no_sample(make_model):
    X = (np.random.default_rng(0).random((60, 4)) > 0.5).astype(float)
    model = make_model().fit(X)
    seen = []
    with_callback = model.sample(5, random_state=0, callback=lambda step, positions: seen.append((step, positions)))
    assert [step for step, _ in seen] == list(range(7))  # the start, then each of the six steps
    assert all(isinstance(positions, np.ndarray) and positions.shape == (5, 4) for _, positions in seen)
    np.testing.assert_array_equal(seen[-1][1], with_callback)
    np.testing.assert_array_equal(with_callback, model.sample(5, random_state=0))


def test_models_without_chains_refuse_a_sample_callback():
    model = LatentVariableEBM(max_iter=1, n_grid=64, random_state=0).fit(make_ellipse(40))
    with pytest.raises(ValueError, match="runs no chain"):
        model.sample(3, callback=print)
    with pytest.raises(TypeError, match="callable"):
        model.sample(3, callback="print")
