"""Scorers for model selection and sample quality.

Each scorer has scikit-learn's signature ``scorer(estimator, X, y=None)`` and
returns a float where greater is better, so it can be passed as ``scoring=``
to ``GridSearchCV`` or ``cross_val_score``.
"""

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._random import make_generator
from .losses import EXACT_TRACE_MAX_FEATURES, hyvarinen_score

__all__ = ["hyvarinen_scorer", "log_likelihood_scorer", "mmd", "mmd_scorer"]


def log_likelihood_scorer(estimator, X, y=None):
    """Mean held-out log-likelihood: ``estimator.score(X)``.

    Examples
    --------
    >>> from skebm import ContrastiveDivergenceEBM
    >>> from skebm.metrics import log_likelihood_scorer
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(300, random_state=0)
    >>> est = ContrastiveDivergenceEBM(max_iter=1, random_state=0).fit(X)
    >>> isinstance(log_likelihood_scorer(est, X), float)
    True
    """
    return float(estimator.score(X))


def hyvarinen_scorer(estimator, X, y=None, n_projections=8, random_state=0):
    """Minus the mean Hyvarinen score of ``X`` under the fitted energy.

    Needs no ``log Z``: it compares model and data through their scores
    (gradients of the log-density). Exact Hessian trace up to 16 features,
    Hutchinson's estimate with ``n_projections`` Rademacher vectors above.

    Examples
    --------
    >>> from skebm import ContrastiveDivergenceEBM
    >>> from skebm.metrics import hyvarinen_scorer
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(300, random_state=0)
    >>> est = ContrastiveDivergenceEBM(max_iter=1, random_state=0).fit(X)
    >>> isinstance(hyvarinen_scorer(est, X), float)
    True
    """
    x = torch.as_tensor(np.asarray(X, dtype=np.float64), device=estimator.device_)
    projections = None if x.shape[1] <= EXACT_TRACE_MAX_FEATURES else n_projections
    generator = make_generator(random_state, estimator.device_)
    scores = hyvarinen_score(estimator._float64_energy(), x, projections, generator)
    return -float(scores.mean())


def mmd(X, Y, bandwidth=None):
    """Squared maximum mean discrepancy between two samples, Gaussian kernel.

    The unbiased U-statistic. With ``bandwidth=None`` the median distance
    between the pooled points is used (the median heuristic).

    Parameters
    ----------
    X : array-like of shape (n, d)
    Y : array-like of shape (m, d)
    bandwidth : float, default=None

    Returns
    -------
    mmd2 : float

    Examples
    --------
    >>> import numpy as np
    >>> from skebm.metrics import mmd
    >>> rng = np.random.default_rng(0)
    >>> mmd(rng.normal(size=(200, 2)), rng.normal(size=(200, 2))) < 0.01
    True
    """
    X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    Y = torch.as_tensor(np.asarray(Y, dtype=np.float64))
    pooled = torch.cat([X, Y])
    sq = torch.cdist(pooled, pooled) ** 2
    if bandwidth is None:
        bandwidth = float(torch.sqrt(torch.median(sq[sq > 0])))
    kernel = torch.exp(-sq / (2 * bandwidth**2))
    n, m = len(X), len(Y)
    kxx = (kernel[:n, :n].sum() - n) / (n * (n - 1))
    kyy = (kernel[n:, n:].sum() - m) / (m * (m - 1))
    kxy = kernel[:n, n:].mean()
    return float(kxx + kyy - 2 * kxy)


def mmd_scorer(estimator, X, y=None, n_samples=None, random_state=0):
    """Minus the squared MMD between the model's samples and ``X``.

    Draws as many samples as ``X`` has rows (or ``n_samples``) with
    ``estimator.sample``.

    Examples
    --------
    >>> from skebm import ContrastiveDivergenceEBM
    >>> from skebm.metrics import mmd_scorer
    >>> from skebm.datasets import make_eight_gaussians
    >>> X = make_eight_gaussians(300, random_state=0)
    >>> est = ContrastiveDivergenceEBM(max_iter=1, n_sample_steps=10, random_state=0).fit(X)
    >>> isinstance(mmd_scorer(est, X), float)
    True
    """
    X = np.asarray(X, dtype=np.float64)
    samples = estimator.sample(n_samples or len(X), random_state=check_random_state(random_state))
    return -mmd(samples, X)
