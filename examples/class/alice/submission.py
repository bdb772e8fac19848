"""Example submission: correct, every name of the contract (module layout)."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sample_gaussian(m, v):
    return m + torch.sqrt(v) * torch.randn_like(m)


def log_normal(x, m, v):
    return (-0.5 * math.log(2 * math.pi) - 0.5 * torch.log(v) - (x - m) ** 2 / (2 * v)).sum(-1)


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


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



def gmvae_negative_elbo_bound(x, encoder, decoder, prior_m, prior_v):
    m, v = encoder(x)
    z = sample_gaussian(m, v)
    kl = (log_normal(z, m, v) - log_normal_mixture(z, prior_m, prior_v)).mean()
    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()
    return kl + rec, kl, rec


def gmvae_negative_iwae_bound(x, encoder, decoder, prior_m, prior_v, iw):
    m, v = encoder(x)
    z = sample_gaussian(m.unsqueeze(0).expand(iw, -1, -1), v.unsqueeze(0).expand(iw, -1, -1))
    log_px_z = log_bernoulli_with_logits(x.expand(iw, -1, -1), decoder(z))
    kl = log_normal(z, m, v) - log_normal_mixture(z.reshape(-1, z.shape[-1]), prior_m, prior_v).reshape(iw, -1)
    return -log_mean_exp(log_px_z - kl, 0).mean(), kl.mean(), -log_px_z.mean()


def ssvae_negative_elbo_bound(x, encoder, decoder, classifier):
    log_q = F.log_softmax(classifier(x), dim=-1)
    q, classes = log_q.exp(), log_q.shape[-1]
    kl_y = (q * (log_q + math.log(classes))).sum(-1).mean()
    kl_z, rec = 0, 0
    for c in range(classes):
        y = F.one_hot(torch.full((x.shape[0],), c, device=x.device), classes).to(x.dtype)
        m, v = encoder(x, y)
        kl_z = kl_z + q[:, c] * kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v))
        rec = rec - q[:, c] * log_bernoulli_with_logits(x, decoder(sample_gaussian(m, v), y))
    return kl_y + kl_z.mean() + rec.mean(), kl_z.mean(), kl_y, rec.mean()

def affine_flow_log_prob(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * math.log(2 * math.pi) - 0.5 * z**2 - torch.log(torch.abs(torch.as_tensor(scale)))


class AffineCoupling(nn.Module):
    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net

    def forward(self, x):
        mask = self.mask.to(x)
        s, t = self.scale_net(mask * x), self.shift_net(mask * x)
        y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
        return y, ((1 - mask) * s).reshape(x.shape[0], -1).sum(1)

    def inverse(self, y):
        mask = self.mask.to(y)
        s, t = self.scale_net(mask * y), self.shift_net(mask * y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(-s)
