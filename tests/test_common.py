"""scikit-learn's estimator checks on every skebm estimator, at fast settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skebm import NCEEBM, RBM, ContrastiveDivergenceEBM

FAST = dict(
    hidden_layer_sizes=(8,), max_iter=2, n_steps=2, n_sample_steps=2, buffer_size=64, ais_steps=10, random_state=0
)


@parametrize_with_checks(
    [
        ContrastiveDivergenceEBM(**FAST),
        NCEEBM(hidden_layer_sizes=(8,), max_iter=2, n_sample_steps=2, random_state=0),
        RBM(n_components=4, max_iter=2, n_sample_steps=5, ais_steps=10, random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
