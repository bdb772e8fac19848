"""A correct CS236-layout utils.py (2018-2021 starter style)."""
import numpy as np
import torch
import torch.nn.functional as F


def sample_gaussian(m, v):
    return m + torch.sqrt(v) * torch.randn(m.shape, device=m.device, dtype=m.dtype)


def log_normal(x, m, v):
    element_wise = -0.5 * (torch.log(v) + (x - m).pow(2) / v + np.log(2 * np.pi))
    return element_wise.sum(-1)


def log_normal_mixture(z, m, v):
    z = z.unsqueeze(1)
    return log_mean_exp(log_normal(z, m, v), 1)


def kl_normal(qm, qv, pm, pv):
    element_wise = 0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)
    return element_wise.sum(-1)


def log_bernoulli_with_logits(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def log_sum_exp(x, dim=0):
    max_x = torch.max(x, dim)[0]
    new_x = x - max_x.unsqueeze(dim).expand_as(x)
    return max_x + (new_x.exp().sum(dim)).log()


def log_mean_exp(x, dim):
    return log_sum_exp(x, dim) - np.log(x.size(dim))


def duplicate(x, rep):
    return x.expand(rep, *x.shape).reshape(-1, *x.shape[1:])


def gaussian_parameters(h, dim=-1):
    m, h = torch.split(h, h.size(dim) // 2, dim=dim)
    v = F.softplus(h) + 1e-8
    return m, v


def kl_cat(q, log_q, log_p):
    element_wise = q * (log_q - log_p)
    return element_wise.sum(-1)
