import copy
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skebm import CHAPTER7_PARAMS, SHORT_RUN_PARAMS, ContrastiveDivergenceEBM, DivergenceError
from skebm.datasets import eight_gaussians_log_density, load_digits_scaled, make_eight_gaussians, make_moons
from skebm.energies import BoxedEnergy, GaussianMixtureEnergy, ResidualEnergy
from skebm.metrics import mmd

FAST = dict(hidden_layer_sizes=(32, 32), max_iter=3, n_sample_steps=20, buffer_size=512, ais_steps=50)


@pytest.fixture(scope="module")
def moons():
    return make_moons(600, random_state=0)


@pytest.fixture(scope="module")
def fitted(moons):
    return ContrastiveDivergenceEBM(random_state=0, **FAST).fit(moons)


def test_fit_sets_the_public_contract(fitted, moons):
    assert fitted.n_features_in_ == 2
    assert len(fitted.history_) == fitted.n_iter_ == 3
    assert {"loss", "cdiv", "reg", "real_energy", "fake_energy", "acceptance_rate"} <= set(fitted.history_[0])
    scores = fitted.score_samples(moons)
    assert scores.dtype == np.float64 and scores.shape == (600,)
    np.testing.assert_allclose(scores, -fitted.energy(moons) - fitted.log_partition_)
    assert fitted.score(moons) == pytest.approx(scores.mean())
    labels = fitted.predict(moons)
    assert set(np.unique(labels)) <= {-1, 1}
    assert (labels == -1).mean() == pytest.approx(fitted.contamination, abs=0.01)
    np.testing.assert_array_equal(fitted.labels_ == 1, labels == -1)
    assert fitted.sample(7, random_state=0).shape == (7, 2)


def test_scores_do_not_depend_on_batching(fitted, moons):
    whole = fitted.score_samples(moons)
    pieces = np.concatenate([fitted.score_samples(moons[i : i + 7]) for i in range(0, 600, 7)])
    np.testing.assert_allclose(whole, pieces, rtol=1e-12)


def test_density_is_normalized(fitted):
    # log Z by quadrature: the model's density integrates to one over the plane.
    g = np.linspace(-6, 6, 300)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(fitted.score_samples(grid)).sum() * (g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=0.02)


def test_moons_fit_beats_a_standard_normal(moons):
    X_test = make_moons(2000, random_state=1)
    est = ContrastiveDivergenceEBM(max_iter=15, random_state=0).fit(moons)
    standard_normal = -0.5 * (X_test**2).sum(1) - np.log(2 * np.pi)
    gain = est.score_samples(X_test) - standard_normal
    # Better by more than three standard errors of the mean paired difference.
    assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))


def test_eight_gaussians_at_defaults_within_a_tenth_of_a_nat_of_the_truth():
    # The quality bar of the foundation issue, at the default settings (about a minute on 2 cores).
    X, X_test = make_eight_gaussians(5000, random_state=0), make_eight_gaussians(5000, random_state=1)
    model = ContrastiveDivergenceEBM(random_state=0).fit(X)
    shortfall = eight_gaussians_log_density(X_test) - model.score_samples(X_test)
    gap, se = shortfall.mean(), shortfall.std() / np.sqrt(len(shortfall))
    assert gap < 0.1
    # KL(truth || model) >= 0: a clearly negative gap would mean a wrongly normalized density.
    assert gap > -3 * se


def test_same_random_state_same_model_and_samples(moons):
    a = ContrastiveDivergenceEBM(random_state=3, **FAST).fit(moons)
    b = ContrastiveDivergenceEBM(random_state=3, **FAST).fit(moons)
    np.testing.assert_array_equal(a.energy(moons), b.energy(moons))
    np.testing.assert_array_equal(a.sample(20, random_state=1), b.sample(20, random_state=1))


def test_jumps_are_recorded_and_can_be_switched_off(fitted, moons):
    assert all(0 < record["jump_rate"] < 1 for record in fitted.history_)
    without = ContrastiveDivergenceEBM(n_jumps=0, random_state=0, **FAST).fit(moons)
    assert "jump_rate" not in without.history_[0]
    assert CHAPTER7_PARAMS["n_jumps"] == 0  # the book's recipe has none


@pytest.mark.parametrize("sampler", ["metropolis", "uniform_jump"])
def test_every_registered_kernel_trains_and_samples(moons, sampler):
    model = ContrastiveDivergenceEBM(sampler=sampler, n_jumps=0, random_state=0, **FAST).fit(moons)
    assert all(0 < record["acceptance_rate"] < 1 for record in model.history_)
    samples = model.sample(50, random_state=0)
    assert np.isfinite(samples).all() and bool((samples >= model.module_.low.numpy()).all())


@pytest.mark.parametrize("n_jumps", [0, 1])
def test_samples_share_modes_by_mass_only_with_jumps(fitted, n_jumps):
    # A known energy in place of the fitted one: modes of mass 0.8 and 0.2 whose basins are the
    # two halves of the box. Local chains from uniform noise stay in the half they start in.
    # One jump per step forgets the start geometrically, at least 1/90 per step here, so 600
    # steps leave a bias of about 1e-3, below the 4 binomial standard errors allowed.
    model = copy.deepcopy(fitted).set_params(n_jumps=n_jumps, n_sample_steps=600)
    mixture = GaussianMixtureEnergy([[-2.0, 0.0], [2.0, 0.0]], np.tile(np.eye(2) / 0.3, (2, 1, 1)), [0.8, 0.2])
    model.module_ = BoxedEnergy(mixture, low=[-4, -4], high=[4, 4])
    heavy = (model.sample(4000, random_state=0)[:, 0] < 0).mean()
    if n_jumps:
        assert heavy == pytest.approx(0.8, abs=4 * np.sqrt(0.8 * 0.2 / 4000))
    else:
        assert heavy == pytest.approx(0.5, abs=0.05)


def test_weight_averaging_averages_the_epoch_end_weights(moons):
    # At a constant rate training does not depend on max_iter (a cosine spans the planned epochs),
    # so fits of 1, 2 and 3 epochs end at the epoch-end weights of one 3-epoch run.
    params = {**FAST, "random_state": 0, "learning_rate_schedule": "constant"}
    ends = [
        ContrastiveDivergenceEBM(**{**params, "max_iter": k, "weight_averaging": 0}).fit(moons).module_.state_dict()
        for k in (1, 2, 3)
    ]
    averaged = ContrastiveDivergenceEBM(**{**params, "weight_averaging": 1.0}).fit(moons).module_.state_dict()
    last_two = ContrastiveDivergenceEBM(**{**params, "weight_averaging": 0.5}).fit(moons).module_.state_dict()
    for key, value in averaged.items():
        torch.testing.assert_close(value, sum(end[key] for end in ends) / 3)
        torch.testing.assert_close(last_two[key], (ends[1][key] + ends[2][key]) / 2)  # ceil(0.5 * 3) = 2
    assert not torch.equal(averaged["network.output.weight"], ends[2]["network.output.weight"])


def test_early_stopping_keeps_the_best_weights_unaveraged(moons):
    # A constant rate, so that a shorter fit retraces the first epochs of the longer one.
    params = {**FAST, "learning_rate_schedule": "constant"}
    est = ContrastiveDivergenceEBM(
        validation_fraction=0.2, n_iter_no_change=1, weight_averaging=1.0, random_state=0, **{**params, "max_iter": 30}
    ).fit(moons)
    assert est.n_iter_ < 30  # stopped early
    best = int(np.argmin([record["val_loss"] for record in est.history_]))
    reference = ContrastiveDivergenceEBM(
        validation_fraction=0.2,
        n_iter_no_change=1,
        weight_averaging=0,
        random_state=0,
        **{**params, "max_iter": best + 1},
    ).fit(moons)
    np.testing.assert_array_equal(est.energy(moons), reference.energy(moons))


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_keeps_scores_and_samples(fitted, moons, dump, tmp_path):
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(fitted))
    else:
        joblib.dump(fitted, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.score_samples(moons), fitted.score_samples(moons))
    np.testing.assert_array_equal(loaded.sample(5, random_state=0), fitted.sample(5, random_state=0))
    assert str(loaded.device_) == "cpu"  # saved on the CPU, so a CUDA fit loads anywhere
    # The optimizer still steps the loaded model's own parameters, so warm starts keep training it.
    assert loaded.optimizer_.param_groups[0]["params"][0] is next(loaded.module_.parameters())


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "infinity"),
        (np.array([0.0, 1.0, 2.0]), "Expected 2D array"),
        (np.empty((0, 2)), "0 sample"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|dtype"),
    ],
)
def test_bad_input_is_refused(X, message):
    with pytest.raises(ValueError, match=message):
        ContrastiveDivergenceEBM(**FAST).fit(X)


def test_wrong_number_of_features_at_score_time(fitted):
    with pytest.raises(ValueError, match="X has 3 features, but ContrastiveDivergenceEBM is expecting 2"):
        fitted.score_samples(np.zeros((4, 3)))


def test_bad_parameter_message_in_sklearn_style(moons):
    with pytest.raises(ValueError, match="The 'step_size' parameter of ContrastiveDivergenceEBM must be"):
        ContrastiveDivergenceEBM(step_size=-1).fit(moons)


def test_divergence_raises_and_keeps_the_previous_model(fitted, moons):
    est = pickle.loads(pickle.dumps(fitted))
    before = est.score_samples(moons)
    est.set_params(learning_rate=1e3, warm_start=False)
    with pytest.raises(DivergenceError, match="Lower learning_rate"):
        est.fit(moons)
    np.testing.assert_array_equal(est.score_samples(moons), before)
    assert len(est.history_) == 3


def test_warm_start_and_partial_fit_continue(moons):
    est = ContrastiveDivergenceEBM(random_state=0, warm_start=True, **FAST).fit(moons)
    est.fit(moons)
    assert len(est.history_) == 6
    est = ContrastiveDivergenceEBM(random_state=0, **FAST)
    assert est.partial_fit(moons) is est
    est.partial_fit(moons)
    assert len(est.history_) == 2


def test_validation_fraction_records_the_chapter_test_step(moons):
    est = ContrastiveDivergenceEBM(random_state=0, validation_fraction=0.2, **FAST).fit(moons)
    assert {"val_loss", "val_contrast"} <= set(est.history_[-1])


def test_keyboard_interrupt_keeps_the_last_good_epoch(moons, monkeypatch):
    est = ContrastiveDivergenceEBM(random_state=0, **{**FAST, "max_iter": 5})
    original = ContrastiveDivergenceEBM._run_epoch

    def interrupted(self, *args, **kwargs):
        if len(self.history_) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ContrastiveDivergenceEBM, "_run_epoch", interrupted)
    with pytest.warns(RuntimeWarning, match="interrupted after 2 epochs"):
        est.fit(moons)
    assert len(est.history_) == 2
    assert np.isfinite(est.score(moons))


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits_scaled()
    return X[:600], X[1200:1500]


def test_conv_energy_on_digits_samples_closer_than_noise(digits):
    X_train, X_test = digits
    params = {**CHAPTER7_PARAMS, "n_steps": 20, "n_sample_steps": 60, "learning_rate": 1e-3}
    est = ContrastiveDivergenceEBM(image_shape=(1, 8, 8), max_iter=3, random_state=0, **params).fit(X_train)
    samples = est.sample(300, random_state=0)
    noise = np.random.default_rng(0).uniform(-1, 1, (300, 64))
    assert mmd(samples, X_test) < mmd(noise, X_test)


def test_grid_search_over_step_size(moons):
    search = GridSearchCV(
        ContrastiveDivergenceEBM(random_state=0, **{**FAST, "max_iter": 2}), {"step_size": [0.01, 0.05]}, cv=2
    ).fit(moons)
    assert search.best_params_["step_size"] in (0.01, 0.05)
    assert np.isfinite(search.best_score_)


def test_image_shape_must_match(moons):
    with pytest.raises(ValueError, match="image_shape"):
        ContrastiveDivergenceEBM(network="conv", image_shape=(1, 3, 3), **FAST).fit(moons)


def test_refit_on_bad_input_keeps_the_previous_model(fitted, moons):
    est = pickle.loads(pickle.dumps(fitted))
    before = est.score_samples(moons)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.array([[0.0, 1.0, np.nan], [1.0, 2.0, 3.0]]))
    assert est.n_features_in_ == 2
    np.testing.assert_array_equal(est.score_samples(moons), before)


@pytest.mark.parametrize("n_features, network, has_base", [(2, "mlp", False), (3, "mlp", True), (4, "conv", False)])
def test_auto_base_is_gaussian_for_mlp_energies_above_two_features(n_features, network, has_base):
    X = np.random.default_rng(0).standard_normal((64, n_features))
    image = {"image_shape": (1, 2, 2)} if network == "conv" else {}
    model = ContrastiveDivergenceEBM(
        network=network, **image, max_iter=1, n_steps=2, log_partition=None, random_state=0
    ).fit(X)
    assert isinstance(model.module_.network, ResidualEnergy) is has_base
    assert model.base_ == ("gaussian" if has_base else None)
    if has_base:  # the Gaussian fitted to the data
        np.testing.assert_allclose(model.module_.network.base.means.numpy()[0], X.mean(axis=0), atol=1e-5)


def test_chains_that_accept_nothing_get_a_warning_that_says_what_to_do(digits):
    # On [-1, 1] digits the conv energy's gradients grow to hundreds within an epoch, and MALA at
    # step 0.01 overshoots on every proposal; at 1e-4 about two in five proposals are accepted.
    params = dict(network="conv", image_shape=(1, 8, 8), sampler="mala", max_updates=50, log_partition=None)
    params["n_sample_steps"] = 1
    with pytest.warns(UserWarning, match=r"accepted 0\.\d\d% of their proposals.*Lower step_size \(now 0\.01\)"):
        stuck = ContrastiveDivergenceEBM(step_size=0.01, random_state=0, **params).fit(digits[0])
    assert stuck.history_[-1]["acceptance_rate"] < 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moving = ContrastiveDivergenceEBM(step_size=1e-4, random_state=0, **params).fit(digits[0])
    assert moving.history_[-1]["acceptance_rate"] > 0.1


@pytest.mark.parametrize(
    "image, recipe",
    [
        (
            False,
            dict(alpha=0.01, sampler="mala", step_size=0.01, n_steps=10, n_jumps=3, noise_scale=None)
            | dict(batch_size=256, learning_rate=3e-2, learning_rate_schedule="cosine"),
        ),
        (
            True,
            {k: v for k, v in SHORT_RUN_PARAMS.items() if k not in ("bounds", "log_partition", "max_updates")},
        ),
    ],
)
def test_auto_chain_parameters_are_the_table_or_the_image_recipe(digits, moons, image, recipe):
    # "auto" means exactly these values: the same seed gives the same model, draw for draw.
    X = digits[0][:96] if image else moons[:96]
    shape = dict(network="conv", image_shape=(1, 8, 8)) if image else {}
    fixed = dict(max_updates=4, log_partition=None, n_sample_steps=3, random_state=0, **shape)
    recipe = {**recipe, "n_sample_steps": 3}
    auto = ContrastiveDivergenceEBM(**fixed).fit(X)
    spelled_out = ContrastiveDivergenceEBM(**{**fixed, **recipe}).fit(X)
    np.testing.assert_array_equal(auto.score_samples(X), spelled_out.score_samples(X))
    np.testing.assert_array_equal(auto.sample(4, random_state=1), spelled_out.sample(4, random_state=1))
    changed = ContrastiveDivergenceEBM(**{**fixed, "step_size": 0.5}).fit(X)  # a value given wins over "auto"
    assert not np.array_equal(auto.score_samples(X), changed.score_samples(X))
    assert ("acceptance_rate" in auto.history_[-1]) is not image  # MALA on tables, plain Langevin on images


@pytest.mark.parametrize("recipe", [CHAPTER7_PARAMS, SHORT_RUN_PARAMS])
def test_named_recipes_pin_every_chain_parameter(recipe):
    # A named recipe must not move when the "auto" defaults do (device and base are not the recipe's).
    params = ContrastiveDivergenceEBM(**recipe).get_params()
    assert [name for name, value in params.items() if value == "auto" and name not in ("base", "device")] == []


def test_the_cosine_schedule_spans_each_fit_and_not_partial_fit(moons):
    # 600 rows in batches of 100: 6 updates an epoch, 24 planned; epoch e ends after update 6e.
    params = dict(hidden_layer_sizes=(8,), n_steps=2, buffer_size=64, log_partition=None, random_state=0)
    model = ContrastiveDivergenceEBM(max_iter=4, batch_size=100, learning_rate=0.01, **params).fit(moons)
    planned = 24
    expected = [0.01 * 0.5 * (1 + np.cos(np.pi * (6 * epoch - 1) / planned)) for epoch in (1, 2, 3, 4)]
    np.testing.assert_allclose([record["learning_rate"] for record in model.history_], expected)
    model.set_params(warm_start=True).fit(moons)  # a warm start decays anew from the rate set
    np.testing.assert_allclose([record["learning_rate"] for record in model.history_[4:]], expected)
    model.partial_fit(moons)  # no plan to span: the full rate
    assert "learning_rate" not in model.history_[-1]
    assert model.optimizer_.param_groups[0]["lr"] == 0.01
    constant = ContrastiveDivergenceEBM(max_iter=2, learning_rate_schedule="constant", **params).fit(moons)
    assert "learning_rate" not in constant.history_[-1]


@pytest.mark.parametrize("n_features, jumps", [(2, True), (3, False)])
def test_auto_jumps_only_on_tables_of_few_features(n_features, jumps):
    # In more dimensions nearly every uniform jump is rejected: "auto" leaves them out there.
    X = np.random.default_rng(0).normal(size=(64, n_features))
    model = ContrastiveDivergenceEBM(hidden_layer_sizes=(8,), max_updates=2, log_partition=None, random_state=0)
    model.fit(X)
    assert ("jump_rate" in model.history_[-1]) is jumps
    assert model.n_jumps == "auto"


@pytest.mark.parametrize(("n_features", "base", "n_updates"), [(2, "auto", 600), (3, "auto", 400), (3, None, 600)])
def test_auto_budget_is_larger_where_no_base_carries_the_density(n_features, base, n_updates):
    # One update per epoch (batch = all 64 rows), so the epochs count the updates "auto" allows.
    X = np.random.default_rng(0).normal(size=(64, n_features))
    model = ContrastiveDivergenceEBM(
        hidden_layer_sizes=(4,), n_steps=1, n_jumps=0, batch_size=64, max_iter=10_000, base=base, log_partition=None
    )
    assert len(model.fit(X).history_) == n_updates
