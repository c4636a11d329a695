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
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from aecourse._validate import check_array, check_choice, check_positive_int, describe

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


def _generator(random_state) -> torch.Generator:
    """A local torch generator from an int seed, None (fresh entropy) or a Generator."""
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        generator.manual_seed(int(random_state))
    else:
        raise TypeError(f"random_state must be an int, None or a torch.Generator; "
                        f"got {describe(random_state)}.")
    return generator


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
        generator = _generator(random_state)
        self.W = nn.Parameter(_uniform((d, n), generator))
        self.b = nn.Parameter(torch.zeros(d))
        if not self.tied:
            self.W_star = nn.Parameter(_uniform((n, d), generator))
        self.c = nn.Parameter(torch.zeros(n))

    def __getattr__(self, name):
        # Only reached when normal lookup fails: a tied model has no W_star
        # Parameter, so W_star is computed from W (a view that follows W).
        if name == "W_star" and self.tied:
            return self.W.T
        return super().__getattr__(name)

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
        return self.g(X @ self.W.T + self.b)

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
        return h @ self.W_star.T + self.c

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
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__") or len(
                layer_sizes) < 2:
            raise ValueError(f"layer_sizes must be a sequence of at least two sizes, e.g. "
                             f"(784, 128, 32); got {describe(layer_sizes)}.")
        sizes = [check_positive_int(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)]
        self.layer_sizes = tuple(sizes)
        self.n_features, self.n_hidden = sizes[0], sizes[-1]
        self.g_name, self.f_name = check_choice(g, "g", ACTIVATIONS), check_choice(
            f, "f", DECODER_ACTIVATIONS)
        self.g, self.f = activation(g), activation(f)
        generator = _generator(random_state)
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


__all__ = ["ACTIVATIONS", "DECODER_ACTIVATIONS", "activation", "Autoencoder", "DeepAutoencoder"]
