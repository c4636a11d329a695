"""A small convolutional autoencoder for 28x28 images, and the size arithmetic of convolutions.

The encoder halves the image three times with stride-2 convolutions and maps the last
feature maps linearly to the code; the decoder maps the code back to feature maps and
doubles them with stride-2 transposed convolutions::

    x (1, 28, 28) -> (c1, 14, 14) -> (c2, 7, 7) -> (c3, 4, 4) -> h (d,)       encoder
    h (d,) -> (c3, 4, 4) -> (c2, 7, 7) -> (c1, 14, 14) -> x_hat (1, 28, 28)   decoder

With ``d = 32`` the code has the size of chapter 7's fully connected 784-32-784 model.
Images travel as rows of 784 pixels, like everywhere in the course, so ``fit``, the
losses and the plots work unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from aecourse._validate import check_choice, check_positive_int, check_random_state, describe
from aecourse.models import ACTIVATIONS, _AutoencoderAPI, activation

__all__ = ["ConvAutoencoder", "conv_output_size", "transposed_output_size"]

_SIDES = (28, 14, 7, 4)  # the image side after 0, 1, 2, 3 stride-2 convolutions


def conv_output_size(n: int, kernel_size: int, *, stride: int = 1, padding: int = 0) -> int:
    """Side of a convolution's output: ``floor((n + 2 padding - kernel_size) / stride) + 1``.

    Parameters
    ----------
    n : int
        Side of the (square) input, >= 1.
    kernel_size, stride : int
        >= 1.
    padding : int
        Zeros added on each side, >= 0.

    Returns
    -------
    int, the side of the output

    Chapter: 8 (Convolutional autoencoders).
    """
    n, k, s, p = _check_sizes(n, kernel_size, stride, padding)
    if n + 2 * p < k:
        raise ValueError(f"the kernel ({k}) is larger than the padded input ({n} + 2 * {p}).")
    # book: begin conv_output_size
    return (n + 2 * p - k) // s + 1
    # book: end conv_output_size


def transposed_output_size(n: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
                           output_padding: int = 0) -> int:
    """Side of a transposed convolution's output: ``(n - 1) stride - 2 padding + kernel_size
    + output_padding``; it inverts ``conv_output_size`` (``output_padding`` < stride picks
    one of the input sizes that the floor maps to the same output).

    Parameters
    ----------
    n : int
        Side of the (square) input, >= 1.
    kernel_size, stride : int
        >= 1.
    padding : int
        As in the convolution this one transposes, >= 0.
    output_padding : int
        Extra rows and columns on one side, 0 <= output_padding < stride.

    Returns
    -------
    int, the side of the output

    Chapter: 8 (Convolutional autoencoders).
    """
    n, k, s, p = _check_sizes(n, kernel_size, stride, padding)
    op = _check_padding(output_padding, "output_padding")
    if op >= s:
        raise ValueError(f"output_padding must be smaller than stride ({s}); got {op}.")
    # book: begin transposed_output_size
    size = (n - 1) * s - 2 * p + k + op
    # book: end transposed_output_size
    if size < 1:
        raise ValueError(f"these settings give an empty output (size {size}).")
    return size


def _check_sizes(n, kernel_size, stride, padding) -> tuple[int, int, int, int]:
    """``(n, kernel_size, stride, padding)`` checked: the first three >= 1, padding >= 0."""
    n, k, s = (check_positive_int(v, name) for v, name in
               ((n, "n"), (kernel_size, "kernel_size"), (stride, "stride")))
    return n, k, s, _check_padding(padding, "padding")


def _check_padding(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer >= 0; got {describe(value)}.")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}.")
    return value


def _kernel(shape, n_inputs: float, generator) -> torch.Tensor:
    """A kernel of ``shape`` uniform in +-sqrt(6 / n_inputs) (He et al., for ReLU-like ``g``).

    ``n_inputs`` is how many numbers each output sums. Glorot's smaller range (used by
    the dense models) leaves the code of this 6-layer network so weak at the start
    that the decoder first learns a black image and its sigmoid saturates there.
    """
    bound = (6.0 / n_inputs) ** 0.5
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound


class ConvAutoencoder(_AutoencoderAPI):
    """Convolutional autoencoder for 28x28 images given as rows of 784 pixels.

    Encoder: three 3x3 convolutions with stride 2 and padding 1 (28 -> 14 -> 7 -> 4),
    ``g`` after each, then one linear map from the last ``c3`` maps of 4x4 to the code,
    ``h = W a + b`` (no ``g``: a linear code, like PCA's). Decoder: the mirror image,
    ``g(W_star h + c)`` reshaped to ``c3`` maps of 4x4, then 3x3 transposed convolutions
    of stride 2 (4 -> 7 -> 14 -> 28), ``g`` after each but the last, whose logits go
    through the sigmoid ``f``.

    Parameters
    ----------
    channels : tuple of three int
        Feature maps after the first, second and third convolution (c1, c2, c3).
    n_hidden : int
        Code size d (chapter 7's model: 32).
    g : str
        Hidden function, one of ``aecourse.models.ACTIVATIONS``.
    random_state : int, None or torch.Generator
        Seeds the initialisation (He uniform, zero biases).

    Attributes
    ----------
    encoder_layers, decoder_layers : ModuleList of three convolutions each
    to_code : Linear (16 c3 -> d), weight ``W`` and bias ``b``
    from_code : Linear (d -> 16 c3), weight ``W_star`` and bias ``c``
    n_features : int, 784
    n_hidden : int, d

    Chapter: 8 (Convolutional autoencoders).
    """

    def __init__(self, channels=(8, 16, 16), n_hidden: int = 32, *, g: str = "leaky_relu",
                 random_state=0):
        super().__init__()
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") \
                or len(channels) != 3:
            raise TypeError(f"channels must be three ints (c1, c2, c3), e.g. (8, 16, 16); "
                            f"got {describe(channels)}.")
        c1, c2, c3 = (check_positive_int(c, f"channels[{i}]") for i, c in enumerate(channels))
        self.channels = (c1, c2, c3)
        self.g_name = check_choice(g, "g", ACTIVATIONS)
        self.g, self.f = activation(g), torch.sigmoid
        self.n_features, self.n_hidden = 28 * 28, check_positive_int(n_hidden, "n_hidden")
        generator = check_random_state(random_state, kind="torch")
        down, up = [(1, c1), (c1, c2), (c2, c3)], [(c3, c2), (c2, c1), (c1, 1)]
        self.encoder_layers = nn.ModuleList(
            self._layer(nn.Conv2d, a, b, generator, stride=2) for a, b in down)
        self.to_code = self._layer(nn.Linear, c3 * 4 * 4, self.n_hidden, generator)
        self.from_code = self._layer(nn.Linear, self.n_hidden, c3 * 4 * 4, generator)
        self.decoder_layers = nn.ModuleList(  # output_padding picks 7 (not 8) after 4, 14, 28
            self._layer(nn.ConvTranspose2d, a, b, generator, stride=2,
                        output_padding=0 if side == 7 else 1)
            for (a, b), side in zip(up, _SIDES[2::-1], strict=True))

    @staticmethod
    def _layer(kind, n_in: int, n_out: int, generator, **options) -> nn.Module:
        if kind is nn.Linear:
            layer, n_inputs = nn.utils.skip_init(kind, n_in, n_out), n_in
        else:  # a transposed convolution's output sums n_in * 9 / stride**2 inputs
            layer = nn.utils.skip_init(kind, n_in, n_out, 3, padding=1, **options)
            n_inputs = n_in * 9 / (options["stride"] ** 2 if kind is nn.ConvTranspose2d else 1)
        with torch.no_grad():
            layer.weight.copy_(_kernel(tuple(layer.weight.shape), n_inputs, generator))
            layer.bias.zero_()
        return layer

    def encode(self, X) -> torch.Tensor:
        """Code h (m, d) of images X (m, 784)."""
        # book: begin ConvAutoencoder.encode
        a = self._as_input(X, "X", self.n_features).reshape(-1, 1, 28, 28)
        for layer in self.encoder_layers:
            a = self.g(layer(a))          # (m, c1, 14, 14), (m, c2, 7, 7), (m, c3, 4, 4)
        return self.to_code(a.flatten(1))             # h = W a + b: (m, d)
        # book: end ConvAutoencoder.encode

    def decode_logits(self, h) -> torch.Tensor:
        """Output logits (m, 784) from codes h (m, d)."""
        # book: begin ConvAutoencoder.decode_logits
        h = self._as_input(h, "h", self.n_hidden)
        a = self.g(self.from_code(h)).reshape(-1, self.channels[2], 4, 4)   # W_star h + c
        *hidden, last = self.decoder_layers
        for layer in hidden:
            a = self.g(layer(a))                     # (m, c2, 7, 7), (m, c1, 14, 14)
        return last(a).flatten(1)                    # (m, 784)
        # book: end ConvAutoencoder.decode_logits

    def extra_repr(self) -> str:
        return f"channels={self.channels}, n_hidden={self.n_hidden}, g={self.g_name!r}"
