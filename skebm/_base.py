"""The shared base: scikit-learn plumbing and the PyTorch training loop.

:class:`BaseEBM` owns everything two estimators would otherwise both write:
parameter and data validation, devices and seeds, sample weights, minibatch
epochs, progress and callbacks, ``history_``, ``warm_start`` and
``partial_fit``, early stopping, recovery from divergence and Ctrl-C, scoring,
sampling, persistence and the outlier API. A subclass fills small hooks:

- ``_new_module(n_features, box, generator)``: the untrained energy, sized by the
  parameters (what :func:`skebm.load` rebuilds a saved model's weights into);
- ``_initialize(X)``: build ``module_`` (the energy) and any training state;
- ``_train_step(batch, epoch)``: one update on a minibatch, returning its diagnostics;
- ``_validation_metrics(X_val)``: diagnostics on held-out rows, ``val_loss`` first;
- ``_compute_log_partition(X)``: ``log Z`` of the fitted energy and its error;
- ``_sample(n_samples, generator)``: draw from the model.

and, where training needs state beyond one update, the epoch hooks: ``_fit_scope``
(a context around the epochs of one call to ``fit``, yielding that call's state),
``_begin_epoch`` (one epoch's state, handed to every ``_train_step``) and
``_end_epoch`` (end-of-epoch diagnostics and checks). State lives in those
contexts, never on ``self`` between calls, so no estimator overrides the loop.

:class:`GradientEBM` fills the middle two for estimators trained by minimizing a
differentiable loss with Adam (they write ``_batch_loss``);
:class:`skebm._neural.NeuralEBM` builds on it for the neural energies sampled by MCMC.
"""

import contextlib
import copy
import io
import math
import numbers
import time
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.callback import CallbackSupportMixin, with_callbacks
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._checks import user_stacklevel
from ._random import cpu_generator_state, fixed_generator, make_generator

__all__ = ["BaseEBM", "DivergenceError", "GradientEBM"]

# Mean energies beyond this size mean training has run away: healthy fits stay within tens.
_ENERGY_LIMIT = 1e6
# Inputs beyond this magnitude overflow float32 once squared (float32's largest is 3.4e38).
_INPUT_LIMIT = 1e18


class DivergenceError(FloatingPointError):
    """Raised when training produces non-finite energies or losses.

    The estimator is left as it was before the call to ``fit``.

    Examples
    --------
    >>> from skebm import DivergenceError
    >>> issubclass(DivergenceError, FloatingPointError)
    True
    """


def resolve_device(device):
    """``"auto"`` means CUDA when present, else the CPU; a device torch cannot use is a ValueError.

    Examples
    --------
    >>> from skebm._base import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"The 'device' parameter must be 'auto', 'cpu' or 'cuda[:index]'. Got {device!r}.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asks for CUDA, but torch sees no CUDA device here; use device='auto'.")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"skebm runs on 'cpu' or 'cuda' devices. Got device={device!r}.")
    return resolved


@contextlib.contextmanager
def single_threaded(condition):
    """Run the block with one intra-op thread on the CPU when ``condition`` holds.

    Below about a million multiply-adds per operation, a second thread costs
    more in hand-offs than it saves, and doubles the CPU time it spins for
    (as scikit-learn limits BLAS threads inside KMeans). The previous thread
    count is restored afterwards.
    """
    previous = torch.get_num_threads()
    if condition and previous > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class LikelihoodScoresMixin:
    """``score``, ``decision_function`` and ``predict`` from ``score_samples`` and ``offset_``.

    What every skebm model shares once it scores rows by their log-likelihood
    (or, for a ``DBN``, a lower bound on it).
    """

    def score(self, X, y=None):
        """Mean of ``score_samples`` over the rows of ``X``: the log-likelihood (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "offset_")
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers and -1 for outliers, at the threshold set by ``contamination``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        """
        return np.where(self.decision_function(X) < 0, -1, 1)


class BaseEBM(CallbackSupportMixin, LikelihoodScoresMixin, OutlierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the skebm estimators; see the module docstring for the hooks."""

    _parameter_constraints = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_updates": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    # Updates written by hand (no autograd) run under torch.inference_mode.
    _updates_use_autograd = True
    # "csr" where scipy sparse input is accepted (as validate_data's accept_sparse): fit densifies it
    # to float32 once, scoring one block of rows at a time.
    _accept_sparse = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = bool(self._accept_sparse)
        return tags

    def _setting(self, name):
        """Parameter ``name``, with ``"auto"`` resolved by :meth:`_auto_settings`."""
        value = getattr(self, name)
        if isinstance(value, str) and value == "auto":
            return self._auto_settings()[name]
        return value

    def _auto_settings(self):
        """Hook: by parameter name, the value ``"auto"`` stands for (parameters and ``n_features_in_`` decide it)."""
        return {}

    # Attributes of a fitted model, saved before ``fit`` and restored if it fails. The generator is
    # part of it: a failed fit must not move the stream the next fit or sample() draws from.
    def _fitted_state(self):
        return {
            k: v for k, v in vars(self).items() if (k.endswith("_") and not k.startswith("__")) or k == "_generator"
        }

    def _restore_state(self, state):
        for key in list(self._fitted_state()):
            delattr(self, key)
        for key, value in state.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ fit
    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the energy to ``X`` for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (images as flat rows, see ``image_shape``).
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows. Minibatches draw rows with
            probabilities proportional to their weights (with replacement),
            what is fitted to the data before training (the box, a base
            density, noise, noise scales) is fitted to a resample of the rows
            drawn the same way, and ``offset_`` is a weighted quantile. A zero
            weight is the same as leaving the row out, and equal weights the
            same as None; validation rows are scored unweighted.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        reset = not (self.warm_start and hasattr(self, "module_"))
        return self._fit_epochs(X, self._setting("max_iter"), reset, sample_weight, planned=True)

    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Train for one epoch on ``X``, initializing the model on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows, as in :meth:`fit`.

        Returns
        -------
        self : object
        """
        return self._fit_epochs(X, 1, not hasattr(self, "module_"), sample_weight, planned=False)

    def _fit_epochs(self, X, n_epochs, reset, sample_weight=None, planned=False):
        # planned: a call to fit, whose updates a learning-rate schedule spans; partial_fit steps at the full rate.
        # Any failure, from bad input to divergence or Ctrl-C while log Z and the thresholds are
        # computed, leaves the previous fit as it was: never new weights beside an old log Z.
        # (Ctrl-C during the epochs is handled by _train: the model keeps its last complete epoch.)
        saved = copy.deepcopy(self._fitted_state())
        try:
            X = validate_data(
                self,
                X,
                accept_sparse=self._accept_sparse,
                dtype=[np.float64, np.float32],
                reset=reset,
                ensure_min_samples=2,
            )
            if sp.issparse(X):  # trained as float32 rows on the device: densified once, never to float64
                X = X.astype(np.float32).toarray()
            X, weights = _rows_with_weight(X, sample_weight)
            context = self._init_callback_context(max_subtasks=n_epochs)
            metadata = None if weights is None else {"sample_weight": weights}
            context.call_on_fit_task_begin(estimator=self, X=X, y=_placeholder_y(X), metadata=metadata)
            if reset:
                self._check_input(X)
                self._start(X, weights)
            self._train(X, n_epochs, weights, context, planned)
            self._finalize(X, weights)
            context.call_on_fit_task_end(estimator=self, X=X, y=_placeholder_y(X), reconstruction_attributes={})
        except BaseException:
            self._restore_state(saved)
            raise
        return self

    def _start(self, X, weights=None):
        self.device_ = resolve_device(self.device)
        self._generator = make_generator(self.random_state, self.device_)
        if weights is not None:  # summaries of the data see the weighted distribution
            X = X[self._weighted_draw(self._as_tensor(weights, torch.float64), len(X)).cpu().numpy()]
        self._initialize(X)
        self.history_ = []

    def _weighted_draw(self, weights, n):
        """``n`` row indices drawn with replacement, with probabilities proportional to ``weights`` (a tensor)."""
        cumulative = torch.cumsum(weights, 0)
        u = torch.rand(n, generator=self._generator, device=self.device_, dtype=torch.float64) * cumulative[-1]
        return torch.searchsorted(cumulative, u, right=True).clamp_(max=len(weights) - 1)

    def _check_input(self, X):
        """Hook: checks of X that depend on parameters (such as ``image_shape``).

        Training runs in float32, where squares overflow past about 1.8e19, and
        every skebm energy squares its inputs somewhere: such data gives
        infinite or meaningless densities, so it is refused here.
        """
        largest = max(float(X.max()), -float(X.min()))  # no copy of X, which may be large
        if largest > _INPUT_LIMIT:
            raise ValueError(
                f"X holds values up to {largest:.3g} in magnitude; {type(self).__name__} trains in float32 and needs "
                f"values below {_INPUT_LIMIT:g}. Standardize the features first (sklearn.preprocessing.StandardScaler)."
            )

    @abstractmethod
    def _new_module(self, n_features, box=None, generator=None):
        """Hook: the untrained energy for ``n_features`` inputs, as a ``torch.nn.Module``.

        Sized by the estimator's parameters and fitted attributes other than
        ``module_`` (so that :func:`skebm.load` can build it on the meta device
        and load the saved weights into it). ``box`` is the data box of the
        neural energies (a placeholder when omitted); ``generator`` draws the
        initial weights, never torch's global stream.
        """

    @abstractmethod
    def _initialize(self, X):
        """Hook: build ``module_`` (the energy) and any training state."""

    @abstractmethod
    def _train_step(self, batch, epoch):
        """Hook: update the model on one minibatch; return its diagnostics.

        ``epoch`` is what :meth:`_begin_epoch` returned for the current epoch.
        Diagnostics are floats or 0-d tensors (summed on the device without a
        synchronization); their means are checked for divergence at the end of
        the epoch. What must never reach the weights is checked by the hook
        itself, before its update (:class:`GradientEBM` checks the loss).
        """

    @abstractmethod
    def _validation_metrics(self, X_val):
        """Hook: diagnostics of held-out rows (a tensor); ``val_loss`` drives early stopping."""

    def _train(self, X, n_epochs, weights, context, planned):
        X_train, X_val, train_weights = self._split_validation(X, weights)
        data = self._as_rows(X_train)
        train_weights = None if train_weights is None else self._as_tensor(train_weights, torch.float64)
        monitor = _EpochMonitor(self, context, X, weights, X_train if X_val is None else X_val)
        X_val = None if X_val is None else self._as_rows(X_val)
        n_epochs, rows_per_epoch, n_updates = self._epoch_plan(len(data), n_epochs)
        progress = self._progress(n_updates)
        try:
            with self._fit_scope(n_epochs, n_updates if planned else None) as run:
                self._train_epochs(data, train_weights, X_val, n_epochs, rows_per_epoch, run, progress, monitor)
        finally:
            progress.close()

    def _train_epochs(self, data, weights, X_val, n_epochs, rows_per_epoch, run, progress, monitor):
        best = (math.inf, None, 0)  # validation loss, weights, epochs without improvement
        last_good = copy.deepcopy(self.module_.state_dict())
        first_averaged, average = n_epochs - self._n_averaged_epochs(n_epochs), None
        try:
            for epoch in range(n_epochs):
                monitor.begin()
                record = self._run_epoch(data, weights, rows_per_epoch, run, progress)
                if X_val is not None:
                    record.update(self._validation_metrics(X_val))
                self._check_finite(record)
                self.history_.append(record)
                last_good = copy.deepcopy(self.module_.state_dict())
                if epoch >= first_averaged:
                    average = _fold_into_mean(average, last_good, epoch - first_averaged)
                progress.set_postfix({k: f"{v:.3g}" for k, v in record.items() if k != "epoch"})
                if monitor.end():  # a callback asked to stop: keep the weights of this epoch
                    break
                if X_val is not None:
                    best = self._early_stopping(best, record["val_loss"])
                    if best[2] >= self.n_iter_no_change:
                        self.module_.load_state_dict(best[1])
                        break
            else:  # ran all its epochs: no early stop
                if average is not None:
                    self.module_.load_state_dict(average)
        except KeyboardInterrupt:
            self.module_.load_state_dict(last_good)
            warnings.warn(
                f"Training interrupted after {len(self.history_)} epochs; the model keeps the weights of the "
                "last completed epoch.",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )

    def _epoch_plan(self, n_rows, n_epochs):
        """``(epochs, rows per epoch, updates)``: ``n_epochs`` full passes, cut to the ``max_updates`` budget.

        A table with more rows than the budget's minibatches hold gets one pass over a random
        subset of them, so the cost of a fit stops growing with the rows.
        """
        max_updates, batch_size = self._setting("max_updates"), self._setting("batch_size")
        epochs, rows = n_epochs, n_rows
        if max_updates is not None:
            epochs = max(1, min(n_epochs, max_updates // math.ceil(n_rows / batch_size)))
            rows = min(n_rows, max_updates * batch_size)
        return epochs, rows, epochs * math.ceil(rows / batch_size)

    def _fit_scope(self, n_epochs, n_updates):
        """Hook: a context manager around the ``n_epochs`` epochs of one call to ``fit`` or ``partial_fit``.

        ``n_updates`` is the number of minibatch updates the call to ``fit``
        plans (for a learning-rate schedule to span), None for ``partial_fit``.
        What it yields is handed to every :meth:`_begin_epoch` of the call
        (nothing here).
        """
        return contextlib.nullcontext()

    def _begin_epoch(self, run, n_rows):
        """Hook: the state one epoch of ``n_rows`` rows shares, handed to each ``_train_step`` (None here).

        ``run`` is what :meth:`_fit_scope` yielded. Called before the epoch's
        rows are shuffled, so what it draws comes first in the random stream.
        """
        return None

    def _end_epoch(self, record, data):
        """Hook: add end-of-epoch diagnostics to ``record``, or refuse the epoch (call ``_diverged``).

        ``data`` holds the training rows as a tensor. Called after the epoch's
        updates and before the validation metrics.
        """

    def _n_averaged_epochs(self, n_epochs):
        """Hook: how many of the last of ``n_epochs`` epochs are averaged into the fitted weights (none here)."""
        return 0

    def _early_stopping(self, best, val_loss):
        if val_loss < best[0] - 1e-4 * abs(best[0]) or best[1] is None:
            return val_loss, copy.deepcopy(self.module_.state_dict()), 0
        return best[0], best[1], best[2] + 1

    def _progress(self, n_updates):
        from tqdm.auto import tqdm

        return tqdm(total=n_updates, disable=not self.verbose, desc=type(self).__name__, unit="update")

    def _split_validation(self, X, weights=None):
        """``(training rows, validation rows or None, training weights or None)``."""
        if self.validation_fraction is None:
            return X, None, weights
        n_val = max(1, round(self.validation_fraction * len(X)))
        if len(X) - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training rows.")
        order = torch.randperm(len(X), generator=fixed_generator()).numpy()
        return X[order[n_val:]], X[order[:n_val]], None if weights is None else weights[order[n_val:]]

    def _run_epoch(self, data, weights, n_rows, run, progress=None):
        """One pass over ``n_rows`` rows of ``data`` in minibatches.

        The rows are drawn without replacement, or with replacement with
        probabilities proportional to ``weights`` when given. ``progress`` (a
        tqdm bar) advances by one per minibatch update.
        """
        start = time.process_time(), time.perf_counter()
        epoch = self._begin_epoch(run, n_rows)
        if weights is None:
            order = torch.randperm(len(data), generator=self._generator, device=self.device_)[:n_rows]
        else:
            order = self._weighted_draw(weights, n_rows)
        totals = {}
        self.module_.train()
        # Hand-written updates need no autograd bookkeeping at all, which matters at small sizes.
        with contextlib.nullcontext() if self._updates_use_autograd else torch.inference_mode():
            for batch in data[order].split(self._setting("batch_size")):  # one gather per epoch; batches are views
                metrics = self._train_step(batch, epoch)
                if progress is not None:
                    progress.update()
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value * len(batch)
        self.module_.eval()
        record = {"epoch": len(self.history_) + 1}
        record.update({key: float(value) / n_rows for key, value in totals.items()})
        record["cpu_time"] = time.process_time() - start[0]
        record["wall_time"] = time.perf_counter() - start[1]
        self._end_epoch(record, data)
        return record

    def _check_finite(self, record):
        bad = [
            key
            for key, value in record.items()
            if isinstance(value, numbers.Real)
            and (not math.isfinite(value) or ("energy" in key and abs(value) > _ENERGY_LIMIT))
        ]
        if bad:
            self._diverged(f"{', '.join(bad)} became non-finite or exceeded {_ENERGY_LIMIT:g} in magnitude")

    def _diverged(self, what, when=None):
        when = when or f"at epoch {len(self.history_) + 1}"
        raise DivergenceError(
            f"{type(self).__name__} diverged {when}: {what}. {self._divergence_advice()}; "
            "the estimator keeps its previous state."
        )

    def _divergence_advice(self):
        """Hook: what to change after a divergence, in terms of this estimator's parameters."""
        return (
            f"Lower learning_rate (now {self._learning_rate_in_use():g}) or standardize the features "
            "(sklearn.preprocessing.StandardScaler)"
        )

    def _learning_rate_in_use(self):
        # learning_rate_ is the resolved rate of the last epoch, where a subclass resolves "auto" or a schedule.
        return getattr(self, "learning_rate_", self._setting("learning_rate"))

    # ----------------------------------------------------- after training
    def _finalize(self, X, weights=None):
        self.n_iter_ = len(self.history_)
        self.log_partition_, self.log_partition_std_ = self._compute_log_partition(X)
        if not math.isfinite(self.log_partition_):
            self._diverged(f"log Z of the fitted energy is {self.log_partition_}", "after its last epoch")
        self._set_outlier_thresholds(X, weights)

    @abstractmethod
    def _compute_log_partition(self, X):
        """Hook: ``(log Z, its standard error)`` of the fitted energy, from the training rows ``X``."""

    def _set_outlier_thresholds(self, X, weights=None):
        energies = self.energy(X)
        # A loss can stay finite while the energy runs away (Adam with a huge step): the training
        # rows' energies are the last check before a model is handed over.
        largest = float(np.max(np.abs(energies)))
        if not largest <= _ENERGY_LIMIT:
            what = f"the energies of the training rows reach {largest:.3g} (healthy fits stay within tens)"
            self._diverged(what, "after its last epoch")
        self.offset_ = self._offset(-energies - self.log_partition_, weights)
        # PyOD's view of the same fit: higher decision score = more abnormal.
        self.decision_scores_ = energies
        self.threshold_ = -self.offset_ - self.log_partition_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def _offset(self, scores, weights=None):
        """The ``contamination`` quantile of the training rows' scores (weighted when weights are given)."""
        if weights is None:
            return float(np.percentile(scores, 100.0 * self.contamination))
        return _weighted_quantile(scores, weights, self.contamination)

    # ----------------------------------------------------------- scoring
    def _as_tensor(self, X, dtype=torch.float32):
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        return torch.tensor(X, dtype=dtype, device=self.device_)  # a copy: X may be read-only

    def _as_rows(self, X, dtype=torch.float32):
        """Hook: rows of ``X`` (validated, numpy or sparse) as the tensor the energy reads.

        The identity on the values; an estimator whose energy reads its rows
        encoded (a categorical RBM's one-hot groups) encodes them here, so that
        training and every scoring method see the same encoding.
        """
        return self._as_tensor(X, dtype)

    def _as_user_rows(self, x):
        """Hook: a tensor of the energy's rows (samples, chain states) as the user's rows, in float64."""
        return x.detach().double().cpu().numpy()

    def _float64_energy(self):
        """A float64 copy of the fitted energy: scores that do not depend on how rows are batched."""
        return copy.deepcopy(self.module_).double().eval()

    def _score_energy(self, x):
        module = self._float64_energy()
        with torch.no_grad():
            return torch.cat([module(chunk) for chunk in x.to(self.device_, torch.float64).split(8192)])

    def energy(self, X):
        """Energy of each row; lower means more likely.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        energies : ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self, "module_")
        X = validate_data(self, X, accept_sparse=self._accept_sparse, dtype=np.float64, reset=False)
        module = self._float64_energy()
        with torch.no_grad():
            return self._map_blocks(module, X)

    def _map_blocks(self, function, X, block=8192):
        """``function`` of float64 tensors of successive blocks of rows of ``X``, as one array.

        Only one block at a time is on the device (and dense, for sparse
        ``X``), so memory grows with the block, not with ``X``.
        """
        blocks = (self._as_rows(X[start : start + block], torch.float64) for start in range(0, X.shape[0], block))
        return np.concatenate([function(rows).cpu().numpy() for rows in blocks])

    def score_samples(self, X):
        """Log-likelihood of each row: ``-E(x) - log_partition_``.

        A normalized log-density when ``log_partition_`` is exact or estimated
        (see ``log_partition``); with ``log_partition=None`` it is ``-E(x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,), float64
        """
        return -self.energy(X) - self.log_partition_

    # ---------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None, callback=None):
        """Draw samples from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the chains; the same value gives the same samples.
        callback : callable, default=None
            For models that sample by a Markov chain, called as
            ``callback(step, X_step)`` with the chains' positions (an ndarray
            of shape ``(n_samples, n_features)``): step 0 for the starting
            points, then ``k`` after the k-th step. It changes no sample
            (what :func:`skebm.plotting.plot_chain` draws). A model that draws
            without a chain raises a ValueError when given one.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> from skebm import ScoreMatchingEBM
        >>> from skebm.datasets import make_eight_gaussians
        >>> model = ScoreMatchingEBM(max_iter=1, random_state=0).fit(make_eight_gaussians(200, random_state=0))
        >>> steps = []
        >>> model.sample(5, random_state=0, callback=lambda step, X: steps.append(step)).shape
        (5, 2)
        >>> steps[:3], steps[-1] == model.n_sample_steps
        ([0, 1, 2], True)
        """
        check_is_fitted(self, "module_")
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer. Got {n_samples!r} instead.")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, as callback(step, X_step). Got {callback!r}.")
        generator = make_generator(random_state, self.device_)
        on_step = None
        if callback is not None:

            def on_step(step, positions):  # the hook counts the start as step -1
                callback(step + 1, self._as_user_rows(positions))

        return self._as_user_rows(self._sample(int(n_samples), generator, on_step))

    @abstractmethod
    def _sample(self, n_samples, generator, callback=None):
        """Hook: ``n_samples`` draws from the fitted model, as a tensor.

        ``callback``, when given, is called as ``callback(step, positions)``
        with step -1 for the start and ``k`` after step ``k + 1`` of a chain; a
        model that runs no chain raises a ValueError saying so.
        """

    # ------------------------------------------------------ persistence
    def __copy__(self):
        # A shallow copy shares the tensors, as copy.copy should (scikit-learn's callbacks make one
        # each epoch); the default would serialize every tensor through __getstate__, and with them
        # the live callback context, which refers back to the estimator.
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def __getstate__(self):
        # torch.save keeps the objects that share parameters (module_, optimizer_)
        # sharing them, and torch.load's map_location brings CUDA tensors to the
        # CPU: a model fitted on a GPU loads on any machine, ready to score or to
        # train on.
        state = dict(super().__getstate__())  # a copy: the base returns the live __dict__ itself
        for transient in _CALLBACK_CONTEXT_ATTRIBUTES:  # a fit's live callback state, never part of a model
            state.pop(transient, None)
        generator = state.pop("_generator", None)
        version = state.pop("_sklearn_version", None)
        blob = io.BytesIO()
        torch.save(state, blob)
        saved = {"_torch_state": blob.getvalue(), "_sklearn_version": version}
        if generator is not None:
            saved["_generator_state"] = cpu_generator_state(generator)
        return saved

    def __setstate__(self, state):
        blob = state.pop("_torch_state", None)
        if blob is not None:
            state.update(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False))
            if "device_" in state:
                state["device_"] = torch.device("cpu")
        generator_state = state.pop("_generator_state", None)
        super().__setstate__(state)
        if generator_state is not None:
            self._generator = torch.Generator()
            self._generator.set_state(generator_state)


class GradientEBM(BaseEBM):
    """Base of the estimators trained by minimizing a differentiable loss with Adam.

    A subclass writes ``_batch_loss(batch, epoch=None)``, returning the loss
    tensor of a minibatch and a dict of its float diagnostics (``epoch`` is the
    epoch's state, None for validation rows), and creates ``optimizer_`` with
    :meth:`_make_optimizer` in ``_initialize``; ``_parameter_groups`` says
    what it trains, if not every weight of ``module_``.
    """

    @abstractmethod
    def _batch_loss(self, batch, epoch=None):
        """Hook: ``(loss tensor, dict of diagnostics)`` for one minibatch, as ``_train_step`` returns them."""

    def _learning_rate_schedule(self):
        """Hook: ``"cosine"`` to decay the learning rate over the updates of each ``fit``, else ``"constant"``."""
        return "constant"

    @contextlib.contextmanager
    def _fit_scope(self, n_epochs, n_updates):
        # A warm start keeps Adam's moments but takes the learning rate set now.
        rate = self._setting("learning_rate")
        self._set_learning_rate(rate)
        decays = n_updates is not None and self._learning_rate_schedule() == "cosine"
        self._decay = _CosineDecay(rate, n_updates) if decays else None
        try:
            with super()._fit_scope(n_epochs, n_updates) as run:
                yield run
        finally:
            del self._decay  # the schedule belongs to this call to fit only

    def _train_step(self, batch, epoch):
        loss, metrics = self._batch_loss(batch, epoch)
        self._check_finite(metrics)  # before the step, so a bad loss never reaches the weights
        self.optimizer_.zero_grad(set_to_none=True)
        # Gradients for the trained weights only: a score-matching loss also reaches the rows it
        # differentiated the energy at, and filling their gradient is one more pass back through the
        # energy that nothing reads (a sixth of a multi-level update at d = 2, a quarter at d = 128).
        trained = [weight for group in self.optimizer_.param_groups for weight in group["params"]]
        loss.backward(inputs=[weight for weight in trained if weight.requires_grad])
        if self._decay is not None:
            self._set_learning_rate(self._decay.next_rate())  # one step of the schedule per update
        self.optimizer_.step()
        return metrics

    def _set_learning_rate(self, rate):
        # A parameter group may run at a fixed multiple of the rate (its "lr_scale"), on the same schedule.
        for group in self.optimizer_.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)

    def _end_epoch(self, record, data):
        if self._decay is not None:
            record["learning_rate"] = self.optimizer_.param_groups[0]["lr"]
        super()._end_epoch(record, data)

    def _validation_metrics(self, X_val):
        with torch.no_grad():
            loss, _metrics = self._batch_loss(X_val)
        return {"val_loss": float(loss)}

    def _parameter_groups(self):
        """Hook: what the optimizer trains, as Adam's parameter groups (every weight of ``module_`` here)."""
        return [{"params": list(self.module_.parameters())}]

    def _make_optimizer(self):
        # The fused step is one kernel where the per-tensor loop dispatches about ten operations per
        # tensor: 0.3 ms instead of 2.6 ms per update of CD's MLP on a CPU, a tenth of the update.
        # Elsewhere None rather than False: torch then chooses its default (foreach) loop for the device.
        fused = self.device_.type in _FUSED_ADAM_DEVICES
        return torch.optim.Adam(self._parameter_groups(), lr=self._setting("learning_rate"), fused=fused or None)


# Devices with torch's fused Adam step.
_FUSED_ADAM_DEVICES = frozenset({"cpu", "cuda"})


class _CosineDecay:
    """Learning rates falling from ``rate`` towards zero on a half cosine over ``n_updates`` updates.

    The rate is what lets an update move the weights; once the energy is near its optimum, the
    same rate keeps it jumping around it. Decaying over the planned updates (Loshchilov & Hutter,
    ICLR 2017, without restarts) spends the early updates moving and the late ones settling.
    """

    def __init__(self, rate, n_updates):
        self.rate, self.n_updates, self.done = rate, n_updates, 0

    def next_rate(self):
        progress = min(self.done / self.n_updates, 1.0)
        self.done += 1
        return self.rate * 0.5 * (1.0 + math.cos(math.pi * progress))


# What scikit-learn's callbacks set on an estimator while it fits.
_CALLBACK_CONTEXT_ATTRIBUTES = ("_callback_fit_ctx", "_skl_callbacks_to_teardown", "_parent_callback_ctx")


def _placeholder_y(X):
    # The estimators ignore y, but scikit-learn's ScoringMonitor scores only tasks given one.
    return np.zeros(len(X))


class _EpochMonitor:
    """Each epoch as a task of scikit-learn's callbacks (``set_callbacks``), scored on ``X_scored``.

    ``X_scored`` is the validation rows when there are any, else the training rows.
    The estimator a scoring callback sees at the end of an epoch is built only
    when one asks for it, as ``fit`` ends with the rows ``X`` it was given: it
    needs ``log_partition_`` (AIS beyond two features) and ``offset_`` for the
    parameters of that epoch (with ``X``'s sample weights, as ``fit`` uses them).
    """

    def __init__(self, estimator, context, X, weights, X_scored):
        self.estimator, self.context, self.X, self.weights, self.X_scored = estimator, context, X, weights, X_scored
        self.task = None

    def begin(self):
        self.task = self.context.subcontext(task_name="epoch")
        self.task.call_on_fit_task_begin(estimator=self.estimator)

    def end(self):
        """Whether a callback asks to stop training."""
        return self.task.call_on_fit_task_end(
            estimator=self.estimator,
            X=self.X_scored,
            y=_placeholder_y(self.X_scored),
            reconstruction_attributes=self._attributes,
        )

    def _attributes(self):
        estimator = self.estimator
        # AIS draws from the estimator's stream: put it back, so that a callback changes no model.
        stream = estimator._generator.get_state()
        try:
            log_partition, _ = estimator._compute_log_partition(self.X)
        finally:
            estimator._generator.set_state(stream)
        offset = estimator._offset(-estimator.energy(self.X) - log_partition, self.weights)
        # The snapshot gets its own copy of the weights: training goes on after the callback.
        return {"module_": copy.deepcopy(estimator.module_), "log_partition_": log_partition, "offset_": offset}


def _rows_with_weight(X, sample_weight):
    """``X`` without its zero-weight rows, and their weights: None when there are none or all are equal.

    Dropping the zero-weight rows makes a zero weight the same as an absent row, and equal
    weights take the unweighted path, so neither changes a fitted model.
    """
    if sample_weight is None:
        return X, None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight must be finite.")
    keep = weights > 0
    if not keep.all():
        X, weights = X[keep], weights[keep]
    if len(X) < 2:
        raise ValueError(f"sample_weight leaves {len(X)} row(s) with a positive weight; fitting needs at least 2.")
    return X, None if np.all(weights == weights[0]) else weights


def _weighted_quantile(values, weights, q):
    """The smallest value with at least a fraction ``q`` of the total weight at or below it."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def _fold_into_mean(mean, state, n_before):
    """The mean of ``n_before`` state dicts (``mean``) and one more, ``state``; integer entries are kept."""
    if mean is None:
        return copy.deepcopy(state)
    for key, value in state.items():
        if value.is_floating_point():
            mean[key] += (value - mean[key]) / (n_before + 1)
    return mean
