"""Autoencoders as PyTorch modules: one hidden layer, and a deeper hourglass.

The one-hidden-layer model uses the course notation directly::

    h     = g(a_1),  a_1 = W x + b          W (d, n), b (d,)     encoder
    x_hat = f(a_2),  a_2 = W_star h + c     W_star (n, d), c (n,)  decoder

With one example per row of ``X`` (shape ``(m, n)``) the batch form is
``a_1 = X @ W.T + b`` and ``a_2 = h @ W_star.T + c``. Every model has the same
four methods: ``encode``, ``decode_logits``, ``decode`` and ``forward``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aecourse._validate import (
    as_numpy,
    check_array,
    check_choice,
    check_keys,
    check_positive_int,
    check_random_state,
    describe,
)

_FUNCTIONS = {
    "sigmoid": torch.sigmoid,  # the logistic function, output in (0, 1)
    "tanh": torch.tanh,  # output in (-1, 1)
    "relu": torch.relu,  # max(a, 0): exact zeros in the code
    "leaky_relu": F.leaky_relu,  # max(a, 0.01 a)
    "linear": lambda a: a,  # the identity: any real output
}

#: Names of the elementwise functions an encoder ``g`` may use.
ACTIVATIONS = tuple(_FUNCTIONS)

#: Names a decoder ``f`` may use: the output range must match the data's.
DECODER_ACTIVATIONS = ("sigmoid", "tanh", "linear")


def activation(name):
    """Return the elementwise torch function called ``name``.

    This is the single place that maps activation names to functions.

    Parameters
    ----------
    name : str
        One of ``ACTIVATIONS``: "sigmoid", "tanh", "relu", "leaky_relu", "linear".

    Returns
    -------
    callable
        Maps a tensor of any shape to a tensor of the same shape.

    Chapter: 3 (Decoders).
    """
    return _FUNCTIONS[check_choice(name, "activation name", ACTIVATIONS)]


def _uniform(shape, generator) -> torch.Tensor:
    """Weights drawn uniformly from +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    r = math.sqrt(6.0 / sum(shape))
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * r


class _AutoencoderAPI(nn.Module):
    """The shared methods: input checks, ``decode`` and ``forward``."""

    def _as_input(self, X, name: str, n_columns: int) -> torch.Tensor:
        """Check that ``X`` is a 2-D float array/tensor with ``n_columns`` columns and
        return it as a tensor with the model's dtype and device."""
        check_array(X, name, ndim=2, n_features=n_columns)
        reference = next(self.parameters())
        return torch.as_tensor(X, dtype=reference.dtype, device=reference.device)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruct from the code: ``x_hat = f(a_2)``, shape (m, n)."""
        return self.f(self.decode_logits(h))

    def forward(self, X) -> torch.Tensor:
        """Encode, then decode: ``x_hat = f(W_star g(W x + b) + c)``, shape (m, n)."""
        return self.decode(self.encode(X))


class Autoencoder(_AutoencoderAPI):
    """One-hidden-layer autoencoder ``x_hat = f(W_star g(W x + b) + c)``.

    Parameters
    ----------
    n_features : int
        Input size ``n``.
    n_hidden : int
        Code size ``d`` (d < n: undercomplete; d >= n: overcomplete).
    g : str
        Encoder function, one of ``ACTIVATIONS``.
    f : str
        Decoder function, one of ``DECODER_ACTIVATIONS``: "sigmoid" for data in
        [0, 1], "tanh" for data in [-1, 1], "linear" for any real data.
    tied : bool
        If True the decoder reuses the encoder's weights, ``W_star = W.T``, and
        has no weight matrix of its own.
    random_state : int, None or torch.Generator
        Seeds the initialisation: weights uniform in +-sqrt(6 / (n + d)),
        biases zero. The global random state is never used.

    Attributes
    ----------
    W : Parameter, shape (d, n)
    b : Parameter, shape (d,)
    W_star : Parameter, shape (n, d); when ``tied``, the tensor ``W.T``
    c : Parameter, shape (n,)

    Chapter: 1 (What is an autoencoder?); used in every later chapter.
    """

    def __init__(self, n_features: int, n_hidden: int, *, g: str = "sigmoid",
                 f: str = "sigmoid", tied: bool = False, random_state=0):
        super().__init__()
        n = self.n_features = check_positive_int(n_features, "n_features")
        d = self.n_hidden = check_positive_int(n_hidden, "n_hidden")
        self.g_name, self.f_name = check_choice(g, "g", ACTIVATIONS), check_choice(
            f, "f", DECODER_ACTIVATIONS)
        self.g, self.f = activation(g), activation(f)
        self.tied = bool(tied)
        generator = check_random_state(random_state, kind="torch")
        # book: begin Autoencoder.parameters
        self.W = nn.Parameter(_uniform((d, n), generator))
        self.b = nn.Parameter(torch.zeros(d))
        if not self.tied:
            self.W_star = nn.Parameter(_uniform((n, d), generator))
        self.c = nn.Parameter(torch.zeros(n))
        # book: end Autoencoder.parameters

    @property
    def W_star(self) -> torch.Tensor:
        """Decoder weights (n, d): a Parameter, or ``W.T`` when ``tied`` (a view that follows W)."""
        if self.tied:
            return self.W.T
        if "W_star" not in self._parameters:  # only while __init__ registers it
            raise AttributeError("W_star")
        return self._parameters["W_star"]

    def encode(self, X) -> torch.Tensor:
        """Code ``h = g(X @ W.T + b)``.

        Parameters
        ----------
        X : Tensor or ndarray, shape (m, n)
            Floating point, one example per row (NumPy is converted).

        Returns
        -------
        h : Tensor, shape (m, d)
        """
        X = self._as_input(X, "X", self.n_features)
        # book: begin Autoencoder.encode
        return self.g(X @ self.W.T + self.b)
        # book: end Autoencoder.encode

    def decode_logits(self, h) -> torch.Tensor:
        """Decoder pre-activation ``a_2 = h @ W_star.T + c``.

        Parameters
        ----------
        h : Tensor or ndarray, shape (m, d)

        Returns
        -------
        a_2 : Tensor, shape (m, n)
        """
        h = self._as_input(h, "h", self.n_hidden)
        # book: begin Autoencoder.decode_logits
        return h @ self.W_star.T + self.c
        # book: end Autoencoder.decode_logits

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_hidden={self.n_hidden}, "
                f"g={self.g_name!r}, f={self.f_name!r}, tied={self.tied}")


class DeepAutoencoder(_AutoencoderAPI):
    """Hourglass autoencoder: a stack of affine layers down to the code and back.

    ``layer_sizes=(784, 128, 32)`` builds the encoder 784 -> 128 -> 32 (``g``
    after every layer, so the code is ``h = g(...)``) and the mirrored decoder
    32 -> 128 -> 784 (``g`` after the hidden layers, ``f`` at the output).

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n, ..., d)``: the input size, the hidden sizes, the code size.
    g : str
        Hidden-layer function, one of ``ACTIVATIONS``.
    f : str
        Output function, one of ``DECODER_ACTIVATIONS``.
    random_state : int, None or torch.Generator
        Seeds the initialisation (uniform +-sqrt(6 / (fan_in + fan_out)), zero
        biases). The global random state is never used.

    Attributes
    ----------
    encoder_layers, decoder_layers : ModuleList of nn.Linear

    Chapter: 2 (The link to PCA: deep autoencoders) and 7 (Using autoencoders).
    """

    def __init__(self, layer_sizes, *, g: str = "leaky_relu", f: str = "sigmoid",
                 random_state=0):
        super().__init__()
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
            raise TypeError(f"layer_sizes must be a sequence of at least two sizes, e.g. "
                            f"(784, 128, 32); got {describe(layer_sizes)}.")
        if len(layer_sizes) < 2:
            raise ValueError(f"layer_sizes must be a sequence of at least two sizes, e.g. "
                             f"(784, 128, 32); got {describe(layer_sizes)}.")
        sizes = [check_positive_int(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)]
        self.layer_sizes = tuple(sizes)
        self.n_features, self.n_hidden = sizes[0], sizes[-1]
        self.g_name, self.f_name = check_choice(g, "g", ACTIVATIONS), check_choice(
            f, "f", DECODER_ACTIVATIONS)
        self.g, self.f = activation(g), activation(f)
        generator = check_random_state(random_state, kind="torch")
        down = list(zip(sizes[:-1], sizes[1:], strict=True))
        up = [(d_out, d_in) for d_in, d_out in reversed(down)]
        self.encoder_layers = nn.ModuleList(self._linear(a, b, generator) for a, b in down)
        self.decoder_layers = nn.ModuleList(self._linear(a, b, generator) for a, b in up)

    @staticmethod
    def _linear(n_in: int, n_out: int, generator) -> nn.Linear:
        # skip_init builds the layer without PyTorch's default initialisation
        # (which would draw from the global random state); we fill it ourselves.
        layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
        with torch.no_grad():
            layer.weight.copy_(_uniform((n_out, n_in), generator))
            layer.bias.zero_()
        return layer

    def encode(self, X) -> torch.Tensor:
        """Code ``h``: ``g`` after every encoder layer. X (m, n) -> h (m, d)."""
        h = self._as_input(X, "X", self.n_features)
        for layer in self.encoder_layers:
            h = self.g(layer(h))
        return h

    def decode_logits(self, h) -> torch.Tensor:
        """Output pre-activation ``a`` (m, n) from the code h (m, d)."""
        a = self._as_input(h, "h", self.n_hidden)
        *hidden, last = self.decoder_layers
        for layer in hidden:
            a = self.g(layer(a))
        return last(a)

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, g={self.g_name!r}, f={self.f_name!r}"


# --- the bridge between a torch Autoencoder and the NumPy parameters of aecourse.scratch ------

#: The parameters of the one-hidden-layer autoencoder, in the lecture's notation.
PARAM_NAMES = ("W", "b", "W_star", "c")


def _check_autoencoder(model) -> None:
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an aecourse.models.Autoencoder (one hidden layer, "
                        f"parameters W, b, W_star, c); got {describe(model)}.")


def to_numpy_params(model) -> dict:
    """Torch -> NumPy: the model's parameters as float64 NumPy copies.

    Parameters
    ----------
    model : Autoencoder

    Returns
    -------
    params : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,), float64
        What ``aecourse.scratch`` takes; changing them never changes the model.
        For a tied model ``params["W_star"]`` is a copy of ``W.T``.

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_autoencoder(model)
    return {name: np.array(as_numpy(getattr(model, name), name), dtype=np.float64)
            for name in PARAM_NAMES}


def load_numpy_params(model, params):
    """NumPy -> torch: copy ``params`` into the model's parameters, in place; return the model.

    Parameters
    ----------
    model : Autoencoder
        Its dtype and device are kept (values are converted to them).
    params : dict with "W" (d, n), "b" (d,), "W_star" (n, d), "c" (n,)
        Float NumPy arrays (or tensors), e.g. from ``scratch.init_params``. For a
        tied model ``params["W_star"]`` must equal ``params["W"].T``.

    Returns
    -------
    model : Autoencoder, the same object

    Chapter: 5 (Training: reusing backpropagation).
    """
    _check_autoencoder(model)
    check_keys(params, "params", PARAM_NAMES)
    for name in PARAM_NAMES:
        want = tuple(getattr(model, name).shape)
        check_array(params[name], f'params["{name}"]', ndim=len(want))
        if tuple(params[name].shape) != want:
            raise ValueError(f'params["{name}"] must have the model\'s shape {want}; '
                             f"got {describe(params[name])}.")
    if model.tied and not np.allclose(as_numpy(params["W_star"], "W_star"),
                                      as_numpy(params["W"], "W").T):
        raise ValueError('the model is tied (W_star = W.T) but params["W_star"] differs from '
                         'params["W"].T; build an untied Autoencoder(..., tied=False) for it.')
    with torch.no_grad():
        for name in ("W", "b", "c") if model.tied else PARAM_NAMES:
            getattr(model, name).copy_(torch.as_tensor(params[name]))
    return model


__all__ = ["ACTIVATIONS", "DECODER_ACTIVATIONS", "PARAM_NAMES", "activation", "Autoencoder",
           "DeepAutoencoder", "to_numpy_params", "load_numpy_params"]
