"""The training loop of the base: the update budget that keeps a fit's cost independent of the rows."""

import math
import warnings

import numpy as np
import pytest

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


@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM])
def test_a_gaussian_base_on_constant_columns_is_still_a_density(cls):
    # Found by the property suite: the shrunk covariance of constant data was singular.
    X = np.column_stack([np.random.default_rng(0).normal(size=50), np.full(50, 2.0)])
    with pytest.warns(UserWarning, match="constant"):
        model = cls(base="gaussian", max_updates=2, **ESTIMATORS[cls]).fit(X)
    assert np.isfinite(model.score_samples(X)).all()
