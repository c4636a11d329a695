"""Corruption processes ``C(x_tilde | x)`` for denoising autoencoders.

Each function takes clean inputs ``X`` (NumPy array or torch tensor) and returns a
corrupted copy of the same kind, shape and dtype; ``X`` itself never changes. The
randomness comes from a local generator (``random_state``: an int seed, None for
fresh entropy, or a generator of X's kind), never the global one, so ``train.fit``
can pass its own ``torch.Generator`` to a ``corrupt`` callback.
"""

from __future__ import annotations

import torch

from aecourse._validate import check_array, check_fraction, check_nonnegative, check_random_state


def _random_like(X, random_state, *, normal=False):
    """Uniform [0, 1) (or standard normal) numbers of X's shape, kind and dtype.

    They come from a local generator: ``random_state`` is an int seed, None (fresh
    entropy), a numpy Generator (NumPy X) or a torch.Generator (tensor X).
    """
    if not isinstance(X, torch.Tensor):
        rng = check_random_state(random_state, kind="numpy", for_what=" for a NumPy X")
        draw = rng.standard_normal if normal else rng.random
        return draw(X.shape).astype(X.dtype, copy=False)
    generator = check_random_state(random_state, kind="torch", for_what=" for a tensor X")
    draw = torch.randn if normal else torch.rand
    # Drawn on the generator's device, then moved to X's (e.g. a CPU generator, CUDA data).
    return draw(X.shape, generator=generator, device=generator.device, dtype=X.dtype).to(X.device)


def mask_noise(X, p, *, random_state=None):
    """Masking noise: set each entry to 0 independently with probability ``p``.

    Parameters
    ----------
    X : ndarray or Tensor, shape (m, n)
        Clean inputs.
    p : float
        Corruption probability in [0, 1].
    random_state : int, None, numpy Generator (NumPy X) or torch.Generator (tensor X)

    Returns
    -------
    X_tilde : same kind, shape and dtype as ``X``

    Chapter: 6b (Denoising autoencoders).
    """
    check_array(X, "X")
    p = check_fraction(p, "p")
    return X * (_random_like(X, random_state) >= p)


def gaussian_noise(X, sigma, *, random_state=None):
    """Additive isotropic Gaussian noise: ``X_tilde ~ N(X, sigma**2 I)``.

    Parameters
    ----------
    X : ndarray or Tensor, shape (m, n)
        Clean inputs.
    sigma : float
        Noise standard deviation, >= 0.
    random_state : int, None, numpy Generator (NumPy X) or torch.Generator (tensor X)

    Returns
    -------
    X_tilde : same kind, shape and dtype as ``X``

    Chapter: 6b (Denoising autoencoders).
    """
    check_array(X, "X")
    sigma = check_nonnegative(sigma, "sigma")
    return X + sigma * _random_like(X, random_state, normal=True)


def salt_and_pepper(X, p, *, low=0.0, high=1.0, random_state=None):
    """Salt-and-pepper noise: with probability ``p`` an entry becomes ``low`` or ``high``.

    Each corrupted entry is ``low`` ("pepper") or ``high`` ("salt") with probability 1/2.

    Parameters
    ----------
    X : ndarray or Tensor, shape (m, n)
        Clean inputs.
    p : float
        Corruption probability in [0, 1].
    low, high : float
        The "pepper" and "salt" values, e.g. the data's minimum and maximum.
    random_state : int, None, numpy Generator (NumPy X) or torch.Generator (tensor X)

    Returns
    -------
    X_tilde : same kind, shape and dtype as ``X``

    Chapter: 6b (Denoising autoencoders).
    """
    check_array(X, "X")
    p = check_fraction(p, "p")
    u = _random_like(X, random_state)
    X_tilde = X.clone() if isinstance(X, torch.Tensor) else X.copy()
    # u < p marks a corrupted entry; its position inside [0, p) picks pepper or salt.
    X_tilde[u < p / 2] = low
    X_tilde[(u >= p / 2) & (u < p)] = high
    return X_tilde
