"""skebm.save / skebm.load: round trips for every estimator, and refusals of bad files."""

import pickle

import joblib
import numpy as np
import pytest
import torch

import skebm
from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from skebm.datasets import make_eight_gaussians, make_ellipse


def fitted_models():
    X = make_eight_gaussians(300, random_state=0)
    return [
        ContrastiveDivergenceEBM(hidden_layer_sizes=(16,), max_iter=2, buffer_size=64, random_state=0).fit(X),
        NCEEBM(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X),
        ScoreMatchingEBM(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X),
        RBM(visible="gaussian", n_components=4, max_iter=2, learning_rate=0.01, random_state=0).fit(X),
        LatentVariableEBM(max_iter=2, random_state=0).fit(make_ellipse(200, random_state=0)),
        ScoreMatchingEBM(base="gaussian", hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X),
    ]


MODELS = fitted_models()


def round_trip(model, how, path):
    if how == "skebm.save":
        skebm.save(model, path)
        return skebm.load(path)
    if how == "joblib":
        joblib.dump(model, path)
        return joblib.load(path)
    return pickle.loads(pickle.dumps(model))


@pytest.mark.parametrize("how", ["skebm.save", "pickle", "joblib"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_round_trip_keeps_scores_samples_and_training_state(model, how, tmp_path):
    loaded = round_trip(model, how, tmp_path / "model")
    X = model.sample(50, random_state=1)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(20, random_state=3), model.sample(20, random_state=3))
    assert loaded.get_params() == model.get_params()
    # Objects that share state still share it, so a warm start trains the loaded weights.
    if hasattr(loaded, "optimizer_"):
        assert loaded.optimizer_.param_groups[0]["params"][0] is next(loaded.module_.parameters())
    if hasattr(loaded, "buffer_"):
        assert loaded.buffer_.noise.__self__ is loaded.module_
    again = pickle.loads(pickle.dumps(model)).set_params(warm_start=True, max_iter=1).fit(X)
    loaded.set_params(warm_start=True, max_iter=1).fit(X)
    np.testing.assert_allclose(loaded.score_samples(X), again.score_samples(X), rtol=1e-10)


def test_unfitted_estimator_round_trips(tmp_path):
    skebm.save(ContrastiveDivergenceEBM(hidden_layer_sizes=(4, 4), step_size=0.5), tmp_path / "m.skebm")
    loaded = skebm.load(tmp_path / "m.skebm")
    assert loaded.hidden_layer_sizes == (4, 4) and loaded.step_size == 0.5
    assert not hasattr(loaded, "module_")


def test_custom_network_cannot_be_saved_safely(tmp_path):
    class Quadratic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * (x**2).sum(1)

    X = make_eight_gaussians(100, random_state=0)
    model = ScoreMatchingEBM(network=Quadratic(), max_iter=1, random_state=0).fit(X)
    with pytest.raises(TypeError, match=r"joblib\.dump"):
        skebm.save(model, tmp_path / "m.skebm")
    assert not (tmp_path / "m.skebm").exists()


def test_save_refuses_non_skebm_objects(tmp_path):
    from sklearn.mixture import GaussianMixture

    with pytest.raises(TypeError, match=r"skebm.s estimators"):
        skebm.save(GaussianMixture(), tmp_path / "m.skebm")
