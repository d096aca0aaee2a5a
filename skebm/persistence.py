"""Saving and loading fitted estimators in a format that can only hold data.

``pickle`` and ``joblib`` work on every skebm estimator, but unpickling runs
whatever code the file names, so they are for files you trust only.
:func:`save` writes a `safetensors <https://huggingface.co/docs/safetensors>`_
file instead:

- Tensors (weights, optimizer moments, chains, fitted arrays) are raw bytes
  behind a JSON header that gives each one's dtype, shape and offsets.
- Everything else is JSON in that header: the estimator's class name (one of
  skebm's five), its constructor parameters, and plain fitted values such as
  ``history_``.
- :func:`load` builds the estimator from its parameters with skebm's own code
  and fills in the numbers. No class path, attribute chain or callable is ever
  read from a file, so a file can name no code to run.
- Sizes are checked against the file's length before anything is allocated:
  safetensors checks that the offsets lie within the file and cover it, and
  the network is built on PyTorch's ``meta`` device (no memory) and compared
  with the file's shapes before the weights are read into it. Loading a file
  allocates about its size once.
- A SHA-256 of the header and the tensors catches a corrupted file. It has no key, so it
  proves nothing about who wrote the file: a file from an unknown source can
  run nothing and allocate little, but it can hold wrong numbers.

Tensors are loaded on the CPU, so a model fitted on a GPU loads anywhere.
"""

import hashlib
import json
import math
import os
import re

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ._random import cpu_generator_state

__all__ = ["load", "save"]

_FORMAT = "skebm/safetensors-1"
# A header holds names, shapes, parameters and history_: kilobytes. A larger one is refused unread.
_MAX_HEADER_BYTES = 16 * 2**20
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# Fitted attributes a file may set: public ones (ending in "_") and the estimator's generator.
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*_$")
_PRIVATE_ATTRIBUTES = ("_generator",)
# Optimizer settings that choose how a step is computed (a fused kernel or a loop), not what it computes.
_STEP_IMPLEMENTATION = ("foreach", "fused")


def _estimator_classes():
    from . import (
        NCEEBM,
        RBM,
        AdversarialEBM,
        BoltzmannMachine,
        ContrastiveDivergenceEBM,
        LatentVariableEBM,
        ScoreMatchingEBM,
    )

    classes = (
        ContrastiveDivergenceEBM,
        ScoreMatchingEBM,
        NCEEBM,
        AdversarialEBM,
        RBM,
        BoltzmannMachine,
        LatentVariableEBM,
    )
    return {cls.__name__: cls for cls in classes}


def save(estimator, path):
    """Write a fitted (or unfitted) skebm estimator to ``path`` in the safe format.

    Parameters
    ----------
    estimator : skebm estimator
    path : str or path-like

    Raises
    ------
    TypeError
        If the estimator holds something the safe format cannot rebuild from
        data alone (a custom network or noise object, say); save such models
        with ``joblib.dump`` and load them only from sources you trust.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> import skebm
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> model = skebm.NCEEBM(max_iter=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skebm")
    >>> skebm.save(model, path)
    >>> loaded = skebm.load(path)
    >>> bool(np.array_equal(loaded.score_samples(X), model.score_samples(X)))
    True
    """
    name = type(estimator).__name__
    if name == "DBN":  # its layers are estimators: the format holds one estimator per file
        raise TypeError(
            "skebm.save does not write a DBN yet: save each of its layers (dbn.rbms_) with skebm.save, or use "
            "joblib.dump and load the file only from sources you trust."
        )
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(f"skebm.save writes skebm's estimators; got {name}. Use joblib.dump for other objects.")
    writer = _Writer()
    params = estimator.get_params(deep=False)
    header = {"format": _FORMAT, "estimator": name, "params": writer.params(params)}
    header["fitted"] = {
        key: writer.encode(key, value)
        for key, value in vars(estimator).items()
        if key not in params and (_ATTRIBUTE_NAME.match(key) or key in _PRIVATE_ATTRIBUTES)
    }
    header["sha256"] = _digest(header, writer.tensors)
    save_file(writer.tensors, os.fspath(path), metadata={"skebm": json.dumps(header)})


def load(path):
    """Read an estimator written by :func:`save`; nothing in the file can run code.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator : skebm estimator
        On the CPU (``device_`` is ``cpu``), whatever device it was fitted on.

    Raises
    ------
    ValueError
        If the file is not one written by :func:`save`, is truncated or
        corrupted, or holds anything the estimator could not have written.

    Examples
    --------
    >>> import tempfile, os
    >>> import skebm
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skebm")
    >>> skebm.save(skebm.RBM(n_components=4), path)
    >>> skebm.load(path).n_components
    4
    """
    header, tensors = _read(path)
    try:
        return _Reader(header, tensors).estimator()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        raise ValueError(f"{path} was refused: it is not what skebm.save writes ({error}).") from error


# ------------------------------------------------------------------ the file
def _read(path):
    """The skebm header and the tensors of a safetensors file, each tensor allocated once at its checked size."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        prefix = file.read(8)
        header_size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < header_size <= min(size - 8, _MAX_HEADER_BYTES):
            raise ValueError(f"{path} is not a file written by skebm.save (no valid safetensors header).")
        try:
            # safetensors checks the header: known dtypes, offsets inside the file that cover it exactly.
            with safe_open(os.fspath(path), framework="pt") as checked:
                metadata = checked.metadata() or {}
        except Exception as error:
            raise ValueError(f"{path} is truncated or not a safetensors file: {error}") from error
        if "skebm" not in metadata:
            raise ValueError(f"{path} is not a file written by skebm.save (a safetensors file without skebm data).")
        try:
            entries = json.loads(file.read(header_size))
            header = json.loads(metadata["skebm"])
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise ValueError(f"unknown format {header.get('format')!r}")
            entries.pop("__metadata__", None)
            tensors = {name: _read_tensor(file, 8 + header_size, entry) for name, entry in entries.items()}
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
            raise ValueError(f"{path} was refused: {error}") from error
    if header.pop("sha256", None) != _digest(header, tensors):
        raise ValueError(f"{path} is corrupted: its contents do not match the checksum skebm.save wrote.")
    return header, tensors


def _read_tensor(file, data_start, entry):
    dtype = _DTYPES.get(entry["dtype"])
    if dtype is None:
        raise ValueError(f"skebm files hold no {entry['dtype']} tensors")
    shape, (begin, end) = [int(n) for n in entry["shape"]], entry["data_offsets"]
    if math.prod(shape) * dtype.itemsize != end - begin:  # checked before the allocation
        raise ValueError(f"a tensor of shape {shape} does not fill its {end - begin} bytes")
    tensor = torch.empty(shape, dtype=dtype)
    if tensor.numel():
        file.seek(data_start + begin)
        if file.readinto(memoryview(tensor.view(-1).numpy()).cast("B")) != end - begin:
            raise ValueError("the file ends inside a tensor")
    return tensor


def _digest(header, tensors):
    """SHA-256 of the skebm header (less the digest itself) and of every tensor's name, type, shape and bytes."""
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(memoryview(tensor.view(-1).numpy()).cast("B"))
    return digest.hexdigest()


# ------------------------------------------------------------------ writing
class _Writer:
    """Turns an estimator's attributes into JSON entries and named tensors."""

    def __init__(self):
        self.tensors = {}

    def params(self, params):
        for key, value in params.items():
            if not _is_plain(value):
                raise TypeError(
                    f"The {key!r} parameter holds a {type(value).__name__}, which skebm's safe format cannot rebuild "
                    "from data alone. Use joblib.dump for this model, and load such files only from sources you trust."
                )
        return _to_json(params)

    def tensor(self, name, value):
        self.tensors[name] = value.detach().cpu().contiguous().clone()  # safetensors wants storage of its own

    def encode(self, name, value):
        from ._nce import _UniformBox, _WithUniform
        from .samplers import ReplayBuffer

        if isinstance(value, torch.nn.Module):
            for key, tensor in value.state_dict().items():
                self.tensor(f"{name}.{key}", tensor)
            return {"kind": "module"}
        if isinstance(value, torch.optim.Optimizer):
            return self._optimizer(name, value)
        if isinstance(value, ReplayBuffer):
            self.tensor(name, value.storage)
            return {"kind": "replay buffer", "size": value.size, "next_index": value.next_index}
        if isinstance(value, (_WithUniform, _UniformBox)):
            return self._noise(name, value)
        if isinstance(value, torch.Generator):
            self.tensor(name, cpu_generator_state(value))
            return {"kind": "generator"}
        if isinstance(value, torch.device):
            return {"kind": "device"}
        if isinstance(value, torch.Tensor):
            self.tensor(name, value)
            return {"kind": "tensor"}
        if isinstance(value, list) and value and all(isinstance(item, torch.Tensor) for item in value):
            for index, item in enumerate(value):
                self.tensor(f"{name}.{index}", item)
            return {"kind": "tensors", "count": len(value)}
        if _is_number_array(value):
            self.tensor(name, torch.from_numpy(np.ascontiguousarray(value)))
            return {"kind": "array", "dtype": value.dtype.str}
        if isinstance(value, list) and value and all(_is_number_array(item) for item in value):
            for index, item in enumerate(value):  # a categorical RBM's categories_, one array per feature
                self.tensor(f"{name}.{index}", torch.from_numpy(np.ascontiguousarray(item)))
            return {"kind": "arrays", "count": len(value), "dtypes": [item.dtype.str for item in value]}
        if isinstance(value, np.ndarray) and all(isinstance(item, str) for item in value.ravel()):
            return {"kind": "strings", "value": value.tolist()}
        if _is_plain(value):
            return {"kind": "json", "value": _to_json(value)}
        raise TypeError(
            f"{name} holds a {type(value).__name__}, which skebm's safe format cannot rebuild from data alone. "
            "Use joblib.dump for this model, and load such files only from sources you trust."
        )

    def _optimizer(self, name, optimizer):
        state = optimizer.state_dict()
        for index, values in state["state"].items():
            for key, tensor in values.items():
                self.tensor(f"{name}.{index}.{key}", torch.as_tensor(tensor))
        keys = {str(index): sorted(values) for index, values in state["state"].items()}
        return {"kind": "optimizer", "param_groups": _to_json(state["param_groups"]), "state": keys}

    def _noise(self, name, noise):
        from sklearn.mixture import GaussianMixture

        from ._flow import FlowDensity
        from ._nce import _UniformBox

        box = noise if isinstance(noise, _UniformBox) else noise.box
        self.tensor(f"{name}.low", torch.from_numpy(box.low))
        self.tensor(f"{name}.high", torch.from_numpy(box.high))
        if isinstance(noise, _UniformBox):
            return {"kind": "noise", "fraction": 1.0}
        base = noise.base
        if type(base) is FlowDensity:
            for key, tensor in base.flow_.state_dict().items():
                self.tensor(f"{name}.flow.{key}", tensor)
            self.tensor(f"{name}.mean_", torch.from_numpy(base.mean_))
            self.tensor(f"{name}.scale_", torch.from_numpy(base.scale_))
            return {"kind": "noise", "fraction": noise.fraction, "family": "flow"}
        if type(base) is not GaussianMixture or base.covariance_type != "full":
            raise TypeError(
                f"An NCEEBM whose noise is a {type(base).__name__} cannot be saved in skebm's safe format. Use "
                "joblib.dump for this model, and load such files only from sources you trust."
            )
        for key in _MIXTURE_ARRAYS:
            self.tensor(f"{name}.{key}", torch.from_numpy(getattr(base, key)))
        return {"kind": "noise", "fraction": noise.fraction}


_MIXTURE_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
# Fewer numbers per feature than the flow noise's spline flow holds (about 9,300 per feature).
_FLOW_NUMBERS_PER_FEATURE = 5000


def _is_number_array(value):
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"


def _is_plain(value):
    """JSON values, tuples included (numpy scalars are converted on the way out)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic, torch.device)):
        return not isinstance(value, np.generic) or value.dtype.kind in "biuf"
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(item) for item in value]}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


def _from_json(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(item) for item in value["__tuple__"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


# ------------------------------------------------------------------ reading
# Entries are rebuilt in this order: a module needs the noise (NCE's base density) and
# n_features_in_, an optimizer and a replay buffer need the module.
_ORDER = {"noise": 1, "module": 2, "optimizer": 3, "replay buffer": 3}


def _all_finite(tensor, block=2**20):
    """Whether every value is finite, checked a block at a time (no temporary the size of the tensor)."""
    flat = tensor.reshape(-1)
    return all(bool(torch.isfinite(flat[start : start + block]).all()) for start in range(0, len(flat), block))


class _Reader:
    """Builds an estimator with skebm's own code and fills in the file's numbers."""

    def __init__(self, header, tensors):
        self.header, self.tensors = header, tensors

    def estimator(self):
        cls = _estimator_classes().get(self.header["estimator"])
        if cls is None:
            raise ValueError(f"{self.header['estimator']!r} is not an skebm estimator")
        params = _from_json(self.header["params"])
        # A parameter added since the file was written takes its default; one the class lacks is refused.
        if not isinstance(params, dict) or not set(params) <= set(cls().get_params(deep=False)):
            raise ValueError(f"the parameters do not match {cls.__name__}'s")
        estimator = cls(**params)
        estimator._validate_params()  # the same checks as fit: no parameter a fit would refuse
        fitted = self.header["fitted"]
        for name in sorted(fitted, key=lambda key: _ORDER.get(fitted[key]["kind"], 0)):
            if not (_ATTRIBUTE_NAME.match(name) or name in _PRIVATE_ATTRIBUTES) or name in params:
                raise ValueError(f"{name!r} is not a fitted attribute")
            setattr(estimator, name, self.decode(estimator, name, fitted[name]))
        return estimator

    def decode(self, estimator, name, entry):
        kind = entry["kind"]
        if kind == "json":
            return _from_json(entry["value"])
        if kind == "strings":
            if not all(isinstance(item, str) for item in entry["value"]):
                raise ValueError(f"{name} must hold strings")
            return np.asarray(entry["value"], dtype=object)
        if kind == "device":
            return torch.device("cpu")
        if kind == "tensor":
            return self.tensors[name]
        if kind == "tensors":
            return [self.tensors[f"{name}.{index}"] for index in range(int(entry["count"]))]
        if kind == "array":
            return self._array(name, self.tensors[name], entry["dtype"])
        if kind == "arrays":
            dtypes = entry["dtypes"]
            if not isinstance(dtypes, list) or len(dtypes) != int(entry["count"]):
                raise ValueError(f"{name} must give one dtype per array")
            return [self._array(name, self.tensors[f"{name}.{index}"], dtype) for index, dtype in enumerate(dtypes)]
        if kind == "generator":
            generator = torch.Generator()
            generator.set_state(self.tensors[name])
            return generator
        handler = {
            "module": self._module,
            "optimizer": self._optimizer,
            "replay buffer": self._buffer,
            "noise": self._noise,
        }.get(kind)
        if handler is None:
            raise ValueError(f"unknown entry kind {kind!r}")
        return handler(estimator, name, entry)

    @staticmethod
    def _array(name, tensor, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, not {dtype}")
        return tensor.numpy().astype(dtype, copy=False)

    def _prefixed(self, prefix):
        return {key[len(prefix) :]: tensor for key, tensor in self.tensors.items() if key.startswith(prefix)}

    def _module(self, estimator, name, entry):
        n_features = estimator.n_features_in_
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features_in_ must be a positive integer, not {n_features!r}")
        # The checks a fit makes of its data's width (image_shape, the latent grid's memory), on a
        # placeholder row of the saved width.
        estimator._check_input(np.zeros((1, n_features)))
        with torch.device("meta"):  # shapes only: nothing the parameters ask for is allocated
            module = estimator._new_module(n_features)
        state, expected = self._prefixed(f"{name}."), module.state_dict()
        if set(state) != set(expected):
            raise ValueError(f"{name} holds {sorted(state)}, where {type(estimator).__name__} has {sorted(expected)}")
        for key, tensor in expected.items():
            if state[key].shape != tensor.shape or state[key].dtype != tensor.dtype:
                raise ValueError(
                    f"{name}.{key} is {state[key].dtype} {list(state[key].shape)}, not {list(tensor.shape)}"
                )
            if tensor.is_floating_point() and not _all_finite(state[key]):
                raise ValueError(f"{name}.{key} holds non-finite values")
        module.load_state_dict(state, assign=True)  # the file's tensors become the weights: no second copy
        return module.eval()

    def _optimizer(self, estimator, name, entry):
        optimizer = estimator._make_optimizer()
        parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
        groups = _from_json(entry["param_groups"])
        fresh = optimizer.state_dict()["param_groups"]
        if len(groups) != len(fresh) or any(
            set(group) != set(new)
            or any(type(group[key]) is not type(new[key]) for key in new if key not in _STEP_IMPLEMENTATION)
            for group, new in zip(groups, fresh)
        ):
            raise ValueError(f"{name} has settings that {type(optimizer).__name__} does not")
        for group, new in zip(groups, fresh):  # how a step is computed is this machine's choice, not the file's
            group.update({key: new[key] for key in _STEP_IMPLEMENTATION})
        state = {}
        for index, keys in entry["state"].items():
            parameter = parameters[int(index)]
            state[int(index)] = {key: self.tensors[f"{name}.{index}.{key}"] for key in keys}
            for key, tensor in state[int(index)].items():
                if tensor.numel() != 1 and tensor.shape != parameter.shape:
                    raise ValueError(f"{name}.{index}.{key} has shape {list(tensor.shape)}")
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        return optimizer

    def _buffer(self, estimator, name, entry):
        from .samplers import ReplayBuffer

        return ReplayBuffer.restore(
            self.tensors[name],
            estimator.module_.uniform_noise,
            estimator._setting("fresh_fraction"),  # "auto" resolves as in fit
            entry["size"],
            entry["next_index"],
        )

    def _noise(self, estimator, name, entry):
        from ._nce import _UniformBox, _WithUniform

        low, high = (self.tensors[f"{name}.{side}"].numpy() for side in ("low", "high"))
        if low.shape != (estimator.n_features_in_,) or high.shape != low.shape or not np.all(low < high):
            raise ValueError(f"{name} has no valid box")
        if entry["fraction"] == 1.0:
            return _UniformBox(low, high)
        fraction = float(entry["fraction"])
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} has a uniform fraction of {fraction}")
        family = entry.get("family", "gmm")  # files from before the flow noise hold a mixture
        if family not in ("gmm", "flow"):
            raise ValueError(f"{name} has no noise family {family!r}")
        base = self._flow(estimator, name) if family == "flow" else self._mixture(estimator, name)
        return _WithUniform(base, low, high, fraction)

    def _flow(self, estimator, name):
        """The fitted FlowDensity of a flow-noise NCE: its spline flow rebuilt by skebm, the file's weights in it."""
        from ._flow import FlowDensity, build_flow

        d, state = estimator.n_features_in_, self._prefixed(f"{name}.flow.")
        # The flow is built before its shapes can be compared, and it holds over 9,000 numbers per
        # feature: a file claiming many features with few weights would make it allocate what it never held.
        if sum(tensor.numel() for tensor in state.values()) < _FLOW_NUMBERS_PER_FEATURE * d:
            raise ValueError(f"{name} holds too few weights for a flow on {d} features")
        flow = build_flow(d)
        expected = flow.state_dict()
        if set(state) != set(expected) or any(
            state[k].shape != v.shape or state[k].dtype != v.dtype for k, v in expected.items()
        ):
            raise ValueError(f"{name} holds a flow of another architecture")
        if not all(_all_finite(tensor) for tensor in state.values() if tensor.is_floating_point()):
            raise ValueError(f"{name}'s flow holds non-finite values")
        flow.load_state_dict(state, assign=True)
        density = FlowDensity()
        density.flow_ = flow.requires_grad_(False).eval()
        density.mean_, density.scale_ = (
            self._array(name, self.tensors[f"{name}.{key}"], "<f8") for key in ("mean_", "scale_")
        )
        if density.mean_.shape != (d,) or density.scale_.shape != (d,) or not np.all(density.scale_ > 0):
            raise ValueError(f"{name} has no valid standardization")
        if not (np.all(np.isfinite(density.mean_)) and np.all(np.isfinite(density.scale_))):
            raise ValueError(f"{name} has a non-finite standardization")
        density.n_features_in_ = d
        return density

    def _mixture(self, estimator, name):
        from sklearn.mixture import GaussianMixture

        arrays = {key: self.tensors[f"{name}.{key}"].numpy() for key in _MIXTURE_ARRAYS}
        k, d = len(arrays["weights_"]), estimator.n_features_in_
        shapes = {"weights_": (k,), "means_": (k, d), "covariances_": (k, d, d), "precisions_cholesky_": (k, d, d)}
        if any(arrays[key].shape != shape for key, shape in shapes.items()):
            raise ValueError(f"{name} has mixture arrays of inconsistent shapes")
        base = GaussianMixture(k, covariance_type="full")
        for key, array in arrays.items():
            setattr(base, key, array)
        base.precisions_ = arrays["precisions_cholesky_"] @ arrays["precisions_cholesky_"].transpose(0, 2, 1)
        base.n_features_in_, base.converged_ = d, True
        return base
