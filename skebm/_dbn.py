"""Deep belief networks: RBMs trained greedily, layer on layer, with a bound on the likelihood."""

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, OutlierMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import LikelihoodScoresMixin, resolve_device
from ._checks import check_layer_sizes
from ._random import make_generator
from ._rbm import RBM
from .samplers import RandomPool, bernoulli

__all__ = ["DBN"]


class DBN(ClassNamePrefixFeaturesOutMixin, TransformerMixin, LikelihoodScoresMixin, OutlierMixin, BaseEstimator):
    """Deep belief network of binary units (Hinton, Osindero & Teh, 2006).

    The layers are RBMs trained greedily: the first on the data, each next
    one on the hidden probabilities of the one below. The top two layers
    form an undirected RBM; the layers below are directed, each generating
    the layer under it through its RBM's ``p(below | above)``. A layer whose
    shape is the transpose of the one below (as the top of
    ``hidden_layer_sizes=(256, 64)`` is on 64 pixels) starts from that
    layer's transposed weights, where the model is still the lower RBM and
    the bound below equals its log-likelihood; training it can then only
    tighten the fit (Hinton et al., 2006), and runs at a tenth of the
    learning rate, as a fine-tuning of a model already fitted.

    :meth:`score_samples` is a variational lower bound on ``log p(x)``
    (Salakhutdinov & Murray, ICML 2008): with ``q`` the up-pass of the
    hidden probabilities,
    ``log p(x) >= E_q[log p(x | h1) + ... + log p_top(h_top)] + H(q)``, the
    expectation estimated from ``n_bound_samples`` up-pass draws (the same
    uniform numbers for every row and every call, so a row's bound depends
    on that row alone) and ``log Z`` of the top RBM by annealed importance
    sampling. It is a bound, not the log-likelihood: compare it with other
    models' log-likelihoods knowing that the truth is at least as high.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 64)
        Units of each hidden layer, bottom first.
    max_iter : int, default=20
        Epochs of each layer's RBM.
    batch_size : int, default=20
    learning_rate : float or "auto", default="auto"
        Each RBM's learning rate (``"auto"``: the RBM's, 0.1), a tenth of it
        for a layer started from the transposed weights below.
    n_bound_samples : int, default=10
        Up-pass draws per row that estimate the bound.
    ais_steps : int, default=10000
        Intermediate temperatures of AIS for the top RBM's ``log Z``.
    n_sample_steps : int, default=1000
        Gibbs steps in the top RBM before :meth:`sample`'s down-pass.
    contamination : float, default=0.1
        Expected fraction of outliers; sets ``offset_``.
    device : str or torch.device, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    rbms_ : list of RBM
        The fitted layers, bottom first.
    log_partition_ : float
        ``log Z`` of the top RBM.
    n_iter_ : int
        The most epochs any layer ran.
    offset_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Notes
    -----
    ``skebm.save`` does not write a DBN yet (its layers are estimators);
    save the layers in ``rbms_`` one by one, or pickle the whole model for
    trusted storage.

    See Also
    --------
    RBM : one layer; ``Pipeline`` of RBMs for a stack used as features only.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skebm import DBN
    >>> X = (load_digits().data > 8).astype(float)
    >>> dbn = DBN(hidden_layer_sizes=(16, 8), max_iter=1, ais_steps=100, random_state=0).fit(X)
    >>> dbn.transform(X[:2]).shape, dbn.sample(3, random_state=0).shape
    ((2, 8), (3, 64))
    """

    _parameter_constraints = {
        "hidden_layer_sizes": [tuple, list],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "n_bound_samples": [Interval(Integral, 1, None, closed="left")],
        "ais_steps": [Interval(Integral, 1, None, closed="left")],
        "n_sample_steps": [Interval(Integral, 1, None, closed="left")],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(256, 64),
        max_iter=20,
        batch_size=20,
        learning_rate="auto",
        n_bound_samples=10,
        ais_steps=10000,
        n_sample_steps=1000,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_bound_samples = n_bound_samples
        self.ais_steps = ais_steps
        self.n_sample_steps = n_sample_steps
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the layers greedily, bottom first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Binary data (or probabilities) in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        self : DBN
        """
        saved = dict(vars(self))  # a failed fit (bad input, a diverging layer) leaves a fitted model as it was
        try:
            return self._fit(X)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    def _fit(self, X):
        check_layer_sizes(self, "hidden_layer_sizes")
        X = validate_data(self, X, dtype=np.float64)
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=len(self.hidden_layer_sizes))
        rbms, data = [], X
        for depth, (n_hidden, seed) in enumerate(zip(self.hidden_layer_sizes, seeds, strict=True)):
            rbm = self._layer(n_hidden, seed, top=depth == len(self.hidden_layer_sizes) - 1, below=rbms[-1:])
            rbms.append(rbm.fit(data))
            data = rbm.transform(data)
        self.rbms_ = rbms
        self.n_iter_ = max(rbm.n_iter_ for rbm in rbms)
        self.log_partition_ = rbms[-1].log_partition_
        self.offset_ = float(np.percentile(self.score_samples(X), 100.0 * self.contamination))
        return self

    def _layer(self, n_hidden, seed, top, below):
        rbm = RBM(
            n_components=n_hidden,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            log_partition="auto" if top else None,  # only the top RBM's log Z enters the bound
            ais_steps=self.ais_steps,
            n_sample_steps=self.n_sample_steps,
            device=self.device,
            random_state=seed,
            verbose=self.verbose,
        )
        if below and n_hidden == below[0].n_features_in_:  # the transposed layer below, biases exchanged
            lower = below[0].module_.params()
            rbm._start_params = (lower.weight.detach().T, lower.visible_bias.detach(), lower.hidden_bias.detach())
            rbm.set_params(learning_rate=rbm._setting("learning_rate") / 10)
        return rbm

    @property
    def _n_features_out(self):
        return self.hidden_layer_sizes[-1]

    def _validated(self, X):
        check_is_fitted(self, "rbms_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return torch.as_tensor(X, dtype=torch.float64, device=resolve_device(self.device))

    def _layers(self, device):
        """Each layer's parameters, in float64 on ``device``."""
        params = (rbm.module_.params() for rbm in self.rbms_)
        return [p.detached(torch.float64, device) for p in params]

    def transform(self, X):
        """Top hidden-layer probabilities, by an up-pass of probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        H : ndarray of shape (n_samples, hidden_layer_sizes[-1]), float64
        """
        h = self._validated(X)
        with torch.no_grad():
            for layer in self._layers(h.device):
                h = layer.hidden_probability(h)
        return h.cpu().numpy()

    def score_samples(self, X):
        """The variational lower bound on ``log p(x)`` of each row (see the class docstring).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bound : ndarray of shape (n_samples,), float64
        """
        v = self._validated(X)
        layers = self._layers(v.device)
        # The same uniforms for every row: a row's bound depends on that row only, not on the others
        # or their order, and is the same on every call.
        generator = make_generator(0, v.device)
        uniforms = [
            torch.rand(self.n_bound_samples, layer.weight.shape[0], generator=generator, device=v.device).double()
            for layer in layers[:-1]
        ]
        total = torch.zeros(len(v), dtype=torch.float64, device=v.device)
        with torch.no_grad():
            for draw in range(self.n_bound_samples):
                total += _bound_of_one_draw(layers, v, [u[draw] for u in uniforms])
        return (total / self.n_bound_samples).cpu().numpy() - self.log_partition_

    def sample(self, n_samples=1, random_state=None):
        """Draw samples: Gibbs sampling in the top RBM, then a down-pass through the directed layers.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), binary
        """
        check_is_fitted(self, "rbms_")
        top = self.rbms_[-1].sample(n_samples, random_state=random_state)
        h = torch.as_tensor(top, dtype=torch.float64, device=resolve_device(self.device))
        pool = RandomPool(make_generator(random_state, h.device), dtype=torch.float64)
        for layer in reversed(self._layers(h.device)[:-1]):
            h = bernoulli(layer.visible_mean(h), pool)
        return h.cpu().numpy() + 0.0  # no -0.0


def _bound_of_one_draw(layers, v, uniforms):
    """``sum log p(h_below | h_above) - log q(h_above | h_below) - F_top(h_top)`` along one up-pass draw.

    Its expectation is the bound before ``log Z``.

    The draw of each layer is ``uniforms[l] < q``, one uniform per unit shared by all rows.
    """
    total = torch.zeros(len(v), dtype=v.dtype, device=v.device)
    below = v
    for layer, uniform in zip(layers[:-1], uniforms, strict=True):
        q_logits = layer.hidden_logits(below)
        above = (uniform < torch.sigmoid(q_logits)).to(v.dtype)
        logits = torch.addmm(layer.visible_bias, above, layer.weight)
        # -log q(h | below) rather than q's entropy: the same expectation, and no variance at all where
        # q is the exact posterior (a layer tied to the one below, before training).
        total += _bernoulli_log_prob(below, logits) - _bernoulli_log_prob(above, q_logits)
        below = above
    return total - layers[-1].free_energy(below)


def _bernoulli_log_prob(x, logits):
    """``log p(x)`` of independent Bernoulli units with these logits, summed over the units."""
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)
