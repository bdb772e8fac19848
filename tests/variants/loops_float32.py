"""A correct submission with float32 constants and float32 accumulation (sums formed in float32 and
cast back), Python loops over the examples, and its noise from a generator of its own
(CLARIFICATIONS.md: a correct submission may draw from a private torch.Generator)."""
import math

import torch

_GEN = torch.Generator().manual_seed(1234)
_LOG_2PI_32 = torch.log(torch.tensor(2 * math.pi))  # a float32 constant


def _sum32(t):
    """The last dim summed in float32, back in the input's dtype."""
    return t.float().sum(-1).to(t.dtype)


def sample_gaussian(m, v):
    shape = torch.broadcast_shapes(m.shape, v.shape)
    eps = torch.randn(shape, generator=_GEN, dtype=m.dtype).to(m.device)
    return m + torch.sqrt(v) * eps


def log_normal(x, m, v):
    return _sum32(-0.5 * (_LOG_2PI_32.to(x.dtype) + torch.log(v) + (x - m) ** 2 / v))


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def log_normal_mixture(z, m, v):
    return log_mean_exp(log_normal(z.unsqueeze(1), m, v), 1)


def kl_normal(qm, qv, pm, pv):
    return _sum32(0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1))


def log_bernoulli_with_logits(x, logits):
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def _prior(m):
    return torch.zeros_like(m), torch.ones_like(m)


def negative_elbo_bound(x, encoder, decoder):
    kls, recs = [], []
    for b in range(x.shape[0]):  # one example at a time
        xb = x[b:b + 1]
        m, v = encoder(xb)
        z = sample_gaussian(m, v)
        recs.append(-log_bernoulli_with_logits(xb, decoder(z))[0])
        kls.append(kl_normal(m, v, *_prior(m))[0])
    kl, rec = torch.stack(kls).mean(), torch.stack(recs).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw):
    bounds, kls, recs = [], [], []
    for b in range(x.shape[0]):  # one example at a time, its iw samples together
        xb = x[b:b + 1]
        m, v = encoder(xb)
        z = sample_gaussian(m.expand(iw, -1), v.expand(iw, -1))  # (iw, D)
        log_px = log_bernoulli_with_logits(xb, decoder(z))
        log_w = log_px + log_normal(z, *_prior(z)) - log_normal(z, m, v)
        bounds.append(log_mean_exp(log_w, 0))
        kls.append(kl_normal(m, v, *_prior(m))[0])
        recs.append(-log_px.mean())
    return -torch.stack(bounds).mean(), torch.stack(kls).mean(), torch.stack(recs).mean()
