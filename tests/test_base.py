"""The training loop of the base: the update budget, sample weights, data checks."""

import math
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM

ESTIMATORS = {
    ContrastiveDivergenceEBM: dict(hidden_layer_sizes=(8,), n_steps=2, n_jumps=0, buffer_size=64, log_partition=None),
    ScoreMatchingEBM: dict(hidden_layer_sizes=(8,), log_partition=None),
    NCEEBM: dict(hidden_layer_sizes=(8,), noise="gaussian"),
    RBM: dict(visible="gaussian", n_components=4, log_partition=None),
    LatentVariableEBM: dict(),
}


def count_updates(cls, monkeypatch):
    calls = []
    original = cls._train_step

    def counted(self, batch, epoch):
        calls.append(len(batch))
        return original(self, batch, epoch)

    monkeypatch.setattr(cls, "_train_step", counted)
    return calls


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_the_update_budget_does_not_grow_with_the_rows(cls, monkeypatch):
    calls = count_updates(cls, monkeypatch)
    rng = np.random.default_rng(0)
    for n_rows in (300, 3000):
        calls.clear()
        model = cls(max_iter=50, max_updates=12, batch_size=32, random_state=0, **ESTIMATORS[cls])
        model.fit(rng.normal(size=(n_rows, 2)))
        # 300 rows: 10 batches an epoch, so one whole epoch fits the budget; 3,000 rows: one
        # epoch over a random 12 * 32 of them.
        assert len(calls) == (10 if n_rows == 300 else 12)
        assert len(model.history_) == 1
        assert sum(calls) == min(n_rows, 12 * 32)


def test_no_budget_runs_every_epoch_in_full(monkeypatch):
    calls = count_updates(ScoreMatchingEBM, monkeypatch)
    X = np.random.default_rng(0).normal(size=(100, 2))
    model = ScoreMatchingEBM(max_iter=3, max_updates=None, batch_size=32, hidden_layer_sizes=(8,), log_partition=None)
    model.fit(X)
    assert len(calls) == 3 * math.ceil(100 / 32)
    assert len(model.history_) == 3


def test_the_budget_sets_the_epochs_the_rbm_schedule_decays_over():
    X = np.random.default_rng(0).normal(size=(200, 3))
    rbm = RBM(visible="gaussian", n_components=4, batch_size=20, max_iter=50, max_updates=40, log_partition=None)
    rbm.fit(X)
    # 10 batches an epoch: 4 epochs, and the linear schedule reaches its last quarter in the fourth.
    epoch_rates = [record["learning_rate"] for record in rbm.history_]
    np.testing.assert_allclose(epoch_rates, 0.01 * np.array([1, 0.75, 0.5, 0.25]))
    assert rbm.learning_rate_ == epoch_rates[-1]


@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, RBM])
def test_data_far_from_standardized_gets_a_warning_that_says_what_to_do(cls):
    params = {**ESTIMATORS[cls], "max_updates": 2}
    X = np.random.default_rng(0).normal(size=(200, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # standardized data: not a word
        cls(**params).fit(X)
    with pytest.warns(UserWarning, match="StandardScaler"):
        cls(**params).fit(X * [1.0, 50.0, 1.0])
    with pytest.warns(UserWarning, match="VarianceThreshold"):
        cls(**params).fit(np.column_stack([X, np.full(200, 3.0)]))


def test_images_are_not_told_to_standardize_or_drop_pixels():
    from sklearn.datasets import load_digits

    X = load_digits().data[:64] / 8.0 - 1.0  # in [-1, 1], with constant corner pixels
    params = dict(network="conv", image_shape=(1, 8, 8), max_updates=1, log_partition=None, n_sample_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ContrastiveDivergenceEBM(**params).fit(X)
    assert not [w for w in caught if re.search("StandardScaler|VarianceThreshold", str(w.message))]
    with pytest.warns(UserWarning, match="StandardScaler"):  # the same pixels as a table do get the advice
        ContrastiveDivergenceEBM(max_updates=1, log_partition=None).fit(X)


@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM])
def test_a_gaussian_base_on_constant_columns_is_still_a_density(cls):
    # Found by the property suite: the shrunk covariance of constant data was singular.
    X = np.column_stack([np.random.default_rng(0).normal(size=50), np.full(50, 2.0)])
    with pytest.warns(UserWarning, match="constant"):
        model = cls(base="gaussian", max_updates=2, **ESTIMATORS[cls]).fit(X)
    assert np.isfinite(model.score_samples(X)).all()


def _weighted_case(cls, **params):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    return cls(max_iter=2, random_state=0, **{**ESTIMATORS[cls], **params}), X


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_zero_weights_are_absent_rows_and_equal_weights_are_no_weights(cls):
    model, X = _weighted_case(cls)
    weights = np.where(np.arange(len(X)) % 3 == 0, 0.0, 2.5)
    unweighted = clone(model).fit(X[weights > 0])
    weighted = clone(model).fit(X, sample_weight=weights)
    np.testing.assert_array_equal(weighted.score_samples(X), unweighted.score_samples(X))
    np.testing.assert_array_equal(weighted.sample(4, random_state=0), unweighted.sample(4, random_state=0))
    assert weighted.offset_ == unweighted.offset_


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_minibatches_draw_rows_in_proportion_to_their_weights(cls, monkeypatch):
    drawn = []
    original = cls._train_step

    def recorded(self, batch, epoch):
        drawn.append(batch[:, 0].numpy().copy())
        return original(self, batch, epoch)

    monkeypatch.setattr(cls, "_train_step", recorded)
    model, X = _weighted_case(cls, max_updates=50, batch_size=32)
    X[:, 0] = np.abs(X[:, 0]) * np.where(np.arange(len(X)) < 60, -1, 1)  # the first half has x0 < 0
    weights = np.where(X[:, 0] < 0, 3.0, 1.0)
    model.fit(X, sample_weight=weights)
    drawn = np.concatenate(drawn)
    # Each draw lands in the first half with probability 3/4: four binomial standard errors.
    share = np.mean(drawn < 0)
    assert abs(share - 0.75) < 4 * math.sqrt(0.75 * 0.25 / len(drawn))


def test_the_threshold_is_a_weighted_quantile():
    model, X = _weighted_case(ScoreMatchingEBM, contamination=0.1)
    weights = np.random.default_rng(1).uniform(0.1, 5.0, size=len(X))
    model.fit(X, sample_weight=weights)
    scores = model.score_samples(X)
    below, at_or_below = weights[scores < model.offset_].sum(), weights[scores <= model.offset_].sum()
    assert below < 0.1 * weights.sum() <= at_or_below


@pytest.mark.parametrize(
    "weights, message",
    [
        (-np.ones(120), "(?i)negative"),
        (np.ones(7), "inconsistent|shape"),
        (np.full(120, np.nan), "NaN|finite"),
        (np.r_[1.0, np.zeros(119)], "at least 2"),
    ],
)
def test_bad_sample_weight_is_refused_and_keeps_the_model(weights, message):
    model, X = _weighted_case(ScoreMatchingEBM)
    model.fit(X)
    before = model.score_samples(X)
    with pytest.raises(ValueError, match=message):
        model.fit(X, sample_weight=weights)
    np.testing.assert_array_equal(model.score_samples(X), before)


def test_sample_weight_reaches_the_estimator_in_a_pipeline():
    model, X = _weighted_case(ScoreMatchingEBM)
    weights = np.where(np.arange(len(X)) % 2 == 0, 0.0, 1.0)
    pipeline = make_pipeline(StandardScaler(), clone(model)).fit(X, scorematchingebm__sample_weight=weights)
    scaled = pipeline[0].transform(X)
    direct = model.fit(scaled, sample_weight=weights)
    np.testing.assert_array_equal(pipeline.score_samples(X), direct.score_samples(scaled))


@pytest.mark.parametrize("cls", [ScoreMatchingEBM, RBM])
def test_warnings_point_at_the_users_call(cls):
    params = {**ESTIMATORS[cls], "max_updates": 2}
    with pytest.warns(UserWarning, match="StandardScaler") as caught:
        cls(**params).fit(np.random.default_rng(0).normal(size=(200, 3)) * [1.0, 50.0, 1.0])
    assert {warning.filename for warning in caught} == {__file__}
