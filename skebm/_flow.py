"""A normalizing flow fitted by maximum likelihood: NCE's learned noise, and a density baseline."""

import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import DivergenceError
from ._random import make_generator

__all__ = ["FlowDensity", "FlowEnergy", "StandardizedFlow"]

# Spline coupling layers (Durkan et al., 2019) on the standardized data, whose splines act on [-5, 5]:
# wide enough for every row a standardization leaves, and the identity outside.
_TRANSFORMS = 3
_HIDDEN = (64, 64)
_BATCH_SIZE = 512
_LEARNING_RATE = 3e-3
# A row holding this share of X pulls maximum likelihood into a spike on it: a continuous density's
# likelihood has no upper bound at a point that holds mass (395 identical rows of 400 gave +13.7 nats there).
_ATOM_SHARE = 0.1


def _require_zuko():
    try:
        import zuko
    except ImportError as error:  # an optional dependency: only the flow needs it
        raise ImportError("FlowDensity and NCEEBM(noise='flow') need zuko: pip install 'skebm[flow]'.") from error
    return zuko


def build_flow(n_features, generator=None):
    """The spline coupling flow of :class:`FlowDensity` for ``n_features``, its weights drawn from ``generator``."""
    zuko = _require_zuko()
    # zuko builds its layers from the global stream: seed a fork of it. On the CPU whatever the
    # default device: its masks need operators the meta device lacks (skebm.load builds shapes there).
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        if generator is not None:
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        # passes=2: coupling layers, so that sampling is one pass like scoring, whatever n_features.
        flow = zuko.flows.NSF(n_features, transforms=_TRANSFORMS, hidden_features=_HIDDEN, passes=2)
    return flow


class FlowDensity(DensityMixin, BaseEstimator):
    """A neural spline flow fitted by maximum likelihood (zuko), with the density API of scikit-learn.

    The rows are standardized, then mapped to a standard Gaussian by
    three rational-quadratic spline coupling layers (Durkan et al., 2019),
    trained with Adam for ``max_updates`` minibatch updates at a rate decayed
    on a cosine. It is the learned noise of ``NCEEBM(noise="flow")`` and a
    density baseline in its own right: ``score_samples`` is an exact
    log-density, and ``sample`` one pass through the flow.

    Needs the optional ``zuko`` package (``pip install 'skebm[flow]'``).

    Parameters
    ----------
    max_updates : int, default=1000
        Minibatch updates of 512 rows.
    random_state : int, RandomState instance or None, default=None
        The initial weights, minibatches and draws.

    Attributes
    ----------
    flow_ : zuko.flows.Flow
    mean_, scale_ : ndarray of shape (n_features,)
        The standardization.
    n_features_in_ : int

    Examples
    --------
    >>> from skebm._flow import FlowDensity
    >>> from skebm.datasets import make_moons
    >>> flow = FlowDensity(max_updates=50, random_state=0).fit(make_moons(500, random_state=0))
    >>> flow.sample(3, random_state=0).shape, flow.score_samples(make_moons(4, random_state=1)).shape
    ((3, 2), (4,))
    """

    _parameter_constraints = {
        "max_updates": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, max_updates=1000, random_state=None):
        self.max_updates = max_updates
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the flow to the rows of ``X`` by maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : FlowDensity

        Raises
        ------
        DivergenceError
            When the log-likelihood of a minibatch becomes non-finite; the
            estimator keeps its previous state.
        """
        previous = dict(vars(self))
        try:
            return self._fit(X)
        except BaseException:  # a failed fit leaves the last fitted flow as it was
            vars(self).clear()
            vars(self).update(previous)
            raise

    def _fit(self, X):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        generator = make_generator(self.random_state, "cpu")
        self.mean_ = X.mean(0)
        self.scale_ = np.where(X.std(0) > 0, X.std(0), 1.0)
        flow = build_flow(X.shape[1], generator)
        rows = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32)
        optimizer = torch.optim.Adam(flow.parameters(), lr=_LEARNING_RATE)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.max_updates)
        for update in range(self.max_updates):
            batch = rows[torch.randint(len(rows), (min(_BATCH_SIZE, len(rows)),), generator=generator)]
            loss = -flow().log_prob(batch).mean()
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"FlowDensity diverged at update {update + 1} of {self.max_updates}: the flow's log-likelihood "
                    "of a minibatch became non-finite. Look in X for extreme rows, or for rows repeated so often "
                    "that the flow collapses onto them; NCEEBM(noise='gmm') widens its components against that."
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        self.flow_ = flow.requires_grad_(False)
        self._warn_about_repeated_rows(X)
        return self

    def _warn_about_repeated_rows(self, X):
        """Warn, with the size of the spike, when one row repeats so often that the flow collapses onto it."""
        rows, counts = np.unique(X, axis=0, return_counts=True)
        most = int(np.argmax(counts))
        if counts[most] < _ATOM_SHARE * len(X):
            return
        others = np.delete(rows, most, axis=0)[:: max(1, len(rows) // 2000)]
        scores = self.score_samples(np.vstack([rows[most], others]))
        spike = ""
        if len(others):
            spike = f", and the flow scores it {scores[0] - np.median(scores[1:]):.1f} nats above the median other row"
        warnings.warn(
            f"FlowDensity: one row is repeated in {counts[most]} of the {len(X)} rows of X{spike}. "
            "A density's likelihood has "
            "no upper bound at a point that holds mass, so the flow collapses onto it. Add noise to the repeated "
            "values or drop the repeats; NCEEBM(noise='gmm') widens its components against this.",
            UserWarning,
            stacklevel=3,
        )

    def score_samples(self, X):
        """Log-density of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "flow_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        # On the flow's device: NCE's flow contrastive estimation trains it where the energy trains.
        device = next(self.flow_.parameters()).device
        rows = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=device)
        with torch.no_grad():
            log_density = self.flow_().log_prob(rows).double().cpu().numpy()
        return log_density - np.log(self.scale_).sum()

    def score(self, X, y=None):
        """Mean log-density of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Draw rows: standard Gaussian draws passed back through the flow.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self, "flow_")
        generator = make_generator(check_random_state(random_state), "cpu")
        z = torch.randn(n_samples, self.n_features_in_, generator=generator)
        with torch.no_grad():
            rows = self.flow_().transform.inv(z.to(next(self.flow_.parameters()).device)).double().cpu().numpy()
        return rows * self.scale_ + self.mean_


class StandardizedFlow(torch.nn.Module):
    """A flow on standardized rows, read in the rows' own units: exact log-densities and reparameterized draws.

    ``flow`` maps ``(x - mean) / scale`` to a standard Gaussian. Draws are
    differentiable in the flow's weights, so a loss on them (the
    generator's of :class:`~skebm.AdversarialEBM`) trains the flow.

    Examples
    --------
    >>> import torch
    >>> from skebm._flow import StandardizedFlow, build_flow
    >>> flow = StandardizedFlow(build_flow(2, torch.Generator().manual_seed(0)), torch.zeros(2), torch.ones(2))
    >>> x, log_q = flow.rsample_and_log_prob(4, torch.Generator().manual_seed(1))
    >>> bool(torch.allclose(flow.log_prob(x), log_q, atol=1e-4))
    True
    """

    def __init__(self, flow, mean, scale):
        super().__init__()
        self.flow = flow
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def log_prob(self, x):
        return self.flow().log_prob((x - self.mean) / self.scale) - self.scale.log().sum()

    def rsample_and_log_prob(self, n, generator=None):
        """``n`` rows drawn from the flow (with ``generator``, not torch's global stream) and their log-densities."""
        distribution = self.flow()
        z = torch.randn(n, len(self.mean), generator=generator, device=self.mean.device)
        # x = T^-1(z), so log q(x) = log N(z) - log |det dT^-1/dz|: one pass through the inverse gives both.
        rows, log_det = distribution.transform.inv.call_and_ladj(z)
        return rows * self.scale + self.mean, distribution.base.log_prob(z) - log_det - self.scale.log().sum()


class FlowEnergy(StandardizedFlow):
    """``-log q(x)`` of a fitted :class:`FlowDensity`, as a torch energy (the base of a residual energy).

    Examples
    --------
    >>> import torch
    >>> from skebm._flow import FlowDensity
    >>> from skebm._flow import FlowEnergy
    >>> from skebm.datasets import make_moons
    >>> flow = FlowDensity(max_updates=20, random_state=0).fit(make_moons(200, random_state=0))
    >>> FlowEnergy(flow)(torch.zeros(3, 2)).shape
    torch.Size([3])
    """

    def __init__(self, density):
        super().__init__(density.flow_, density.mean_, density.scale_)

    def forward(self, x):
        return -self.log_prob(x)
