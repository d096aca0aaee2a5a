"""Contrastive divergence with short-run MCMC and a replay buffer."""

import warnings
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._checks import user_stacklevel
from ._neural import NeuralEBM
from .losses import contrastive_divergence_loss
from .samplers import ReplayBuffer, advance_chain, make_kernel, run_chain

# base="auto" puts no base under an energy of this many features or fewer, where the chains and
# their uniform jumps cover the box (and log Z is exact by quadrature).
_NO_BASE_MAX_FEATURES = 2
# The training budget of an energy with no base under it (see _auto_settings).
_NO_BASE_UPDATES = 600
# Below this acceptance rate the training chains are stuck: MALA works best near 0.57, HMC near 0.65.
_STUCK_ACCEPTANCE = 0.01

#: The image recipe of "Generative Deep Learning", chapter 7, for rows scaled to [-1, 1]:
#: ``ContrastiveDivergenceEBM(image_shape=(1, 8, 8), **CHAPTER7_PARAMS)``. log Z is left
#: out (``log_partition=None``), as in the book: pictures do not need it.
CHAPTER7_PARAMS = {
    "network": "conv",
    "sampler": "langevin",
    "step_size": 10.0,
    "noise_scale": 0.005,
    "grad_clip": 0.03,
    "n_steps": 60,
    "bounds": (-1, 1),
    "alpha": 0.1,
    "n_jumps": 0,
    "fresh_fraction": 0.05,
    "n_sample_steps": 200,
    "learning_rate": 1e-4,
    "learning_rate_schedule": "constant",
    "batch_size": 32,
    "max_updates": 8000,
    "log_partition": None,
}

#: The image defaults, pinned: non-persistent short-run chains (Nijkamp et al., NeurIPS 2019)
#: on the chapter-7 network and Langevin, for images scaled to [-1, 1]. Every training chain
#: starts from uniform noise (``fresh_fraction=1``), and ``sample`` runs the same 40 steps from
#: the same noise, so the samples come from exactly the sampler the energy was trained against
#: (longer chains drift away from the data: the energy is trained for 40 steps, not as a
#: stationary density). ``ContrastiveDivergenceEBM(image_shape=(1, 8, 8), **SHORT_RUN_PARAMS)``
#: is ``ContrastiveDivergenceEBM(network="conv", image_shape=(1, 8, 8))`` without log Z, and
#: stays so if the defaults change.
SHORT_RUN_PARAMS = {
    **CHAPTER7_PARAMS,
    "fresh_fraction": 1.0,
    "n_steps": 40,
    "n_sample_steps": 40,
    "learning_rate": 3e-3,
}

# What "auto" stands for. On tables: the chains measured in the user guide ("Why the defaults
# are what they are"); noise_scale=None is Langevin's sqrt(2 * step_size). On images (image_shape
# set): the short-run recipe, the only one measured to draw digits (benchmarks/bench_digits.py).
_TABLE_SETTINGS = {
    "alpha": 0.01,
    "sampler": "mala",
    "step_size": 0.01,
    "n_steps": 10,
    "n_jumps": 3,
    "noise_scale": None,
    "grad_clip": None,
    "fresh_fraction": 0.05,
    "n_sample_steps": 200,
    # A budget of a few hundred large updates at a high rate decayed to zero: measured on 5,000
    # points of eight Gaussians as close to the truth as 8,000 updates of 32 rows at a constant
    # 3e-3, in a fifth of the time (the user guide's "Why the defaults are what they are").
    "batch_size": 256,
    "learning_rate": 3e-2,
    "learning_rate_schedule": "cosine",
    "max_updates": 400,
}
_IMAGE_SETTINGS = {name: SHORT_RUN_PARAMS[name] for name in _TABLE_SETTINGS}


def _accepting_auto(constraints, names):
    """``constraints`` with ``"auto"`` also allowed for each parameter in ``names``."""
    return {**constraints, **{name: [*constraints[name], StrOptions({"auto"})] for name in names}}


class ContrastiveDivergenceEBM(NeuralEBM):
    """Energy-based model trained by contrastive divergence with short-run MCMC.

    Each training step lowers the energy of a minibatch of data and raises the
    energy of as many negative samples. The negatives are short MCMC chains
    restarted from a replay buffer of earlier negatives, with a fraction of
    fresh uniform noise (Du & Mordatch, 2019; "Generative Deep Learning",
    chapter 7). The loss is
    ``mean E(real) - mean E(fake) + alpha * mean(E(real)^2 + E(fake)^2)``.

    The parameters whose default is ``"auto"`` take one of two recipes. On
    tables (put a ``StandardScaler`` first), persistent MALA chains of
    ``n_steps=10`` steps at ``step_size=0.01`` (after ``n_jumps=3`` uniform
    jumps on one or two features), on a 128-128-128 swish MLP, trained by
    400 updates of 256 rows (600 with no base under the network) at a
    learning rate decayed from 3e-2 on a cosine. On images (``image_shape``
    set, for ``network="conv"``), the recipe of :data:`skebm.SHORT_RUN_PARAMS`: the
    chapter-7 Langevin with clipped gradients, every training chain started
    from uniform noise, and ``sample`` running the same 40 steps. MALA does
    not move on images: it rejects every proposal at any step size that
    leaves the noise within a short chain. The book's own recipe is
    ``**skebm.CHAPTER7_PARAMS``.

    ``log_partition_`` is exact by grid quadrature for one or two features
    and estimated by annealed importance sampling otherwise, so
    ``score_samples`` is a normalized log-density.

    Parameters
    ----------
    network : {"mlp", "fourier", "conv"} or torch.nn.Module, default="mlp"
        The energy network; a module must map ``(n, n_features)`` to ``(n,)``.
        (Named ``network`` because ``energy`` is the method giving energies.)
        ``"fourier"`` reads random Fourier features of the input beside it
        (:class:`~skebm.energies.FourierMLPEnergy`, as :class:`NCEEBM` does on
        one or two features); trained by its MCMC chains it helped on the
        checkerboard and hurt on spirals, so it is not the default here.
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        Hidden widths of the MLP energy (why three layers: see the user
        guide, "Why the defaults are what they are").
    image_shape : tuple of int, default=None
        ``(channels, height, width)`` for ``network="conv"``.
    alpha : float or "auto", default="auto"
        Weight of the energy-magnitude penalty. Larger values keep the
        energies small and training stable but widen the modes. ``"auto"``:
        0.01 on tables, 0.1 (the chapter's) on images.
    sampler : {"auto", "mala", "langevin", "hmc", "metropolis", "uniform_jump"}, default="auto"
        MCMC kernel for the negatives and for :meth:`sample`, from
        ``skebm.samplers.SAMPLERS``. ``"auto"``: "mala" on tables,
        "langevin" on images.
    step_size : float or "auto", default="auto"
        Step size of the kernel. ``"auto"``: 0.01 on tables, 10 on images
        (with ``grad_clip``, a pixel moves at most 0.3 per step).
    n_steps : int or "auto", default="auto"
        MCMC steps per training step. ``"auto"``: 10 on tables, 40 on images.
    n_jumps : int or "auto", default="auto"
        Independence Metropolis-Hastings moves to a uniform point of the box
        (:func:`~skebm.samplers.uniform_jump_step`) before the ``n_steps``
        steps, so that the negatives move between separated modes, which
        short local chains do not cross. :meth:`sample` precedes each of its
        steps with ``n_jumps`` jumps. In high dimension nearly every jump is
        rejected (``jump_rate`` in ``history_``). The user
        guide's "Samplers and their knobs" has the measurements. ``"auto"``:
        3 on tables of one or two features, 0 on more features (where 2% of
        the jumps were accepted on a 10-feature table, at a quarter of each
        update's cost) and on images.
    noise_scale : float, "auto" or None, default="auto"
        Langevin noise; ``sqrt(2 * step_size)`` when None. ``"auto"``: None
        on tables, 0.005 on images.
    grad_clip : float, "auto" or None, default="auto"
        Langevin gradient clipping (elementwise). ``"auto"``: None on tables,
        0.03 on images.
    bounds : tuple (low, high), default=None
        Box the chains stay in; the data range widened by 10% when None.
    buffer_size : int, default=8192
        Capacity of the replay buffer.
    fresh_fraction : float or "auto", default="auto"
        Fraction of chains restarted from uniform noise. ``"auto"``: 0.05 on
        tables, 1 on images (short-run chains, Nijkamp et al., 2019).
    data_noise : float, default=0.005
        Standard deviation of the Gaussian noise added to real data.
    base : {"auto", "gaussian"} or None, default="auto"
        ``"gaussian"``: the energy is ``-log q(x) + network(x)`` with ``q`` the
        Gaussian with the data's mean and Ledoit-Wolf shrunk covariance; the
        correction starts at zero, and ``alpha`` penalizes the correction
        only, so the penalty never flattens the Gaussian's decay. ``"auto"``
        is ``"gaussian"`` for the MLP energy on more than two features, where
        short chains leave most of the space unvisited and the base decides
        the energy there, and None otherwise.
    n_sample_steps : int or "auto", default="auto"
        MCMC steps :meth:`sample` runs from uniform noise. ``"auto"``: 200 on
        tables; on images ``n_steps``, the length of chain the energy was
        trained against (longer chains drift away from the data).
    max_iter : int, default=50
        Epochs.
    max_updates : int, None or "auto", default="auto"
        The training budget: at most this many minibatch updates in a call to
        ``fit``, whatever ``max_iter`` says. A table too large for one epoch
        within it gets one pass over a random subset of its rows, so the cost
        of a fit stops growing with the rows. None runs ``max_iter`` full
        epochs. ``"auto"``: on tables 400 with a ``base`` and 600 without,
        where the network learns the whole density, not a correction to the
        base (on one or two features); 8000 on images.
    batch_size : int or "auto", default="auto"
        Rows per update. ``"auto"``: 256 on tables, 32 on images.
    learning_rate : float or "auto", default="auto"
        Adam's learning rate (its starting value under a schedule).
        ``"auto"``: 3e-2 on tables, 3e-3 on images.
    learning_rate_schedule : {"cosine", "constant"} or "auto", default="auto"
        ``"cosine"`` lowers the learning rate from ``learning_rate`` towards
        zero on a half cosine over the updates each call to ``fit`` plans
        (``partial_fit`` steps at the full rate; a warm start decays anew).
        Early updates move the energy, late ones let it settle where a
        constant rate would keep it jumping around the optimum. The rate of
        each epoch's last update is ``learning_rate`` in ``history_``.
        ``"auto"``: "cosine" on tables, "constant" on images (measured only
        at the constant rate there).
    weight_averaging : float, default=0.2
        Fraction of the last epochs of each call to ``fit`` whose end-of-epoch
        weights are averaged into the fitted energy (stochastic weight
        averaging; 0 keeps the last weights). The persistent chains keep the
        weights moving around the optimum from update to update, and the
        average sits nearer to it. Not applied when early stopping ends the
        fit (the best weights are kept) and a no-op for one-epoch
        ``partial_fit`` calls; a warm start continues from the average.
    validation_fraction : float, default=None
        Rows held out to monitor ``val_loss`` and stop early.
    n_iter_no_change : int, default=10
        Epochs without improvement of ``val_loss`` before stopping.
    log_partition : {"auto", "grid", "ais"} or None, default="auto"
        How ``log_partition_`` is obtained; None leaves scores unnormalized.
    ais_steps : int, default=1000
        Intermediate distributions of AIS (its budget).
    contamination : float, default=0.1
        Expected fraction of outliers; sets ``offset_``.
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Show a progress bar with the live losses.
    warm_start : bool, default=False
        Continue from the previous fit.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted energy (:class:`~skebm.energies.BoxedEnergy`).
    base_ : {"gaussian"} or None
        The base density under the network, with ``base="auto"`` resolved.
    history_ : list of dict
        Per epoch: ``loss``, ``cdiv``, ``reg``, ``real_energy``,
        ``fake_energy``, ``acceptance_rate`` (MALA, HMC, Metropolis),
        ``jump_rate`` (with ``n_jumps``), ``learning_rate`` (with the cosine
        schedule), times,
        and with validation ``val_loss``, ``val_contrast`` (mean energy of
        held-out data minus that of uniform noise: the chapter's test step).
    log_partition_ : float
    log_partition_std_ : float
        Standard error of ``log_partition_`` (AIS), or for quadrature how far
        it moved when the grid was last doubled (at most 0.01).
    offset_ : float
    decision_scores_, threshold_, labels_
        PyOD's view of the training data.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from skebm import ContrastiveDivergenceEBM
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(500, random_state=0)
    >>> ebm = ContrastiveDivergenceEBM(max_iter=2, random_state=0).fit(X)
    >>> ebm.sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints = _accepting_auto(
        {
            **NeuralEBM._parameter_constraints,
            "alpha": [Interval(Real, 0, None, closed="left")],
            "n_steps": [Interval(Integral, 1, None, closed="left")],
            "n_jumps": [Interval(Integral, 0, None, closed="left")],
            "buffer_size": [Interval(Integral, 1, None, closed="left")],
            "fresh_fraction": [Interval(Real, 0, 1, closed="both")],
            "data_noise": [Interval(Real, 0, None, closed="left")],
            "base": [StrOptions({"auto", "gaussian"}), None],
            "learning_rate_schedule": [StrOptions({"cosine", "constant"})],
        },
        _TABLE_SETTINGS,
    )

    def __init__(
        self,
        *,
        network="mlp",
        hidden_layer_sizes=(128, 128, 128),
        image_shape=None,
        alpha="auto",
        sampler="auto",
        step_size="auto",
        n_steps="auto",
        n_jumps="auto",
        noise_scale="auto",
        grad_clip="auto",
        bounds=None,
        buffer_size=8192,
        fresh_fraction="auto",
        data_noise=0.005,
        base="auto",
        n_sample_steps="auto",
        max_iter=50,
        max_updates="auto",
        batch_size="auto",
        learning_rate="auto",
        learning_rate_schedule="auto",
        weight_averaging=0.2,
        validation_fraction=None,
        n_iter_no_change=10,
        log_partition="auto",
        ais_steps=1000,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.network = network
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.alpha = alpha
        self.sampler = sampler
        self.step_size = step_size
        self.n_steps = n_steps
        self.n_jumps = n_jumps
        self.noise_scale = noise_scale
        self.grad_clip = grad_clip
        self.bounds = bounds
        self.buffer_size = buffer_size
        self.fresh_fraction = fresh_fraction
        self.data_noise = data_noise
        self.base = base
        self.n_sample_steps = n_sample_steps
        self.max_iter = max_iter
        self.max_updates = max_updates
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_averaging = weight_averaging
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.log_partition = log_partition
        self.ais_steps = ais_steps
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _auto_settings(self):
        if self.image_shape is None:
            # Uniform jumps pay where the chains can find the box's modes by chance: on more features
            # nearly all are rejected (2% accepted on magic.gamma's 10), at a quarter of each update's cost.
            n_features = getattr(self, "n_features_in_", 0)
            n_jumps = 0 if n_features > _NO_BASE_MAX_FEATURES else 3
            # Without a base the network learns the whole density from a flat start, not a correction to a
            # fitted Gaussian: on eight Gaussians 400 updates left it 0.035 nats from the truth, 600 0.023.
            max_updates = _TABLE_SETTINGS["max_updates"] if self._base_density(n_features) else _NO_BASE_UPDATES
            return {**_TABLE_SETTINGS, "n_jumps": n_jumps, "max_updates": max_updates}
        # Short-run samples come from the chains the energy was trained against: the same length.
        n_steps = _IMAGE_SETTINGS["n_steps"] if self.n_steps == "auto" else self.n_steps
        return {**_IMAGE_SETTINGS, "n_sample_steps": n_steps}

    def _finalize(self, X, weights=None):
        self._warn_if_chains_were_stuck()
        super()._finalize(X, weights)

    def _warn_if_chains_were_stuck(self):
        rate = self.history_[-1].get("acceptance_rate") if self.history_ else None
        if rate is None or rate >= _STUCK_ACCEPTANCE:
            return
        warnings.warn(
            f"The {self._setting('sampler')} chains accepted {rate:.2%} of their proposals in the last epoch: the "
            "negatives barely moved from the replay buffer, so the model learned the data against noise. Lower "
            f"step_size (now {self._setting('step_size'):g}) until history_'s acceptance_rate is 0.3 to 0.9; for "
            "images, set image_shape and leave the chain parameters at 'auto' (Langevin chains that move further "
            "per step).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

    def _initialize(self, X):
        self.base_ = self._base_density(X.shape[1])
        super()._initialize(X)
        self._initialize_negatives(X)

    def _initialize_negatives(self, X):
        """Hook: the state the negatives come from (the replay buffer here), once ``module_`` exists."""
        self.buffer_ = ReplayBuffer(
            self.buffer_size, X.shape[1], self.module_.uniform_noise, self._setting("fresh_fraction"), self.device_
        )

    def _negatives(self, n, push=True):
        """Short-run chains from the replay buffer: the model's samples for this step, and their rates."""
        start = self.buffer_.sample(n, self._generator)
        rates = {}
        n_jumps = self._setting("n_jumps")
        if n_jumps:
            # The state (energies and gradients at the chains) goes on to the local kernel as it is.
            jumps = self._jump_kernel()
            start, rates["jump_rate"] = advance_chain(jumps, self.module_, start, n_jumps, self._generator)
        n_steps = self._setting("n_steps")
        fake, rates["acceptance_rate"] = run_chain(self._kernel(), self.module_, start, n_steps, self._generator)
        if push:
            self.buffer_.push(fake)
        return fake, {key: rate for key, rate in rates.items() if rate is not None}

    def _base_density(self, n_features):
        if self.base != "auto":
            return self.base
        # Above two features the chains cannot visit the space and nearly every uniform jump is
        # rejected: regions no negative reaches get the base's decay instead of whatever the
        # network says there (on mnist, ROC-AUC 0.40 without a base, 0.87 with).
        return "gaussian" if self.network == "mlp" and n_features > _NO_BASE_MAX_FEATURES else None

    def _divergence_advice(self):
        return (
            super()._divergence_advice()
            + f", raise alpha (now {self._setting('alpha'):g}) or lower step_size (now {self._setting('step_size'):g})"
        )

    def _jump_kernel(self):
        return make_kernel("uniform_jump", bounds=self.module_.bounds())

    def _sampling_kernel(self):
        """Each step of the training kernel preceded by ``n_jumps`` jumps, so that samples share modes by mass.

        From uniform noise, local chains settle in the mode whose basin they start in: on rings
        ``sample`` gave the inner ring 14% of the points instead of a third before jumps.
        """
        kernel, n_jumps = self._kernel(), self._setting("n_jumps")
        if not n_jumps:
            return kernel
        jump = self._jump_kernel()

        def jump_then_step(state, energy, generator):
            for _ in range(n_jumps):
                state, _ = jump(state, energy, generator)
            return kernel(state, energy, generator)

        return jump_then_step

    def _batch_loss(self, batch, epoch=None):
        real = self._noised(batch)
        # Validation runs without gradients and leaves the buffer alone.
        fake, rates = self._negatives(len(batch), push=torch.is_grad_enabled())
        return self._contrast(real, fake, rates)

    def _noised(self, batch):
        """The data rows with ``data_noise``, kept in the box."""
        real = batch + self.data_noise * torch.randn(batch.shape, generator=self._generator, device=batch.device)
        return torch.maximum(torch.minimum(real, self.module_.high), self.module_.low)

    def _contrast(self, real, fake, rates, fake_log_density=None):
        """The loss of one minibatch of (noised) data against its negatives, and its diagnostics.

        Negatives drawn from a density other than the model's, whose log-density
        ``fake_log_density`` is known, are weighted by self-normalized importance
        weights ``p / q``; ``effective_sample_size`` is then the share of them
        the weights leave (1 when ``q`` is the model, ``1 / m`` when one dominates).
        """
        real_energy, fake_energy = self.module_(real), self.module_(fake)
        weights = None
        if fake_log_density is not None:
            weights = torch.softmax((-fake_energy - fake_log_density).detach(), 0)
            rates = {**rates, "effective_sample_size": float(1.0 / (weights * weights).sum() / len(weights))}
        # The base is fixed, so the loss of the correction alone has the same contrast gradient,
        # and its penalty leaves the base's decay alone.
        correction = (real_energy, fake_energy)
        base = getattr(self.module_.network, "base", None)  # set when the network is a ResidualEnergy
        if base is not None:
            correction = (real_energy - base(real), fake_energy - base(fake))
        loss, parts = contrastive_divergence_loss(*correction, self._setting("alpha"), weights)
        metrics = {"loss": loss, **parts, "real_energy": real_energy.mean(), "fake_energy": fake_energy.mean()}
        metrics = {key: float(value.detach()) for key, value in metrics.items()}
        return loss, {**metrics, **rates}

    def _validation_metrics(self, X_val):
        with torch.no_grad():
            loss, _ = self._batch_loss(X_val)
            noise = self.module_.uniform_noise(len(X_val), self._generator)
            contrast = self.module_(X_val).mean() - self.module_(noise).mean()
        return {"val_loss": float(loss), "val_contrast": float(contrast)}
