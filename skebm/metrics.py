"""Scorers for model selection and sample quality.

Each scorer has scikit-learn's signature ``scorer(estimator, X, y=None)`` and
returns a float where greater is better, so it can be passed as ``scoring=``
to ``GridSearchCV`` or ``cross_val_score``.

Sample quality is measured between a model's samples and real rows, in the
rows' own features or in the features of a model fitted on real data (the
idea of FID and KID, without a network from the internet):
:func:`frechet_distance`, :func:`kernel_distance` and
:func:`make_frechet_scorer`.
"""

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state

from ._random import make_generator
from .losses import EXACT_TRACE_MAX_FEATURES, hyvarinen_score

__all__ = [
    "frechet_distance",
    "hyvarinen_scorer",
    "kernel_distance",
    "log_likelihood_scorer",
    "make_frechet_scorer",
    "mmd",
    "mmd_scorer",
]


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
    n = len(X)
    return float(_unbiased_mmd2(kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]))


def _unbiased_mmd2(k_xx, k_yy, k_xy):
    """The U-statistic of the squared MMD from the three kernel matrices (the diagonals left out)."""
    n, m = len(k_xx), len(k_yy)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * k_xy.mean()


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


def _features(features, X, name):
    """``X`` (validated) in the feature space named by ``features``, as a float64 array."""
    X = check_array(X, dtype=np.float64, input_name=name)
    if features is None:
        Z = X
    elif hasattr(features, "decision_function"):  # a fitted classifier: its logits, as FID uses
        Z = features.decision_function(X)
    elif hasattr(features, "transform"):
        Z = features.transform(X)
    elif callable(features):
        Z = features(X)
    else:
        raise TypeError(f"features must be None, a fitted classifier or transformer, or a callable; got {features!r}.")
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z[:, None] if Z.ndim == 1 else Z  # a binary classifier's single logit
    if len(Z) < 2 or not np.isfinite(Z).all():
        raise ValueError(f"The features of {name} must be finite, with at least 2 rows; got shape {Z.shape}.")
    return Z


def _paired_features(X, Y, features):
    X, Y = _features(features, X, "X"), _features(features, Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y have {X.shape[1]} and {Y.shape[1]} features; they must have the same.")
    return X, Y


def _psd_sqrt(S):
    """The symmetric square root of a positive semi-definite matrix (negative rounding clipped)."""
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_distance(X, Y, features=None):
    """Squared Frechet distance between Gaussians fitted to the features of two samples.

    ``|mu_X - mu_Y|^2 + Tr(S_X + S_Y - 2 (S_Y^(1/2) S_X S_Y^(1/2))^(1/2))``,
    the 2-Wasserstein distance between the two Gaussians: what FID computes
    in the features of an Inception network. It compares the first two
    moments only, and is biased upwards for small samples (a few hundred rows
    per feature keep the bias small), so compare models at equal sample sizes.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Samples, say a model's.
    Y : array-like of shape (m, d)
        Reference rows, say held-out real data.
    features : None, fitted estimator or callable, default=None
        Where the distance is measured: the rows themselves (None); the
        logits of a fitted classifier (``decision_function``), as FID uses a
        classifier's features; the output of a fitted transformer
        (``transform``, e.g. a ``StandardScaler`` fitted on real rows, which
        makes the distance unit-free); or ``features(X)``.

    Returns
    -------
    distance : float
        In squared feature units; 0 for two samples with equal means and
        covariances.

    Examples
    --------
    >>> import numpy as np
    >>> from skebm.metrics import frechet_distance
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(5000, 2))
    >>> round(frechet_distance(Y + [3.0, 0.0], Y), 6)  # a shift of 3: 3 squared
    9.0
    """
    X, Y = _paired_features(X, Y, features)
    S_X, S_Y = np.atleast_2d(np.cov(X, rowvar=False)), np.atleast_2d(np.cov(Y, rowvar=False))
    root_Y = _psd_sqrt(S_Y)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_Y @ S_X @ root_Y), 0.0, None)).sum()
    mean_gap = X.mean(0) - Y.mean(0)
    return float(mean_gap @ mean_gap + np.trace(S_X) + np.trace(S_Y) - 2.0 * cross)


def kernel_distance(X, Y, features=None, n_subsets=50, subset_size=1000, random_state=0):
    """Squared MMD with the cubic polynomial kernel of KID, averaged over random subsets.

    ``k(a, b) = (a . b / d + 1)^3`` in the chosen features. Each subset's
    estimate is the unbiased U-statistic, so the mean is unbiased at any
    sample size (unlike :func:`frechet_distance`) and can fall slightly below
    zero when the two samples come from one distribution.

    Parameters
    ----------
    X : array-like of shape (n, d)
    Y : array-like of shape (m, d)
    features : None, fitted estimator or callable, default=None
        As in :func:`frechet_distance`.
    n_subsets : int, default=50
        Random subsets the estimate is averaged over.
    subset_size : int, default=1000
        Rows drawn from each sample per subset (all of them when fewer).
    random_state : int, RandomState instance or None, default=0
        Chooses the subsets.

    Returns
    -------
    distance : float

    Examples
    --------
    >>> import numpy as np
    >>> from skebm.metrics import kernel_distance
    >>> rng = np.random.default_rng(0)
    >>> same = kernel_distance(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)))
    >>> shifted = kernel_distance(rng.normal(size=(500, 3)) + 1.0, rng.normal(size=(500, 3)))
    >>> abs(same) < 0.05 < shifted
    True
    """
    X, Y = _paired_features(X, Y, features)
    rng = check_random_state(random_state)
    size = min(subset_size, len(X), len(Y))
    estimates = [
        _polynomial_mmd2(X[rng.choice(len(X), size, replace=False)], Y[rng.choice(len(Y), size, replace=False)])
        for _ in range(n_subsets)
    ]
    return float(np.mean(estimates))


def _polynomial_mmd2(X, Y):
    """The unbiased squared MMD of two samples under KID's cubic kernel."""
    d = X.shape[1]
    return _unbiased_mmd2(*((A @ B.T / d + 1.0) ** 3 for A, B in ((X, X), (Y, Y), (X, Y))))


def make_frechet_scorer(features=None, n_samples=None, random_state=0):
    """A scorer: minus the :func:`frechet_distance` between a model's samples and ``X``.

    For ``GridSearchCV(..., scoring=make_frechet_scorer(features))``: each
    candidate draws as many samples as the held-out fold has rows (or
    ``n_samples``) with ``estimator.sample``, and is scored against the fold.

    Parameters
    ----------
    features : None, fitted estimator or callable, default=None
        As in :func:`frechet_distance`; fit it on real data only.
    n_samples : int, default=None
    random_state : int, default=0
        Seeds the samples, so candidates are compared on equal terms.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``, greater is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skebm import RBM
    >>> from skebm.metrics import make_frechet_scorer
    >>> X = (np.random.default_rng(0).random((200, 6)) < 0.3).astype(float)
    >>> search = GridSearchCV(RBM(max_iter=2, random_state=0), {"n_components": [2, 4]},
    ...                       scoring=make_frechet_scorer(), cv=2).fit(X)
    >>> bool(np.isfinite(search.best_score_)) and search.best_params_["n_components"] in (2, 4)
    True
    """

    def frechet_scorer(estimator, X, y=None):
        samples = estimator.sample(n_samples or len(X), random_state=random_state)
        return -frechet_distance(samples, X, features)

    return frechet_scorer
