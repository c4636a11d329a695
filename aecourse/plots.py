"""Figures used throughout the course, drawn with matplotlib's object API.

Every function accepts NumPy arrays or torch tensors (tensors are detached and
moved to the CPU), returns the ``matplotlib.figure.Figure`` it drew, and closes
nothing, so a notebook shows the figure and a script may save it.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from aecourse._validate import (
    as_numpy,
    check_open_unit,
    check_positive_int,
    describe,
)
from aecourse.losses import kl_divergence


def _float64(x, name, *, ndim=2):
    """A float64 NumPy copy of an array or tensor, checked to have ``ndim`` dimensions."""
    return np.array(as_numpy(x, name, ndim=ndim), dtype=np.float64)


def _image_shape(n_features, shape):
    """The (height, width) to draw a row of ``n_features`` pixels; square when not given."""
    if shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"cannot guess the image shape of {n_features} features (not a "
                             f"square number); pass shape=(height, width).")
        return side, side
    if len(shape) != 2 or math.prod(shape) != n_features:
        raise ValueError(f"shape must be (height, width) with height * width == {n_features}, "
                         f"the number of features; got {shape!r}.")
    return tuple(int(s) for s in shape)


def _blank(ax):
    """Remove ticks and frame but keep the axis labels usable."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_images(X, *, shape=None, n_cols=10, titles=None, cmap="gray", title=None):
    """Draw each row of ``X`` as an image in a grid, all on one common grey scale.

    Parameters
    ----------
    X : ndarray or Tensor of shape (m, n)
        One image per row.
    shape : tuple (height, width), optional
        Image shape; inferred for square images (64 -> 8x8, 784 -> 28x28).
    n_cols : int
        Images per grid row.
    titles : sequence of m str, optional
        A caption above each image.
    cmap : str
        Matplotlib colour map.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ceil(m / n_cols) x min(n_cols, m) axes; the first m hold one image each.

    Chapter: 1 (What is an autoencoder?) and later chapters.
    """
    X = _float64(X, "X")
    m, n = X.shape
    height, width = _image_shape(n, shape)
    n_cols = min(check_positive_int(n_cols, "n_cols"), m)
    if titles is not None and len(titles) != m:
        raise ValueError(f"titles must give one caption per image ({m}); got {len(titles)}.")
    n_rows = math.ceil(m / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols, 1.2 * n_rows + 0.4),
                             layout="constrained", squeeze=False)
    vmin, vmax = X.min(), X.max()
    for i, ax in enumerate(axes.flat):
        _blank(ax)
        if i < m:
            ax.imshow(X[i].reshape(height, width), cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title is not None:
        fig.suptitle(title)
    return fig


def show_reconstructions(X, X_hat, *, n=10, shape=None, title=None):
    """Draw the first ``n`` originals in the top row and their reconstructions below.

    Parameters
    ----------
    X : ndarray or Tensor of shape (m, n_features)
        Original images, one per row.
    X_hat : ndarray or Tensor of shape (m, n_features)
        Their reconstructions x_hat, row for row.
    n : int
        How many pairs to draw (at most m).
    shape : tuple (height, width), optional
        Image shape; inferred for square images.
    title : str, optional
        Title of the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        2 x min(n, m) axes: row 0 originals, row 1 reconstructions, one grey scale.

    Chapter: 1 (What is an autoencoder?), 3 (Decoders), 7 (Using autoencoders).
    """
    X, X_hat = _float64(X, "X"), _float64(X_hat, "X_hat")
    if X.shape != X_hat.shape:
        raise ValueError(f"X and X_hat must have the same shape; got {X.shape} and {X_hat.shape}.")
    n = min(check_positive_int(n, "n"), len(X))
    height, width = _image_shape(X.shape[1], shape)
    vmin, vmax = min(X[:n].min(), X_hat[:n].min()), max(X[:n].max(), X_hat[:n].max())
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n + 0.6, 2.9), layout="constrained",
                             squeeze=False)
    for row, (images, label) in enumerate([(X, "original"), (X_hat, "reconstruction")]):
        for j in range(n):
            _blank(axes[row, j])
            axes[row, j].imshow(images[j].reshape(height, width), cmap="gray",
                                vmin=vmin, vmax=vmax)
        axes[row, 0].set_ylabel(label, fontsize=9)
    if title is not None:
        fig.suptitle(title)
    return fig


def max_activating_inputs(W):
    """The input of norm 1 that maximally activates each hidden unit.

    Unit i computes g(W_i . x + b_i) with g increasing, so over ||x||^2 <= 1 it is
    largest at x = W_i / ||W_i||, i.e. x_j = W_ij / sqrt(sum_j W_ij^2)
    (Cauchy-Schwarz).

    Parameters
    ----------
    W : ndarray or Tensor of shape (d, n)
        Encoder weights, one row per hidden unit.

    Returns
    -------
    X_max : ndarray of shape (d, n)
        Row i is the maximising input of unit i; every row has norm 1.

    Chapter: 6a (Sparse autoencoders).
    """
    W = _float64(W, "W")
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    if np.any(norms == 0):
        dead = np.flatnonzero(norms[:, 0] == 0).tolist()
        raise ValueError(f"W has all-zero rows {dead[:10]}: those units respond to no input "
                         f"direction, so they have no maximising input.")
    return W / norms


def show_filters(W, *, shape=None, n_cols=None):
    """Draw every hidden unit's maximally activating input as an image.

    Each filter is stretched to its own min..max for display, so the pattern
    shows even when units differ in scale.

    Parameters
    ----------
    W : ndarray or Tensor of shape (d, n)
        Encoder weights, one row per hidden unit.
    shape : tuple (height, width), optional
        Image shape of one input; inferred for square inputs.
    n_cols : int, optional
        Filters per grid row; about sqrt(d) by default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ceil(d / n_cols) x n_cols axes; the first d hold one filter each.

    Chapter: 6a (Sparse autoencoders).
    """
    X_max = max_activating_inputs(W)
    d, n = X_max.shape
    height, width = _image_shape(n, shape)
    n_cols = math.ceil(math.sqrt(d)) if n_cols is None else check_positive_int(n_cols, "n_cols")
    n_cols = min(n_cols, d)
    n_rows = math.ceil(d / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.8 * n_cols, 0.8 * n_rows),
                             layout="constrained", squeeze=False)
    for i, ax in enumerate(axes.flat):
        _blank(ax)
        if i < d:
            ax.imshow(X_max[i].reshape(height, width), cmap="gray",
                      vmin=X_max[i].min(), vmax=X_max[i].max())
    return fig


def plot_codes(H, y, *, title=None):
    """Scatter 2-D codes coloured by label: a legend for <= 10 classes, else a colour bar.

    Parameters
    ----------
    H : ndarray or Tensor of shape (m, 2)
        Codes h, e.g. from an autoencoder with two hidden units.
    y : ndarray or Tensor of shape (m,)
        Labels (or any number per example) used for the colour.
    title : str, optional
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes.

    Chapter: 7 (Using autoencoders).
    """
    H = _float64(H, "H")
    if H.shape[1] != 2:
        raise ValueError(f"H must have 2 columns (a 2-D code); got {describe(H)}. Reduce it "
                         f"to 2-D first, e.g. with PCA or t-SNE.")
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.shape != (len(H),):
        raise ValueError(f"y must have shape ({len(H)},), one label per row of H; got shape "
                         f"{y.shape}.")
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    classes = np.unique(y)
    if len(classes) <= 10:
        for k in classes:
            ax.scatter(H[y == k, 0], H[y == k, 1], s=8, alpha=0.7, label=str(k))
        ax.legend(title="label", markerscale=2, fontsize=8)
    else:
        points = ax.scatter(H[:, 0], H[:, 1], c=y, s=8, alpha=0.7, cmap="viridis")
        fig.colorbar(points, ax=ax, label="label")
    ax.set_xlabel("$h_1$")
    ax.set_ylabel("$h_2$")
    if title is not None:
        ax.set_title(title)
    return fig


def plot_history(history, *, title=None, log=False):
    """Plot the training (and validation) loss per epoch.

    Parameters
    ----------
    history : dict
        As returned by ``aecourse.train.fit``: "loss" is a list with one value
        per epoch; "val_loss", when present, another list of the same length.
    title : str, optional
        Axes title.
    log : bool
        Use a logarithmic loss axis.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes with one line per curve.

    Chapter: 2 (The link to PCA) and every chapter that trains.
    """
    if not isinstance(history, dict) or "loss" not in history:
        raise ValueError(f"history must be a dict with a 'loss' list, as returned by "
                         f"aecourse.train.fit; got {describe(history)}.")
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for key, label in [("loss", "training"), ("val_loss", "validation")]:
        if key in history:
            values = np.asarray(history[key], dtype=float)
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return fig


def plot_kl(rho=0.2):
    """Plot the sparsity penalty KL(rho || rho_hat) as rho_hat runs over (0, 1).

    It is 0 at rho_hat = rho (marked by a dashed line) and grows without bound
    as rho_hat approaches 0 or 1.

    Parameters
    ----------
    rho : float in (0, 1)
        The target average activation.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes with the curve and a vertical line at rho.

    Chapter: 6a (Sparse autoencoders).
    """
    rho = check_open_unit(rho, "rho")
    rho_hat = np.linspace(0.001, 0.999, 999)
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.plot(rho_hat, kl_divergence(rho, rho_hat),
            label=rf"KL($\rho\,\|\,\hat\rho$), $\rho$ = {rho:g}")
    ax.axvline(rho, color="gray", linestyle="--", label=r"$\hat\rho = \rho$")
    ax.set_xlabel(r"$\hat\rho$ (average activation of a hidden unit)")
    ax.set_ylabel("penalty")
    ax.set_xlim(0, 1)
    ax.legend()
    return fig
