"""A correct submission written with torch.distributions (module layout).

Bernoulli(..., validate_args=False): the contract's likelihood takes any x in [0, 1] (grey pixels too),
which Bernoulli's argument validation would refuse."""
import math

import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence


def sample_gaussian(m, v):
    return Normal(m, v.sqrt()).rsample()


def log_normal(x, m, v):
    return Normal(m, v.sqrt()).log_prob(x).sum(-1)


def log_normal_mixture(z, m, v):
    comp = Independent(Normal(m, v.sqrt()), 1).log_prob(z.unsqueeze(1))
    return torch.logsumexp(comp, 1) - math.log(m.shape[1])


def kl_normal(qm, qv, pm, pv):
    return kl_divergence(Normal(qm, qv.sqrt()), Normal(pm, pv.sqrt())).sum(-1)


def log_bernoulli_with_logits(x, logits):
    return Bernoulli(logits=logits, validate_args=False).log_prob(x.expand_as(logits)).sum(-1)


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def negative_elbo_bound(x, encoder, decoder):
    m, v = encoder(x)
    q = Independent(Normal(m, v.sqrt()), 1)
    p = Independent(Normal(torch.zeros_like(m), torch.ones_like(v)), 1)
    z = q.rsample()
    rec = -Independent(Bernoulli(logits=decoder(z)), 1).log_prob(x).mean()
    kl = kl_divergence(q, p).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw):
    m, v = encoder(x)
    q = Independent(Normal(m, v.sqrt()), 1)
    p = Independent(Normal(torch.zeros_like(m), torch.ones_like(v)), 1)
    z = q.rsample((iw,))  # (iw, B, D)
    log_px_z = Independent(Bernoulli(logits=decoder(z)), 1).log_prob(x.expand(iw, *x.shape))
    log_w = log_px_z + p.log_prob(z) - q.log_prob(z)
    niwae = -(torch.logsumexp(log_w, 0) - math.log(iw)).mean()
    # kl as the Monte Carlo estimate from the same samples (the contract accepts both)
    kl = (q.log_prob(z) - p.log_prob(z)).mean()
    return niwae, kl, -log_px_z.mean()
