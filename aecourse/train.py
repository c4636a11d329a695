"""``fit``: train any aecourse autoencoder with one visible minibatch loop.

The loop is the standard PyTorch recipe (``model.train()``,
``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``) with two
hooks for the regularized autoencoders of chapter 6: ``penalty`` adds a term
such as a sparsity or contractive penalty, and ``corrupt`` feeds a corrupted
batch to the encoder while the target stays clean (denoising).
"""

from __future__ import annotations

import math
import os
import time
from functools import partial

import torch
from tqdm.auto import tqdm

from aecourse import losses
from aecourse._validate import (
    check_array,
    check_choice,
    check_nonnegative,
    check_positive_int,
    describe,
    trusted,
)
from aecourse.models import _generator

LOSSES = ("squared_error", "cross_entropy", "cross_entropy_with_logits")
OPTIMIZERS = ("adam", "sgd", "lbfgs")


def _device(device) -> torch.device:
    """The requested torch device; a clear error if CUDA was asked for but is absent."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but no CUDA GPU is available "
                         f"(torch.cuda.is_available() is False); use device='cpu'.")
    return device


def _make_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    """Adam, plain SGD, or full-batch L-BFGS with a strong-Wolfe line search."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    return torch.optim.LBFGS(parameters, lr=lr, line_search_fn="strong_wolfe")


def fit(model, X, *, loss="squared_error", epochs: int = 20, batch_size: int = 64,
        lr: float = 1e-3, optimizer: str = "adam", penalty=None, corrupt=None, X_val=None,
        random_state=0, device="cpu", progress: bool = True) -> dict:
    """Train ``model`` to reconstruct ``X``; return the per-epoch history.

    Parameters
    ----------
    model : Autoencoder, DeepAutoencoder or any module with ``encode``/``decode``
        Trained in place (and moved to ``device``).
    X : ndarray or Tensor, shape (m, n)
        Training data, one example per row (converted once to the model's dtype).
    loss : str or callable
        "squared_error", "cross_entropy" or "cross_entropy_with_logits" (the
        model's ``decode_logits`` output is then used), or ``loss(x_hat, x)``
        returning a torch scalar.
    epochs : int
        Passes over the data (for "lbfgs": outer steps of up to 20 iterations).
    batch_size : int
        Examples per minibatch (ignored by "lbfgs", which uses the full batch).
    lr : float
        Learning rate (for "lbfgs" use about 1).
    optimizer : str
        "adam", "sgd" or "lbfgs".
    penalty : callable, optional
        ``penalty(model, X_in, h) -> torch scalar`` added to the minibatch loss;
        ``X_in`` (b, n) is the encoder's input, ``h`` (b, d) its code.
    corrupt : callable, optional
        ``corrupt(X_batch, generator) -> X_tilde`` (b, n): the encoder sees
        ``X_tilde``, the loss compares with the clean ``X_batch``.
    X_val : ndarray or Tensor, shape (m_val, n), optional
        Validation data; adds "val_loss" to the history.
    random_state : int, None or torch.Generator
        Seeds the shuffling and the ``corrupt`` generator (local, never global).
    device : str or torch.device
        "cpu" (default) or "cuda".
    progress : bool
        Show a tqdm progress bar (also off when the environment has TQDM_DISABLE=1).

    Returns
    -------
    history : dict of lists, one entry per epoch
        "loss": reconstruction loss on all of X (clean, no penalty, model in eval
        mode); "val_loss" when X_val is given; "seconds": time since the start.

    Chapter: 2 (The link to PCA); used in chapters 3-7.
    """
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise TypeError(f"model must have encode and decode methods (e.g. "
                        f"aecourse.models.Autoencoder); got {describe(model)}.")
    if not callable(loss):
        check_choice(loss, "loss", LOSSES)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_nonnegative(lr, "lr")
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    for hook, name in ((penalty, "penalty"), (corrupt, "corrupt")):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be a callable or None; got {describe(hook)}.")
    device = _device(device)
    model.to(device)
    dtype = next(model.parameters()).dtype
    X = torch.as_tensor(check_array(X, "X", ndim=2), dtype=dtype, device=device)
    if X_val is not None:
        check_array(X_val, "X_val", ndim=2, n_features=X.shape[1])
        X_val = torch.as_tensor(X_val, dtype=dtype, device=device)
    loss_fn = getattr(losses, loss) if isinstance(loss, str) else loss
    output = model.decode_logits if loss == "cross_entropy_with_logits" else model.decode
    generator = _generator(random_state)
    opt = _make_optimizer(optimizer, model.parameters(), lr)
    m = X.shape[0]
    if optimizer == "lbfgs":
        batch_size = m
    history = {"loss": [], "seconds": []} | ({"val_loss": []} if X_val is not None else {})
    disable = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    start = time.perf_counter()

    def minibatch_loss(X_in, X_batch):  # the optimizer calls it (L-BFGS: several times)
        opt.zero_grad()
        h = model.encode(X_in)
        batch_loss = loss_fn(output(h), X_batch)
        if penalty is not None:
            batch_loss = batch_loss + penalty(model, X_in, h)
        batch_loss.backward()
        return batch_loss

    with torch.no_grad():  # one checked minibatch: a wrong shape or range fails here, clearly
        loss_fn(output(model.encode(X[:batch_size])), X[:batch_size])
    for _ in (bar := tqdm(range(epochs), desc="fit", unit="epoch", disable=disable)):
        model.train()
        order = torch.randperm(m, generator=generator).to(device)
        with trusted():  # inputs were checked above; skip the per-batch checks
            for i in range(0, m, batch_size):
                X_batch = X[order[i:i + batch_size]]
                X_in = X_batch if corrupt is None else corrupt(X_batch, generator)
                opt.step(partial(minibatch_loss, X_in, X_batch))

        model.eval()
        with torch.no_grad(), trusted():  # the epoch's loss on the full, clean training set
            history["loss"].append(float(loss_fn(output(model.encode(X)), X)))
            if X_val is not None:
                history["val_loss"].append(float(loss_fn(output(model.encode(X_val)), X_val)))
        if not math.isfinite(history["loss"][-1]):
            raise ValueError(f"training diverged: the loss became {history['loss'][-1]} after "
                             f"{len(history['loss'])} epoch(s); try a smaller lr (got {lr}).")
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix(loss=f"{history['loss'][-1]:.4g}")
    return history
