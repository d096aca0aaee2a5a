"""skebm.save / skebm.load: round trips for every estimator, and refusals of bad files."""

import io
import pickle

import joblib
import numpy as np
import pytest
import torch

import skebm
from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from skebm.datasets import make_eight_gaussians, make_ellipse
from skebm.persistence import _MAGIC


def fitted_models():
    X = make_eight_gaussians(300, random_state=0)
    return [
        ContrastiveDivergenceEBM(hidden_layer_sizes=(16,), max_iter=2, buffer_size=64, random_state=0).fit(X),
        NCEEBM(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X),
        ScoreMatchingEBM(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X),
        RBM(visible="gaussian", n_components=4, max_iter=2, learning_rate=0.01, random_state=0).fit(X),
        LatentVariableEBM(max_iter=2, random_state=0).fit(make_ellipse(200, random_state=0)),
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


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.skebm"
    skebm.save(MODELS[0], path)
    return path


def test_altered_file_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-100] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted or was modified"):
        skebm.load(saved)


def test_truncated_file_is_refused(saved):
    saved.write_bytes(saved.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="corrupted or was modified"):
        skebm.load(saved)


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(MODELS[0]))
    with pytest.raises(ValueError, match=r"not a file written by skebm\.save"):
        skebm.load(path)


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def _forged(tmp_path, tree):
    """A file with a valid header and checksum around any pickled tree: what an attacker could write."""
    import hashlib

    blob = io.BytesIO()
    torch.save(tree, blob)
    payload = blob.getvalue()
    path = tmp_path / "forged.skebm"
    path.write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)
    return path


def test_forged_file_with_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _forged(tmp_path, {"format": 1, "estimator": _RunsCode()})
    with pytest.raises(ValueError, match="refused"):
        skebm.load(path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "name",
    [
        "builtins.eval",  # not a class
        "subprocess.Popen",  # outside the allowlist
        "skebm._base.io.FileIO",  # an allowed prefix reached through a module's imports
        "skebm._contrastive_divergence.ContrastiveDivergenceEBM",  # an estimator rebuilt through __setstate__
    ],
)
def test_forged_file_naming_other_classes_is_refused(tmp_path, name):
    tree = {"format": 1, "estimator": {"__skebm__": "object", "id": 0, "class": name, "state": {}}}
    with pytest.raises(ValueError, match="refuse"):
        skebm.load(_forged(tmp_path, tree))


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

    with pytest.raises(TypeError, match="skebm estimators"):
        skebm.save(GaussianMixture(), tmp_path / "m.skebm")
