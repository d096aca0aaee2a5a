"""Plots of fitted energy-based models (matplotlib, imported only when called).

Install with ``pip install skebm[plot]``.
"""

import math
import numbers

import numpy as np

__all__ = ["plot_chain", "plot_energy_2d", "plot_history", "plot_samples"]


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


def plot_samples(X, image_shape=None, n_cols=10, fig=None, cmap="gray"):
    """Flat rows drawn as a grid of images (the first channel of each).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows such as ``estimator.sample(...)`` returns.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)``; a square image
        when None and ``n_features`` is a square number.
    n_cols : int, default=10
    fig : matplotlib Figure, default=None
    cmap : str, default="gray"

    Returns
    -------
    fig : matplotlib Figure
        One axes per row of ``X``, in reading order.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skebm.plotting import plot_samples
    >>> fig = plot_samples(np.random.default_rng(0).random((12, 64)), n_cols=6)
    >>> len(fig.axes), fig.axes[0].images[0].get_array().shape
    (12, (8, 8))
    """
    import matplotlib.pyplot as plt

    images = _as_images(np.asarray(X, dtype=float), image_shape)
    n_rows = math.ceil(len(images) / n_cols)
    fig = fig if fig is not None else plt.figure(figsize=(n_cols, 1.05 * n_rows))
    for index, image in enumerate(images):
        ax = fig.add_subplot(n_rows, n_cols, index + 1)
        ax.imshow(image, cmap=cmap)
        ax.set_axis_off()
    return fig


def plot_chain(estimator, n_chains=4, n_snapshots=8, image_shape=None, random_state=0, fig=None, cmap="gray"):
    """Snapshots along the sampler's chains (Langevin, MALA, HMC, Metropolis or Gibbs).

    Runs ``estimator.n_sample_steps`` steps of the estimator's own sampler
    from its usual start (uniform noise in the data box; for an RBM, the
    visible units given no hidden unit on) and draws each chain at
    ``n_snapshots`` evenly spaced steps, the start first: one row of images
    per chain, or for two features one panel of points per snapshot.

    Parameters
    ----------
    estimator : fitted skebm estimator that samples by a Markov chain
    n_chains : int, default=4
    n_snapshots : int, default=8
    image_shape : tuple of int, default=None
        As in :func:`plot_samples`; taken from ``estimator.image_shape`` if it has one.
    random_state : int, RandomState instance or None, default=0
    fig : matplotlib Figure, default=None
    cmap : str, default="gray"

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skebm import ScoreMatchingEBM
    >>> from skebm.datasets import make_moons
    >>> from skebm.plotting import plot_chain
    >>> model = ScoreMatchingEBM(max_iter=2, n_sample_steps=20, random_state=0).fit(make_moons(200))
    >>> len(plot_chain(model, n_chains=50, n_snapshots=5).axes)
    5
    """
    import matplotlib.pyplot as plt

    snapshots, steps = _chain_snapshots(estimator, n_chains, n_snapshots, random_state)
    if snapshots.shape[2] == 2 and image_shape is None:
        fig = fig if fig is not None else plt.figure(figsize=(2.2 * len(steps), 2.4))
        for index, (points, step) in enumerate(zip(snapshots, steps)):
            ax = fig.add_subplot(1, len(steps), index + 1)
            ax.scatter(points[:, 0], points[:, 1], s=4)
            ax.set_title(f"step {step}", fontsize=9)
        return fig
    image_shape = image_shape or getattr(estimator, "image_shape", None)
    by_chain = snapshots.transpose(1, 0, 2).reshape(-1, snapshots.shape[2])  # rows are chains, columns snapshots
    return plot_samples(by_chain, image_shape, len(steps), fig, cmap)


def _chain_snapshots(estimator, n_chains, n_snapshots, random_state):
    """``(n_snapshots, n_chains, n_features)`` positions along the chains, and their step numbers."""
    # Every step is kept and evenly spaced ones picked afterwards: the chain's length may be "auto".
    positions = []
    estimator.sample(n_chains, random_state=random_state, callback=lambda step, x: positions.append(x))
    steps = sorted(set(np.linspace(0, len(positions) - 1, n_snapshots).round().astype(int).tolist()))
    return np.stack([positions[step] for step in steps]), steps


def plot_history(estimator, keys=None, n_cols=3, fig=None):
    """Training curves from ``history_``: one panel per diagnostic, against the epoch.

    For :class:`~skebm.ContrastiveDivergenceEBM` these are the curves of the
    chapter-7 figure: loss, contrastive divergence, regularization, real and
    fake energies (and the validation contrast when ``validation_fraction``
    is set).

    Parameters
    ----------
    estimator : fitted skebm estimator, or its ``history_`` (a list of dicts)
    keys : list of str, default=None
        The diagnostics to draw; all numeric ones but the timings when None.
    n_cols : int, default=3
    fig : matplotlib Figure, default=None

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skebm.plotting import plot_history
    >>> history = [{"epoch": 1, "loss": 2.0, "real_energy": -1.0}, {"epoch": 2, "loss": 1.5, "real_energy": -2.0}]
    >>> [ax.get_title() for ax in plot_history(history).axes]
    ['loss', 'real_energy']
    """
    import matplotlib.pyplot as plt

    history = estimator if isinstance(estimator, list) else estimator.history_
    if not history:
        raise ValueError("The history is empty: fit the estimator first.")
    if keys is None:
        keys = [
            key
            for key, value in history[0].items()
            if key not in ("epoch", "cpu_time", "wall_time") and isinstance(value, numbers.Real)
        ]
    n_rows = math.ceil(len(keys) / n_cols)
    fig = fig if fig is not None else plt.figure(figsize=(3.6 * min(n_cols, len(keys)), 2.6 * n_rows))
    epochs = [record["epoch"] for record in history]
    for index, key in enumerate(keys):
        ax = fig.add_subplot(n_rows, min(n_cols, len(keys)), index + 1)
        ax.plot(epochs, [record.get(key, np.nan) for record in history], marker=".")
        ax.set_title(key)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def _as_images(X, image_shape):
    if image_shape is None:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise ValueError(f"Pass image_shape: {X.shape[1]} features do not make a square image.")
        image_shape = (side, side)
    if int(np.prod(image_shape)) != X.shape[1]:
        raise ValueError(f"image_shape={tuple(image_shape)} does not hold {X.shape[1]} features.")
    images = X.reshape(len(X), *image_shape)
    return images[:, 0] if images.ndim == 4 else images  # the first channel
