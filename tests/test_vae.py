"""Tests for aecourse.vae and losses.gaussian_kl against independent oracles.

Oracles: torch.distributions for the KL, a Monte-Carlo estimate, finite differences and
autograd for the reparameterised gradient, and the equality of fit's objective with -ELBO.
"""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from aecourse import losses
from aecourse.gradcheck import numerical_gradient, rel_error
from aecourse.train import fit
from aecourse.vae import VAE, elbo, kl_penalty, reparameterize


def gaussian(m=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(scale=0.7, size=(m, d))


# --- the Gaussian KL --------------------------------------------------------------------------

def test_gaussian_kl_equals_torch_distributions_summed_over_units_averaged_over_examples():
    mu, logvar = gaussian()
    q = Normal(torch.as_tensor(mu), torch.as_tensor(np.exp(0.5 * logvar)))
    zeros = torch.zeros(mu.shape, dtype=torch.float64)
    prior = Normal(zeros, torch.ones_like(zeros))
    expected = kl_divergence(q, prior).sum(1).mean().item()
    assert losses.gaussian_kl(mu, logvar) == pytest.approx(expected, rel=1e-12)


def test_gaussian_kl_agrees_with_a_monte_carlo_estimate():
    mu, logvar = gaussian(m=1, d=4, seed=1)
    sigma = np.exp(0.5 * logvar)
    h = mu + sigma * np.random.default_rng(2).standard_normal((200_000, 4))
    log_q = (-0.5 * ((h - mu) / sigma) ** 2 - np.log(sigma)).sum(1)
    log_p = (-0.5 * h ** 2).sum(1)
    estimate, stderr = (log_q - log_p).mean(), (log_q - log_p).std() / np.sqrt(len(h))
    assert abs(losses.gaussian_kl(mu[0], logvar[0]) - estimate) < 4 * stderr


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((3, 2))
    assert losses.gaussian_kl(zeros, zeros) == 0.0
    mu, logvar = gaussian(seed=3)
    assert losses.gaussian_kl(mu, logvar) > 0


def test_gaussian_kl_numpy_and_torch_agree():
    mu, logvar = gaussian(seed=4)
    out = losses.gaussian_kl(torch.as_tensor(mu), torch.as_tensor(logvar))
    assert isinstance(out, torch.Tensor)
    assert out.item() == pytest.approx(losses.gaussian_kl(mu, logvar), rel=1e-12)


@pytest.mark.parametrize("mu, logvar, error, words", [
    (np.zeros((2, 3)), np.zeros((2, 4)), ValueError, "same shape"),
    (np.zeros((2, 3)), torch.zeros(2, 3, dtype=torch.float64), TypeError, "both"),
    ([0.0, 1.0], np.zeros(2), TypeError, "NumPy array"),
    (np.zeros((2, 3), dtype=int), np.zeros((2, 3)), TypeError, "floating"),
    (np.full((1, 2), np.nan), np.zeros((1, 2)), ValueError, "NaN"),
])
def test_gaussian_kl_rejects_bad_input_clearly(mu, logvar, error, words):
    with pytest.raises(error, match=words):
        losses.gaussian_kl(mu, logvar)


# --- the reparameterisation trick ---------------------------------------------------------------

def test_reparameterized_samples_have_the_requested_mean_and_standard_deviation():
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64).expand(100_000, 3)
    logvar = torch.log(torch.tensor([0.25, 4.0, 1.0], dtype=torch.float64)).expand(100_000, 3)
    h = reparameterize(mu, logvar, random_state=0)
    np.testing.assert_allclose(h.mean(0).numpy(), [1.0, -2.0, 0.5], atol=0.02)
    np.testing.assert_allclose(h.std(0).numpy(), [0.5, 2.0, 1.0], rtol=0.01)


def test_reparameterize_is_seeded_locally():
    mu, logvar = (torch.as_tensor(a) for a in gaussian())
    state = torch.random.get_rng_state()
    a, b = (reparameterize(mu, logvar, random_state=7) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, reparameterize(mu, logvar, random_state=8))
    assert torch.equal(state, torch.random.get_rng_state())


def test_reparameterized_gradient_matches_finite_differences_for_a_fixed_noise():
    # J(mu, logvar) = sum(h**3) with the noise frozen by the seed: autograd vs centred differences
    mu0, logvar0 = gaussian(m=2, d=3, seed=5)

    def J(mu, logvar):
        return float((reparameterize(torch.as_tensor(mu), torch.as_tensor(logvar),
                                     random_state=11) ** 3).sum())

    mu, logvar = (torch.tensor(a, requires_grad=True) for a in (mu0, logvar0))
    (reparameterize(mu, logvar, random_state=11) ** 3).sum().backward()
    assert rel_error(mu.grad.numpy(),
                     numerical_gradient(lambda m: J(m, logvar0), mu0.copy())) < 1e-7
    assert rel_error(logvar.grad.numpy(),
                     numerical_gradient(lambda v: J(mu0, v), logvar0.copy())) < 1e-7


def test_reparameterized_gradient_agrees_with_the_score_function_estimator():
    # d/dmu E[h^2] for h ~ N(mu, sigma^2) is 2 mu; the score-function (REINFORCE) estimator
    # E[h^2 (h - mu) / sigma^2] is an independent, unbiased, noisier estimate of it.
    m, mu0, logvar0 = 200_000, 0.7, np.log(0.5)
    mu = torch.full((m, 1), mu0, dtype=torch.float64, requires_grad=True)
    h = reparameterize(mu, torch.full((m, 1), logvar0, dtype=torch.float64), random_state=0)
    (h ** 2).mean().backward()
    pathwise = mu.grad.sum().item()
    x = h.detach().numpy()[:, 0]
    score = x ** 2 * (x - mu0) / np.exp(logvar0)
    assert abs(pathwise - 2 * mu0) < 0.02
    assert abs(score.mean() - pathwise) < 4 * score.std() / np.sqrt(m)


def test_reparameterize_rejects_numpy_and_mismatched_shapes():
    with pytest.raises(TypeError, match="torch tensor"):
        reparameterize(np.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(torch.zeros(2, 3), torch.zeros(3, 2))


# --- the ELBO and the model ---------------------------------------------------------------------

def test_elbo_is_minus_cross_entropy_minus_kl_for_a_hand_computed_case():
    a_2 = np.array([[0.0, 0.0]])              # sigmoid = 1/2: -log p(x|h) = 2 log 2
    x = np.array([[1.0, 0.0]])
    mu, logvar = np.array([[1.0]]), np.array([[0.0]])   # KL = 1/2 * 1^2
    assert elbo(a_2, x, mu, logvar) == pytest.approx(-2 * np.log(2) - 0.5, rel=1e-12)


def test_vae_shapes_and_modes():
    model = VAE(12, 3, n_units=8, random_state=0)
    X = torch.rand(5, 12)
    mu, logvar = model.encode_stats(X)
    assert mu.shape == logvar.shape == (5, 3)
    model.eval()
    assert torch.equal(model.encode(X), mu)
    model.train()
    assert not torch.equal(model.encode(X), mu)
    assert model(X).shape == (5, 12) and 0 < model(X).min() and model(X).max() < 1
    assert model.sample(4, random_state=0).shape == (4, 12)


def test_vae_initialisation_is_seeded_and_leaves_the_global_state_alone():
    state = torch.random.get_rng_state()
    a, b = VAE(10, 2, n_units=6, random_state=3), VAE(10, 2, n_units=6, random_state=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert torch.equal(state, torch.random.get_rng_state())


def test_fit_with_kl_penalty_minimises_minus_the_elbo():
    rng = np.random.default_rng(0)
    prototypes = (rng.random((2, 10)) < 0.5).astype(np.float32)   # two binary patterns
    X = prototypes[rng.integers(0, 2, 64)]
    # the objective fit evaluates on a batch, computed by hand with the same sample
    model = VAE(10, 2, n_units=6, random_state=1)
    twin = VAE(10, 2, n_units=6, random_state=1)
    Xt = torch.as_tensor(X)
    h = model.encode(Xt)
    objective = losses.cross_entropy_with_logits(model.decode_logits(h), Xt) \
        + kl_penalty(model, Xt, h)
    mu, logvar = twin.encode_stats(Xt)
    h_twin = reparameterize(mu, logvar, random_state=twin.generator)
    assert torch.allclose(h, h_twin)
    minus_elbo = -elbo(twin.decode_logits(h_twin), Xt, mu, logvar)
    assert objective.item() == pytest.approx(minus_elbo.item(), rel=1e-6)
    # and training improves the ELBO of the mean code
    def mean_elbo(m):
        m.eval()
        with torch.no_grad():
            mu, logvar = m.encode_stats(Xt)
            return elbo(m.decode_logits(mu), Xt, mu, logvar).item()
    before = mean_elbo(model)
    fit(model, X, loss="cross_entropy_with_logits", penalty=kl_penalty, epochs=10, lr=2e-2,
        batch_size=16, progress=False)
    assert mean_elbo(model) > before + 0.5


def test_vae_and_kl_penalty_reject_bad_arguments():
    with pytest.raises(ValueError, match="g must be one of"):
        VAE(10, 2, g="softmax")
    with pytest.raises(TypeError, match="positive integer"):
        VAE(10, 2.5)
    with pytest.raises(ValueError, match="10 features"):
        VAE(10, 2).encode_stats(torch.zeros(3, 9))
    with pytest.raises(TypeError, match="VAE"):
        kl_penalty(object(), torch.zeros(2, 3), torch.zeros(2, 1))
