"""Checks of parameters and data that several estimators share, and where their warnings point."""

import math
import os
import sys
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.callback import with_callbacks

__all__ = [
    "check_interval",
    "check_layer_sizes",
    "evenly_spaced_rows",
    "user_stacklevel",
    "warn_if_far_from_standardized",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The code of the wrappers scikit-learn's decorators put around fit and partial_fit.
_WRAPPER_CODE = {
    with_callbacks(lambda estimator: None).__code__,
    _fit_context(prefer_skip_nested_validation=True)(lambda estimator: None).__code__,
}


def user_stacklevel():
    """The ``stacklevel`` that points a warning at the first frame outside skebm: the user's call.

    Counted from the function that calls this one and then ``warnings.warn``.
    The wrappers of scikit-learn's decorators on ``fit`` count as skebm's frames.
    """
    frame, level = sys._getframe(2), 2
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR) or frame.f_code in _WRAPPER_CODE):
        frame, level = frame.f_back, level + 1
    return level


def check_layer_sizes(estimator, name):
    """Refuse a sequence of sizes that holds anything but positive integers, naming the parameter."""
    sizes = getattr(estimator, name)
    if len(sizes) == 0 or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be a non-empty sequence of positive "
            f"integers. Got {sizes!r} instead."
        )


def check_interval(estimator, name):
    """Refuse anything but a pair (low, high) of finite numbers with low < high, naming the parameter."""
    pair = getattr(estimator, name)
    finite = all(isinstance(b, Real) and not isinstance(b, bool) and math.isfinite(b) for b in pair)
    if not (len(pair) == 2 and finite and pair[0] < pair[1]):
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be a pair (low, high) of finite numbers "
            f"with low < high. Got {pair!r} instead."
        )


def evenly_spaced_rows(X, max_rows=100_000):
    """At most ``max_rows`` rows of ``X``, evenly spaced: a view, whatever the size of ``X``.

    Summaries of the data (spreads, a Gaussian, a noise mixture) need far
    fewer rows than a large table has; even spacing covers a table sorted by
    any column.
    """
    return X[:: max(1, math.ceil(len(X) / max_rows))]


def warn_if_far_from_standardized(estimator, X, max_rows=10_000):
    """Warn, saying what to do, when features are constant or far from standardized.

    The defaults (step sizes, noise scales, learning rates) are set for
    features of unit spread; a feature with a spread 100 times larger is
    explored 100 times more slowly, and a constant one carries nothing.
    Measured on at most ``max_rows`` evenly spaced rows, so no copy of a large
    ``X`` is made.
    """
    if len(X) < 2:
        return
    rows = evenly_spaced_rows(X, max_rows)
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    constant = np.flatnonzero(std == 0)
    far = np.flatnonzero((std > 0) & ((std < 0.1) | (std > 10) | (np.abs(mean) > 10 * np.maximum(std, 1))))
    name = type(estimator).__name__
    if far.size:
        warnings.warn(
            f"{name}'s defaults are set for standardized features, but {far.size} of X's features have a mean "
            f"or standard deviation far from 0 and 1 (standard deviations {std[far].min():.3g} to "
            f"{std[far].max():.3g}); put a sklearn.preprocessing.StandardScaler before it.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if constant.size:
        warnings.warn(
            f"{constant.size} of X's features are constant (columns {constant[:10].tolist()}"
            f"{'...' if constant.size > 10 else ''}); they carry nothing for {name} to learn: drop them "
            "(sklearn.feature_selection.VarianceThreshold).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
