"""A correct submission that computes in float64 internally and casts back; rep-major samples
(as CS236's duplicate makes them) regrouped with the right reshape; hand-written stable formulas."""
import numpy as np
import torch


def _f64(*ts):
    return [t.double() for t in ts]


def sample_gaussian(m, v):
    eps = torch.randn_like(m)
    return m + eps * v.sqrt()


def log_normal(x, m, v):
    dtype = torch.promote_types(torch.promote_types(x.dtype, m.dtype), v.dtype)
    x, m, v = _f64(x, m, v)
    out = -0.5 * torch.log(2 * np.pi * v) - 0.5 * (x - m).square() / v
    return out.sum(dim=-1).to(dtype)


def log_normal_mixture(z, m, v):
    comp = log_normal(z[:, None, :], m, v)
    return log_mean_exp(comp, 1)


def kl_normal(qm, qv, pm, pv):
    dtype = qm.dtype
    qm, qv, pm, pv = _f64(qm, qv, pm, pv)
    ratio = qv / pv
    out = 0.5 * (ratio - 1 - torch.log(ratio) + (qm - pm) ** 2 / pv)
    return out.sum(-1).to(dtype)


def log_bernoulli_with_logits(x, logits):
    dtype = logits.dtype
    x, l = _f64(x, logits)
    # x*l - softplus(l), with softplus(l) = max(l, 0) + log1p(exp(-|l|))
    out = x * l - (l.clamp(min=0) + torch.log1p(torch.exp(-l.abs())))
    return out.sum(-1).to(dtype)


def log_mean_exp(x, dim):
    c = x.max(dim, keepdim=True).values
    out = c + torch.log(torch.exp(x - c).mean(dim, keepdim=True))
    return out.squeeze(dim)


def duplicate(x, rep):
    return x.expand(rep, *x.shape).reshape(-1, *x.shape[1:])


def negative_elbo_bound(x, encoder, decoder):
    m, v = encoder(x)
    z = sample_gaussian(m, v)
    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()
    kl = kl_normal(m, v, torch.zeros(1, dtype=m.dtype), torch.ones(1, dtype=m.dtype)).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw):
    batch = x.shape[0]
    m, v = encoder(x)
    x_dup, m_dup, v_dup = duplicate(x, iw), duplicate(m, iw), duplicate(v, iw)  # rep-major: (iw * B, .)
    z = sample_gaussian(m_dup, v_dup)
    log_px_z = log_bernoulli_with_logits(x_dup, decoder(z))
    log_w = log_px_z + log_normal(z, torch.zeros_like(z), torch.ones_like(z)) - log_normal(z, m_dup, v_dup)
    niwae = -log_mean_exp(log_w.reshape(iw, batch), 0).mean()  # the right grouping for rep-major samples
    kl = kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    return niwae, kl, -log_px_z.mean()
