import itertools
import math
import pickle

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.datasets import load_diabetes, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skebm import NCEEBM, RBM
from skebm.energies import RBMParams
from skebm.partition import grid_log_partition, rbm_ais_log_partition, rbm_exact_log_partition
from skebm.samplers import SAMPLERS, RandomPool, run_chain


def random_rbm(n_visible, n_hidden, visible="bernoulli", scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    tensors = (
        scale * torch.randn(shape, generator=g, dtype=torch.float64)
        for shape in [(n_hidden, n_visible), (n_hidden,), (n_visible,)]
    )
    return RBMParams(*tensors, visible)


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


@pytest.fixture(scope="module")
def digits():
    X = (load_digits().data / 16 > 0.5).astype(float)
    return train_test_split(X, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def small_rbm(digits):
    return RBM(n_components=16, max_iter=5, random_state=0).fit(digits[0])


@pytest.mark.parametrize("n_visible, n_hidden", [(5, 4), (3, 6)])  # enumerates the hidden, then the visible layer
def test_exact_log_partition_equals_brute_force(n_visible, n_hidden):
    rbm = random_rbm(n_visible, n_hidden)
    v, h = all_states(n_visible), all_states(n_hidden)
    pairs_v, pairs_h = v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)
    brute = float(torch.logsumexp(-rbm.joint_energy(pairs_v, pairs_h), 0))
    assert rbm_exact_log_partition(rbm) == pytest.approx(brute, abs=1e-10)


def test_exact_log_partition_of_gaussian_visible_units_equals_quadrature():
    rbm = random_rbm(2, 3, visible="gaussian", scale=0.7)
    h = all_states(3)

    def marginal_energy(v):  # -log sum_h exp(-E(v, h)), by brute force over h
        pairs_v, pairs_h = v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)
        return -torch.logsumexp(-rbm.joint_energy(pairs_v, pairs_h).reshape(len(v), len(h)), 1)

    quadrature = grid_log_partition(marginal_energy, [-12, -12], [12, 12], n_points=600)
    assert rbm_exact_log_partition(rbm) == pytest.approx(quadrature, abs=1e-6)


def test_free_energy_is_the_marginal_of_the_joint_energy():
    rbm = random_rbm(4, 3)
    v, h = all_states(4), all_states(3)
    joint = -rbm.joint_energy(v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)).reshape(len(v), len(h))
    torch.testing.assert_close(-rbm.free_energy(v), torch.logsumexp(joint, 1))


def test_ais_agrees_with_exact_on_a_digits_rbm(small_rbm, digits):
    rbm = small_rbm.module_.params()
    exact = rbm_exact_log_partition(rbm)
    generator = torch.Generator(device=rbm.weight.device).manual_seed(0)
    estimate, std = rbm_ais_log_partition(rbm, digits[0], n_betas=3000, n_runs=100, generator=generator)
    assert abs(estimate - exact) < 0.1
    assert abs(estimate - exact) < 3 * std + 1e-3


def test_gibbs_sampling_reproduces_the_exact_distribution():
    rbm = RBMParams(*(t.float() for t in random_rbm(4, 3)[:3]))
    states = all_states(4).float()
    exact = torch.softmax(-rbm.free_energy(states), 0).double()
    n = 20000
    start = torch.zeros(n, 4)
    samples, rate = run_chain(SAMPLERS["gibbs"], rbm, start, 100, RandomPool(torch.Generator().manual_seed(0)))
    assert rate is None  # Gibbs accepts every move
    codes = (samples * 2 ** torch.arange(3, -1, -1)).sum(1).long()  # itertools.product order
    empirical = torch.bincount(codes, minlength=16).double() / n
    total_variation = 0.5 * float((empirical - exact).abs().sum())
    # E[TV] <= 1/2 sum sqrt(p (1 - p) / n); McDiarmid adds sqrt(log(1/delta) / 2n) at delta = 1e-4.
    tolerance = 0.5 * float(torch.sqrt(exact * (1 - exact) / n).sum()) + math.sqrt(math.log(1e4) / (2 * n))
    assert total_variation < tolerance


def test_score_samples_is_a_normalized_log_density():
    X = np.random.default_rng(0).integers(0, 2, size=(200, 6)).astype(float)
    rbm = RBM(n_components=3, max_iter=3, random_state=0).fit(X)
    assert rbm.log_partition_std_ == 0.0
    mass = np.exp(rbm.score_samples(all_states(6).numpy())).sum()
    assert mass == pytest.approx(1.0, abs=1e-9)


def test_beats_independent_pixels_and_scikit_learn_names(small_rbm, digits):
    X_train, X_test = digits
    p = X_train.mean(0).clip(1e-3, 1 - 1e-3)
    independent = (X_test * np.log(p) + (1 - X_test) * np.log1p(-p)).sum(1).mean()
    assert small_rbm.score(X_test) > independent + 1.0
    assert small_rbm.components_.shape == (16, 64)
    assert small_rbm.intercept_hidden_.shape == (16,) and small_rbm.intercept_visible_.shape == (64,)
    H = small_rbm.transform(X_test)
    assert H.shape == (len(X_test), 16) and H.dtype == np.float64 and ((H >= 0) & (H <= 1)).all()


def test_pipeline_features_names_and_pandas_output(small_rbm, digits):
    X_train, X_test = digits
    y = load_digits().target
    y_train, y_test = train_test_split(y, test_size=0.2, random_state=0)
    model = Pipeline(
        [("rbm", RBM(n_components=32, max_iter=5, random_state=0)), ("clf", LogisticRegression(max_iter=500))]
    )
    # Chance is 0.1; features that carry no class information cannot get near 0.5.
    assert model.fit(X_train, y_train).score(X_test, y_test) > 0.5
    assert list(small_rbm.get_feature_names_out())[:2] == ["rbm0", "rbm1"]
    frame = (
        RBM(n_components=4, max_iter=1, random_state=0).set_output(transform="pandas").fit(X_train).transform(X_test)
    )
    assert list(frame.columns) == ["rbm0", "rbm1", "rbm2", "rbm3"]


def test_stacked_rbms_train_greedily(digits):
    X_train, _ = digits
    stack = Pipeline(
        [
            ("rbm1", RBM(n_components=32, max_iter=2, random_state=0)),
            ("rbm2", RBM(n_components=8, max_iter=2, random_state=0)),
        ]
    )
    features = stack.fit(X_train).transform(X_train)
    assert features.shape == (len(X_train), 8)
    assert stack.named_steps["rbm2"].n_features_in_ == 32


def test_sampling_gibbs_and_pseudo_likelihood(small_rbm, digits):
    _, X_test = digits
    samples = small_rbm.sample(50, random_state=0)
    assert samples.shape == (50, 64) and set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, small_rbm.sample(50, random_state=0))
    step = small_rbm.gibbs(X_test[:5])
    assert step.shape == (5, 64) and set(np.unique(step)) <= {0.0, 1.0}
    pseudo = small_rbm.pseudo_likelihood(X_test, random_state=0)
    assert pseudo.shape == (len(X_test),) and (pseudo <= 0).all()
    np.testing.assert_array_equal(pseudo, small_rbm.pseudo_likelihood(X_test, random_state=0))


def test_partial_fit_returns_self_and_learns(digits):
    X_train, X_test = digits
    # partial_fit steps at the full rate. At the default, 0.1, one epoch's noise moves the test score
    # by up to 2 nats either way from seed to seed, more than three epochs' progress; at 0.02 the
    # three epochs gained 0.66 to 0.80 nats on each of 16 seeds.
    rbm = RBM(n_components=16, learning_rate=0.02, random_state=0)
    assert rbm.partial_fit(X_train) is rbm
    first = rbm.score(X_test)
    for _ in range(3):
        rbm.partial_fit(X_train)
    assert rbm.n_iter_ == 4 and rbm.score(X_test) > first


@pytest.mark.parametrize("method, k", [("pcd", 1), ("cd", 1), ("cd", 3), ("pt", 1), ("pt", 2)])
def test_methods_train_and_reproduce(digits, method, k):
    X_train, X_test = digits
    a = RBM(n_components=8, method=method, n_gibbs_steps=k, max_iter=2, random_state=1).fit(X_train)
    b = RBM(n_components=8, method=method, n_gibbs_steps=k, max_iter=2, random_state=1).fit(X_train)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert np.isfinite(a.score(X_test))


def test_gaussian_visible_units_beat_independent_gaussians():
    X = load_diabetes().data
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    rbm = RBM(n_components=16, visible="gaussian", max_iter=50, random_state=0).fit(X_train)
    mean, std = X_train.mean(0), X_train.std(0)
    independent = -0.5 * (((X_test - mean) / std) ** 2 + np.log(2 * np.pi * std**2)).sum(1)
    gain = rbm.score_samples(X_test) - independent
    assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))


def test_gaussian_units_train_at_the_default_learning_rate():
    # A step of 0.1, right for Bernoulli units, runs away on standardized real data.
    X = StandardScaler().fit_transform(load_wine().data)
    with pytest.raises(FloatingPointError):
        RBM(visible="gaussian", learning_rate=0.1, log_partition=None, random_state=0).fit(X)
    rbm = RBM(visible="gaussian", log_partition=None, random_state=0).fit(X)
    assert np.isfinite(rbm.energy(X)).all()


def test_pickle_round_trip_and_divergence(small_rbm, digits):
    X_train, X_test = digits
    loaded = pickle.loads(pickle.dumps(small_rbm))
    np.testing.assert_array_equal(loaded.score_samples(X_test), small_rbm.score_samples(X_test))
    rbm = RBM(n_components=8, visible="gaussian", max_iter=2, random_state=0).fit(X_train)
    before = rbm.components_.copy()
    with pytest.raises(FloatingPointError, match=r"learning_rate \(now 1e\+06\)"):  # the rate in use
        rbm.set_params(learning_rate=1e6, learning_rate_schedule="constant", momentum=0.9).fit(X_train * 100)
    np.testing.assert_array_equal(rbm.components_, before)


def test_warns_on_bernoulli_data_outside_the_unit_interval():
    with pytest.warns(UserWarning, match=r"X in \[0, 1\]"):
        RBM(n_components=2, max_iter=1, random_state=0).fit(np.array([[0.0, 2.0], [1.0, 0.0]]))


def test_parallel_tempering_reports_swaps_survives_saving_and_warm_starts(digits, tmp_path):
    from skebm import load, save

    X_train, X_test = digits
    pt = RBM(n_components=8, method="pt", n_temperatures=4, max_iter=2, random_state=0).fit(X_train)
    assert pt.tempering_chains_.shape == (4, pt.batch_size, 64)
    assert all(0 < record["swap_rate"] <= 1 for record in pt.history_)
    save(pt, tmp_path / "pt.skebm")
    loaded = load(tmp_path / "pt.skebm")
    np.testing.assert_array_equal(loaded.tempering_chains_.numpy(), pt.tempering_chains_.numpy())
    np.testing.assert_array_equal(loaded.partial_fit(X_train).components_, pt.partial_fit(X_train).components_)
    # A warm start that switches to tempering, or changes its replicas, starts fresh chains.
    pcd = RBM(n_components=8, max_iter=1, random_state=0).fit(X_train)
    pcd.set_params(method="pt", n_temperatures=3, warm_start=True).fit(X_train)
    assert pcd.tempering_chains_.shape == (3, pcd.batch_size, 64) and "swap_rate" in pcd.history_[-1]
    assert np.isfinite(pcd.score(X_test))


@pytest.mark.parametrize("sparse_format", ["csr", "csc", "coo"])
def test_sparse_input_gives_the_model_of_its_dense_rows(sparse_format):
    # As BernoulliRBM: sparse binary tables are accepted by fit, partial_fit and every method that reads rows.
    X = (np.random.default_rng(0).random((120, 25)) < 0.1).astype(float)
    X_sparse = scipy.sparse.csr_matrix(X).asformat(sparse_format)
    params = dict(n_components=6, max_iter=3, random_state=0)
    dense, sparse = RBM(**params).fit(X), RBM(**params).fit(X_sparse)
    for method in ("score_samples", "transform", "decision_function"):
        np.testing.assert_array_equal(getattr(dense, method)(X), getattr(sparse, method)(X_sparse))
    np.testing.assert_array_equal(
        dense.gibbs(X[:4]), sparse.gibbs(scipy.sparse.csr_matrix(X[:4]).asformat(sparse_format))
    )
    dense.partial_fit(X)
    sparse.partial_fit(X_sparse)
    np.testing.assert_array_equal(dense.score_samples(X), sparse.score_samples(X))


def test_the_neural_estimators_refuse_sparse_input_in_scikit_learns_words():
    X = scipy.sparse.csr_matrix(np.random.default_rng(0).normal(size=(40, 3)))
    with pytest.raises(TypeError, match="dense data is required"):
        NCEEBM(max_iter=1).fit(X)


# ------------------------------------------------------------ categorical units
def _coded_table(n, seed=0):
    """Three categorical features: the second copies the first (codes 0, 10, 20) with probability 0.8."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 3, n)
    second = np.where(rng.random(n) < 0.8, first, rng.integers(0, 3, n))
    return np.c_[first, 10 * second, rng.choice([-1.0, 5.0], n)].astype(float)


# Entropy of _coded_table in nats: log 3 for the first and third features' log 2, and the second given the first.
_COPY = 0.8 + 0.2 / 3
_CODED_ENTROPY = math.log(3) + math.log(2) - (_COPY * math.log(_COPY) + (1 - _COPY) * math.log((1 - _COPY) / 2))


@pytest.fixture(scope="module")
def categorical_rbm():
    return RBM(n_components=8, visible="categorical", max_iter=20, random_state=0).fit(_coded_table(3000))


def test_categorical_units_give_a_normalized_model_of_the_codes(categorical_rbm):
    rbm = categorical_rbm
    assert [values.tolist() for values in rbm.categories_] == [[0, 1, 2], [0, 10, 20], [-1, 5]]
    assert rbm.components_.shape == (8, 3 + 3 + 2)
    every_row = np.array(list(itertools.product([0, 1, 2], [0, 10, 20], [-1, 5])), dtype=float)
    assert np.exp(rbm.score_samples(every_row)).sum() == pytest.approx(1.0, abs=1e-9)  # exact log Z
    # It learns the dependence: near the true entropy, far from independent features (2.89 nats).
    held_out = _coded_table(3000, seed=1)
    assert -rbm.score(held_out) < _CODED_ENTROPY + 0.05
    assert -rbm.score(held_out) < math.log(3) + math.log(3) + math.log(2) - 0.4


def test_categorical_samples_and_gibbs_steps_are_rows_of_known_categories(categorical_rbm):
    rbm = categorical_rbm
    samples = rbm.sample(2000, random_state=0)
    assert samples.shape == (2000, 3)
    for values, column in zip(rbm.categories_, samples.T, strict=True):
        assert np.isin(column, values).all()
    # The copy survives in the samples: 0.867 in the data, 1/3 between independent features.
    copies = np.mean(samples[:, 0] * 10 == samples[:, 1])
    assert copies > 0.8
    np.testing.assert_array_equal(samples, rbm.sample(2000, random_state=0))
    stepped = rbm.gibbs(_coded_table(5))
    assert all(np.isin(column, values).all() for values, column in zip(rbm.categories_, stepped.T, strict=True))


def test_categorical_draws_follow_the_softmax_of_each_group():
    from skebm.energies import CategoricalGroups
    from skebm.samplers import draw_visible

    groups = CategoricalGroups((3, 2))
    pre = torch.log(torch.tensor([[0.2, 0.5, 0.3, 0.9, 0.1]]))
    rbm = RBMParams(torch.zeros(1, 5), torch.zeros(1), torch.zeros(5), "categorical", groups)
    n = 20000
    draws = draw_visible(rbm, pre.expand(n, 5).clone(), RandomPool(torch.Generator().manual_seed(0)))
    assert torch.all(draws[:, :3].sum(1) == 1) and torch.all(draws[:, 3:].sum(1) == 1)
    expected = torch.tensor([0.2, 0.5, 0.3, 0.9, 0.1])
    standard_error = torch.sqrt(expected * (1 - expected) / n)
    assert torch.all((draws.mean(0) - expected).abs() < 4 * standard_error)  # 4 standard errors: binomial


def test_categorical_ais_agrees_with_exact_log_partition():
    X = _coded_table(1000)
    exact = RBM(n_components=12, visible="categorical", max_iter=5, random_state=0, log_partition="exact").fit(X)
    rbm = exact.module_.params()
    estimate, std = rbm_ais_log_partition(rbm, exact._as_rows(X), n_betas=3000, generator=torch.Generator())
    assert abs(estimate - exact.log_partition_) < 3 * std + 1e-3


def test_categorical_units_refuse_unseen_values_and_warn_on_continuous_columns(categorical_rbm):
    with pytest.raises(ValueError, match=r"Feature 0 holds 7\.0, a value not seen in fit"):
        categorical_rbm.score_samples(np.array([[7.0, 0.0, 5.0]]))
    with pytest.raises(ValueError, match="visible='bernoulli'"):
        categorical_rbm.pseudo_likelihood(_coded_table(5))
    continuous = np.c_[np.random.default_rng(0).normal(size=200), np.zeros(200)]
    with pytest.warns(UserWarning, match="feature 0 has 200 of them"):
        RBM(n_components=2, visible="categorical", max_iter=1, random_state=0).fit(continuous)


def test_categorical_rbm_survives_saving_and_parallel_tempering(categorical_rbm, tmp_path):
    import skebm

    path = tmp_path / "categorical.skebm"
    skebm.save(categorical_rbm, path)
    loaded = skebm.load(path)
    X = _coded_table(50, seed=2)
    np.testing.assert_array_equal(loaded.score_samples(X), categorical_rbm.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), categorical_rbm.sample(5, random_state=1))
    tempered = RBM(n_components=8, visible="categorical", method="pt", max_iter=3, random_state=0)
    tempered.fit(_coded_table(600))
    assert 0 < tempered.history_[-1]["swap_rate"] <= 1
    assert -tempered.score(X) < math.log(3) + math.log(3) + math.log(2)  # better than uniform codes


def test_categorical_visible_biases_start_at_the_frequencies_of_the_categories():
    X = _coded_table(400)
    rbm = RBM(n_components=2, visible="categorical", max_iter=1, learning_rate=1e-12, random_state=0).fit(X)
    probabilities = rbm.module_.groups.softmax(rbm.module_.visible_bias.detach()[None])[0].numpy()
    frequencies = rbm._as_rows(X).mean(0).numpy()
    np.testing.assert_allclose(probabilities, frequencies, atol=1e-5)
