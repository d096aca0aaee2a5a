"""Property-based checks over inputs and parameters of all five estimators (hypothesis).

Whatever the data and settings, a call gives a result or a clear error: a ValueError or
TypeError naming the problem, or a DivergenceError saying what to change. Never a raw torch
RuntimeError, never a NaN score, never a one-dimensional density that does not integrate to one.
How many cases ran, and how they ended, is printed at the end of the test session.
"""

import os
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, DivergenceError, LatentVariableEBM, ScoreMatchingEBM
from skebm.partition import grid_log_partition

OUTCOMES = Counter()


def settings_for(cls, valid):
    """A strategy of parameter dicts for ``cls``: sound ones, or ones that may hold any value a user could pass."""
    if valid:
        sizes = st.lists(st.sampled_from([2, 4, 8, 16]), min_size=1, max_size=2).map(tuple)
        bounds = st.sampled_from([None, (-3.0, 3.0)])
        learning_rates = st.sampled_from([1e-4, 1e-3, 1e-2])
        step_sizes = st.sampled_from([1e-3, 1e-2, 0.1])
    else:
        sizes = st.lists(st.sampled_from([2, 8, 0, -1, 2.5, True]), min_size=0, max_size=2).map(tuple)
        bounds = st.sampled_from([None, (-3.0, 3.0), (1.0, -1.0), (0.0, 0.0), (0.0, float("nan")), (0.0,)])
        learning_rates = st.sampled_from([1e-3, 10.0, 1e4, 1e30])
        step_sizes = st.sampled_from([1e-3, 10.0, 1e6])
    common = {
        "max_iter": st.integers(1, 2),
        "max_updates": st.one_of(st.none(), st.integers(1, 8)),
        "batch_size": st.integers(1, 16),
        "learning_rate": learning_rates,
        "contamination": st.sampled_from([0.01, 0.1, 0.5]),
        "random_state": st.integers(0, 3),
    }
    neural = {
        **common,
        "hidden_layer_sizes": sizes,
        "bounds": bounds,
        "sampler": st.sampled_from(["langevin", "mala", "hmc", "metropolis"]),
        "step_size": step_sizes,
        "n_sample_steps": st.integers(1, 5),
    }
    by_class = {
        ContrastiveDivergenceEBM: {
            **neural,
            "n_steps": st.integers(1, 4),
            "n_jumps": st.integers(0, 2),
            "buffer_size": st.integers(1, 64),
            "alpha": st.sampled_from([0.0, 0.01, 1.0]),
            "base": st.sampled_from([None, "gaussian", "auto"]),
            "ais_steps": st.integers(1, 20),
        },
        ScoreMatchingEBM: {
            **neural,
            "method": st.sampled_from(["exact", "sliced", "sliced_vr", "denoising"]),
            "noise_std": st.sampled_from(["auto", 0.01, 0.3, 3.0]),
            "base": st.sampled_from([None, "gaussian"]),
            "ais_steps": st.integers(1, 20),
        },
        NCEEBM: {
            **neural,
            "noise": st.sampled_from(["gaussian", "uniform", "gmm"]),
            "noise_ratio": st.integers(1, 4),
            "residual": st.booleans(),
            "sampler": st.sampled_from(["sir", "mala", "langevin"]),
        },
        RBM: {
            **common,
            "visible": st.sampled_from(["bernoulli", "gaussian"]),
            "n_components": st.integers(1, 6),
            "method": st.sampled_from(["cd", "pcd"]),
            "n_sample_steps": st.integers(1, 5),
        },
        LatentVariableEBM: {
            **common,
            "decoder": st.sampled_from(["mlp", "ellipse"]),
            "hidden_layer_sizes": sizes,
            "n_grid": st.integers(2, 64),
            "inference": st.sampled_from(["grid", "gd"]),
            "beta": st.sampled_from([None, 1.0]),
        },
    }
    return st.fixed_dictionaries(by_class[cls])


@st.composite
def tables(draw, valid):
    """Small tables at many scales, sometimes with a constant column or duplicate rows; invalid ones
    also at scales float32 cannot square, with one row, or with a NaN or an infinity."""
    n, d = draw(st.integers(2 if valid else 1, 24)), draw(st.integers(1, 3))
    scale = 10.0 ** draw(st.integers(-4, 4) if valid else st.integers(-6, 20))
    X = np.random.default_rng(draw(st.integers(0, 100))).normal(size=(n, d)) * scale
    oddities = ["none", "constant column", "duplicate row"] + ([] if valid else ["bad value"])
    oddity = draw(st.sampled_from(oddities))
    if oddity == "constant column":
        X[:, 0] = draw(st.floats(-10, 10))
    if oddity == "duplicate row":
        X = np.concatenate([X, X[:1]])
    if oddity == "bad value":
        X[0, -1] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300]))
    return X


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are allowed: they are not silent garbage
        return model.fit(X)


@pytest.mark.parametrize("valid", [True, False], ids=["sound settings", "any settings"])
@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, RBM, LatentVariableEBM])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_call_gives_a_result_or_a_clear_error(cls, valid, data):
    model = cls(**data.draw(settings_for(cls, valid)))  # outside the try: a bad strategy is a bug of this test
    X = data.draw(tables(valid))
    try:
        _fit(model, X)
    except (ValueError, TypeError, DivergenceError) as error:
        assert str(error), "an error must say what went wrong"
        OUTCOMES[cls.__name__, type(error).__name__] += 1
        return
    OUTCOMES[cls.__name__, "fitted"] += 1
    scores = model.score_samples(X)
    assert scores.shape == (len(X),) and np.all(np.isfinite(scores))
    assert set(np.unique(model.predict(X))) <= {-1, 1}
    samples = model.sample(3, random_state=0)
    assert samples.shape == (3, X.shape[1]) and np.all(np.isfinite(samples))
    if X.shape[1] == 1 and cls in (ContrastiveDivergenceEBM, ScoreMatchingEBM):
        _assert_normalized(model)


def _assert_normalized(model):
    """exp(score_samples) integrates to one, checked on a grid twice as fine as the one that set log Z.

    Both are midpoint rules over the same support box; for an energy smooth on the scale of the
    coarse grid the two agree to its O(h^2) error, far below 0.05 nats.
    """
    low, high = model.module_.support_box()

    def energy(x):
        return -torch.as_tensor(model.score_samples(x.numpy()))

    assert abs(grid_log_partition(energy, low, high, n_points=8192)) < 0.05


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    counts = ", ".join(f"{name} {outcome}: {n}" for (name, outcome), n in sorted(OUTCOMES.items()))
    request.config._skebm_property_report = f"{sum(OUTCOMES.values())} property cases ran ({counts})"


def test_the_strategies_reach_both_fits_and_refusals():
    if not OUTCOMES:
        alone = "counts what the property tests above ran: run the whole module"
        if os.environ.get("CI"):  # CI runs the whole suite, so an empty count means the tests above never ran
            pytest.fail(alone)
        pytest.skip(alone)
    for name in {name for name, _ in OUTCOMES}:
        fitted = OUTCOMES[name, "fitted"]
        refused = sum(n for (other, outcome), n in OUTCOMES.items() if other == name and outcome != "fitted")
        assert fitted >= 5 and refused >= 5, f"{name}: {fitted} fits and {refused} refusals"
