import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skebm import DBN
from skebm._dbn import _bound_of_one_draw
from skebm.energies import RBMParams
from skebm.partition import rbm_exact_log_partition


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


@pytest.fixture(scope="module")
def binary_rows():
    # Six correlated binary features: two prototypes with flipped bits.
    rng = np.random.default_rng(0)
    prototypes = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=float)
    X = prototypes[rng.integers(0, 2, 400)]
    return np.abs(X - (rng.random(X.shape) < 0.1))


def exact_dbn_log_likelihood(dbn, X):
    """log p(v) = log sum_h1 p(v | h1) p_top(h1), enumerating the first hidden layer."""
    bottom, top = (RBMParams(*(t.detach().double() for t in r.module_.params()[:3])) for r in dbn.rbms_)
    h = states(bottom.weight.shape[0])
    log_top = -top.free_energy(h) - rbm_exact_log_partition(top)
    logits = torch.addmm(bottom.visible_bias, h, bottom.weight)  # (n_h, n_visible)
    v = torch.as_tensor(X, dtype=torch.float64)
    log_v_given_h = v @ F.logsigmoid(logits).T + (1 - v) @ F.logsigmoid(-logits).T  # (n, n_h)
    return torch.logsumexp(log_v_given_h + log_top, dim=1).numpy()


def test_the_bound_of_a_tied_layer_is_the_lower_rbms_log_likelihood():
    # A top RBM that is the transposed RBM below leaves the model that RBM, and q(h | v) its exact
    # posterior: the bound is tight, so its Monte Carlo mean estimates log p(v) without bias.
    g = torch.Generator().manual_seed(0)
    bottom = RBMParams(*(torch.randn(s, generator=g, dtype=torch.float64) for s in [(4, 6), (4,), (6,)]))
    top = RBMParams(bottom.weight.T, bottom.visible_bias, bottom.hidden_bias)
    v = states(6)[[0, 7, 42, 63]]
    draws = torch.stack([_bound_of_one_draw([bottom, top], v, [torch.rand(4, generator=g)]) for _ in range(4000)])
    estimate = draws.mean(0) - rbm_exact_log_partition(top)
    exact = -bottom.free_energy(v) - rbm_exact_log_partition(bottom)
    standard_error = draws.std(0) / np.sqrt(len(draws))
    assert torch.all((estimate - exact).abs() < 4 * standard_error + 1e-9)


def test_score_samples_is_a_lower_bound_close_to_the_exact_log_likelihood(binary_rows):
    dbn = DBN(hidden_layer_sizes=(8, 4), max_iter=10, n_bound_samples=200, random_state=0).fit(binary_rows)
    exact = exact_dbn_log_likelihood(dbn, binary_rows)  # both layers small enough to enumerate
    bound = dbn.score_samples(binary_rows)
    assert dbn.log_partition_ == pytest.approx(rbm_exact_log_partition(dbn.rbms_[1].module_.params()), abs=1e-4)
    assert bound.mean() <= exact.mean() + 0.01  # a bound, up to its Monte Carlo error
    assert exact.mean() - bound.mean() < 1.0  # and not a vacuous one
    assert exact.mean() > np.log(0.5) * 6  # the model beats fair coins


def test_fit_transform_sample_and_outliers(binary_rows):
    params = dict(hidden_layer_sizes=(8, 6), max_iter=3, n_sample_steps=20, random_state=0)
    dbn = DBN(**params).fit(binary_rows)
    again = DBN(**params).fit(binary_rows)
    np.testing.assert_array_equal(dbn.score_samples(binary_rows), again.score_samples(binary_rows))
    assert dbn.rbms_[1].learning_rate == pytest.approx(0.01)  # tied to the 6 features below: a tenth
    # Tied start: the top began as the transposed bottom and moved little at a tenth of the rate.
    top, bottom = dbn.rbms_[1].components_.ravel(), dbn.rbms_[0].components_.T.ravel()
    assert np.corrcoef(top, bottom)[0, 1] > 0.99
    untied = DBN(**{**params, "hidden_layer_sizes": (8, 5)}).fit(binary_rows)
    assert untied.rbms_[1].learning_rate == "auto" and np.abs(untied.rbms_[1].components_).max() < 0.5
    assert dbn.transform(binary_rows).shape == (400, 6)
    samples = dbn.sample(50, random_state=0)
    assert samples.shape == (50, 6) and set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, dbn.sample(50, random_state=0))
    assert np.mean(dbn.predict(binary_rows) == -1) == pytest.approx(0.1, abs=0.05)
    flipped = 1 - binary_rows[:20]  # neither prototype
    assert dbn.score_samples(flipped).mean() < dbn.score_samples(binary_rows).mean()


def test_bad_input_is_refused_and_leaves_a_fitted_model_intact(binary_rows):
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        DBN(hidden_layer_sizes=(8, 0)).fit(binary_rows)
    dbn = DBN(hidden_layer_sizes=(4, 3), max_iter=1, ais_steps=10, random_state=0).fit(binary_rows)
    before = dbn.score_samples(binary_rows)
    with pytest.raises(ValueError, match="NaN"):
        dbn.fit(np.full((10, 3), np.nan))
    assert dbn.n_features_in_ == 6
    np.testing.assert_array_equal(dbn.score_samples(binary_rows), before)


def test_safe_saving_refuses_a_dbn_and_says_what_to_do(binary_rows, tmp_path):
    from skebm import save

    dbn = DBN(hidden_layer_sizes=(4, 3), max_iter=1, ais_steps=10, random_state=0).fit(binary_rows)
    with pytest.raises(TypeError, match=r"save each of its layers \(dbn.rbms_\)"):
        save(dbn, tmp_path / "dbn.skebm")
    save(dbn.rbms_[0], tmp_path / "layer.skebm")  # the layers themselves are RBMs
