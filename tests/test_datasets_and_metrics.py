import numpy as np
import pytest

from skebm import ContrastiveDivergenceEBM
from skebm.datasets import (
    eight_gaussians_log_density,
    make_eight_gaussians,
    make_ellipse,
    make_rings,
    rings_log_density,
)
from skebm.metrics import (
    frechet_distance,
    hyvarinen_scorer,
    kernel_distance,
    log_likelihood_scorer,
    make_frechet_scorer,
    mmd,
    mmd_scorer,
)


@pytest.mark.parametrize(("log_density", "half_width"), [(eight_gaussians_log_density, 4.0), (rings_log_density, 4.0)])
def test_toy_densities_integrate_to_one(log_density, half_width):
    # Midpoints of 800 cells per axis: the rings density has an integrable 1/r singularity at the origin.
    step = 2 * half_width / 800
    g = -half_width + step * (np.arange(800) + 0.5)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(log_density(grid)).sum() * step**2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_generators_are_reproducible():
    np.testing.assert_array_equal(make_rings(50, random_state=1), make_rings(50, random_state=1))
    np.testing.assert_array_equal(make_eight_gaussians(50, random_state=1), make_eight_gaussians(50, random_state=1))


def test_ellipse_points_lie_on_the_ellipse():
    Y = make_ellipse(24, rho=(2.0, 1.5))
    np.testing.assert_allclose((Y[:, 0] / 2.0) ** 2 + (Y[:, 1] / 1.5) ** 2, 1.0)


def test_mmd_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    assert abs(mmd(a, b)) < 0.01
    assert mmd(a, b + 1.0) > 0.1


def test_scorers_rank_a_trained_model_above_an_untrained_one():
    X = make_eight_gaussians(1000, random_state=0)
    X_test = make_eight_gaussians(500, random_state=1)
    fast = dict(hidden_layer_sizes=(32, 32), n_sample_steps=100, random_state=0)
    # One epoch at a negligible learning rate: the network as initialized. (One epoch at the
    # default rate already samples eight Gaussians well enough that MMD's sampling noise, about
    # 1e-3 with these sizes, can rank it either way against the trained model.)
    untrained = ContrastiveDivergenceEBM(max_iter=1, learning_rate=1e-9, **fast).fit(X)
    trained = ContrastiveDivergenceEBM(max_iter=30, **fast).fit(X)
    assert log_likelihood_scorer(trained, X_test) > log_likelihood_scorer(untrained, X_test)
    assert hyvarinen_scorer(trained, X_test) > hyvarinen_scorer(untrained, X_test)
    assert mmd_scorer(trained, X_test) > mmd_scorer(untrained, X_test)


def _whitened(n, d, seed):
    """Rows whose sample mean is exactly 0 and sample covariance exactly the identity."""
    Z = np.random.default_rng(seed).normal(size=(n, d))
    Z -= Z.mean(0)
    return Z @ np.linalg.inv(np.linalg.cholesky(np.cov(Z, rowvar=False))).T


def test_frechet_distance_matches_the_closed_form_for_commuting_covariances():
    # X = Y A + b with Y white and A symmetric positive definite: S_X = A^2 and S_Y = I commute,
    # and the distance is |b|^2 + Tr(A^2 + I - 2A) = |b|^2 + ||A - I||_F^2, exactly.
    Y = _whitened(500, 3, seed=0)
    B = np.random.default_rng(1).normal(size=(3, 3))
    A, b = B @ B.T + 0.5 * np.eye(3), np.array([1.0, -2.0, 0.5])
    expected = b @ b + np.sum((A - np.eye(3)) ** 2)
    assert frechet_distance(Y @ A + b, Y) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(Y, Y) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_is_symmetric_for_covariances_that_do_not_commute():
    # Tr sqrt(S_X S_Y) = Tr sqrt(S_Y S_X), though the computation takes the root of S_Y only.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    Y = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + 1.0
    assert frechet_distance(X, Y) == pytest.approx(frechet_distance(Y, X), rel=1e-9)
    assert frechet_distance(X, Y) > 0


def test_frechet_distance_in_a_classifiers_logits_and_a_transformers_output():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    clf = LogisticRegression(max_iter=200).fit(digits.data[:1000], digits.target[:1000])
    real, other = digits.data[1000:1400], digits.data[1400:]
    noise = np.random.default_rng(0).uniform(0, 16, size=(400, 64))
    by_logits = frechet_distance(noise, real, features=clf)
    assert by_logits == pytest.approx(frechet_distance(clf.decision_function(noise), clf.decision_function(real)))
    assert frechet_distance(other, real, features=clf) < 0.1 * by_logits  # real digits sit near real digits
    scaler = StandardScaler().fit(real)
    assert frechet_distance(noise, real, features=scaler) == pytest.approx(
        frechet_distance(scaler.transform(noise), scaler.transform(real))
    )
    assert frechet_distance(noise, real, features=lambda Z: Z[:, :5]) == pytest.approx(
        frechet_distance(noise[:, :5], real[:, :5])
    )


def test_kernel_distance_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 0.5
    k = lambda A, B: (A @ B.T / 3 + 1.0) ** 3  # noqa: E731
    n = len(X)
    off_diagonal = lambda K: (K.sum() - np.trace(K)) / (n * (n - 1))  # noqa: E731
    by_hand = off_diagonal(k(X, X)) + off_diagonal(k(Y, Y)) - 2 * k(X, Y).mean()
    # One subset as large as both samples is the whole of each, whatever the draw.
    assert kernel_distance(X, Y, n_subsets=1, subset_size=n) == pytest.approx(by_hand, rel=1e-12)


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    same = [kernel_distance(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)), n_subsets=5) for _ in range(20)]
    # Unbiased: the mean over independent pairs is zero within 4 standard errors of that mean.
    assert abs(np.mean(same)) < 4 * np.std(same, ddof=1) / np.sqrt(len(same))
    shifts = [kernel_distance(rng.normal(size=(300, 2)) + s, rng.normal(size=(300, 2))) for s in (0.5, 1.0)]
    assert 4 * np.std(same, ddof=1) < shifts[0] < shifts[1]


@pytest.mark.parametrize("metric", [frechet_distance, kernel_distance])
def test_sample_quality_metrics_refuse_bad_input(metric):
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="same"):
        metric(X, np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"NaN|finite"):
        metric(np.full((10, 3), np.nan), X)
    with pytest.raises(ValueError, match="at least 2 rows"):
        metric(X[:1], X)
    with pytest.raises(TypeError, match="features must be"):
        metric(X, X, features="pca")


def test_frechet_scorer_prefers_a_trained_model_in_a_grid_search():
    from sklearn.model_selection import GridSearchCV

    from skebm import RBM

    rng = np.random.default_rng(0)
    X = (rng.random((400, 8)) < np.linspace(0.1, 0.9, 8)).astype(float)  # independent units, unequal rates
    search = GridSearchCV(
        RBM(n_components=4, learning_rate=0.1, random_state=0),
        {"max_iter": [1, 30]},
        scoring=make_frechet_scorer(),
        cv=2,
    ).fit(X)
    assert search.best_params_ == {"max_iter": 30}
    assert np.all(search.cv_results_["mean_test_score"] <= 0)
