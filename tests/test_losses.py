"""Tests for aecourse.losses against independent oracles (loops, torch.nn, autograd)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aecourse import losses
from aecourse.models import Autoencoder

M, N, D = 6, 9, 4


def rng(seed=0):
    return np.random.default_rng(seed)


def probs(shape, seed=0, low=0.01, high=0.99):
    return rng(seed).uniform(low, high, size=shape)


# --- reconstruction losses ---------------------------------------------------------------------


def test_squared_error_equals_an_explicit_double_loop():
    x_hat, x = rng(1).normal(size=(M, N)), rng(2).normal(size=(M, N))
    total = 0.0
    for i in range(M):
        for j in range(N):
            total += (x_hat[i, j] - x[i, j]) ** 2
    assert losses.squared_error(x_hat, x) == pytest.approx(total / M, rel=1e-12)


def test_a_single_example_counts_as_m_equal_one():
    x_hat, x = rng(1).normal(size=N), rng(2).normal(size=N)
    assert losses.squared_error(x_hat, x) == pytest.approx(np.sum((x_hat - x) ** 2))


@pytest.mark.parametrize("name, args", [
    ("squared_error", lambda: (rng(1).normal(size=(M, N)), rng(2).normal(size=(M, N)))),
    ("cross_entropy", lambda: (probs((M, N), 1), probs((M, N), 2, 0, 1))),
    ("cross_entropy_with_logits", lambda: (3 * rng(1).normal(size=(M, N)), probs((M, N), 2, 0, 1))),
    ("kl_sparsity", lambda: (0.1, probs((M, D), 1))),
    ("l1_activity", lambda: (rng(1).normal(size=(M, D)), 0.3)),
    ("contractive_penalty", lambda: (rng(1).normal(size=(D, N)), probs((M, D), 2))),
    ("kl_divergence", lambda: (0.2, probs(D, 3))),
])
def test_numpy_and_torch_versions_agree_and_return_their_own_kind(name, args):
    fun = getattr(losses, name)
    numpy_args = args()
    torch_args = [torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in numpy_args]
    out_np, out_torch = fun(*numpy_args), fun(*torch_args)
    assert not isinstance(out_np, torch.Tensor)
    assert isinstance(out_torch, torch.Tensor)
    np.testing.assert_allclose(np.asarray(out_np), out_torch.numpy(), rtol=1e-12)


@pytest.mark.parametrize("x", [0.0, 1.0])
def test_cross_entropy_is_minimised_at_x_hat_equal_x(x):
    grid = np.linspace(0.0, 1.0, 101)
    values = [losses.cross_entropy(np.array([[q]]), np.array([[x]])) for q in grid]
    assert grid[int(np.argmin(values))] == x
    assert min(values) < 1e-6  # log(1 - eps) ~ 0: a perfect reconstruction costs nothing


def test_cross_entropy_matches_torch_binary_cross_entropy():
    x_hat = torch.as_tensor(probs((M, N), 1))
    x = torch.as_tensor(probs((M, N), 2, 0.0, 1.0))
    expected = F.binary_cross_entropy(x_hat, x, reduction="sum") / M
    torch.testing.assert_close(losses.cross_entropy(x_hat, x), expected)


def test_cross_entropy_clips_so_that_zero_and_one_stay_finite():
    x_hat = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # the worst possible guesses
    value = losses.cross_entropy(x_hat, x, eps=1e-7)
    assert torch.isfinite(value)
    assert float(value) == pytest.approx(-2 * np.log(1e-7), rel=1e-6)


def test_cross_entropy_with_logits_matches_torch_bce_with_logits():
    a_2 = torch.as_tensor(3 * rng(1).normal(size=(M, N)))
    x = torch.as_tensor(probs((M, N), 2, 0.0, 1.0))
    expected = torch.nn.BCEWithLogitsLoss(reduction="sum")(a_2, x) / M
    torch.testing.assert_close(losses.cross_entropy_with_logits(a_2, x), expected)
    # and it is the cross-entropy of the sigmoid outputs
    torch.testing.assert_close(losses.cross_entropy(torch.sigmoid(a_2), x), expected)


def test_cross_entropy_with_logits_stays_finite_for_huge_logits():
    a_2 = np.array([[1000.0, -1000.0, 1000.0, -1000.0]])
    x = np.array([[0.0, 0.0, 1.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, no NaN
        value = losses.cross_entropy_with_logits(a_2, x)
    assert value == pytest.approx(2000.0)  # two confidently wrong entries cost |a| each
    expected = torch.nn.BCEWithLogitsLoss(reduction="sum")(torch.as_tensor(a_2), torch.as_tensor(x))
    assert value == pytest.approx(float(expected))


# --- sparsity ----------------------------------------------------------------------------------


def test_kl_is_zero_at_rho_and_positive_elsewhere():
    rho = 0.2
    assert losses.kl_divergence(rho, np.array([rho]))[0] == pytest.approx(0.0, abs=1e-15)
    others = np.array([0.01, 0.1, 0.19, 0.21, 0.5, 0.9, 0.99])
    assert np.all(losses.kl_divergence(rho, others) > 0)


def test_kl_grows_without_bound_towards_zero_and_one():
    rho = 0.2
    towards_zero = losses.kl_divergence(rho, np.array([0.1, 1e-2, 1e-4, 1e-8, 1e-12]))
    towards_one = losses.kl_divergence(rho, 1 - np.array([0.5, 1e-2, 1e-4, 1e-8, 1e-12]))
    for values in (towards_zero, towards_one):
        assert np.all(np.diff(values) > 0)
        assert values[-1] > 5.0


def test_kl_gradient_matches_the_formula_by_autograd():
    rho = 0.05
    rho_hat = torch.tensor(probs(7, 4), requires_grad=True)
    losses.kl_divergence(rho, rho_hat).sum().backward()
    with torch.no_grad():
        expected = -rho / rho_hat + (1 - rho) / (1 - rho_hat)
    torch.testing.assert_close(rho_hat.grad, expected)


def test_kl_sparsity_uses_the_column_means_of_h():
    h = probs((M, D), 5)
    rho_hat = h.mean(axis=0)
    expected = sum(0.1 * np.log(0.1 / r) + 0.9 * np.log(0.9 / (1 - r)) for r in rho_hat)
    assert losses.kl_sparsity(0.1, h) == pytest.approx(expected, rel=1e-12)


def test_kl_sparsity_accepts_saturated_units_when_their_mean_is_inside():
    h = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert np.isfinite(losses.kl_sparsity(0.1, h))


def test_l1_activity_is_lam_times_mean_over_examples_of_summed_abs():
    h = rng(3).normal(size=(M, D))
    expected = 0.3 * sum(abs(h[i, j]) for i in range(M) for j in range(D)) / M
    assert losses.l1_activity(h, 0.3) == pytest.approx(expected, rel=1e-12)


# --- contractive -------------------------------------------------------------------------------


def test_closed_form_contractive_penalty_equals_autograd_jacobian_penalty():
    model = Autoencoder(N, D, g="sigmoid", random_state=1).double()
    with torch.no_grad():
        model.b.normal_(generator=torch.Generator().manual_seed(0))
    X = torch.as_tensor(rng(2).random((M, N)))
    closed = losses.contractive_penalty(model.W, model.encode(X)).detach()
    autograd = losses.jacobian_penalty(model.encode, X).detach()
    assert abs(float(closed - autograd)) / float(autograd.detach()) < 1e-6


def test_jacobian_penalty_is_differentiable_and_its_gradient_matches_the_closed_form():
    model = Autoencoder(N, D, g="sigmoid", random_state=2).double()
    X = torch.as_tensor(rng(3).random((M, N)))
    (grad_autograd,) = torch.autograd.grad(losses.jacobian_penalty(model.encode, X), model.W)
    (grad_closed,) = torch.autograd.grad(losses.contractive_penalty(model.W, model.encode(X)),
                                         model.W)
    torch.testing.assert_close(grad_autograd, grad_closed)


def test_jacobian_penalty_of_a_linear_encoder_is_the_squared_norm_of_W():
    model = Autoencoder(N, D, g="linear", random_state=3).double()
    X = torch.as_tensor(rng(4).random((M, N)))
    value = losses.jacobian_penalty(model.encode, X)
    torch.testing.assert_close(value, (model.W ** 2).sum())


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, words", [
    (lambda: losses.cross_entropy(probs((2, 3)), np.full((2, 3), 1.5)), ValueError, ["x", "[0"]),
    (lambda: losses.cross_entropy_with_logits(np.zeros((2, 3)), -np.ones((2, 3))), ValueError,
     ["x"]),
    (lambda: losses.cross_entropy(np.full((2, 3), 2.0), np.ones((2, 3))), ValueError,
     ["x_hat", "logits"]),
    (lambda: losses.squared_error(np.zeros((2, 3)), np.zeros((3, 2))), ValueError,
     ["x_hat", "x", "shape"]),
    (lambda: losses.squared_error(np.full((2, 3), np.nan), np.zeros((2, 3))), ValueError,
     ["x_hat", "NaN"]),
    (lambda: losses.squared_error(np.zeros((2, 3)), np.zeros((2, 3), dtype=int)), TypeError,
     ["x", "float"]),
    (lambda: losses.kl_divergence(1.0, probs(3)), ValueError, ["rho", "between 0 and 1"]),
    (lambda: losses.kl_sparsity(0.0, probs((2, 3))), ValueError, ["rho"]),
    (lambda: losses.kl_divergence(0.1, np.array([0.0, 0.5])), ValueError, ["rho_hat"]),
    (lambda: losses.kl_sparsity(0.1, np.zeros((2, 3))), ValueError, ["rho_hat"]),
    (lambda: losses.kl_sparsity(0.1, np.full((2, 3), 1.5)), ValueError, ["h"]),
    (lambda: losses.l1_activity(np.zeros((2, 3)), -1.0), ValueError, ["lam"]),
    (lambda: losses.contractive_penalty(np.zeros((3, 5)), probs((2, 4))), ValueError, ["h", "3"]),
    (lambda: losses.jacobian_penalty("encode", torch.zeros(2, 3)), TypeError, ["encode"]),
])
def test_bad_input_raises_an_error_naming_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)
