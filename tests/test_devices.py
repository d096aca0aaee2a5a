"""Models fitted on CUDA: they train there, and load and score on a CPU-only machine."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import skebm
from skebm import RBM, ContrastiveDivergenceEBM
from skebm.datasets import make_moons

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

LOAD_ON_CPU = """
import pickle, sys, numpy as np, torch, skebm
assert not torch.cuda.is_available()
path = sys.argv[1]
model = skebm.load(path) if path.endswith(".skebm") else pickle.load(open(path, "rb"))
np.save(sys.argv[2], model.score_samples(np.load(sys.argv[3])))
"""


def estimators():
    return [
        (
            ContrastiveDivergenceEBM(hidden_layer_sizes=(32, 32), max_iter=2, random_state=0),
            make_moons(400, random_state=0),
        ),
        (
            RBM(n_components=8, max_iter=2, random_state=0),
            (np.random.default_rng(0).random((300, 12)) > 0.5).astype(float),
        ),
    ]


@pytest.mark.parametrize("file_format", ["pickle", "skebm.save"])
@pytest.mark.parametrize("estimator, X", estimators(), ids=["cd", "rbm"])
def test_cuda_fit_loads_on_a_cpu_only_machine(estimator, X, file_format, tmp_path):
    model = estimator.set_params(device="cuda").fit(X)
    assert model.device_.type == "cuda"
    on_cuda = model.score_samples(X)
    np.save(tmp_path / "X.npy", X)
    if file_format == "pickle":
        path = tmp_path / "model.pkl"
        path.write_bytes(pickle.dumps(model))
    else:
        path = tmp_path / "model.skebm"
        skebm.save(model, path)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        [sys.executable, "-c", LOAD_ON_CPU, path, tmp_path / "scores.npy", tmp_path / "X.npy"],
        check=True,
        env=env,
    )
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), on_cuda, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("estimator, X", estimators(), ids=["cd", "rbm"])
def test_cuda_fits_are_reproducible(estimator, X):
    a = estimator.set_params(device="cuda").fit(X).score_samples(X)
    b = estimator.set_params(device="cuda").fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)
