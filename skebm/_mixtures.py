"""The Gaussian mixture fitted under NCE's noise and multi-level score matching's energy.

Both estimators start from a full-covariance mixture of a few components,
widened so that no component collapses onto repeated rows.
"""

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.mixture import GaussianMixture

from ._checks import evenly_spaced_rows

# At most this many components.
MAX_COMPONENTS = 8
# Rows a mixture (or NCE's flow noise) is fitted on, at most.
FIT_ROWS = 20_000
# The narrowest a component may be, as a fraction of the mean feature variance: see _widen_components.
_RELATIVE_VARIANCE_FLOOR = 1e-2


def widened_mixture(X, n_components, seed):
    """A full-covariance ``GaussianMixture`` fitted to (up to 20,000 evenly spaced) rows of ``X``, then widened.

    EM costs grow with the rows; a mixture of up to 8 components needs no
    more than these. See :func:`_widen_components` for the widening.
    """
    rows = evenly_spaced_rows(X, FIT_ROWS)
    mixture = GaussianMixture(n_components, covariance_type="full", random_state=seed).fit(rows)
    _widen_components(mixture, _RELATIVE_VARIANCE_FLOOR * float(np.mean(np.var(rows, axis=0))))
    return mixture


def mixture_components(n_samples, n_features):
    """Components of the ``"gmm"`` noise: up to 8, each with the ``n_features + 1`` rows a full covariance needs.

    Fewer rows leave a component's covariance singular. Nearly singular ones
    are widened afterwards (:func:`_widen_components`), so no more rows per
    component are asked for: on the selection half of ``bench_outliers.py``
    this rule scored a mean ROC-AUC of 0.779 against 0.766 for ten rows per
    feature (wine, 90 rows of 13 features: 0.73 with six components, 0.44
    with one).
    """
    return max(1, min(MAX_COMPONENTS, n_samples // (n_features + 1)))


def _widen_components(gmm, floor):
    """Widen each component of a fitted full-covariance mixture to a variance of at least ``floor`` on every axis.

    EM's likelihood grows without bound as a component shrinks onto repeated
    rows, so on tables with duplicates (http: attack rows repeated by the
    thousand) a component collapses to a spike there, and the energy built on
    it rates those rows the likeliest of all. With components at least a tenth
    of a standard deviation wide (``floor`` a hundredth of the mean feature
    variance) the noise stays a smooth cover of the data, and the network
    learns the finer structure wherever data and noise differ. Components that
    are wider already (the eight modes of the eight-Gaussians toy) are left
    as they are.
    """
    values, vectors = np.linalg.eigh(gmm.covariances_)
    covariances = (vectors * np.maximum(values, floor)[:, None, :]) @ vectors.transpose(0, 2, 1)
    identity = np.eye(covariances.shape[1])
    # The upper-triangular factors scikit-learn scores with: U with U U^T the precision.
    factors = [solve_triangular(np.linalg.cholesky(c), identity, lower=True).T for c in covariances]
    gmm.covariances_, gmm.precisions_cholesky_ = covariances, np.stack(factors)
    gmm.precisions_ = gmm.precisions_cholesky_ @ gmm.precisions_cholesky_.transpose(0, 2, 1)
