"""Toy data sets with known densities, the ellipse of the latent-variable lecture, and digits.

Each generator takes ``random_state`` and returns a float64 array of shape
``(n_samples, 2)``. Where the density is known in closed form, a matching
``*_log_density`` function gives it, so that benchmarks can report the gap
between a model and the truth.
"""

import math

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state

__all__ = [
    "eight_gaussians_log_density",
    "load_digits_scaled",
    "make_checkerboard",
    "make_eight_gaussians",
    "make_ellipse",
    "make_moons",
    "make_rings",
    "make_spirals",
    "rings_log_density",
]


def _eight_centers(radius):
    angles = 2 * np.pi * np.arange(8) / 8
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_eight_gaussians(n_samples=1000, radius=2.0, std=0.2, random_state=None):
    """Eight isotropic Gaussians of equal weight, evenly spaced on a circle.

    Examples
    --------
    >>> from skebm.datasets import make_eight_gaussians
    >>> make_eight_gaussians(10, random_state=0).shape
    (10, 2)
    """
    rng = check_random_state(random_state)
    centers = _eight_centers(radius)[rng.randint(8, size=n_samples)]
    return centers + std * rng.standard_normal((n_samples, 2))


def eight_gaussians_log_density(X, radius=2.0, std=0.2):
    """Exact log-density of :func:`make_eight_gaussians` at the rows of ``X``.

    Examples
    --------
    >>> from skebm.datasets import eight_gaussians_log_density
    >>> eight_gaussians_log_density([[2.0, 0.0]]).shape
    (1,)
    """
    X = np.asarray(X, dtype=np.float64)
    sq = ((X[:, None, :] - _eight_centers(radius)[None]) ** 2).sum(-1)
    log_component = -sq / (2 * std**2) - math.log(2 * math.pi * std**2)
    return logsumexp(log_component, axis=1) - math.log(8)


def make_rings(n_samples=1000, radii=(1.0, 2.0, 3.0), std=0.1, random_state=None):
    """Concentric rings: a uniform angle, a ring chosen uniformly, Gaussian radial noise.

    Examples
    --------
    >>> from skebm.datasets import make_rings
    >>> make_rings(10, random_state=0).shape
    (10, 2)
    """
    rng = check_random_state(random_state)
    radius = np.asarray(radii)[rng.randint(len(radii), size=n_samples)] + std * rng.standard_normal(n_samples)
    angle = rng.uniform(0, 2 * np.pi, n_samples)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def rings_log_density(X, radii=(1.0, 2.0, 3.0), std=0.1):
    """Exact log-density of :func:`make_rings` (polar density over the Jacobian ``r``).

    A radius drawn negative would land on the opposite side; with the
    defaults that has probability below 1e-23 and is ignored.

    Examples
    --------
    >>> from skebm.datasets import rings_log_density
    >>> rings_log_density([[1.0, 0.0]]).shape
    (1,)
    """
    X = np.asarray(X, dtype=np.float64)
    r = np.linalg.norm(X, axis=1)
    radii = np.asarray(radii, dtype=np.float64)
    log_radial = -((r[:, None] - radii[None]) ** 2) / (2 * std**2) - 0.5 * math.log(2 * math.pi * std**2)
    log_radial = logsumexp(log_radial, axis=1) - math.log(len(radii))
    return log_radial - math.log(2 * math.pi) - np.log(np.maximum(r, 1e-300))


def make_moons(n_samples=1000, noise=0.05, standardize=True, random_state=None):
    """scikit-learn's two moons, standardized to zero mean and unit variance by default.

    Examples
    --------
    >>> from skebm.datasets import make_moons
    >>> X = make_moons(100, random_state=0)
    >>> bool(abs(X.std(0) - 1).max() < 1e-12)
    True
    """
    from sklearn.datasets import make_moons as sklearn_moons

    X, _ = sklearn_moons(n_samples, noise=noise, random_state=check_random_state(random_state))
    return (X - X.mean(0)) / X.std(0) if standardize else X


def make_spirals(n_samples=1000, noise=0.1, random_state=None):
    """Two interleaved spirals.

    Examples
    --------
    >>> from skebm.datasets import make_spirals
    >>> make_spirals(10, random_state=0).shape
    (10, 2)
    """
    rng = check_random_state(random_state)
    t = np.sqrt(rng.uniform(0, 1, n_samples)) * 3 * np.pi
    sign = np.where(rng.uniform(size=n_samples) < 0.5, 1.0, -1.0)
    X = sign[:, None] * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 3
    return X + noise * rng.standard_normal((n_samples, 2))


def make_checkerboard(n_samples=1000, random_state=None):
    """Uniform on the black squares of a 4 x 4 checkerboard over [-2, 2]^2.

    Examples
    --------
    >>> from skebm.datasets import make_checkerboard
    >>> make_checkerboard(10, random_state=0).shape
    (10, 2)
    """
    rng = check_random_state(random_state)
    x = rng.uniform(-2, 2, n_samples)
    y = rng.uniform(0, 1, n_samples) + rng.randint(0, 2, n_samples) * 2 - 2 + (np.floor(x) % 2)
    return np.stack([x, y], axis=1)


def make_ellipse(n_samples=24, rho=(2.0, 1.5), noise=0.0, uniform_angles=True, random_state=None):
    """Points on the ellipse ``(rho1 cos theta, rho2 sin theta)`` plus Gaussian noise.

    The lecture's example uses 24 evenly spaced angles (``uniform_angles=True``);
    otherwise angles are drawn uniformly at random.

    Returns
    -------
    Y : ndarray of shape (n_samples, 2)

    Examples
    --------
    >>> from skebm.datasets import make_ellipse
    >>> make_ellipse(24).shape
    (24, 2)
    """
    rng = check_random_state(random_state)
    if uniform_angles:
        theta = 2 * np.pi * np.arange(n_samples) / n_samples
    else:
        theta = rng.uniform(0, 2 * np.pi, n_samples)
    Y = np.stack([rho[0] * np.cos(theta), rho[1] * np.sin(theta)], axis=1)
    return Y + noise * rng.standard_normal(Y.shape)


def load_digits_scaled():
    """scikit-learn's 8 x 8 digits as flat rows scaled to [-1, 1], with their labels.

    Returns
    -------
    X : ndarray of shape (1797, 64)
    y : ndarray of shape (1797,)

    Examples
    --------
    >>> from skebm.datasets import load_digits_scaled
    >>> X, y = load_digits_scaled()
    >>> float(X.min()), float(X.max())
    (-1.0, 1.0)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 8.0 - 1.0, digits.target
