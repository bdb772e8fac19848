"""The CS236 GMVAE: the VAE with a learnable mixture-of-Gaussians prior.

    p(z) = (1/k) sum_j N(z; mu_j, diag sigma_j^2),   p(x|z) Bernoulli(sigmoid(dec(z))),   q(z|x) = N(m(x), diag v(x))

The prior's means and variances are learned; its weights are uniform. The KL of q from a mixture
has no closed form, so the bounds estimate it from the reparameterized samples they draw.
"""
import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from impls.bernoulli import log_bernoulli_with_logits
from impls.bounds import iwae_log_weights, iwae_sums, IWAE_CHUNK_ELEMENTS
from impls.gaussian import log_normal, log_normal_mixture, sample_gaussian
from impls.vae import Decoder, Encoder


def mixture_prior(z_pre):
    """The starter's parameterization of the prior: ``z_pre`` of shape (1, 2k, D) holds the k means
    and then k pre-activations of the variances,

        mu_j = z_pre[:, j],   sigma_j^2 = softplus(z_pre[:, k + j]) + 1e-8,

    returned as ``(m, v)``, each (1, k, D) (what :func:`log_normal_mixture` takes).
    """
    m, h = torch.chunk(z_pre, 2, dim=1)
    return m, F.softplus(h) + 1e-8


def gmvae_negative_elbo_bound(x, encoder, decoder, prior_m, prior_v, sample=sample_gaussian):
    """-ELBO under the mixture prior, batch means; one reparameterized sample z ~ q(z|x) per example:

        kl_b  = log q(z_b | x_b) - log p(z_b)      (a one-sample Monte Carlo estimate of KL(q || p))
        rec_b = -log p(x_b | z_b)
        nelbo = mean_b (kl_b + rec_b)

    ``prior_m``, ``prior_v``: (1, k, D) means and variances of the mixture (:func:`mixture_prior`).
    Returns ``(nelbo, kl, rec)``.
    """
    m, v = encoder(x)
    z = sample(m, v)
    kl = log_normal(z, m, v) - log_normal_mixture(z, prior_m, prior_v)
    rec = -log_bernoulli_with_logits(x, decoder(z))
    kl, rec = kl.mean(), rec.mean()
    return kl + rec, kl, rec


def _log_mixture_prior(z, prior_m, prior_v):
    """log p(z) for latents of any leading shape (..., D) under the mixture (1, k, D)."""
    flat = z.reshape(-1, z.shape[-1])
    return log_normal_mixture(flat, prior_m, prior_v).reshape(z.shape[:-1])


def gmvae_negative_iwae_bound(x, encoder, decoder, prior_m, prior_v, iw, chunk_elements=IWAE_CHUNK_ELEMENTS,
                              sample=sample_gaussian):
    """-L_iw under the mixture prior: -mean_b log (1/iw) sum_i p(x_b | z_i) p(z_i) / q(z_i | x_b),
    z_i ~ q(z | x_b) iid (drawn in chunks as :func:`impls.bounds.iwae_sums`).

    Returns ``(niwae, kl, rec)``: ``kl`` = mean over examples and samples of log q(z_i|x) - log p(z_i)
    (Monte Carlo, as the ELBO's), ``rec`` = mean of -log p(x | z_i).
    """
    log_prior = functools.partial(_log_mixture_prior, prior_m=prior_m, prior_v=prior_v)
    log_weights = functools.partial(iwae_log_weights, log_prior=log_prior)
    _, _, log_sum_w, log_px_z_sum, log_w_sum = iwae_sums(x, encoder, decoder, iw, chunk_elements, log_weights, sample)
    niwae = -(log_sum_w - math.log(iw)).mean()
    kl = ((log_px_z_sum - log_w_sum) / iw).mean()  # log q - log p = log p(x|z) - log w
    rec = -(log_px_z_sum / iw).mean()
    return niwae, kl, rec


class GMVAE(nn.Module):
    """The CS236 GMVAE (z_dim 10, k = 500 components), in the shape of the starter: ``enc``, ``dec``
    and the prior's raw parameter ``z_pre`` (1, 2k, z_dim), initialized N(0, 1 / (k z_dim))."""

    def __init__(self, z_dim=10, k=500, x_dim=784, hidden=300):
        super().__init__()
        self.z_dim, self.k = z_dim, k
        self.enc = Encoder(z_dim, x_dim, hidden)
        self.dec = Decoder(z_dim, x_dim, hidden)
        self.z_pre = nn.Parameter(torch.randn(1, 2 * k, z_dim) / math.sqrt(k * z_dim))

    def prior(self):
        return mixture_prior(self.z_pre)

    def negative_elbo_bound(self, x):
        return gmvae_negative_elbo_bound(x, self.enc, self.dec, *self.prior())

    def negative_iwae_bound(self, x, iw):
        return gmvae_negative_iwae_bound(x, self.enc, self.dec, *self.prior(), iw)

    def sample_z(self, n):
        """z ~ p(z): a uniformly chosen component, then its Gaussian."""
        m, v = self.prior()
        j = torch.randint(self.k, (n,), device=m.device)
        return sample_gaussian(m[0, j], v[0, j])

    def sample_x(self, n):
        return torch.bernoulli(torch.sigmoid(self.dec(self.sample_z(n))))
