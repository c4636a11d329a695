"""``fit``: train any aecourse autoencoder with one visible minibatch loop.

The loop is the standard PyTorch recipe (``optimizer.zero_grad()``, the loss,
``loss.backward()``, ``optimizer.step()``) with two hooks for the regularized
autoencoders of chapter 6: ``penalty`` adds a term such as a sparsity or
contractive penalty, and ``corrupt`` feeds a corrupted batch to the encoder
while the target stays clean (denoising). Full-batch L-BFGS is its own branch:
its line search evaluates the loss several times per step, through a closure.

Every argument and ALL of the data are checked once, on entry; the loop then
runs the library's own functions without their per-batch checks
(``_validate.trusted``). The user's ``penalty``, ``loss`` and ``corrupt`` run
with every check on.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial, wraps

import torch
from tqdm.auto import tqdm

from aecourse import losses
from aecourse._validate import (
    check_array,
    check_choice,
    check_positive,
    check_positive_int,
    check_random_state,
    check_range,
    describe,
    trusted,
)

LOSSES = ("squared_error", "cross_entropy", "cross_entropy_with_logits")
OPTIMIZERS = ("adam", "sgd", "lbfgs")
EPOCH_LOSSES = ("full", "minibatch")


def _device(device) -> torch.device:
    """The requested torch device; a clear error if CUDA was asked for but is absent."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but no CUDA GPU is available "
                         f"(torch.cuda.is_available() is False); use device='cpu'.")
    return device


def _make_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    """Adam, plain SGD, or full-batch L-BFGS with a strong-Wolfe line search.

    Adam and SGD use their ``fused`` implementation: one compiled kernel updates
    every parameter, instead of several small tensor operations per parameter (on
    the course's tiny models this is about a fifth of an epoch).
    """
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, fused=True)
    return torch.optim.LBFGS(parameters, lr=lr, line_search_fn="strong_wolfe")


def _checked(callback):
    """The user's callback, run with the library's input checks on (fit's loop is trusted)."""
    if callback is None:
        return None

    @wraps(callback)
    def run(*args):
        with trusted(False):
            return callback(*args)
    return run


def _check_data(X, name: str, n_features, loss, device, dtype) -> torch.Tensor:
    """All of X, checked once and vectorised, then converted to the model's dtype and device.

    The messages describe the array the user passed (its real shape), not a minibatch.
    """
    check_array(X, name, ndim=2, n_features=n_features)
    if loss in ("cross_entropy", "cross_entropy_with_logits"):
        check_range(X, f"{name} (cross-entropy targets)", 0.0, 1.0)
    return torch.as_tensor(X, dtype=dtype, device=device)


def fit(model, X, *, loss="squared_error", epochs: int = 20, batch_size: int = 64,
        lr: float = 1e-3, optimizer: str = "adam", penalty=None, corrupt=None, X_val=None,
        random_state=0, device="cpu", epoch_loss: str = "full", progress: bool = True) -> dict:
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
        Learning rate, > 0 (for "lbfgs" use about 1).
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
    epoch_loss : str
        What history["loss"] records after each epoch. "full": the reconstruction
        loss on all of X (clean, no penalty, model in eval mode); it costs one more
        forward pass over X per epoch. "minibatch": the mean of the epoch's
        minibatch objectives as they were minimised (with the penalty and the
        corruption; free, like scikit-learn's ``loss_curve_``). L-BFGS always
        records "full".
    progress : bool
        Show a tqdm progress bar (also off when the environment has TQDM_DISABLE=1).

    Returns
    -------
    history : dict of lists, one entry per epoch
        "loss": see ``epoch_loss``; "val_loss" when X_val is given (reconstruction
        loss on all of X_val); "seconds": time since the start.

    Chapter: 2 (The link to PCA); used in chapters 3-7.
    """
    # --- the checks, at the public boundary: every argument and all of the data, once ---
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise TypeError(f"model must have encode and decode methods (e.g. "
                        f"aecourse.models.Autoencoder); got {describe(model)}.")
    if not callable(loss):
        check_choice(loss, "loss", LOSSES)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    check_choice(epoch_loss, "epoch_loss", EPOCH_LOSSES)
    for hook, name in ((penalty, "penalty"), (corrupt, "corrupt")):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be a callable or None; got {describe(hook)}.")
    device = _device(device)
    model.to(device)
    dtype = next(model.parameters()).dtype
    X = _check_data(X, "X", getattr(model, "n_features", None), loss, device, dtype)
    if X_val is not None:
        X_val = _check_data(X_val, "X_val", X.shape[1], loss, device, dtype)
    generator = check_random_state(random_state, kind="torch")
    penalty, corrupt = _checked(penalty), _checked(corrupt)
    reconstruction_loss = _checked(loss) if callable(loss) else getattr(losses, loss)
    output = model.decode_logits if loss == "cross_entropy_with_logits" else model.decode

    def objective(X_in, X_batch):
        """The minibatch loss: reconstruct the clean X_batch from X_in, plus the penalty."""
        h = model.encode(X_in)
        J = reconstruction_loss(output(h), X_batch)
        return J if penalty is None else J + penalty(model, X_in, h)

    def data_loss(data) -> float:
        """The reconstruction loss on a whole data set (clean, no penalty)."""
        with torch.no_grad():
            return float(reconstruction_loss(output(model.encode(data)), data))

    # One checked minibatch: a model/loss mismatch fails here, clearly. With gradients on, so
    # that a penalty that differentiates (e.g. losses.jacobian_penalty) works here too.
    X_first = X[:batch_size]
    if corrupt is not None:
        X_tilde = corrupt(X_first, torch.Generator().manual_seed(0))
        check_array(X_tilde, "corrupt(X_batch, generator)", ndim=2, n_features=X.shape[1])
    objective(X_first, X_first)

    # --- the training loop ---
    opt = _make_optimizer(optimizer, model.parameters(), lr)

    def lbfgs_closure(X_in):
        """L-BFGS re-evaluates the loss and its gradient at every point its line search tries."""
        opt.zero_grad()
        J = objective(X_in, X)
        J.backward()
        return J

    history = {"loss": [], "seconds": []} | ({"val_loss": []} if X_val is not None else {})
    disable = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    start = time.perf_counter()
    with trusted():  # all of the data was checked above: no per-batch checks
        for _ in (bar := tqdm(range(epochs), desc="fit", unit="epoch", disable=disable)):
            model.train()
            if optimizer == "lbfgs":  # full batch; the line search calls the closure repeatedly
                X_in = X if corrupt is None else corrupt(X, generator)
                opt.step(partial(lbfgs_closure, X_in))
            else:
                order = torch.randperm(len(X), generator=generator).to(device)
                batch_losses = []
                for i in range(0, len(X), batch_size):
                    X_batch = X[order[i:i + batch_size]]
                    X_in = X_batch if corrupt is None else corrupt(X_batch, generator)
                    opt.zero_grad()
                    J = objective(X_in, X_batch)
                    J.backward()
                    opt.step()
                    batch_losses.append(J.detach())

            model.eval()
            if epoch_loss == "minibatch" and optimizer != "lbfgs":
                history["loss"].append(float(torch.stack(batch_losses).mean()))
            else:
                history["loss"].append(data_loss(X))
            if X_val is not None:
                history["val_loss"].append(data_loss(X_val))
            if not math.isfinite(history["loss"][-1]):
                raise ValueError(f"training diverged: the loss became {history['loss'][-1]} "
                                 f"after {len(history['loss'])} epoch(s); try a smaller lr "
                                 f"(got {lr}).")
            history["seconds"].append(time.perf_counter() - start)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4g}")
    return history
