"""A one-hidden-layer autoencoder in NumPy with a hand-written backward pass.

CS231n style: each layer has ``*_forward(...) -> (out, cache)`` and a
``*_backward(dout, cache)`` that turns ``dL/d(out)`` into the gradients of the
layer's inputs. With one example per row of ``X`` (shape ``(m, n)``)::

    a_1 = X @ W.T + b          h_1 = g(a_1)      encoder  W (d, n), b (d,)
    a_2 = h_1 @ W_star.T + c   x_hat = f(a_2)    decoder  W_star (n, d), c (n,)

``ae_backward`` is the ONE backward pass: it starts from ``dL/dx_hat`` and never
asks which loss produced it, so a new loss needs one new ``*_grad`` function.
The losses follow ``aecourse.losses`` (sum over features, MEAN over the m
examples), so every ``*_grad`` below carries the factor ``1/m``.

The mathematics comes first; each public function starts with ONE call to an
input check, and the checks live together at the end of the module.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit  # the logistic function, without overflow warnings

from aecourse import losses
from aecourse._validate import (
    check_array,
    check_choice,
    check_keys,
    check_nonnegative,
    check_open_unit,
    check_positive_int,
    check_random_state,
    check_same_shape,
    describe,
)
from aecourse.models import ACTIVATIONS, DECODER_ACTIVATIONS, PARAM_NAMES

# name -> (function of a, derivative written with the input a and the output out)
_FUNCTIONS = {
    "sigmoid": (expit, lambda a, out: out * (1 - out)),
    "tanh": (np.tanh, lambda a, out: 1 - out**2),
    "relu": (lambda a: np.maximum(a, 0), lambda a, out: (a > 0).astype(a.dtype)),
    "leaky_relu": (lambda a: np.where(a > 0, a, 0.01 * a),  # slope 0.01, as in torch
                   lambda a, out: np.where(a > 0, 1.0, 0.01).astype(a.dtype)),
    "linear": (lambda a: a, lambda a, out: np.ones_like(a)),
}


def affine_forward(x, W, b):
    """Affine layer ``out = x @ W.T + b`` on a batch of rows.

    Parameters
    ----------
    x : ndarray, shape (m, k)
    W : ndarray, shape (j, k)
    b : ndarray, shape (j,)

    Returns
    -------
    out : ndarray, shape (m, j)
    cache : tuple ``(x, W)`` for ``affine_backward``

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_affine(x, W, b)
    return x @ W.T + b, (x, W)


def affine_backward(dout, cache):
    """Backward pass of ``affine_forward``: ``dx = dout @ W``, ``dW = dout.T @ x``, ``db``.

    Parameters
    ----------
    dout : ndarray, shape (m, j), the gradient ``dL/d(out)``
    cache : tuple ``(x, W)`` from ``affine_forward``

    Returns
    -------
    dx : ndarray, shape (m, k)
    dW : ndarray, shape (j, k), summed over the m examples
    db : ndarray, shape (j,), summed over the m examples

    Chapter: 5 (Training: reusing backpropagation).
    """
    x, W = cache
    _check_dout(dout, (x.shape[0], W.shape[0]))
    return dout @ W, dout.T @ x, dout.sum(axis=0)


def activation_forward(a, name):
    """Elementwise activation ``out = name(a)``.

    Parameters
    ----------
    a : ndarray, any shape
    name : str, one of "sigmoid", "tanh", "relu", "leaky_relu" (slope 0.01), "linear"

    Returns
    -------
    out : ndarray, same shape as ``a``
    cache : tuple ``(a, out, name)`` for ``activation_backward``

    Chapter: 5 (Training: reusing backpropagation).
    """
    check_choice(name, "activation name", ACTIVATIONS)
    check_array(a, "a")
    out = _FUNCTIONS[name][0](a)
    return out, (a, out, name)


def activation_backward(dout, cache):
    """Backward pass of ``activation_forward``: ``da = dout * name'(a)``, elementwise.

    Parameters
    ----------
    dout : ndarray, same shape as ``a``
    cache : tuple ``(a, out, name)`` from ``activation_forward``

    Returns
    -------
    da : ndarray, same shape as ``a``

    Chapter: 5 (Training: reusing backpropagation).
    """
    a, out, name = cache
    check_array(dout, "dout")
    check_same_shape(dout, "dout", a, "the activation's input")
    return dout * _FUNCTIONS[name][1](a, out)


def init_params(n_features, n_hidden, *, random_state=0):
    """Weights uniform in ``+-sqrt(6 / (n + d))`` (Glorot & Bengio), zero biases, float64.

    Parameters
    ----------
    n_features, n_hidden : int, n and d
    random_state : int, None or numpy Generator; a local generator is used

    Returns
    -------
    params : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,)

    Chapter: 5 (Training: reusing backpropagation).
    """
    n = check_positive_int(n_features, "n_features")
    d = check_positive_int(n_hidden, "n_hidden")
    rng = check_random_state(random_state)
    r = np.sqrt(6.0 / (n + d))
    return {"W": rng.uniform(-r, r, (d, n)), "b": np.zeros(d),
            "W_star": rng.uniform(-r, r, (n, d)), "c": np.zeros(n)}


def ae_forward(X, params, *, g="sigmoid", f="sigmoid"):
    """Forward pass ``x_hat = f(g(X @ W.T + b) @ W_star.T + c)``.

    Parameters
    ----------
    X : ndarray, shape (m, n)
    params : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,)
    g : str, the encoder's activation, one of ``models.ACTIVATIONS``
    f : str, the decoder's activation, "sigmoid", "tanh" or "linear"

    Returns
    -------
    x_hat : ndarray, shape (m, n)
    cache : dict with "a_1" (m, d), "h_1" (m, d), "a_2" (m, n) and the four layer caches

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_forward(X, params, g, f)
    # book: begin ae_forward
    a_1, affine_1 = affine_forward(X, params["W"], params["b"])
    h_1, act_1 = activation_forward(a_1, g)
    a_2, affine_2 = affine_forward(h_1, params["W_star"], params["c"])
    x_hat, act_2 = activation_forward(a_2, f)
    # book: end ae_forward
    cache = {"a_1": a_1, "h_1": h_1, "a_2": a_2, "layers": (affine_1, act_1, affine_2, act_2)}
    return x_hat, cache


def ae_backward(dx_hat, cache, *, dh_extra=None):
    """The one generic backward pass: from ``dL/dx_hat`` to the four parameter gradients.

    The chain rule, one layer at a time: times ``f'(a_2)``, back through the
    decoder's affine map, plus ``dh_extra`` (a penalty's gradient with respect to
    the code, e.g. the KL sparsity term), times ``g'(a_1)``, back through the
    encoder's affine map.

    Parameters
    ----------
    dx_hat : ndarray, shape (m, n), ``dL/dx_hat`` from a loss's ``*_grad`` function
    cache : dict from ``ae_forward``
    dh_extra : ndarray, shape (m, d) or (d,), optional
        Added to ``dL/dh_1`` before the product with ``g'``; (d,) means the same for every example.

    Returns
    -------
    grads : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,)

    Chapter: 5 (Training: reusing backpropagation); 6a (Sparse autoencoders) for ``dh_extra``.
    """
    _check_backward(dx_hat, cache, dh_extra)
    # book: begin ae_backward
    affine_1, act_1, affine_2, act_2 = cache["layers"]
    da_2 = activation_backward(dx_hat, act_2)  # dL/da_2 = dL/dx_hat * f'(a_2)
    dh_1, dW_star, dc = affine_backward(da_2, affine_2)
    if dh_extra is not None:
        dh_1 = dh_1 + dh_extra
    da_1 = activation_backward(dh_1, act_1)    # dL/da_1 = dL/dh_1 * g'(a_1)
    _, dW, db = affine_backward(da_1, affine_1)
    return {"W": dW, "b": db, "W_star": dW_star, "c": dc}
    # book: end ae_backward


def squared_error_grad(x_hat, x):
    """``dL/dx_hat = 2 (x_hat - x) / m`` for ``L = (1/m) sum_i sum_j (x_hat_ij - x_ij)**2``.

    x_hat, x : ndarray, shape (m, n). Returns ndarray, shape (m, n).

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_pair(x_hat, x)
    # book: begin squared_error_grad
    return 2 * (x_hat - x) / len(x)
    # book: end squared_error_grad


def cross_entropy_grad(x_hat, x, *, eps=1e-7):
    """``dL/dx_hat = (-x / x_hat + (1 - x) / (1 - x_hat)) / m`` for the binary cross-entropy.

    x_hat, x : ndarray, shape (m, n). Returns ndarray, shape (m, n). As in
    ``losses.cross_entropy``, x_hat is clipped to ``[eps, 1 - eps]`` (no division by 0).

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_pair(x_hat, x)
    # book: begin cross_entropy_grad
    x_hat = np.clip(x_hat, eps, 1 - eps)
    return (-x / x_hat + (1 - x) / (1 - x_hat)) / len(x)
    # book: end cross_entropy_grad


def sigmoid_cross_entropy_delta(x_hat, x):
    """``dL/da_2 = (x_hat - x) / m``: cross-entropy grad times the sigmoid's ``x_hat (1 - x_hat)``.

    x_hat, x : ndarray, shape (m, n). Returns ndarray, shape (m, n).

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_pair(x_hat, x)
    # book: begin sigmoid_cross_entropy_delta
    return (x_hat - x) / len(x)
    # book: end sigmoid_cross_entropy_delta


def kl_delta(rho, rho_hat, beta):
    """The sparsity term of the hidden delta, ``beta (-rho / rho_hat + (1 - rho) / (1 - rho_hat))``.

    It is the derivative of ``beta sum_j KL(rho || rho_hat_j)`` with respect to
    ``rho_hat_j``, exactly UFLDL's term. Because ``rho_hat_j = (1/m) sum_i h_ij``,
    the penalty's gradient with respect to one example's code ``h_ij`` is this
    divided by m: pass ``dh_extra = kl_delta(rho, rho_hat, beta) / m``. UFLDL adds
    the undivided term to each example's delta and brings in the 1/m later,
    when it averages the per-example gradients; here the 1/m is already inside
    ``dL/dx_hat``, so the KL term must carry it too. Same gradients either way.

    Parameters
    ----------
    rho : float in (0, 1), the target average activation
    rho_hat : ndarray, shape (d,), the average activations, each in (0, 1)
    beta : float >= 0, the weight of the penalty

    Returns
    -------
    ndarray, shape (d,)

    Chapter: 6a (Sparse autoencoders).
    """
    rho, beta = _check_kl(rho, rho_hat, beta)
    # book: begin kl_delta
    return beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat))
    # book: end kl_delta


_LOSSES = {"squared_error": (losses.squared_error, squared_error_grad),
           "cross_entropy": (losses.cross_entropy, cross_entropy_grad)}


def loss_and_grads(params, X, *, loss="squared_error", g="sigmoid", f="sigmoid",
                   rho=None, beta=0.0):
    """Value and gradients of ``J = L(x_hat, X) + beta sum_j KL(rho || rho_hat_j)``.

    The value comes from ``aecourse.losses`` (sum over features, mean over the
    examples); the gradients from ``ae_backward``, fed with the loss's
    ``dL/dx_hat``. The KL term is added when ``rho`` is given.

    Parameters
    ----------
    params : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,)
    X : ndarray, shape (m, n); in [0, 1] for the cross-entropy
    loss : "squared_error" or "cross_entropy" (which needs ``f="sigmoid"``)
    g, f : str, the encoder's and the decoder's activation
    rho : float in (0, 1) or None, the sparsity target (needs ``g="sigmoid"``)
    beta : float >= 0, the weight of the sparsity term

    Returns
    -------
    loss : float
    grads : dict, same keys and shapes as ``params``

    Chapter: 5 (Training: reusing backpropagation); 6a (Sparse autoencoders).
    """
    # book: begin loss_and_grads
    value_of, grad_of = _LOSSES[_check_loss_settings(loss, g, f, rho, beta)]
    x_hat, cache = ae_forward(X, params, g=g, f=f)
    J = value_of(x_hat, X)
    dh_extra = None
    if rho is not None:
        h_1 = cache["h_1"]
        J = J + beta * losses.kl_sparsity(rho, h_1)
        # (d,): the same for every example
        dh_extra = kl_delta(rho, h_1.mean(axis=0), beta) / len(X)
    grads = ae_backward(grad_of(x_hat, X), cache, dh_extra=dh_extra)
    return float(J), grads
    # book: end loss_and_grads


# --- input checks: every public function above calls one of these first ----------------------


def _check_numpy(x, name: str) -> None:
    """This module is NumPy only: a torch tensor gets a TypeError that names the bridge."""
    if isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a NumPy array (aecourse.scratch is NumPy only); got "
                        f"{describe(x)}. For a torch model's parameters use "
                        f"aecourse.models.to_numpy_params(model); for data use X.numpy().")


def _check_params(params):
    """params: dict of float arrays W (d, n), b (d,), W_star (n, d), c (n,); returns n."""
    check_keys(params, "params", PARAM_NAMES)
    for name in PARAM_NAMES:
        _check_numpy(params[name], f'params["{name}"]')
    d, n = check_array(params["W"], 'params["W"]', ndim=2).shape
    check_array(params["b"], 'params["b"]', ndim=1, n_features=d)
    check_array(params["c"], 'params["c"]', ndim=1, n_features=n)
    check_array(params["W_star"], 'params["W_star"]', ndim=2)
    check_same_shape(params["W_star"], 'params["W_star"]', params["W"].T, 'params["W"].T')
    return n


def _check_pair(x_hat, x):
    check_array(x_hat, "x_hat", ndim=2)
    check_array(x, "x", ndim=2)
    check_same_shape(x_hat, "x_hat", x, "x")


def _check_affine(x, W, b) -> None:
    check_array(x, "x", ndim=2)
    check_array(W, "W", ndim=2, n_features=x.shape[1])
    check_array(b, "b", ndim=1, n_features=W.shape[0])


def _check_dout(dout, shape) -> None:
    check_array(dout, "dout", ndim=2)
    if dout.shape != shape:
        raise ValueError(f"dout must have the layer output's shape {shape}; got {dout.shape}.")


def _check_forward(X, params, g, f) -> None:
    _check_numpy(X, "X")
    check_array(X, "X", ndim=2, n_features=_check_params(params))
    check_choice(g, "g", ACTIVATIONS)
    check_choice(f, "f", DECODER_ACTIVATIONS)


def _check_backward(dx_hat, cache, dh_extra) -> None:
    check_array(dx_hat, "dx_hat", ndim=2)
    check_same_shape(dx_hat, "dx_hat", cache["a_2"], "x_hat")
    if dh_extra is not None:
        shape = cache["h_1"].shape
        check_array(dh_extra, "dh_extra", ndim=(1, 2))
        if dh_extra.shape not in (shape, shape[1:]):
            raise ValueError(f"dh_extra must have shape {shape} or {shape[1:]}; "
                             f"got {dh_extra.shape}.")


def _check_kl(rho, rho_hat, beta) -> tuple[float, float]:
    rho = check_open_unit(rho, "rho")
    beta = check_nonnegative(beta, "beta")
    check_array(rho_hat, "rho_hat", ndim=1)
    if not (rho_hat.min() > 0 and rho_hat.max() < 1):
        raise ValueError(f"rho_hat must lie strictly between 0 and 1; got values in "
                         f"[{rho_hat.min():.4g}, {rho_hat.max():.4g}].")
    return rho, beta


def _check_loss_settings(loss, g, f, rho, beta) -> str:
    check_choice(loss, "loss", tuple(_LOSSES))
    beta = check_nonnegative(beta, "beta")
    if loss == "cross_entropy" and f != "sigmoid":
        raise ValueError(f"loss='cross_entropy' needs probabilities, f='sigmoid'; got f={f!r}.")
    if rho is None and beta > 0:
        raise ValueError(f"beta={beta} weights the KL sparsity term, which needs rho; got None.")
    if rho is not None and g != "sigmoid":
        raise ValueError(f"the KL sparsity term (rho={rho!r}) needs codes in (0, 1), "
                         f"g='sigmoid'; got g={g!r}.")
    return loss
