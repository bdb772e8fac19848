"""Diagonal Gaussians. ``v`` is always a variance, never a standard deviation."""
import math

import torch

from impls.reductions import log_mean_exp

LOG_2PI = math.log(2 * math.pi)  # the one definition: impls, training, benchmarks and grader import it


def reparameterize(m, v, eps):
    """z = m + sqrt(v) * eps: dz/dm = 1 and dz/dv = eps / (2 sqrt(v)). ``torch.addcmul`` forms it in
    one pass over memory."""
    return torch.addcmul(m, torch.sqrt(v), eps)


def sample_gaussian(m, v, reparameterize=reparameterize):
    """Reparameterized sample  z = m + sqrt(v) * eps,  eps ~ N(0, I).

    The noise has the broadcast shape of ``m`` and ``v``, one independent draw per element;
    ``reparameterize(m, v, eps)`` forms z from it (default :func:`reparameterize`;
    benchmarks/fused.py passes a compiled one, and so draws the same noise).
    """
    eps = torch.randn(torch.broadcast_shapes(m.shape, v.shape), dtype=m.dtype, device=m.device)
    return reparameterize(m, v, eps)


def log_normal(x, m, v):
    """log N(x; m, diag v) = -1/2 sum_d [ log(2 pi) + log v_d + (x_d - m_d)^2 / v_d ].

    Broadcasts ``x``, ``m`` and ``v``; sums over the last dimension.
    """
    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)


def log_standard_normal(z, event_dims=1):
    """log N(z; 0, I) = -1/2 sum_d [ log(2 pi) + z_d^2 ], summed over the last ``event_dims`` dims.

    As ``torch.distributions``: ``event_dims=0`` is ``Normal(0, 1).log_prob(z)`` (elementwise),
    ``event_dims=k`` is ``Independent(Normal(0, 1), k).log_prob(z)``: 1 for vectors (..., D), 3 for
    images (B, C, H, W). Plain torch, so a ``torch.compile`` kernel may call it.
    """
    log_p = -0.5 * (LOG_2PI + z**2)
    return log_p.flatten(-event_dims).sum(-1) if event_dims else log_p


def log_normal_mixture(z, m, v):
    """log (1/K) sum_k N(z; m_k, diag v_k) for z: (B, D) and m, v: (B or 1, K, D); returns (B,)."""
    return log_mean_exp(log_normal(z.unsqueeze(-2), m, v), dim=-1)


def kl_normal(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)) = 1/2 sum_d [ log(pv/qv) + (qv + (qm - pm)^2) / pv - 1 ].

    Broadcasts its arguments; sums over the last dimension.
    """
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)
