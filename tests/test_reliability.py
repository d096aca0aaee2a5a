"""One regression test per reliability failure of issue 16: no silent garbage, no half-fitted model."""

import copy
import threading

import numpy as np
import pytest
import torch

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, DivergenceError, LatentVariableEBM, ScoreMatchingEBM
from skebm.datasets import make_eight_gaussians, make_ellipse
from skebm.metrics import hyvarinen_scorer

X = make_eight_gaussians(200, random_state=0)
SMALL = dict(max_iter=2, random_state=0)


def small(cls, **params):
    if cls is RBM:
        return RBM(visible="gaussian", n_components=4, learning_rate=0.01, **SMALL, **params)
    if cls is LatentVariableEBM:
        return LatentVariableEBM(**SMALL, **params)
    if cls is ContrastiveDivergenceEBM:
        return cls(hidden_layer_sizes=(8,), n_steps=5, buffer_size=64, **SMALL, **params)
    return cls(hidden_layer_sizes=(8,), **SMALL, **params)


def data_for(cls):
    return make_ellipse(200, random_state=0) if cls is LatentVariableEBM else X


ALL = [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, RBM, LatentVariableEBM]


# ------------------------------------------------------------ divergence
@pytest.mark.parametrize("cls", [ScoreMatchingEBM, NCEEBM, LatentVariableEBM, RBM])
def test_a_runaway_learning_rate_raises_and_keeps_the_earlier_fit(cls):
    data = data_for(cls)
    model = small(cls).fit(data)
    before = model.score_samples(data)
    with pytest.raises(DivergenceError, match="learning_rate") as caught:
        model.set_params(learning_rate=1e3, max_iter=5).fit(data)
    np.testing.assert_array_equal(model.score_samples(data), before)
    # The advice names only parameters the estimator has: none of these trains with a sampler.
    assert "step_size" not in str(caught.value)


@pytest.mark.parametrize("cls", ALL)
def test_data_beyond_float32_squares_is_refused(cls):
    with pytest.raises(ValueError, match="StandardScaler"):
        small(cls).fit(data_for(cls) * 1e30)


# ------------------------------------------------------------ interruption
@pytest.mark.parametrize("cls", ALL)
def test_ctrl_c_while_log_z_is_computed_keeps_the_previous_fit(cls, monkeypatch):
    data = data_for(cls)
    model = small(cls).fit(data)
    before = model.score_samples(data), model.offset_, model.log_partition_

    def interrupted(self, X):
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, "_compute_log_partition", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(random_state=1).fit(data)
    assert (model.offset_, model.log_partition_) == before[1:]
    np.testing.assert_array_equal(model.score_samples(data), before[0])


def test_ctrl_c_while_thresholds_are_set_on_a_first_fit_leaves_it_unfitted(monkeypatch):
    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(NCEEBM, "_set_outlier_thresholds", interrupted)
    model = small(NCEEBM)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert not [key for key in vars(model) if key.endswith("_")]


# ------------------------------------------------------------ parameters
@pytest.mark.parametrize("sizes", [(0,), (-3,), (2.5,), (), (8, True)])
@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, LatentVariableEBM])
def test_bad_hidden_layer_sizes_name_the_parameter(cls, sizes):
    with pytest.raises(ValueError, match="'hidden_layer_sizes' parameter"):
        small(cls).set_params(hidden_layer_sizes=sizes).fit(data_for(cls))


@pytest.mark.parametrize("bounds", [(1.0, -1.0), (0.0, 0.0), (float("nan"), 1.0), (0.0,), (0.0, float("inf"))])
def test_bad_bounds_name_the_parameter(bounds):
    with pytest.raises(ValueError, match="'bounds' parameter"):
        small(ScoreMatchingEBM, bounds=bounds).fit(X)


def test_a_latent_grid_too_large_for_memory_is_refused_before_fitting():
    model = LatentVariableEBM(decoder="mlp", latent_dim=2, n_grid=1024, hidden_layer_sizes=(64,))
    with pytest.raises(ValueError, match="n_grid=1024"):
        model.fit(make_ellipse(50, random_state=0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_a_value_error():
    with pytest.raises(ValueError, match="CUDA"):
        small(NCEEBM, device="cuda").fit(X)


@pytest.mark.parametrize("device", ["tpu", "not a device"])
def test_unknown_devices_are_value_errors(device):
    with pytest.raises(ValueError, match="device"):
        small(NCEEBM, device=device).fit(X)


@pytest.mark.parametrize("n_samples", [True, 0, 2.0, "3"])
def test_sample_refuses_anything_but_a_positive_integer(n_samples):
    model = small(NCEEBM).fit(X)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(n_samples)


# ------------------------------------------------------------ randomness
def _fit_nce(seed, results):
    results[seed] = NCEEBM(hidden_layer_sizes=(8,), max_iter=2, random_state=seed).fit(X).score_samples(X)


def test_fits_in_threads_equal_the_same_fits_in_sequence():
    sequential = {}
    for seed in (0, 1):
        _fit_nce(seed, sequential)
    for _trial in range(3):
        threaded = {}
        threads = [threading.Thread(target=_fit_nce, args=(seed, threaded)) for seed in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for seed in (0, 1):
            np.testing.assert_array_equal(threaded[seed], sequential[seed])


@pytest.mark.parametrize("cls", ALL)
def test_a_fit_never_draws_from_torch_global_stream(cls):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = small(cls).fit(data_for(cls))
    model.sample(5, random_state=0)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_a_failed_fit_restores_the_generator():
    model = small(NCEEBM).fit(X)
    state = model._generator.get_state()
    with pytest.raises(DivergenceError):
        model.set_params(learning_rate=1e3, max_iter=5, warm_start=True).fit(X)
    assert torch.equal(model._generator.get_state(), state)


@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, LatentVariableEBM])
def test_warm_start_takes_the_new_learning_rate(cls):
    data = data_for(cls)
    model = small(cls).fit(data)
    # The rate of every step of the warm start: the new one, or a schedule that starts from it.
    rates, step = [], model.optimizer_.step
    model.optimizer_.step = lambda *args, **kwargs: (
        rates.append(model.optimizer_.param_groups[0]["lr"]) or step(*args, **kwargs)
    )
    model.set_params(warm_start=True, max_iter=1, learning_rate=1e-5).fit(data)
    assert rates and rates[0] == 1e-5 and max(rates) == 1e-5


@pytest.mark.parametrize("random_state", [None, 0, np.random.RandomState(0)])
def test_hyvarinen_scorer_takes_any_random_state(random_state):
    model = small(ScoreMatchingEBM).fit(X)
    assert np.isfinite(hyvarinen_scorer(model, X, n_projections=2, random_state=copy.deepcopy(random_state)))


# ------------------------------------------------------------ memory
def test_rbm_transform_converts_one_block_of_rows_at_a_time(monkeypatch):
    rows = np.random.default_rng(0).random((20_000, 6))
    model = RBM(n_components=3, max_iter=1, random_state=0).fit(rows[:100])
    with torch.no_grad():
        whole = model._float64_energy().params().hidden_probability(torch.as_tensor(rows)).numpy()
    sizes = []
    convert = RBM._as_tensor

    def recording(self, X, dtype=torch.float32):
        sizes.append(len(X))
        return convert(self, X, dtype)

    monkeypatch.setattr(RBM, "_as_tensor", recording)
    np.testing.assert_allclose(model.transform(rows), whole, rtol=1e-12)
    assert max(sizes) <= 8192 < len(rows)
