"""Tests for aecourse.conv: sizes against torch's layers, the adjoint identity, the model."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aecourse.conv import ConvAutoencoder, conv_output_size, transposed_output_size
from aecourse.data import load_mnist
from aecourse.models import Autoencoder
from aecourse.train import fit


@pytest.mark.parametrize("n, k, s, p", list(itertools.product((5, 7, 14, 28), (1, 3, 4), (1, 2, 3),
                                                                (0, 1))))
def test_output_size_formulas_match_torch_layers(n, k, s, p):
    x = torch.zeros(1, 1, n, n)
    if n + 2 * p < k:
        return
    conv = torch.nn.Conv2d(1, 1, k, stride=s, padding=p)
    m = conv_output_size(n, k, stride=s, padding=p)
    assert conv(x).shape[-1] == m
    for op in range(s):
        if (n - 1) * s - 2 * p + k + op < 1:
            continue
        up = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op)
        assert up(x).shape[-1] == transposed_output_size(n, k, stride=s, padding=p,
                                                         output_padding=op)


def test_some_output_padding_brings_the_transposed_convolution_back_to_the_input_size():
    for n, k, s, p in itertools.product(range(3, 30), (3, 5), (1, 2, 3), (0, 1, 2)):
        if n + 2 * p < k:
            continue
        m = conv_output_size(n, k, stride=s, padding=p)
        back = {transposed_output_size(m, k, stride=s, padding=p, output_padding=op)
                for op in range(s)}
        assert n in back


def test_transposed_convolution_is_the_adjoint_of_convolution():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)   # (out, in, kh, kw)
    x = torch.randn(2, 3, 14, 14, generator=g, dtype=torch.float64)
    y_shape = F.conv2d(x, W, stride=2, padding=1).shape
    y = torch.randn(y_shape, generator=g, dtype=torch.float64)
    lhs = (F.conv2d(x, W, stride=2, padding=1) * y).sum()
    rhs = (x * F.conv_transpose2d(y, W, stride=2, padding=1, output_padding=1)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-12)


def test_conv_autoencoder_shapes_and_code_size():
    model = ConvAutoencoder(random_state=0)
    X = torch.rand(3, 784)
    h = model.encode(X)
    assert h.shape == (3, 32) and model.n_hidden == 32
    x_hat = model(X)
    assert x_hat.shape == (3, 784) and 0 < x_hat.min() and x_hat.max() < 1
    assert ConvAutoencoder(channels=(4, 8, 2), n_hidden=10).encode(X).shape == (3, 10)


def test_conv_autoencoder_computes_convolutions_then_a_linear_code_and_back():
    """Oracle: the same layers applied by hand with torch.nn.functional."""
    model = ConvAutoencoder(channels=(3, 5, 4), n_hidden=6, g="tanh", random_state=1)
    X = torch.rand(2, 784, generator=torch.Generator().manual_seed(0))
    (e1, e2, e3), (d1, d2, d3) = model.encoder_layers, model.decoder_layers
    a = X.reshape(2, 1, 28, 28)
    for layer in (e1, e2, e3):
        a = torch.tanh(F.conv2d(a, layer.weight, layer.bias, stride=2, padding=1))
    assert a.shape == (2, 4, 4, 4)
    h = a.flatten(1) @ model.to_code.weight.T + model.to_code.bias
    a = torch.tanh(h @ model.from_code.weight.T + model.from_code.bias).reshape(2, 4, 4, 4)
    for layer, op in ((d1, 0), (d2, 1)):
        a = torch.tanh(F.conv_transpose2d(a, layer.weight, layer.bias, stride=2, padding=1,
                                          output_padding=op))
    a = F.conv_transpose2d(a, d3.weight, d3.bias, stride=2, padding=1, output_padding=1)
    with torch.no_grad():
        assert torch.allclose(model.encode(X), h, atol=1e-6)
        assert torch.allclose(model(X), torch.sigmoid(a.flatten(1)), atol=1e-6)


def test_conv_autoencoder_has_under_half_the_parameters_of_the_dense_784_32_784():
    conv = sum(p.numel() for p in ConvAutoencoder().parameters())
    dense = sum(p.numel() for p in Autoencoder(784, 32).parameters())
    assert dense == 784 * 32 + 32 + 32 * 784 + 784 == 50_992
    convs = (9 * 1 * 8 + 8) + (9 * 8 * 16 + 16) + (9 * 16 * 16 + 16)      # encoder
    convs += (9 * 16 * 16 + 16) + (9 * 16 * 8 + 8) + (9 * 8 * 1 + 1)      # decoder
    linear = (256 * 32 + 32) + (32 * 256 + 256)                           # 16 x 4 x 4 <-> 32
    assert conv == convs + linear == 23_793
    assert 2 * conv < dense


def test_conv_autoencoder_is_seeded_and_leaves_the_global_state_alone():
    state = torch.random.get_rng_state()
    a, b = ConvAutoencoder(random_state=4), ConvAutoencoder(random_state=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert torch.equal(state, torch.random.get_rng_state())


def test_fit_trains_a_conv_autoencoder_and_the_loss_falls():
    X = np.zeros((64, 784), dtype=np.float32)
    X.reshape(64, 28, 28)[:, 8:20, 10:18] = np.random.default_rng(0).random((64, 1, 1))
    history = fit(ConvAutoencoder(random_state=0), X, epochs=8, lr=1e-2, batch_size=16,
                  progress=False)
    assert history["loss"][-1] < 0.5 * history["loss"][0]


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(channels=16), TypeError, "three ints"),
    (dict(channels=(16, 32)), TypeError, "three ints"),
    (dict(channels=(8, 0, 16)), ValueError, ">= 1"),
    (dict(n_hidden=1.5), TypeError, "positive integer"),
    (dict(n_hidden=0), ValueError, ">= 1"),

    (dict(g="softmax"), ValueError, "g must be one of"),
])
def test_conv_autoencoder_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        ConvAutoencoder(**kwargs)


def test_conv_autoencoder_rejects_images_and_codes_of_the_wrong_size():
    with pytest.raises(ValueError, match="784 features"):
        ConvAutoencoder().encode(torch.zeros(2, 64))
    with pytest.raises(ValueError, match="32 features"):
        ConvAutoencoder().decode(torch.zeros(2, 16))


@pytest.mark.parametrize("call, error", [
    (lambda: conv_output_size(3, 5), ValueError),
    (lambda: conv_output_size(28, 3, padding=-1), ValueError),
    (lambda: conv_output_size(28.0, 3), TypeError),
    (lambda: transposed_output_size(7, 3, stride=2, output_padding=2), ValueError),
])
def test_size_formulas_reject_bad_arguments(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense", "conv"])
def test_chapter_8_trains_each_model_at_its_best_learning_rate_from_the_same_set(name):
    """Chapter 8's fair comparison: each model's learning rate is the one of (1e-3, 3e-3,
    1e-2) with the lowest error on a validation split of the training images (the last 500
    of chapter 8's 4,000), at the chapter's epochs and batch size."""
    X, _ = load_mnist(random_state=0)
    X_fit, X_val = X[:3500], X[3500:4000]
    make, epochs, lr_chapter = {
        "dense": (lambda: Autoencoder(784, 32, g="leaky_relu", f="sigmoid", random_state=0),
                  100, 1e-3),
        "conv": (lambda: ConvAutoencoder(channels=(8, 16, 16), n_hidden=32, random_state=0),
                 20, 1e-2)}[name]
    val_error = {}
    for lr in (1e-3, 3e-3, 1e-2):
        history = fit(make(), X_fit, epochs=epochs, batch_size=32, lr=lr, X_val=X_val,
                      random_state=0, progress=False, epoch_loss="minibatch")
        val_error[lr] = min(history["val_loss"])
    assert min(val_error, key=val_error.get) == lr_chapter, val_error
