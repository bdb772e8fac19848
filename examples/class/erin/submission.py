"""Example submission: a naive log-mean-exp (overflows), the coupling log-determinant not masked,
and no affine flow."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sample_gaussian(m, v):
    return m + torch.sqrt(v) * torch.randn_like(m)


def log_normal(x, m, v):
    return (-0.5 * math.log(2 * math.pi) - 0.5 * torch.log(v) - (x - m) ** 2 / (2 * v)).sum(-1)


def log_mean_exp(x, dim):
    return torch.log(torch.exp(x).mean(dim))  # bug: overflows and underflows


def log_normal_mixture(z, m, v):
    return log_mean_exp(log_normal(z.unsqueeze(1), m, v), 1)


def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)


def log_bernoulli_with_logits(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def negative_elbo_bound(x, encoder, decoder):
    m, v = encoder(x)
    rec = -log_bernoulli_with_logits(x, decoder(sample_gaussian(m, v))).mean()
    kl = kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw):
    m, v = encoder(x)
    z = sample_gaussian(m.unsqueeze(0).expand(iw, -1, -1), v.unsqueeze(0).expand(iw, -1, -1))
    log_px_z = log_bernoulli_with_logits(x.expand(iw, -1, -1), decoder(z))
    log_w = log_px_z + log_normal(z, torch.zeros_like(z), torch.ones_like(z)) - log_normal(z, m, v)
    niwae = -log_mean_exp(log_w, 0).mean()
    return niwae, kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean(), -log_px_z.mean()


class AffineCoupling(nn.Module):
    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net

    def forward(self, x):
        mask = self.mask.to(x)
        s, t = self.scale_net(mask * x), self.shift_net(mask * x)
        y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
        return y, s.reshape(x.shape[0], -1).sum(1)  # bug: not masked by (1 - mask)

    def inverse(self, y):
        mask = self.mask.to(y)
        s, t = self.scale_net(mask * y), self.shift_net(mask * y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(-s)
