"""Saving and loading fitted estimators in a format whose loading runs no code.

``pickle`` and ``joblib`` work on every skebm estimator, but unpickling a file
can run any code its author chose, so they are only for files you trust.
:func:`save` writes a file that :func:`load` reads without that risk:

- The estimator becomes a tree of plain values: the constructor parameters
  (also kept as JSON, readable by any tool), tensors, numbers, strings, lists
  and dicts. Objects inside a fitted model (networks, optimizers, replay
  buffers, a fitted ``GaussianMixture``) are written as their class name and
  their state, and only classes from a fixed allowlist are rebuilt on loading
  (skebm's own, ``torch.nn`` layers, ``torch.optim`` optimizers and a few
  scikit-learn estimators); anything else is refused when saving.
- The tree is read with ``torch.load(weights_only=True)``, which unpickles
  tensors and containers only and refuses any other reference.
- The file starts with a SHA-256 digest of its contents: a truncated or
  altered file is refused before anything is read from it.

Tensors are loaded on the CPU, so a model fitted on a GPU loads anywhere.
"""

import hashlib
import importlib
import io
import json
import types
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
import torch

from ._base import BaseEBM, _cpu_generator_state

__all__ = ["load", "save"]

_MAGIC = b"SKEBM-SAFE-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size
_TAG = "__skebm__"

# Classes rebuilt by load(): their state is plain data, and rebuilding one only sets attributes.
_ALLOWED_PREFIXES = ("skebm.", "torch.nn.modules.", "torch.optim.")
_ALLOWED_CLASSES = {
    "sklearn.mixture._gaussian_mixture.GaussianMixture",
    "sklearn.mixture._bayesian_mixture.BayesianGaussianMixture",
}


def save(estimator, path):
    """Write a fitted (or unfitted) skebm estimator to ``path`` in the safe format.

    Parameters
    ----------
    estimator : skebm estimator
    path : str or path-like

    Raises
    ------
    TypeError
        If the estimator holds an object the safe format cannot rebuild (a
        custom network class, say); save such models with ``joblib.dump``
        and load them only from sources you trust.

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
    if not isinstance(estimator, BaseEBM):
        raise TypeError(f"skebm.save writes skebm estimators; got {type(estimator).__name__}.")
    blob = io.BytesIO()
    torch.save({"format": 1, "estimator": _Writer().encode(estimator)}, blob)
    payload = blob.getvalue()
    Path(path).write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)


def load(path):
    """Read an estimator written by :func:`save`, without running code from the file.

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
        If the file is not an skebm file, is truncated or altered, or refers
        to anything but plain data and allowed classes.

    Examples
    --------
    >>> import tempfile, os
    >>> import skebm
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skebm")
    >>> skebm.save(skebm.RBM(n_components=4), path)
    >>> skebm.load(path).n_components
    4
    """
    data = Path(path).read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path} is not a file written by skebm.save.")
    digest, payload = data[len(_MAGIC) : len(_MAGIC) + _DIGEST_SIZE], data[len(_MAGIC) + _DIGEST_SIZE :]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(f"{path} is corrupted or was modified after skebm.save wrote it (checksum mismatch).")
    try:
        tree = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:
        reason = next((line.strip() for line in str(error).splitlines() if "Unsupported" in line), str(error))
        raise ValueError(f"{path} was refused: it holds more than tensors and plain data. {reason}") from error
    if not isinstance(tree, dict) or tree.get("format") != 1:
        raise ValueError(f"{path} has an unknown skebm format.")
    return _Reader().decode(tree["estimator"])


# ------------------------------------------------------------------ encoding
class _Writer:
    """Turns an object graph into plain data; an object met twice is written once and referred to after."""

    def __init__(self):
        self.memo = {}

    def encode(self, value):
        if isinstance(value, np.generic):  # first: np.float64 is also a float
            return {_TAG: "numpy scalar", "value": value.item(), "dtype": value.dtype.str}
        if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.device, torch.dtype)):
            return value  # tensors keep their identity through torch.save itself
        if isinstance(value, np.ndarray):
            return self._array(value)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [self.encode(item) for item in value]
            return items if type(value) is list else {_TAG: type(value).__name__, "items": items}
        if isinstance(value, dict):
            return self._dict(value)
        if isinstance(value, torch.Generator):
            return {_TAG: "generator", "state": _cpu_generator_state(value)}
        if isinstance(value, np.random.RandomState):
            return {_TAG: "random state", "state": self.encode(value.get_state())}
        if id(value) in self.memo:
            return {_TAG: "ref", "id": self.memo[id(value)][0]}
        self.memo[id(value)] = (len(self.memo), value)  # keeps value alive, so its id stays unique
        number = len(self.memo) - 1
        if isinstance(value, types.MethodType):  # a replay buffer's noise is a bound method of the energy
            return {_TAG: "method", "id": number, "self": self.encode(value.__self__), "name": value.__name__}
        if isinstance(value, BaseEBM):
            return {_TAG: "estimator", "id": number, **self._estimator(value)}
        return {_TAG: "object", "id": number, **self._object(value)}

    def _array(self, value):
        if value.dtype == object:
            return {_TAG: "object array", "items": [self.encode(item) for item in value.tolist()]}
        return {_TAG: "array", "tensor": torch.from_numpy(np.ascontiguousarray(value)), "dtype": value.dtype.str}

    def _dict(self, value):
        kind = "ordered" if isinstance(value, OrderedDict) else "dict"
        factory = None
        if isinstance(value, defaultdict):
            if value.default_factory not in (None, dict, list):
                raise TypeError(f"A defaultdict of {value.default_factory!r} cannot be saved in skebm's safe format.")
            kind, factory = "defaultdict", getattr(value.default_factory, "__name__", None)
        # Keys stay as they are (tensors included: an optimizer's state is keyed by its parameters).
        items = [(key, self.encode(item)) for key, item in value.items()]
        return {_TAG: "dict", "kind": kind, "factory": factory, "items": items}

    def _estimator(self, estimator):
        params = estimator.get_params(deep=False)
        plain = {key: value for key, value in params.items() if _is_json(value)}
        return {
            "class": _class_path(type(estimator)),
            "params_json": json.dumps(_tuples_marked(plain)),
            "params_objects": {key: self.encode(value) for key, value in params.items() if key not in plain},
            "fitted": {key: self.encode(value) for key, value in vars(estimator).items() if key not in params},
        }

    def _object(self, value):
        path = _class_path(type(value))
        if not _is_allowed(path):
            raise TypeError(
                f"{path} cannot be saved in skebm's safe format, whose loader only rebuilds skebm, torch.nn, "
                "torch.optim and scikit-learn mixture classes. Use joblib.dump for this model, and load such "
                "files only from sources you trust."
            )
        state = value.__getstate__()
        return {"class": path, "state": self.encode({} if state is None else state)}


def _is_json(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (list, tuple)) and all(_is_json(item) for item in value)


def _tuples_marked(value):
    if isinstance(value, tuple):
        return {"__tuple__": [_tuples_marked(item) for item in value]}
    if isinstance(value, list):
        return [_tuples_marked(item) for item in value]
    if isinstance(value, dict):
        return {key: _tuples_marked(item) for key, item in value.items()}
    return value


def _tuples_restored(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_tuples_restored(item) for item in value["__tuple__"])
        return {key: _tuples_restored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tuples_restored(item) for item in value]
    return value


def _class_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_allowed(path):
    return path.startswith(_ALLOWED_PREFIXES) or path in _ALLOWED_CLASSES


# ------------------------------------------------------------------ decoding
class _Reader:
    """Rebuilds what :class:`_Writer` wrote, creating only allowed classes."""

    def __init__(self):
        self.memo = {}

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(item) for item in value]
        if not isinstance(value, dict) or _TAG not in value:
            return torch.device("cpu") if isinstance(value, torch.device) else value
        kind = value[_TAG]
        if kind in _CONTAINERS:
            return _CONTAINERS[kind](self.decode(item) for item in value["items"])
        if kind == "ref":
            return self.memo[value["id"]]
        handler = getattr(self, "_" + kind.replace(" ", "_"), None)
        if handler is None:
            raise ValueError(f"Unknown entry {kind!r} in an skebm file.")
        return handler(value)

    def _numpy_scalar(self, value):
        return np.dtype(value["dtype"]).type(value["value"])

    def _array(self, value):
        return value["tensor"].numpy().astype(np.dtype(value["dtype"]), copy=False)

    def _object_array(self, value):
        items = self.decode(value["items"])
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array

    def _dict(self, value):
        items = [(key, self.decode(item)) for key, item in value["items"]]
        if value["kind"] == "defaultdict":
            return defaultdict({"dict": dict, "list": list, None: None}[value["factory"]], items)
        return OrderedDict(items) if value["kind"] == "ordered" else dict(items)

    def _generator(self, value):
        generator = torch.Generator()
        generator.set_state(value["state"])
        return generator

    def _random_state(self, value):
        random_state = np.random.RandomState()
        random_state.set_state(self.decode(value["state"]))
        return random_state

    def _method(self, value):
        owner = self.decode(value["self"])
        method = getattr(owner, value["name"])
        self.memo[value["id"]] = method
        return method

    def _estimator(self, value):
        cls = _allowed_class(value["class"])
        if not issubclass(cls, BaseEBM):
            raise ValueError(f"{value['class']} is not an skebm estimator.")
        params = _tuples_restored(json.loads(value["params_json"]))
        params.update({key: self.decode(item) for key, item in value["params_objects"].items()})
        estimator = self.memo[value["id"]] = cls(**params)
        for key, item in value["fitted"].items():
            setattr(estimator, key, self.decode(item))
        return estimator

    def _object(self, value):
        cls = _allowed_class(value["class"])
        if issubclass(cls, BaseEBM):  # estimators come only as "estimator" entries, never through __setstate__
            raise ValueError(f"skebm.load refuses {value['class']} as a plain object.")
        instance = self.memo[value["id"]] = cls.__new__(cls)
        state = self.decode(value["state"])
        if hasattr(instance, "__setstate__"):
            instance.__setstate__(state)
        else:
            instance.__dict__.update(state)
        return instance


_CONTAINERS = {"tuple": tuple, "set": set, "frozenset": frozenset}


def _allowed_class(path):
    if not _is_allowed(path):
        raise ValueError(f"skebm.load refuses to rebuild {path}: it is not an allowed class.")
    module_name, _, name = path.rpartition(".")
    while module_name:
        # Nested classes have dotted qualnames; walk down from the longest importable module.
        try:
            target = importlib.import_module(module_name)
            break
        except ImportError:
            module_name, _, outer = module_name.rpartition(".")
            name = f"{outer}.{name}"
    for part in name.split("."):
        target = getattr(target, part)
    # The name must be the class's own: a path through a module's imports could reach any class.
    if not isinstance(target, type) or _class_path(target) != path:
        raise ValueError(f"skebm.load refuses {path}: it is not an allowed class.")
    return target
