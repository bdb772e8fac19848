"""Planted bugs in the GMVAE's bounds (the mixture-of-Gaussians prior). Each function is the reference
with one bug; its ``teaches`` sentence completes "your output equals what you get by ...".
"""
import math

import torch

from impls import log_bernoulli_with_logits, log_mean_exp, log_normal, log_normal_mixture, sample_gaussian
from impls.gaussian import log_standard_normal
from grader.catalogue.registry import bug

ELBO = "gmvae_negative_elbo_bound"
IWAE = "gmvae_negative_iwae_bound"


def _elbo_terms(x, encoder, decoder, log_prior, detach_z=False):
    """Per example: (log q(z|x) - log p(z), -log p(x|z)) at one reparameterized z, ``log_prior(z)``."""
    m, v = encoder(x)
    z = sample_gaussian(m, v)
    z = z.detach() if detach_z else z
    return log_normal(z, m, v) - log_prior(z), -log_bernoulli_with_logits(x, decoder(z))


def _means(kl, rec):
    kl, rec = kl.mean(), rec.mean()
    return kl + rec, kl, rec


# ---------------------------------------------------------------- gmvae_negative_elbo_bound


@bug(ELBO, "computing the KL against the standard normal N(0, I) instead of the mixture prior",
     fix="kl = log q(z|x) - log_normal_mixture(z, prior_m, prior_v) at the sampled z")
def gmvae_kl_standard_normal_prior(x, encoder, decoder, prior_m, prior_v):
    return _means(*_elbo_terms(x, encoder, decoder, log_standard_normal))


@bug(ELBO, "leaving out the mixture's -log k (a sum of the k component densities, not their mean)",
     fix="log p(z) = logsumexp_j log N(z; m_j, v_j) - log k (a log-mean-exp over the components)")
def gmvae_mixture_missing_log_k(x, encoder, decoder, prior_m, prior_v):
    prior = lambda z: log_normal_mixture(z, prior_m, prior_v) + math.log(prior_m.shape[1])  # noqa: E731
    return _means(*_elbo_terms(x, encoder, decoder, prior))


@bug(ELBO, "summing over the batch instead of taking the mean")
def gmvae_elbo_sum_over_batch(x, encoder, decoder, prior_m, prior_v):
    kl, rec = _elbo_terms(x, encoder, decoder, lambda z: log_normal_mixture(z, prior_m, prior_v))
    return kl.sum() + rec.sum(), kl.sum(), rec.sum()


@bug(ELBO, "detaching the sample z, so no gradient flows through the reparameterization to the encoder",
     fix="z = ut.sample_gaussian(m, v), never detached")
def gmvae_z_detached(x, encoder, decoder, prior_m, prior_v):
    return _means(*_elbo_terms(x, encoder, decoder, lambda z: log_normal_mixture(z, prior_m, prior_v), True))


@bug(ELBO, "detaching the prior's parameters, so the mixture is never learned",
     fix="use the prior's means and variances as they are (ut.gaussian_parameters(self.z_pre, dim=1)), not detached")
def gmvae_prior_detached(x, encoder, decoder, prior_m, prior_v):
    prior = lambda z: log_normal_mixture(z, prior_m.detach(), prior_v.detach())  # noqa: E731
    return _means(*_elbo_terms(x, encoder, decoder, prior))


# ---------------------------------------------------------------- gmvae_negative_iwae_bound


def _iwae_samples(x, encoder, decoder, iw, log_prior):
    """(log w, log p(x|z), log q - log p), each (iw, B), samples laid out (iw, B)."""
    m, v = encoder(x)
    z = sample_gaussian(m.expand(iw, *m.shape), v.expand(iw, *v.shape))
    log_px_z = log_bernoulli_with_logits(x, decoder(z))
    kl = log_normal(z, m, v) - log_prior(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1])
    return log_px_z - kl, log_px_z, kl


def _iwae(x, encoder, decoder, iw, log_prior):
    log_w, log_px_z, kl = _iwae_samples(x, encoder, decoder, iw, log_prior)
    return -log_mean_exp(log_w, 0).mean(), kl.mean(), -log_px_z.mean()


@bug(IWAE, "duplicating the batch rep-major (ut.duplicate, x.repeat(iw, 1)) and then grouping with view(-1, iw), "
     "which mixes different examples' weights under the mixture prior",
     fix="group each example's own iw weights: with rep-major duplicates, log_w.view(iw, -1) and log_mean_exp over dim 0")
def gmvae_iwae_grouped_across_examples(x, encoder, decoder, prior_m, prior_v, iw):
    m, v = encoder(x)
    x_dup, m_dup, v_dup = (t.repeat(iw, *([1] * (t.dim() - 1))) for t in (x, m, v))
    z = sample_gaussian(m_dup, v_dup)
    log_px_z = log_bernoulli_with_logits(x_dup, decoder(z))
    kl = log_normal(z, m_dup, v_dup) - log_normal_mixture(z, prior_m, prior_v)
    niwae = -log_mean_exp((log_px_z - kl).view(-1, iw), 1).mean()
    return niwae, kl.mean(), -log_px_z.mean()


@bug(IWAE, "using the standard normal N(0, I) as the prior in the importance weights instead of the mixture")
def gmvae_iwae_standard_normal_prior(x, encoder, decoder, prior_m, prior_v, iw):
    return _iwae(x, encoder, decoder, iw, log_standard_normal)


@bug(IWAE, "leaving out the mixture's -log k in log p(z) of the importance weights (a sum, not a mean)")
def gmvae_iwae_missing_log_k(x, encoder, decoder, prior_m, prior_v, iw):
    return _iwae(x, encoder, decoder, iw, lambda z: log_normal_mixture(z, prior_m, prior_v) + math.log(prior_m.shape[1]))


@bug(IWAE, "averaging the log-weights (the ELBO of iw samples) instead of taking the log of their mean",
     fix="niwae = -mean_b log_mean_exp_i(log w_i): the mean of the weights inside the log")
def gmvae_iwae_mean_of_log_weights(x, encoder, decoder, prior_m, prior_v, iw):
    log_w, log_px_z, kl = _iwae_samples(x, encoder, decoder, iw, lambda z: log_normal_mixture(z, prior_m, prior_v))
    return -log_w.mean(), kl.mean(), -log_px_z.mean()


@bug(IWAE, "summing the bound over the batch instead of taking the mean")
def gmvae_iwae_sum_over_batch(x, encoder, decoder, prior_m, prior_v, iw):
    log_w, log_px_z, kl = _iwae_samples(x, encoder, decoder, iw, lambda z: log_normal_mixture(z, prior_m, prior_v))
    return -log_mean_exp(log_w, 0).sum(), kl.mean(0).sum(), -log_px_z.mean(0).sum()


@bug(IWAE, "computing log(mean(exp(log w))) directly, which underflows to -inf when the log-weights are near -1e4")
def gmvae_iwae_naive_log_mean_exp(x, encoder, decoder, prior_m, prior_v, iw):
    log_w, log_px_z, kl = _iwae_samples(x, encoder, decoder, iw, lambda z: log_normal_mixture(z, prior_m, prior_v))
    return -torch.log(torch.exp(log_w).mean(0)).mean(), kl.mean(), -log_px_z.mean()
