"""aecourse.scratch against two independent oracles: torch autograd and finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aecourse import models, scratch
from aecourse.gradcheck import numerical_gradient, rel_error

M, N, D = 7, 6, 4
RHO, BETA = 0.1, 3.0
TORCH_FUNCTIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                   "leaky_relu": F.leaky_relu, "linear": lambda a: a}   # torch's default slope 0.01

# (loss, g, f, with KL): squared error with every g and f; cross-entropy with f="sigmoid" and
# every g; the KL term with g="sigmoid" for both losses.
DECODERS = ("sigmoid", "tanh", "linear")
CASES = ([("squared_error", g, f, False) for g in models.ACTIVATIONS for f in DECODERS]
         + [("cross_entropy", g, "sigmoid", False) for g in models.ACTIVATIONS]
         + [("squared_error", "sigmoid", f, True) for f in DECODERS]
         + [("cross_entropy", "sigmoid", "sigmoid", True)])


def problem(seed=0):
    """Random float64 parameters, data in [0, 1]; the pre-activations a_1 avoid the ReLU kink."""
    rng = np.random.default_rng(seed)
    X = rng.random((M, N))
    params = {"W": rng.normal(scale=0.8, size=(D, N)), "b": rng.normal(scale=0.5, size=D),
              "W_star": rng.normal(scale=0.8, size=(N, D)), "c": rng.normal(scale=0.5, size=N)}
    a_1 = X @ params["W"].T + params["b"]
    # finite differences move a_1 by about 1e-6: a margin of 1e-3 keeps them on one side of 0,
    # and both signs occur, so relu/leaky_relu are exercised on both pieces
    assert np.abs(a_1).min() > 1e-3 and (a_1 < 0).any() and (a_1 > 0).any()
    return X, params


def torch_loss(params, X, loss, g, f, kl):
    """The objective written directly in torch (not via aecourse), differentiated by autograd."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt = torch.tensor(X)
    h = TORCH_FUNCTIONS[g](Xt @ t["W"].T + t["b"])
    x_hat = TORCH_FUNCTIONS[f](h @ t["W_star"].T + t["c"])
    if loss == "squared_error":
        J = ((x_hat - Xt) ** 2).sum() / M
    else:
        J = -(Xt * torch.log(x_hat) + (1 - Xt) * torch.log(1 - x_hat)).sum() / M
    if kl:
        rho_hat = h.mean(0)
        J = J + BETA * (RHO * torch.log(RHO / rho_hat)
                        + (1 - RHO) * torch.log((1 - RHO) / (1 - rho_hat))).sum()
    J.backward()
    return J.item(), {k: v.grad.numpy() for k, v in t.items()}


def kl_options(kl):
    return {"rho": RHO, "beta": BETA} if kl else {}


@pytest.mark.parametrize("loss, g, f, kl", CASES)
def test_loss_and_grads_match_torch_autograd(loss, g, f, kl):
    X, params = problem()
    J, grads = scratch.loss_and_grads(params, X, loss=loss, g=g, f=f, **kl_options(kl))
    J_torch, grads_torch = torch_loss(params, X, loss, g, f, kl)
    assert J == pytest.approx(J_torch, rel=1e-12)
    for name in scratch.PARAM_NAMES:
        assert grads[name].shape == params[name].shape
        assert rel_error(grads[name], grads_torch[name]) < 1e-6, name


@pytest.mark.parametrize("loss, g, f, kl", CASES)
def test_loss_and_grads_match_finite_differences(loss, g, f, kl):
    X, params = problem()
    _, grads = scratch.loss_and_grads(params, X, loss=loss, g=g, f=f, **kl_options(kl))
    for name in scratch.PARAM_NAMES:
        numeric = numerical_gradient(
            lambda _: scratch.loss_and_grads(params, X, loss=loss, g=g, f=f, **kl_options(kl))[0],
            params[name])
        assert rel_error(grads[name], numeric) < 1e-6, name


def test_sigmoid_cross_entropy_delta_equals_generic_chain_and_x_hat_minus_x_over_m():
    X, params = problem()
    x_hat, cache = scratch.ae_forward(X, params, g="tanh", f="sigmoid")
    _, sigmoid_cache = scratch.activation_forward(cache["a_2"], "sigmoid")
    generic = scratch.activation_backward(scratch.cross_entropy_grad(x_hat, X), sigmoid_cache)
    np.testing.assert_allclose(generic, (x_hat - X) / M, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(scratch.sigmoid_cross_entropy_delta(x_hat, X), (x_hat - X) / M,
                               rtol=1e-15)


@pytest.mark.parametrize("kl", [False, True])
def test_backprop_from_simplified_delta_agrees_with_loss_and_grads(kl):
    """Starting the backward pass at a_2 with (x_hat - x)/m gives the generic path's gradients."""
    X, params = problem()
    _, grads = scratch.loss_and_grads(params, X, loss="cross_entropy", **kl_options(kl))
    a_1, affine_1 = scratch.affine_forward(X, params["W"], params["b"])
    h_1, act_1 = scratch.activation_forward(a_1, "sigmoid")
    a_2, affine_2 = scratch.affine_forward(h_1, params["W_star"], params["c"])
    x_hat, _ = scratch.activation_forward(a_2, "sigmoid")
    da_2 = scratch.sigmoid_cross_entropy_delta(x_hat, X)
    dh_1, dW_star, dc = scratch.affine_backward(da_2, affine_2)
    if kl:
        dh_1 = dh_1 + scratch.kl_delta(RHO, h_1.mean(0), BETA) / M
    _, dW, db = scratch.affine_backward(scratch.activation_backward(dh_1, act_1), affine_1)
    for name, value in {"W": dW, "b": db, "W_star": dW_star, "c": dc}.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-9, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("loss, grad_fn", [("squared_error", scratch.squared_error_grad),
                                           ("cross_entropy", scratch.cross_entropy_grad)])
@pytest.mark.parametrize("kl", [False, True])
def test_changing_the_loss_changes_only_dx_hat(loss, grad_fn, kl, monkeypatch):
    X, params = problem()
    x_hat, cache = scratch.ae_forward(X, params)
    dh_extra = scratch.kl_delta(RHO, cache["h_1"].mean(0), BETA) / M if kl else None
    by_hand = scratch.ae_backward(grad_fn(x_hat, X), cache, dh_extra=dh_extra)

    calls = []
    real_backward = scratch.ae_backward
    def spy(*args, **kwargs):
        calls.append(1)
        return real_backward(*args, **kwargs)

    monkeypatch.setattr(scratch, "ae_backward", spy)
    _, grads = scratch.loss_and_grads(params, X, loss=loss, **kl_options(kl))
    assert calls == [1]                               # the one generic backward, called once
    for name in scratch.PARAM_NAMES:
        np.testing.assert_array_equal(grads[name], by_hand[name], err_msg=name)


def test_kl_delta_is_the_derivative_of_the_penalty_by_autograd():
    rho_hat = torch.tensor([0.05, 0.1, 0.3, 0.9], dtype=torch.float64, requires_grad=True)
    penalty = BETA * (RHO * torch.log(RHO / rho_hat)
                      + (1 - RHO) * torch.log((1 - RHO) / (1 - rho_hat)))
    penalty.sum().backward()
    delta = scratch.kl_delta(RHO, rho_hat.detach().numpy(), BETA)
    assert delta.shape == (4,)
    assert rel_error(delta, rho_hat.grad.numpy()) < 1e-12
    assert delta[1] == 0.0                            # no push where rho_hat already equals rho


def test_dh_extra_enters_before_g_prime_and_only_the_encoder():
    X, params = problem()
    x_hat, cache = scratch.ae_forward(X, params, g="tanh", f="linear")
    dx_hat = scratch.squared_error_grad(x_hat, X)
    extra = np.random.default_rng(5).normal(size=D)
    plain = scratch.ae_backward(dx_hat, cache)
    shifted = scratch.ae_backward(dx_hat, cache, dh_extra=extra)
    per_example = scratch.ae_backward(dx_hat, cache, dh_extra=np.tile(extra, (M, 1)))
    for name in ("W_star", "c"):
        np.testing.assert_array_equal(shifted[name], plain[name])
    da_1_extra = extra * (1 - cache["h_1"] ** 2)         # extra multiplied by tanh'(a_1)
    np.testing.assert_allclose(shifted["b"] - plain["b"], da_1_extra.sum(0), rtol=1e-10)
    np.testing.assert_allclose(shifted["W"] - plain["W"], da_1_extra.T @ X, rtol=1e-10)
    for name in scratch.PARAM_NAMES:
        np.testing.assert_allclose(per_example[name], shifted[name], rtol=1e-12)


def test_affine_backward_matches_finite_differences():
    rng = np.random.default_rng(6)
    x, W, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    out, cache = scratch.affine_forward(x, W, b)
    np.testing.assert_allclose(out, np.einsum("ik,jk->ij", x, W) + b, rtol=1e-12)
    dout = rng.normal(size=out.shape)
    dx, dW, db = scratch.affine_backward(dout, cache)

    def scalar(_):                                    # its gradient with respect to out is dout
        return np.sum(scratch.affine_forward(x, W, b)[0] * dout)

    for analytic, array in ((dx, x), (dW, W), (db, b)):
        assert rel_error(analytic, numerical_gradient(scalar, array)) < 1e-8


@pytest.mark.parametrize("name", models.ACTIVATIONS)
def test_activation_matches_torch_and_its_backward_matches_finite_differences(name):
    rng = np.random.default_rng(7)
    a = rng.normal(scale=2.0, size=(6, 5))
    a[np.abs(a) < 1e-2] = 0.5                         # stay off the kink of relu / leaky_relu
    out, cache = scratch.activation_forward(a, name)
    np.testing.assert_allclose(out, TORCH_FUNCTIONS[name](torch.tensor(a)).numpy(), rtol=1e-14)
    dout = rng.normal(size=a.shape)
    da = scratch.activation_backward(dout, cache)
    numeric = numerical_gradient(lambda v: np.sum(scratch.activation_forward(v, name)[0] * dout), a)
    assert rel_error(da, numeric) < 1e-7


def test_scratch_knows_the_same_activation_names_as_the_torch_models():
    for name in models.ACTIVATIONS:
        scratch.activation_forward(np.zeros(2), name)
    with pytest.raises(ValueError, match="activation name"):
        scratch.activation_forward(np.zeros(2), "softplus")


def test_init_params_shapes_dtype_and_seed():
    p = scratch.init_params(N, D, random_state=3)
    shapes = {"W": (D, N), "b": (D,), "W_star": (N, D), "c": (N,)}
    assert {k: v.shape for k, v in p.items()} == shapes
    assert all(v.dtype == np.float64 for v in p.values())
    q = scratch.init_params(N, D, random_state=3)
    assert all(np.array_equal(p[k], q[k]) for k in p)
    assert not np.array_equal(p["W"], scratch.init_params(N, D, random_state=4)["W"])
    assert np.abs(p["W"]).max() <= np.sqrt(6 / (N + D))


def test_bad_inputs_raise_clear_errors():
    X, params = problem()
    bad_shape = dict(params, W_star=params["W_star"].T)
    with pytest.raises(ValueError, match=r'params\["W_star"\]'):
        scratch.loss_and_grads(bad_shape, X)
    with pytest.raises(ValueError, match="keys"):
        scratch.ae_forward(X, {"W": params["W"]})
    with pytest.raises(ValueError, match="g must be one of"):
        scratch.ae_forward(X, params, g="softmax")
    with pytest.raises(ValueError, match="f must be one of"):
        scratch.ae_forward(X, params, f="relu")           # relu is not a decoder choice
    with pytest.raises(TypeError, match="X must hold floating-point"):
        scratch.loss_and_grads(params, (X > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match="X must have 6 features"):
        scratch.loss_and_grads(params, X[:, :5])
    with pytest.raises(ValueError, match="loss must be one of"):
        scratch.loss_and_grads(params, X, loss="absolute_error")
    with pytest.raises(ValueError, match="f='sigmoid'"):
        scratch.loss_and_grads(params, X, loss="cross_entropy", f="linear")
    with pytest.raises(ValueError, match="g='sigmoid'"):
        scratch.loss_and_grads(params, X, g="relu", rho=0.1, beta=3.0)
    with pytest.raises(ValueError, match="needs rho"):
        scratch.loss_and_grads(params, X, beta=3.0)
    with pytest.raises(ValueError, match="rho must be strictly between 0 and 1"):
        scratch.loss_and_grads(params, X, rho=1.5, beta=3.0)
    x_hat, cache = scratch.ae_forward(X, params)
    with pytest.raises(ValueError, match="dh_extra must have shape"):
        scratch.ae_backward(x_hat, cache, dh_extra=np.ones(D + 1))
    with pytest.raises(ValueError, match="dx_hat and x_hat must have the same shape"):
        scratch.ae_backward(x_hat[:, :3], cache)


def test_torch_parameters_or_data_get_a_type_error_that_names_the_bridge():
    X, _ = problem()
    model = models.Autoencoder(X.shape[1], D, random_state=0)
    with pytest.raises(TypeError, match=r'params\["W"\] must be a NumPy array.*to_numpy_params'):
        scratch.ae_forward(X, dict(model.named_parameters()))
    with pytest.raises(TypeError, match=r"X must be a NumPy array.*X.numpy\(\)"):
        scratch.loss_and_grads(models.to_numpy_params(model), torch.as_tensor(X))
    x_hat, _ = scratch.ae_forward(X, models.to_numpy_params(model))  # the fix works
    assert x_hat.shape == X.shape
