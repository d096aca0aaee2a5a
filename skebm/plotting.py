"""Plots of fitted energy-based models (matplotlib, imported only when called).

Install with ``pip install skebm[plot]``.
"""

import numpy as np

__all__ = ["plot_energy_2d"]


def plot_energy_2d(estimator, X=None, bounds=None, resolution=120, n_arrows=17, ax=None, cmap="magma_r"):
    """Heat map of a 2-D model's energy (the free energy for latent models), with score arrows.

    The arrows are ``-grad E``, the score, by finite differences on the
    grid: they point down the energy, towards where the model puts its mass
    (for :class:`~skebm.LatentVariableEBM`, towards the decoder's manifold).

    Parameters
    ----------
    estimator : fitted skebm estimator with two features
        Anything with an ``energy(X)`` method.
    X : array-like of shape (n_samples, 2), default=None
        Points drawn on top (the training data, say).
    bounds : tuple (xmin, xmax, ymin, ymax), default=None
        The plotted box; the range of ``X`` widened by 20% when None.
    resolution : int, default=120
        Grid points per axis for the heat map.
    n_arrows : int, default=17
        Arrows per axis; 0 draws none.
    ax : matplotlib Axes, default=None
    cmap : str, default="magma_r"

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skebm import LatentVariableEBM
    >>> from skebm.datasets import make_ellipse
    >>> from skebm.plotting import plot_energy_2d
    >>> Y = make_ellipse(24)
    >>> ax = plot_energy_2d(LatentVariableEBM(max_iter=5, random_state=0).fit(Y), Y)
    >>> len(ax.images), len(ax.collections)   # the heat map; the arrows and the points
    (1, 2)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(6, 4.5)).add_subplot()
    xmin, xmax, ymin, ymax = bounds if bounds is not None else _padded_bounds(np.asarray(X))
    gx, gy = np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution)
    energies = estimator.energy(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)).reshape(resolution, resolution)
    image = ax.imshow(energies, origin="lower", extent=[xmin, xmax, ymin, ymax], cmap=cmap, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label="energy")
    if n_arrows:
        grad_y, grad_x = np.gradient(energies, gy, gx)
        step = max(1, resolution // n_arrows)
        mesh_x, mesh_y = np.meshgrid(gx, gy)
        pick = (slice(step // 2, None, step), slice(step // 2, None, step))
        ax.quiver(mesh_x[pick], mesh_y[pick], -grad_x[pick], -grad_y[pick], color="white", alpha=0.8)
    if X is not None:
        ax.scatter(np.asarray(X)[:, 0], np.asarray(X)[:, 1], s=10, c="tab:cyan", edgecolors="k", linewidths=0.3)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    return ax


def _padded_bounds(X):
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError("plot_energy_2d needs bounds, or points X of shape (n_samples, 2) to take them from.")
    low, high = X.min(0), X.max(0)
    pad = 0.2 * np.where(high > low, high - low, 1.0)
    return low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1]
