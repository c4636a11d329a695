"""Reconstruction losses and code penalties.

Every function works on NumPy arrays AND torch tensors and returns the same
kind it was given, so the NumPy backprop of ``aecourse.scratch`` and the torch
training of ``aecourse.train`` share one copy of each formula. The helper
``_xp(x)`` picks the namespace: ``torch`` for tensors, ``numpy`` otherwise.

Convention for every scalar loss: SUM over features j, MEAN over examples i,
e.g. ``squared_error = (1/m) sum_i sum_j (x_hat_ij - x_ij)**2`` for ``X`` of
shape ``(m, n)`` (one example per row; a 1-D input counts as one example).
"""

from __future__ import annotations

import numpy as np
import torch

from aecourse._validate import (
    check_array,
    check_nonnegative,
    check_open_unit,
    check_range,
    check_same_shape,
    describe,
)


def _xp(x):
    """The array namespace of ``x``: ``torch`` for tensors, ``numpy`` for arrays."""
    return torch if isinstance(x, torch.Tensor) else np


def _pair(x_hat, x_hat_name: str, x, x_name: str):
    """Check two float arrays of one shape; a NumPy partner of a tensor becomes a tensor."""
    check_array(x_hat, x_hat_name, ndim=(1, 2))
    check_array(x, x_name, ndim=(1, 2))
    check_same_shape(x_hat, x_hat_name, x, x_name)
    if isinstance(x_hat, torch.Tensor) != isinstance(x, torch.Tensor):
        like = x_hat if isinstance(x_hat, torch.Tensor) else x
        x_hat, x = (torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in (x_hat, x))
    return x_hat, x


def _values(x):
    """``x`` without autograd history, for range checks (no warning, no graph)."""
    return x.detach() if isinstance(x, torch.Tensor) else x


def _n_examples(x) -> int:
    """m: the number of rows of a 2-D array, 1 for a single example."""
    return x.shape[0] if x.ndim == 2 else 1


def squared_error(x_hat, x):
    """Squared reconstruction error, summed over features, averaged over examples.

    ``L = (1/m) sum_i sum_j (x_hat_ij - x_ij)**2``; the mean squared error of
    other libraries is this divided by n.

    Parameters
    ----------
    x_hat : ndarray or Tensor, shape (m, n) or (n,)
        Reconstructions.
    x : ndarray or Tensor, same shape
        Targets (the inputs).

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 4 (Losses).
    """
    x_hat, x = _pair(x_hat, "x_hat", x, "x")
    return ((x_hat - x) ** 2).sum() / _n_examples(x)


def cross_entropy(x_hat, x, *, eps: float = 1e-7):
    """Binary cross-entropy from probabilities, summed over features, averaged over examples.

    ``L = -(1/m) sum_i sum_j [x_ij log x_hat_ij + (1 - x_ij) log(1 - x_hat_ij)]``,
    with ``x_hat`` clipped to ``[eps, 1 - eps]`` so that ``log 0`` never occurs.
    For each example it is minimised exactly at ``x_hat = x`` when x is 0 or 1.

    Parameters
    ----------
    x_hat : ndarray or Tensor, shape (m, n) or (n,)
        Probabilities in [0, 1], e.g. sigmoid outputs (for logits use
        ``cross_entropy_with_logits``).
    x : ndarray or Tensor, same shape
        Targets in [0, 1].
    eps : float
        Clipping margin.

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 4 (Losses).
    """
    x_hat, x = _pair(x_hat, "x_hat", x, "x")
    check_range(x, "x (cross-entropy targets)", 0.0, 1.0)
    lo, hi = float(_values(x_hat).min()), float(_values(x_hat).max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"x_hat must hold probabilities in [0, 1]; got values in [{lo:.4g}, "
                         f"{hi:.4g}]. For decoder pre-activations use cross_entropy_with_logits.")
    xp = _xp(x_hat)
    p = xp.clip(x_hat, eps, 1.0 - eps)
    return -(x * xp.log(p) + (1.0 - x) * xp.log(1.0 - p)).sum() / _n_examples(x)


def cross_entropy_with_logits(a_2, x):
    """Binary cross-entropy of ``sigmoid(a_2)`` computed stably from the logits ``a_2``.

    Per entry ``-x log s(a) - (1 - x) log(1 - s(a)) = softplus(a) - x a``, written
    as ``max(a, 0) - x a + log1p(exp(-|a|))`` so nothing overflows for large
    ``|a|`` (as in ``torch.nn.BCEWithLogitsLoss``). Summed over features,
    averaged over examples.

    Parameters
    ----------
    a_2 : ndarray or Tensor, shape (m, n) or (n,)
        Decoder pre-activations (any real numbers).
    x : ndarray or Tensor, same shape
        Targets in [0, 1].

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 4 (Losses).
    """
    a_2, x = _pair(a_2, "a_2", x, "x")
    check_range(x, "x (cross-entropy targets)", 0.0, 1.0)
    xp = _xp(a_2)
    positive_part = (a_2 + xp.abs(a_2)) / 2  # max(a, 0)
    per_entry = positive_part - x * a_2 + xp.log1p(xp.exp(-xp.abs(a_2)))
    return per_entry.sum() / _n_examples(x)


def _check_open_unit_array(x, name: str) -> None:
    """Every entry strictly inside (0, 1), where KL(rho || x) is finite."""
    lo, hi = float(_values(x).min()), float(_values(x).max())
    if not (0.0 < lo and hi < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1 (KL is infinite at 0 and 1); "
                         f"got values in [{lo:.4g}, {hi:.4g}].")


def kl_divergence(rho, rho_hat):
    """Elementwise KL divergence between Bernoulli(rho) and Bernoulli(rho_hat_j).

    ``KL(rho || rho_hat_j) = rho log(rho / rho_hat_j)
    + (1 - rho) log((1 - rho) / (1 - rho_hat_j))``:
    zero at ``rho_hat_j = rho``, positive elsewhere, unbounded as ``rho_hat_j``
    approaches 0 or 1. Its derivative is ``-rho/rho_hat + (1 - rho)/(1 - rho_hat)``.
    (Elementwise: nothing is summed; ``kl_sparsity`` sums over features.)

    Parameters
    ----------
    rho : float
        Target activation in (0, 1), e.g. 0.05.
    rho_hat : ndarray or Tensor, any shape
        Average activations, each in (0, 1).

    Returns
    -------
    ndarray or Tensor, same shape as ``rho_hat``

    Chapter: 6a (Sparse autoencoders).
    """
    rho = check_open_unit(rho, "rho")
    check_array(rho_hat, "rho_hat")
    _check_open_unit_array(rho_hat, "rho_hat")
    xp = _xp(rho_hat)
    return rho * xp.log(rho / rho_hat) + (1 - rho) * xp.log((1 - rho) / (1 - rho_hat))


def kl_sparsity(rho, h):
    """Sparsity penalty ``sum_j KL(rho || rho_hat_j)`` with ``rho_hat = h`` averaged over examples.

    The mean over examples happens inside ``rho_hat_j = (1/m) sum_i h_ij``; the
    KL terms are then summed over the d features (hidden units). Multiply by
    ``beta`` yourself: ``J_sparse = J + beta * kl_sparsity(rho, h)``. The argument
    order follows ``kl_divergence(rho, rho_hat)``: the target first.

    Parameters
    ----------
    rho : float
        Target average activation in (0, 1).
    h : ndarray or Tensor, shape (m, d)
        Hidden activations in [0, 1] (e.g. sigmoid codes); their column means
        must lie strictly inside (0, 1).

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 6a (Sparse autoencoders).
    """
    rho = check_open_unit(rho, "rho")
    check_array(h, "h", ndim=2)
    check_range(h, "h (hidden activations)", 0.0, 1.0)
    rho_hat = h.mean(0)
    _check_open_unit_array(rho_hat, "rho_hat = h.mean(axis=0)")
    return kl_divergence(rho, rho_hat).sum()


def l1_activity(h, lam):
    """L1 sparsity penalty ``lam (1/m) sum_i sum_j |h_ij|`` (sum over features, mean over examples).

    It is ``-log`` of a Laplace prior on the code, up to a constant.

    Parameters
    ----------
    h : ndarray or Tensor, shape (m, d) or (d,)
        Hidden activations.
    lam : float
        Penalty weight, >= 0.

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 6a (Sparse autoencoders).
    """
    lam = check_nonnegative(lam, "lam")
    check_array(h, "h", ndim=(1, 2))
    return lam * _xp(h).abs(h).sum() / _n_examples(h)


def contractive_penalty(W, h):
    """Squared Frobenius norm of a sigmoid encoder's Jacobian, in closed form.

    For ``h = sigmoid(W x + b)``, ``dh_j/dx_k = h_j (1 - h_j) W_jk``, so
    ``||dh/dx||_F^2 = sum_j (h_j (1 - h_j))**2 sum_k W_jk**2``. Summed over the
    features (hidden units j), averaged over examples:
    ``(1/m) sum_i sum_j (h_ij (1 - h_ij))**2 sum_k W_jk**2``. Multiply by ``lam``
    yourself.

    Parameters
    ----------
    W : ndarray or Tensor, shape (d, n)
        Encoder weights.
    h : ndarray or Tensor, shape (m, d)
        Sigmoid codes, in [0, 1].

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 6c (Contractive autoencoders).
    """
    check_array(W, "W", ndim=2)
    check_array(h, "h", ndim=2, n_features=W.shape[0])
    check_range(h, "h (sigmoid codes)", 0.0, 1.0)
    if isinstance(W, torch.Tensor) != isinstance(h, torch.Tensor):
        raise TypeError(f"W and h must both be NumPy arrays or both torch tensors; got "
                        f"{describe(W)} and {describe(h)}.")
    return ((h * (1 - h)) ** 2 * (W ** 2).sum(1)).sum() / _n_examples(h)


def jacobian_penalty(encode, X):
    """``(1/m) sum_i ||dh/dx (x_i)||_F^2`` by autograd, for any encoder.

    The Jacobian is built one code unit at a time: the gradient of
    ``h[:, j].sum()`` with respect to ``X`` holds row i's ``dh_ij/dx_i``
    (examples do not interact in a per-example encoder). ``create_graph=True``
    keeps the result differentiable, so it can be added to a training loss.
    Summed over features (all Jacobian entries), averaged over examples.

    Parameters
    ----------
    encode : callable
        Maps a tensor (m, n) to codes (m, d), e.g. ``model.encode``.
    X : Tensor or ndarray, shape (m, n)
        Inputs (NumPy is converted to a float32 tensor).

    Returns
    -------
    Tensor, shape ()

    Chapter: 6c (Contractive autoencoders).
    """
    if not callable(encode):
        raise TypeError(f"encode must be a callable such as model.encode; got {describe(encode)}.")
    check_array(X, "X", ndim=2)
    X = torch.as_tensor(X).detach().requires_grad_(True)
    h = encode(X)
    total = 0.0
    for j in range(h.shape[1]):
        (dh_j,) = torch.autograd.grad(h[:, j].sum(), X, create_graph=True)
        total = total + (dh_j ** 2).sum()
    return total / X.shape[0]


def _check_gaussian(mu, logvar):
    """Check the mean and log-variance of a diagonal Gaussian: float arrays of one shape."""
    check_array(mu, "mu", ndim=(1, 2))
    check_array(logvar, "logvar", ndim=(1, 2))
    check_same_shape(mu, "mu", logvar, "logvar")
    if isinstance(mu, torch.Tensor) != isinstance(logvar, torch.Tensor):
        raise TypeError(f"mu and logvar must both be NumPy arrays or both torch tensors; got "
                        f"{describe(mu)} and {describe(logvar)}.")


def gaussian_kl(mu, logvar):
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` in closed form, summed over the code units.

    For one example with code size d,
    ``KL = (1/2) sum_j (mu_j**2 + sigma_j**2 - 1 - log sigma_j**2)`` with
    ``sigma_j**2 = exp(logvar_j)``: zero exactly when ``mu = 0`` and ``sigma = 1``,
    positive otherwise. Summed over the d code units, averaged over examples: the
    regulariser of the variational autoencoder's ELBO.

    Parameters
    ----------
    mu : ndarray or Tensor, shape (m, d) or (d,)
        Means of the encoder's Gaussian q(h|x).
    logvar : ndarray or Tensor, same shape
        Log-variances ``log sigma**2`` (any real numbers: the log keeps sigma > 0).

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 9 (From autoencoders to generative models).
    """
    _check_gaussian(mu, logvar)
    xp = _xp(mu)
    per_entry = mu ** 2 + xp.exp(logvar) - 1.0 - logvar
    return 0.5 * per_entry.sum() / _n_examples(mu)
