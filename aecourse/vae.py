"""The variational autoencoder: a stochastic encoder, the reparameterisation trick, the ELBO.

The encoder outputs a Gaussian instead of a point::

    q(h|x) = N(mu(x), diag sigma(x)**2),   logvar = log sigma**2     (m, d) each
    h      = mu + sigma * eps,             eps ~ N(0, I)             reparameterisation
    x_hat  = f(decoder(h))                 f = sigmoid (Bernoulli pixels)

and training maximises the evidence lower bound (ELBO) of ``log p(x)``::

    ELBO = E_q[log p(x|h)] - KL(q(h|x) || N(0, I))

with ``-log p(x|h)`` the cross-entropy of the decoder's logits and the KL in closed
form (``aecourse.losses.gaussian_kl``). ``fit`` trains a ``VAE`` unchanged: the loss
"cross_entropy_with_logits" is the reconstruction term and ``penalty=kl_penalty`` adds
the KL, so the minimised objective is ``-ELBO`` (on one sampled h per example).
"""

from __future__ import annotations

import torch

from aecourse import losses
from aecourse._validate import (
    check_array,
    check_choice,
    check_positive_int,
    check_random_state,
    check_same_shape,
    describe,
)
from aecourse.models import ACTIVATIONS, DeepAutoencoder, _AutoencoderAPI, activation

__all__ = ["VAE", "reparameterize", "elbo", "kl_penalty"]


def reparameterize(mu, logvar, *, random_state=None):
    """A sample ``h = mu + sigma * eps`` of ``N(mu, diag sigma**2)``, differentiable in mu, logvar.

    The noise ``eps ~ N(0, I)`` does not depend on the parameters, so the gradient
    flows through ``mu`` and ``sigma = exp(logvar / 2)``:
    ``dh/dmu = 1`` and ``dh/dlogvar = sigma * eps / 2``.

    Parameters
    ----------
    mu : Tensor, shape (m, d) or (d,)
        Means.
    logvar : Tensor, same shape
        Log-variances ``log sigma**2``.
    random_state : int, None or torch.Generator
        Source of ``eps`` (local; the global random state is never used).

    Returns
    -------
    h : Tensor, same shape as ``mu``

    Chapter: 9 (From autoencoders to generative models).
    """
    for value, name in ((mu, "mu"), (logvar, "logvar")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor (the sample must carry gradients); "
                            f"got {describe(value)}.")
    check_array(mu, "mu", ndim=(1, 2))
    check_array(logvar, "logvar", ndim=(1, 2))
    check_same_shape(mu, "mu", logvar, "logvar")
    generator = check_random_state(random_state, kind="torch")
    return _sample(mu, logvar, generator)


def _sample(mu, logvar, generator):
    """The reparameterised sample itself (no checks)."""
    # book: begin _sample
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps
    # book: end _sample


def elbo(a_2, x, mu, logvar):
    """The evidence lower bound, averaged over examples, for a Bernoulli decoder.

    ``ELBO = -cross_entropy_with_logits(a_2, x) - gaussian_kl(mu, logvar)``: the
    log-likelihood of x under the decoder (from ONE sample h of q(h|x), whose logits
    are ``a_2``) minus the KL between q(h|x) and the prior N(0, I). Training
    maximises it, i.e. minimises ``-elbo``.

    Parameters
    ----------
    a_2 : ndarray or Tensor, shape (m, n)
        Decoder logits for a sample ``h ~ q(h|x)``.
    x : ndarray or Tensor, shape (m, n)
        Data in [0, 1].
    mu, logvar : ndarray or Tensor, shape (m, d)
        The encoder's Gaussian.

    Returns
    -------
    float array or Tensor, shape ()

    Chapter: 9 (From autoencoders to generative models).
    """
    # book: begin elbo
    return -losses.cross_entropy_with_logits(a_2, x) - losses.gaussian_kl(mu, logvar)
    # book: end elbo


def kl_penalty(model, X_in, h):
    """``fit``'s penalty hook for a ``VAE``: ``gaussian_kl`` of the encoder's Gaussian at X_in.

    ``fit(vae, X, loss="cross_entropy_with_logits", penalty=kl_penalty)`` then minimises
    ``-ELBO``. ``h`` (the sample) is not needed: the KL is a closed form of mu and logvar.

    Parameters
    ----------
    model : VAE
    X_in : Tensor, shape (b, n)
    h : Tensor, shape (b, d)

    Returns
    -------
    Tensor, shape ()

    Chapter: 9 (From autoencoders to generative models).
    """
    if not isinstance(model, VAE):
        raise TypeError(f"kl_penalty is for an aecourse.vae.VAE; got {describe(model)}.")
    return losses.gaussian_kl(*model.encode_stats(X_in))


class VAE(_AutoencoderAPI):
    """A variational autoencoder with one hidden layer of ``n_units`` on each side.

    Encoder: ``a = g(W x + b)``, then two heads ``mu = W_mu a + b_mu`` and
    ``logvar = W_logvar a + b_logvar`` (d each). Decoder: ``g(...)`` to ``n_units``,
    then the logits of the n pixels; ``decode`` applies the sigmoid.

    ``encode`` is stochastic in training mode (``model.train()``, a reparameterised
    sample drawn from the model's own generator) and returns the mean ``mu`` in
    evaluation mode (``model.eval()``), so reconstructions of a trained model are
    deterministic.

    Parameters
    ----------
    n_features : int
        Input size n (784 for MNIST).
    n_hidden : int
        Code size d.
    n_units : int
        Width of the hidden layer of the encoder and of the decoder.
    g : str
        Hidden-layer function, one of ``aecourse.models.ACTIVATIONS``.
    random_state : int, None or torch.Generator
        Seeds the initialisation and then the sampling in training mode.

    Attributes
    ----------
    encoder_hidden : nn.Linear, n -> n_units
    encoder_mu, encoder_logvar : nn.Linear, n_units -> d
    decoder_hidden : nn.Linear, d -> n_units
    decoder_out : nn.Linear, n_units -> n

    Chapter: 9 (From autoencoders to generative models).
    """

    def __init__(self, n_features: int, n_hidden: int, *, n_units: int = 256,
                 g: str = "leaky_relu", random_state=0):
        super().__init__()
        n = self.n_features = check_positive_int(n_features, "n_features")
        d = self.n_hidden = check_positive_int(n_hidden, "n_hidden")
        self.n_units = check_positive_int(n_units, "n_units")
        self.g_name = check_choice(g, "g", ACTIVATIONS)
        self.g = activation(g)
        self.f = torch.sigmoid
        self.generator = check_random_state(random_state, kind="torch")
        linear = DeepAutoencoder._linear  # Glorot-uniform weights from our generator
        self.encoder_hidden = linear(n, self.n_units, self.generator)
        self.encoder_mu = linear(self.n_units, d, self.generator)
        self.encoder_logvar = linear(self.n_units, d, self.generator)
        self.decoder_hidden = linear(d, self.n_units, self.generator)
        self.decoder_out = linear(self.n_units, n, self.generator)

    def encode_stats(self, X):
        """The encoder's Gaussian q(h|x): ``(mu, logvar)``, each (m, d), for X (m, n)."""
        X = self._as_input(X, "X", self.n_features)
        a = self.g(self.encoder_hidden(X))
        return self.encoder_mu(a), self.encoder_logvar(a)

    def encode(self, X) -> torch.Tensor:
        """Code h (m, d): a sample of q(h|x) in training mode, its mean in evaluation mode."""
        mu, logvar = self.encode_stats(X)
        return _sample(mu, logvar, self.generator) if self.training else mu

    def decode_logits(self, h) -> torch.Tensor:
        """Decoder logits ``a_2`` (m, n) from codes h (m, d)."""
        h = self._as_input(h, "h", self.n_hidden)
        return self.decoder_out(self.g(self.decoder_hidden(h)))

    def sample(self, n_samples: int, *, random_state=None) -> torch.Tensor:
        """Generate: draw h from the prior N(0, I) and decode it; returns (n_samples, n)."""
        n_samples = check_positive_int(n_samples, "n_samples")
        generator = check_random_state(random_state, kind="torch")
        reference = next(self.parameters())
        h = torch.randn((n_samples, self.n_hidden), generator=generator,
                        dtype=reference.dtype).to(reference.device)
        return self.decode(h)

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_hidden={self.n_hidden}, "
                f"n_units={self.n_units}, g={self.g_name!r}")
