"""The normalizing-flow noise of NCEEBM(noise="flow")."""

import warnings

import numpy as np
import pytest

import skebm
from skebm import NCEEBM
from skebm._flow import FlowDensity, FlowEnergy
from skebm.datasets import make_moons

pytest.importorskip("zuko", reason="the flow noise needs the optional zuko package")


@pytest.fixture(scope="module")
def moons():
    return make_moons(400, random_state=0)


@pytest.fixture(scope="module")
def flow(moons):
    return FlowDensity(max_updates=60, random_state=0).fit(moons)


def test_flow_density_is_normalized(flow):
    # A grid 8 standard deviations wide each way holds all but ~1e-15 of the Gaussian base's mass; the
    # midpoint rule on a 300 x 300 grid over a smooth density is accurate far beyond the tolerance.
    axis = np.linspace(-8, 8, 300)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2) * flow.scale_ + flow.mean_
    cell = np.prod((axis[1] - axis[0]) * flow.scale_)
    mass = np.exp(flow.score_samples(grid)).sum() * cell
    assert abs(np.log(mass)) < 0.02


def test_flow_learns_the_data(moons, flow):
    untrained = FlowDensity(max_updates=1, random_state=0).fit(moons)
    test = make_moons(400, random_state=1)
    assert flow.score(test) > untrained.score(test) + 0.2


def test_flow_is_reproducible(moons, flow):
    again = FlowDensity(max_updates=60, random_state=0).fit(moons)
    np.testing.assert_array_equal(again.score_samples(moons[:20]), flow.score_samples(moons[:20]))
    np.testing.assert_array_equal(flow.sample(5, random_state=3), flow.sample(5, random_state=3))


def test_flow_rejects_bad_input(moons, flow):
    with pytest.raises(ValueError, match="NaN"):
        FlowDensity(max_updates=2).fit(np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="features"):
        flow.score_samples(np.zeros((3, 5)))


def test_flow_energy_is_minus_the_log_density(moons, flow):
    import torch

    energy = FlowEnergy(flow)(torch.as_tensor(moons[:10], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(-energy, flow.score_samples(moons[:10]), rtol=1e-5, atol=1e-5)


def test_nce_with_flow_noise_starts_from_the_flow_and_keeps_log_z(moons, tmp_path):
    # noise="flow" is this with the default budget of updates.
    noise = FlowDensity(max_updates=30, random_state=0)
    model = NCEEBM(noise=noise, hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(moons)
    assert isinstance(model.noise_.base, FlowDensity)
    assert isinstance(model.module_.network.base, FlowEnergy)  # residual: the network corrects the flow
    scores = model.score_samples(moons)
    assert np.all(np.isfinite(scores))
    # The energy starts as the flow's (normalized): the learned log Z stays near 0 in a short fit.
    assert abs(model.log_partition_) < 0.5
    with pytest.raises(TypeError, match="safe format"):  # a noise object is code, not data
        skebm.save(model, tmp_path / "model.skebm")


def test_flow_noise_nce_round_trips_through_the_safe_format(moons, tmp_path, monkeypatch):
    # noise="flow" fits the flow at its default budget of 1,000 updates; 30 are enough for a file.
    monkeypatch.setattr(FlowDensity.__init__, "__defaults__", (30, None))
    model = NCEEBM(noise="flow", hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(moons[:300])
    skebm.save(model, tmp_path / "model.skebm")
    loaded = skebm.load(tmp_path / "model.skebm")
    assert isinstance(loaded.noise_.base, FlowDensity)
    np.testing.assert_array_equal(loaded.score_samples(moons), model.score_samples(moons))
    np.testing.assert_array_equal(loaded.noise_.score_samples(moons), model.noise_.score_samples(moons))
    np.testing.assert_array_equal(loaded.sample(5, random_state=0), model.sample(5, random_state=0))


def test_a_flow_that_diverges_stops_the_fit_and_keeps_the_models(moons, flow, monkeypatch):
    import torch

    nce = NCEEBM(noise=FlowDensity(max_updates=30, random_state=0), hidden_layer_sizes=(8,), max_iter=1)
    nce.set_params(random_state=0).fit(moons)
    before = (flow.score_samples(moons), nce.score_samples(moons), nce.noise_.score_samples(moons))
    real_build_flow = skebm._flow.build_flow

    def broken_flow(n_features, generator=None):  # a NaN weight: every log-likelihood is NaN
        built = real_build_flow(n_features, generator)
        with torch.no_grad():
            next(built.parameters()).fill_(float("nan"))
        return built

    monkeypatch.setattr(skebm._flow, "build_flow", broken_flow)
    with pytest.raises(skebm.DivergenceError, match="FlowDensity diverged at update 1 of 60"):
        flow.fit(moons[:200])
    nce.set_params(noise=FlowDensity(random_state=0))
    with pytest.raises(skebm.DivergenceError, match="FlowDensity diverged at update 1"):
        nce.fit(moons)
    # Both keep what the last successful fit gave them.
    after = (flow.score_samples(moons), nce.score_samples(moons), nce.noise_.score_samples(moons))
    for old, new in zip(before, after):
        np.testing.assert_array_equal(new, old)
    assert flow.n_features_in_ == 2 and nce.noise_.base.max_updates == 30


def test_flow_contrastive_estimation_trains_the_noise_not_the_energy_base(moons, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(FlowDensity.__init__, "__defaults__", (30, None))  # a short maximum-likelihood start
    fixed = NCEEBM(noise="flow", hidden_layer_sizes=(8,), max_updates=20, random_state=0).fit(moons)
    trained = NCEEBM(noise="flow", noise_learning_rate=1e-2, hidden_layer_sizes=(8,), max_updates=20, random_state=0)
    trained.fit(moons)
    start, noise = fixed.noise_.base.flow_.state_dict(), trained.noise_.base.flow_.state_dict()
    base = trained.module_.network.base.flow.state_dict()
    # The noise moved away from its maximum-likelihood start; the energy's base stayed there.
    assert any(not torch.equal(noise[key], start[key]) for key in start)
    for key in start:
        torch.testing.assert_close(base[key], start[key], rtol=0, atol=0)
    assert np.all(np.isfinite(trained.score_samples(moons)))
    skebm.save(trained, tmp_path / "fce.skebm")
    loaded = skebm.load(tmp_path / "fce.skebm")
    np.testing.assert_array_equal(loaded.score_samples(moons), trained.score_samples(moons))
    np.testing.assert_array_equal(loaded.noise_.score_samples(moons), trained.noise_.score_samples(moons))


def test_noise_learning_rate_needs_the_flow_noise(moons):
    with pytest.raises(ValueError, match="needs noise='flow'"):
        NCEEBM(noise_learning_rate=1e-3, max_updates=2).fit(moons)


def test_reversed_gradient_is_the_identity_forward_and_negates_backward():
    import torch

    from skebm._nce import _reversed_gradient

    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = _reversed_gradient(x)
    torch.testing.assert_close(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, -torch.tensor([1.0, 2.0, 3.0]))


def test_flow_contrastive_step_moves_the_flow_up_the_loss_and_the_energy_down(moons, monkeypatch):
    import torch

    import skebm._nce as nce_module

    monkeypatch.setattr(FlowDensity.__init__, "__defaults__", (30, None))
    model = NCEEBM(noise="flow", noise_learning_rate=1e-3, hidden_layer_sizes=(8,), max_updates=2, random_state=0)
    model.fit(moons)
    batch = torch.as_tensor(moons[:32], dtype=torch.float32)
    flow, energy = model.noise_.base.flow_, model.module_.network.network

    def gradients():  # of one minibatch's loss, from the same draws each time
        model._generator.manual_seed(0)
        model.optimizer_.zero_grad()
        model._batch_loss(batch)[0].backward()
        return [p.grad.clone() for p in flow.parameters()], [p.grad.clone() for p in energy.parameters()]

    flow_reversed, energy_reversed = gradients()
    monkeypatch.setattr(nce_module, "_reversed_gradient", lambda x: x)
    flow_plain, energy_plain = gradients()
    for reversed_grad, plain in zip(flow_reversed, flow_plain):
        torch.testing.assert_close(reversed_grad, -plain)
    for reversed_grad, plain in zip(energy_reversed, energy_plain):
        torch.testing.assert_close(reversed_grad, plain)
    assert any(g.abs().sum() > 0 for g in flow_plain)


def test_a_flow_collapsing_onto_a_repeated_row_is_named(moons):
    X = moons.copy()
    X[5:] = X[0]  # 396 of the 400 rows at one point: a spike has unbounded likelihood there
    with pytest.warns(UserWarning, match=r"repeated in 396 of the 400 rows.*collapses onto it"):
        FlowDensity(max_updates=60, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows of continuous data: no repeats, no warning
        FlowDensity(max_updates=5, random_state=0).fit(moons)
