"""scikit-learn's callbacks (``set_callbacks``) on every estimator: each epoch is a task."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM, LatentVariableEBM, ScoreMatchingEBM
from skebm.metrics import log_likelihood_scorer

FAST = {
    ContrastiveDivergenceEBM: dict(hidden_layer_sizes=(8,), n_steps=2, n_jumps=0, buffer_size=64, ais_steps=10),
    ScoreMatchingEBM: dict(hidden_layer_sizes=(8,), ais_steps=10),
    NCEEBM: dict(hidden_layer_sizes=(8,), noise="gaussian"),
    RBM: dict(visible="gaussian", n_components=4),
    LatentVariableEBM: dict(n_grid=64),
}
X = np.random.default_rng(0).normal(size=(120, 2))


def model(cls, **params):
    return cls(**{"max_iter": 3, "random_state": 0, **FAST[cls], **params})


def epoch_scores(log):
    table = log.data_as_pandas
    return table[table["task_name"] == "epoch"]["ll"].to_numpy()  # the epochs, not the whole fit


@pytest.mark.parametrize("cls", FAST)
def test_scoring_monitor_scores_each_epoch_on_the_validation_rows(cls):
    monitor = ScoringMonitor(scoring={"ll": log_likelihood_scorer})
    fitted = model(cls, validation_fraction=0.25).set_callbacks(monitor).fit(X)
    scores = epoch_scores(monitor.get_logs())
    assert len(scores) == len(fitted.history_) == 3
    # The last epoch's snapshot holds the fitted weights (one epoch in three is averaged: the
    # last), and log Z is exact in two dimensions, so it scores the validation rows as the model does.
    validation_rows = fitted._split_validation(X)[1]
    assert scores[-1] == pytest.approx(log_likelihood_scorer(fitted, validation_rows), rel=1e-6)


@pytest.mark.parametrize("cls", FAST)
def test_callbacks_change_no_model(cls):
    plain = model(cls).fit(X)
    watched = model(cls).set_callbacks(ScoringMonitor(scoring={"ll": log_likelihood_scorer})).fit(X)
    np.testing.assert_array_equal(watched.score_samples(X), plain.score_samples(X))
    np.testing.assert_array_equal(watched.sample(3, random_state=0), plain.sample(3, random_state=0))


@pytest.mark.parametrize("cls", FAST)
def test_progress_bar_runs_with_every_estimator(cls, capsys):
    pytest.importorskip("rich", reason="scikit-learn's ProgressBar draws with rich")
    model(cls).set_callbacks(ProgressBar()).fit(X)
    assert f"{cls.__name__} - fit" in capsys.readouterr().out


class QuietCallback:
    """The callback protocol's hooks, doing nothing: the test callbacks fill ``on_fit_task_end``."""

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass


class StopAfter(QuietCallback):
    """A callback that asks the estimator to stop after ``n`` epochs."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_fit_task_end(self, estimator, context):
        if context.task_name != "epoch":
            return False
        self.seen += 1
        return self.seen >= self.n


@pytest.mark.parametrize("cls", FAST)
def test_a_callback_can_stop_training(cls):
    fitted = model(cls, max_iter=10).set_callbacks(StopAfter(2)).fit(X)
    assert len(fitted.history_) == 2
    assert np.all(np.isfinite(fitted.score_samples(X)))


def test_callbacks_nest_under_grid_search():
    pytest.importorskip("rich", reason="scikit-learn's ProgressBar draws with rich")
    monitor = ScoringMonitor(scoring={"ll": log_likelihood_scorer})
    estimator = model(ScoreMatchingEBM, max_iter=2).set_callbacks(monitor)
    search = GridSearchCV(estimator, {"learning_rate": [1e-3, 3e-3]}, cv=2).set_callbacks(ProgressBar())
    search.fit(X)
    (log,) = monitor.get_logs("all")  # one run: the search's, with every fit nested in it
    # Two candidates on two splits and the refit: five fits of two epochs each.
    assert len(epoch_scores(log)) == 5 * 2
    assert clone(estimator)._skl_callbacks == [monitor]


@pytest.mark.parametrize("cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM])
def test_a_scored_snapshot_by_ais_leaves_the_random_stream_alone(cls):
    X3 = np.random.default_rng(1).normal(size=(120, 3))  # three features: log Z by AIS, which draws
    plain = model(cls).fit(X3)
    watched = model(cls).set_callbacks(ScoringMonitor(scoring={"ll": log_likelihood_scorer})).fit(X3)
    np.testing.assert_array_equal(watched.score_samples(X3), plain.score_samples(X3))


def test_callbacks_nest_under_a_pipeline(capsys):
    pytest.importorskip("rich", reason="scikit-learn's ProgressBar draws with rich")
    monitor = ScoringMonitor(scoring={"ll": log_likelihood_scorer})
    pipeline = make_pipeline(StandardScaler(), model(ScoreMatchingEBM, max_iter=2).set_callbacks(monitor))
    pipeline.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X)
    assert "ScoreMatchingEBM - fit" in capsys.readouterr().out
    (log,) = monitor.get_logs("all")
    assert len(epoch_scores(log)) == 2


class Snapshots(QuietCallback):
    """A callback that keeps the offset of the model it is shown at the end of each epoch."""

    def __init__(self):
        self.offsets = []

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch":
            self.offsets.append(fitted_estimator.offset_)


@pytest.mark.parametrize("cls", [RBM, NCEEBM])
def test_the_last_snapshot_has_the_fitted_threshold_under_sample_weights(cls):
    weights = np.random.default_rng(2).uniform(0.5, 3.0, size=len(X))
    snapshots = Snapshots()
    fitted = model(cls).set_callbacks(snapshots).fit(X, sample_weight=weights)
    assert len(snapshots.offsets) == 3
    assert snapshots.offsets[-1] == pytest.approx(fitted.offset_, rel=1e-9)
