"""Tests for aecourse.models: shapes, tied weights, output ranges, seeding, input checks."""

import itertools

import numpy as np
import pytest
import torch

from aecourse.models import (
    ACTIVATIONS,
    DECODER_ACTIVATIONS,
    Autoencoder,
    DeepAutoencoder,
    activation,
    load_numpy_params,
    to_numpy_params,
)

M, N, D = 7, 12, 5


@pytest.fixture
def X():
    return torch.rand(M, N, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("g, f", list(itertools.product(ACTIVATIONS, DECODER_ACTIVATIONS)))
def test_every_g_f_combination_gives_code_and_reconstruction_shapes(X, g, f):
    model = Autoencoder(N, D, g=g, f=f)
    h = model.encode(X)
    assert h.shape == (M, D)
    assert model.decode_logits(h).shape == (M, N)
    assert model.decode(h).shape == (M, N)
    assert model(X).shape == (M, N)
    assert model.W.shape == (D, N) and model.b.shape == (D,)
    assert model.W_star.shape == (N, D) and model.c.shape == (N,)


def test_forward_is_the_course_formula(X):
    model = Autoencoder(N, D, g="tanh", f="sigmoid", random_state=3)
    with torch.no_grad():
        model.b.normal_(generator=torch.Generator().manual_seed(0))
        model.c.normal_(generator=torch.Generator().manual_seed(1))
        expected = torch.stack([
            torch.sigmoid(model.W_star @ torch.tanh(model.W @ x + model.b) + model.c) for x in X])
        torch.testing.assert_close(model(X), expected)


def test_activation_maps_names_to_the_named_functions():
    a = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(activation("sigmoid")(a), 1 / (1 + torch.exp(-a)))
    torch.testing.assert_close(activation("tanh")(a), torch.tanh(a))
    torch.testing.assert_close(activation("relu")(a), torch.where(a > 0, a, 0.0))
    torch.testing.assert_close(activation("leaky_relu")(a), torch.where(a > 0, a, 0.01 * a))
    torch.testing.assert_close(activation("linear")(a), a)
    with pytest.raises(ValueError, match="softmax"):
        activation("softmax")


def test_tied_model_has_W_star_equal_W_transposed_and_no_own_parameter(X):
    model = Autoencoder(N, D, tied=True)
    names = {name for name, _ in model.named_parameters()}
    assert names == {"W", "b", "c"}
    assert torch.equal(model.W_star, model.W.T)
    with torch.no_grad():  # it follows W: a view, not a copy taken at construction
        model.W.add_(1.0)
    assert torch.equal(model.W_star, model.W.T)
    model(X).sum().backward()
    assert model.W.grad is not None


def test_untied_model_has_its_own_W_star_parameter():
    model = Autoencoder(N, D)
    params = dict(model.named_parameters())
    assert set(params) == {"W", "b", "W_star", "c"}
    assert model.W_star is params["W_star"]
    assert not torch.equal(model.W_star, model.W.T)


@pytest.mark.parametrize("f, low, high", [("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0)])
def test_decoder_range_matches_f(f, low, high):
    model = Autoencoder(N, D, g="linear", f=f)
    h = torch.linspace(-5, 5, 3 * D).reshape(3, D)
    x_hat = model.decode(h).detach()
    assert low < float(x_hat.min()) and float(x_hat.max()) < high


def test_linear_decoder_reaches_values_outside_minus_one_one():
    model = Autoencoder(N, D, g="linear", f="linear")
    x_hat = model.decode(torch.full((1, D), 100.0)).detach()
    assert float(x_hat.abs().max()) > 1.0


@pytest.mark.parametrize("make", [lambda s: Autoencoder(N, D, random_state=s),
                                  lambda s: DeepAutoencoder((N, 8, D), random_state=s)])
def test_seeded_init_is_reproducible_and_seed_dependent(make):
    a, b, c = make(0), make(0), make(1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(),
                                                            strict=True))


def test_init_does_not_touch_global_random_state():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    Autoencoder(N, D, random_state=None)
    DeepAutoencoder((N, 8, D), random_state=5)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_init_is_uniform_within_glorot_bound_with_zero_biases():
    model = Autoencoder(200, 100, random_state=0)
    bound = np.sqrt(6 / 300)
    for W in (model.W.detach(), model.W_star.detach()):
        assert float(W.abs().max()) <= bound
        assert float(W.abs().max()) > 0.95 * bound  # it uses the whole interval
        assert float(W.std()) == pytest.approx(bound / np.sqrt(3), rel=0.05)
    assert torch.count_nonzero(model.b) == 0 and torch.count_nonzero(model.c) == 0


def test_numpy_input_is_converted_to_a_tensor():
    model = Autoencoder(N, D)
    X64 = np.random.default_rng(0).random((M, N))
    out = model(X64)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out, model(torch.as_tensor(X64, dtype=torch.float32)))


def test_deep_autoencoder_is_an_hourglass(X):
    model = DeepAutoencoder((N, 9, 6, D), g="relu", f="tanh")
    shapes = [tuple(layer.weight.shape) for layer in model.encoder_layers]
    assert shapes == [(9, N), (6, 9), (D, 6)]
    shapes = [tuple(layer.weight.shape) for layer in model.decoder_layers]
    assert shapes == [(6, D), (9, 6), (N, 9)]
    with torch.no_grad():
        h = model.encode(X)
        x_hat = model(X)
    assert h.shape == (M, D) and float(h.min()) >= 0.0  # relu code
    assert x_hat.shape == (M, N) and float(x_hat.abs().max()) < 1.0  # tanh output
    torch.testing.assert_close(x_hat, torch.tanh(model.decode_logits(h)))


@pytest.mark.parametrize("bad, error, words", [
    (np.ones((M, N), dtype=np.int64), TypeError, ["X", "float"]),
    (torch.ones(N), ValueError, ["X", "2-D"]),
    (torch.ones(M, N + 1), ValueError, ["X", str(N)]),
    (torch.full((M, N), float("nan")), ValueError, ["X", "NaN"]),
    ([[0.0] * N], TypeError, ["X"]),
])
def test_bad_inputs_raise_errors_naming_X(bad, error, words):
    for model in (Autoencoder(N, D), DeepAutoencoder((N, 8, D))):
        with pytest.raises(error) as info:
            model(bad)
        for word in words:
            assert word in str(info.value)


def test_bad_code_for_decode_names_h():
    with pytest.raises(ValueError, match=r"h must have 5 features"):
        Autoencoder(N, D).decode(torch.ones(M, D + 1))


@pytest.mark.parametrize("kwargs, words", [
    ({"g": "softmax"}, ["g", "softmax"]),
    ({"f": "relu"}, ["f", "relu", "sigmoid"]),
])
def test_bad_activation_names_are_rejected(kwargs, words):
    with pytest.raises(ValueError) as info:
        Autoencoder(N, D, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_hidden"):
        Autoencoder(N, 0)
    with pytest.raises(TypeError, match="n_features"):
        Autoencoder(2.5, D)
    with pytest.raises(ValueError, match="layer_sizes"):
        DeepAutoencoder((N,))
    with pytest.raises(TypeError, match="random_state"):
        Autoencoder(N, D, random_state="seed")


def test_layer_sizes_of_the_wrong_type_are_a_type_error():
    for bad in ("abc", 784, None):
        with pytest.raises(TypeError, match="layer_sizes must be a sequence"):
            DeepAutoencoder(bad)


def test_W_star_is_a_property_not_a_getattr_override():
    assert isinstance(Autoencoder.__dict__["W_star"], property)
    assert "__getattr__" not in Autoencoder.__dict__


@pytest.mark.parametrize("tied", [False, True])
def test_the_numpy_bridge_goes_both_ways(tied):
    model = Autoencoder(N, D, tied=tied, random_state=0)
    params = to_numpy_params(model)
    assert {k: v.shape for k, v in params.items()} == {"W": (D, N), "b": (D,), "W_star": (N, D),
                                                       "c": (N,)}
    assert all(v.dtype == np.float64 and isinstance(v, np.ndarray) for v in params.values())
    np.testing.assert_array_equal(params["W_star"], model.W_star.detach().numpy())
    params["W"] += 1.0  # a copy: the model does not change ...
    assert not np.allclose(model.W.detach().numpy(), params["W"])
    if tied:
        params["W_star"] = params["W"].T
    params["c"] += 0.5
    assert load_numpy_params(model, params) is model  # ... until it is loaded back
    assert model.W.dtype == torch.float32
    np.testing.assert_allclose(model.W.detach().numpy(), params["W"], rtol=1e-6)
    np.testing.assert_allclose(model.c.detach().numpy(), params["c"], rtol=1e-6)
    np.testing.assert_allclose(model.W_star.detach().numpy(), params["W_star"], rtol=1e-6)


def test_the_numpy_bridge_refuses_what_does_not_fit():
    model = Autoencoder(N, D)
    params = to_numpy_params(model)
    with pytest.raises(ValueError, match=r'params\["W"\] must have the model\'s shape'):
        load_numpy_params(model, dict(params, W=params["W"].T))
    with pytest.raises(ValueError, match="keys"):
        load_numpy_params(model, {"W": params["W"]})
    with pytest.raises(ValueError, match="tied"):
        load_numpy_params(Autoencoder(N, D, tied=True), params)
    with pytest.raises(TypeError, match="Autoencoder"):
        to_numpy_params(DeepAutoencoder((N, 8, D)))
