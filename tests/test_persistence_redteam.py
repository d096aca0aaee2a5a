"""skebm.load against crafted files: every one is refused with a ValueError, and none runs code.

An attacker can write any bytes, and can recompute the file's checksum (it has no key), so
most files here carry a valid one: they must be refused for what they hold, not for the digest.
"""

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import skebm
from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM
from skebm.datasets import make_eight_gaussians
from skebm.persistence import _digest

X = make_eight_gaussians(200, random_state=0)


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """A real file of each kind of state: network, optimizer, replay buffer, noise."""
    paths = {}
    for model in (
        ContrastiveDivergenceEBM(hidden_layer_sizes=(8,), max_iter=1, buffer_size=32, n_steps=5, random_state=0),
        NCEEBM(hidden_layer_sizes=(8,), max_iter=1, random_state=0),
    ):
        path = tmp_path_factory.mktemp("genuine") / f"{type(model).__name__}.skebm"
        skebm.save(model.fit(X), path)
        paths[type(model).__name__] = path
    return paths


def read_parts(path):
    """The skebm header (without its digest) and the tensors of a genuine file, for forging."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["skebm"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    header.pop("sha256")
    return header, tensors


def forge(path, header, tensors):
    """What an attacker writes: any header and tensors, with the checksum recomputed."""
    header = dict(header, sha256=_digest(header, tensors))
    save_file(tensors, str(path), metadata={"skebm": json.dumps(header)})
    return path


def assert_refused(path, match=None):
    with pytest.raises(ValueError, match=match):
        skebm.load(path)


# ----------------------------------------------------------- code in the file
class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_pickle_with_a_reduce_payload_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.skebm").write_bytes(pickle.dumps(_RunsCode()))
    assert_refused(tmp_path / "m.skebm", "not a file written by skebm.save")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "entry",
    [
        # The old format's gadget: a bound method reached through attribute names in the file.
        {"kind": "method", "self": {"kind": "tensor"}, "name": "ctypes"},
        {"kind": "object", "class": "subprocess.Popen", "state": {}},
        {"kind": "estimator", "class": "builtins.eval"},
    ],
)
def test_entries_that_name_code_are_refused(genuine, tmp_path, monkeypatch, entry):
    monkeypatch.chdir(tmp_path)
    header, tensors = read_parts(genuine["NCEEBM"])
    header["fitted"]["offset_"] = entry
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "unknown entry kind")


@pytest.mark.parametrize("name", ["__class__", "fit", "_validate_params", "score_samples", "__dict__"])
def test_a_file_cannot_set_methods_or_dunders(genuine, tmp_path, name):
    header, tensors = read_parts(genuine["NCEEBM"])
    header["fitted"][name] = {"kind": "json", "value": 1}
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "not a fitted attribute")


@pytest.mark.parametrize("estimator", ["GaussianMixture", "subprocess.Popen", "BaseEBM", "skebm._base.BaseEBM"])
def test_only_skebm_estimators_are_built(genuine, tmp_path, estimator):
    header, tensors = read_parts(genuine["NCEEBM"])
    header["estimator"] = estimator
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "not an skebm estimator")


@pytest.mark.parametrize(
    "params",
    [
        {"hidden_layer_sizes": {"__tuple__": [0]}},
        {"learning_rate": "import os"},
        {"noise": "sklearn.neighbors.KernelDensity"},
        {"unknown_parameter": 1},
    ],
)
def test_parameters_a_fit_would_refuse_are_refused(genuine, tmp_path, params):
    header, tensors = read_parts(genuine["NCEEBM"])
    header["params"].update(params)
    assert_refused(forge(tmp_path / "m.skebm", header, tensors))


def test_a_file_written_before_a_parameter_existed_loads_with_its_default(genuine, tmp_path):
    header, tensors = read_parts(genuine["NCEEBM"])
    written = header["params"].pop("weight_averaging")
    model = skebm.load(forge(tmp_path / "m.skebm", header, tensors))
    assert model.weight_averaging == NCEEBM().weight_averaging == written
    np.testing.assert_allclose(model.score_samples(X[:5]), skebm.load(genuine["NCEEBM"]).score_samples(X[:5]))


# ----------------------------------------------------------- sizes
def test_a_network_larger_than_the_file_is_refused_before_allocation(genuine, tmp_path):
    # Asking for a billion hidden units: the network is built on the meta device, compared
    # with the file's tensors, and refused; nothing of its size is allocated.
    header, tensors = read_parts(genuine["ContrastiveDivergenceEBM"])
    header["params"]["hidden_layer_sizes"] = {"__tuple__": [10**9]}
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "module_")


def test_a_latent_grid_too_large_for_memory_is_refused_on_loading(tmp_path):
    from skebm import LatentVariableEBM
    from skebm.datasets import make_ellipse

    path = tmp_path / "latent.skebm"
    skebm.save(LatentVariableEBM(max_iter=1, random_state=0).fit(make_ellipse(50, random_state=0)), path)
    header, tensors = read_parts(path)
    header["params"]["n_grid"] = 10**9  # scoring would decode a billion latents
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "n_grid")


def test_a_replay_buffer_claiming_more_rows_than_it_has_is_refused(genuine, tmp_path):
    header, tensors = read_parts(genuine["ContrastiveDivergenceEBM"])
    header["fitted"]["buffer_"]["size"] = 10**9
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "replay buffer")


def test_deeply_nested_json_is_refused(genuine, tmp_path):
    header, tensors = read_parts(genuine["NCEEBM"])
    header["sha256"] = _digest(header, tensors)
    nested = "[" * 100_000 + "]" * 100_000
    metadata = json.dumps(header).replace('"value": [', f'"value": [{nested}, ', 1)
    save_file(tensors, str(tmp_path / "m.skebm"), metadata={"skebm": metadata})
    assert_refused(tmp_path / "m.skebm")


def test_an_oversized_header_length_is_refused_unread(tmp_path):
    (tmp_path / "m.skebm").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    assert_refused(tmp_path / "m.skebm", "no valid safetensors header")


def test_a_tensor_whose_shape_lies_about_its_bytes_is_refused(genuine, tmp_path):
    data = genuine["NCEEBM"].read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    entries = json.loads(data[8 : 8 + size])
    name = next(key for key in entries if key != "__metadata__")
    entries[name]["shape"] = [30000, 10000]  # 1.2 GB claimed inside a file of kilobytes
    forged = json.dumps(entries).encode()
    forged += b" " * (-len(forged) % 8)
    (tmp_path / "m.skebm").write_bytes(struct.pack("<Q", len(forged)) + forged + data[8 + size :])
    assert_refused(tmp_path / "m.skebm")


@pytest.mark.parametrize("dtype", [torch.complex64, torch.float16, torch.int16])
def test_tensors_of_other_dtypes_are_refused(genuine, tmp_path, dtype):
    header, tensors = read_parts(genuine["NCEEBM"])
    tensors["labels_"] = tensors["labels_"].to(dtype)
    assert_refused(forge(tmp_path / "m.skebm", header, tensors))


@pytest.mark.parametrize("dtype", ["|V8", "|O", "<M8[ns]"])
def test_arrays_that_would_become_void_object_or_dates_are_refused(genuine, tmp_path, dtype):
    header, tensors = read_parts(genuine["NCEEBM"])
    header["fitted"]["decision_scores_"]["dtype"] = dtype
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "must hold numbers")


def test_non_finite_weights_are_refused(genuine, tmp_path):
    header, tensors = read_parts(genuine["NCEEBM"])
    name = next(key for key in tensors if key.startswith("module_.") and tensors[key].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    assert_refused(forge(tmp_path / "m.skebm", header, tensors), "non-finite")


@pytest.mark.parametrize("cut", [1, 100, 0.5])
def test_truncated_files_are_refused(genuine, tmp_path, cut):
    data = genuine["NCEEBM"].read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else len(data) - cut
    (tmp_path / "m.skebm").write_bytes(data[:end])
    assert_refused(tmp_path / "m.skebm")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=3))
def test_mutated_copies_of_a_real_file_are_refused(genuine, tmp_path, edits):
    data = bytearray(genuine["ContrastiveDivergenceEBM"].read_bytes())
    original = bytes(data)
    for where, value in edits:
        data[int(where * len(data))] = value
    if bytes(data) == original:
        return
    path = tmp_path / "mutated.skebm"
    path.write_bytes(bytes(data))
    assert_refused(path)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures peak memory through Linux's /proc")
def test_a_genuine_file_allocates_about_its_size_once(tmp_path):
    # RBM weights and their momentum: about 100 MB of tensors. Measured in a fresh process as the
    # growth of its peak resident memory (VmHWM, reset after a small load has warmed up every import).
    rows = np.random.default_rng(0).random((20, 784))
    big = RBM(n_components=16000, max_iter=1, batch_size=10, log_partition=None, random_state=0).fit(rows)
    path, small = tmp_path / "big.skebm", tmp_path / "small.skebm"
    skebm.save(big, path)
    skebm.save(RBM(n_components=2, max_iter=1, log_partition=None, random_state=0).fit(rows), small)
    del big
    script = textwrap.dedent(
        f"""
        import skebm
        def memory(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
        skebm.load({str(small)!r})
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak to the current resident size
        before = memory("VmRSS:")
        model = skebm.load({str(path)!r})
        print(memory("VmHWM:") - before)
        """
    )
    grown = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    size = os.path.getsize(path)
    assert grown <= 1.5 * size, f"loading a {size / 1e6:.0f} MB file grew memory by {grown / 1e6:.0f} MB"
