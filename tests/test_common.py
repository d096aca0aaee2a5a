"""scikit-learn's estimator checks on every skebm estimator, at fast settings."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skebm import (
    DBN,
    NCEEBM,
    RBM,
    AdversarialEBM,
    BoltzmannMachine,
    ContrastiveDivergenceEBM,
    LatentVariableEBM,
    ScoreMatchingEBM,
)

FAST = dict(
    hidden_layer_sizes=(8,), max_iter=2, n_steps=2, n_sample_steps=2, buffer_size=64, ais_steps=10, random_state=0
)


# Rows drawn into minibatches with probabilities proportional to their weights are the same as
# repeated rows in distribution, not draw for draw; tests/test_base.py checks the frequencies.
WEIGHTS_IN_DISTRIBUTION = {
    f"check_sample_weight_equivalence_on_{kind}_data": "weights act through random minibatch draws, as repeated "
    "rows do, but not draw for draw"
    for kind in ("dense", "sparse")  # sparse: for the RBM, the one estimator that accepts it
}

# Three checks fit rows near 100. Binary units read them as huge counts: the data's v v^T reaches
# 1e4 where the chains' stays below 1, the couplings run away, and the fit stops with a
# DivergenceError that names the cause (tests/test_boltzmann.py), as a model of binary data should.
FAR_OUTSIDE_THE_UNIT_INTERVAL = {
    name: "binary units with couplings on rows near 100: a DivergenceError, tested in test_boltzmann.py"
    for name in ("check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in")
}


def expected_failures(estimator):
    if isinstance(estimator, BoltzmannMachine):
        return {**WEIGHTS_IN_DISTRIBUTION, **FAR_OUTSIDE_THE_UNIT_INTERVAL}
    return WEIGHTS_IN_DISTRIBUTION


@parametrize_with_checks(
    [
        ContrastiveDivergenceEBM(**FAST),
        NCEEBM(hidden_layer_sizes=(8,), max_iter=2, n_sample_steps=2, random_state=0),
        ScoreMatchingEBM(hidden_layer_sizes=(8,), max_iter=2, n_sample_steps=2, ais_steps=10, random_state=0),
        ScoreMatchingEBM(
            method="multilevel", hidden_layer_sizes=(8,), max_updates=10, n_sample_steps=4, random_state=0
        ),
        AdversarialEBM(hidden_layer_sizes=(8,), max_iter=2, generator_pretraining=5, ais_steps=10, random_state=0),
        # The lecture's ellipse decoder reads exactly two features; the checks use many shapes.
        LatentVariableEBM(decoder="mlp", hidden_layer_sizes=(8,), n_grid=64, max_iter=2, random_state=0),
        RBM(n_components=4, max_iter=2, n_sample_steps=5, ais_steps=10, random_state=0),
        RBM(method="pt", n_temperatures=3, n_components=4, max_iter=2, n_sample_steps=5, random_state=0),
        DBN(hidden_layer_sizes=(4, 3), max_iter=2, ais_steps=10, n_sample_steps=5, random_state=0),
        BoltzmannMachine(n_components=4, max_iter=2, n_sample_steps=5, ais_steps=10, random_state=0),
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "cls", [ContrastiveDivergenceEBM, ScoreMatchingEBM, NCEEBM, AdversarialEBM, RBM, LatentVariableEBM]
)
def test_constructors_take_keywords_only(cls):
    # scikit-learn's convention: a positional argument cannot silently land on the wrong parameter.
    with pytest.raises(TypeError, match="positional"):
        cls(1)
