"""Diagonal Gaussians. ``v`` is always a variance, never a standard deviation."""
import math

import torch

from impls.reductions import log_mean_exp

LOG_2PI = math.log(2 * math.pi)


def sample_gaussian(m, v):
    """Reparameterized sample  z = m + sqrt(v) * eps,  eps ~ N(0, I).

    The noise has the broadcast shape of ``m`` and ``v``, one independent draw per element,
    so dz/dm = 1 and dz/dv = eps / (2 sqrt(v)). ``torch.addcmul`` forms m + sqrt(v) * eps in one
    pass over memory.
    """
    eps = torch.randn(torch.broadcast_shapes(m.shape, v.shape), dtype=m.dtype, device=m.device)
    return torch.addcmul(m, torch.sqrt(v), eps)


def log_normal(x, m, v):
    """log N(x; m, diag v) = -1/2 sum_d [ log(2 pi) + log v_d + (x_d - m_d)^2 / v_d ].

    Broadcasts ``x``, ``m`` and ``v``; sums over the last dimension.
    """
    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)


def log_normal_mixture(z, m, v):
    """log (1/K) sum_k N(z; m_k, diag v_k) for z: (B, D) and m, v: (B or 1, K, D); returns (B,)."""
    return log_mean_exp(log_normal(z.unsqueeze(-2), m, v), dim=-1)


def kl_normal(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)) = 1/2 sum_d [ log(pv/qv) + (qv + (qm - pm)^2) / pv - 1 ].

    Broadcasts its arguments; sums over the last dimension.
    """
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)
