"""What the reference kernels are compared with, in the same run: the torch.distributions
equivalent (what a user would write with the library, default arguments) and a naive
implementation (the textbook formula as a student first writes it; not numerically safe, which
does not matter for timing).

The flows have no ready-made torch.distributions counterpart; theirs is the same coupling written
as a ``torch.distributions.transforms.Transform`` inside a ``TransformedDistribution``, the
library's own way to express a flow (its ``log_abs_det_jacobian(x, y)`` recomputes the scale
network, as the Transform API requires).
"""
import math

import torch
from torch.distributions import Bernoulli, Independent, Normal, TransformedDistribution, constraints, kl_divergence
from torch.distributions.transforms import Transform

from impls.gaussian import LOG_2PI


# --------------------------------------------------------------------- torch.distributions
def td_sample_gaussian(m, v):
    return Normal(m, v.sqrt()).rsample()


def td_log_normal(x, m, v):
    return Normal(m, v.sqrt()).log_prob(x).sum(-1)


def td_kl_normal(qm, qv, pm, pv):
    return kl_divergence(Normal(qm, qv.sqrt()), Normal(pm, pv.sqrt())).sum(-1)


def td_log_bernoulli_with_logits(x, logits):
    return Bernoulli(logits=logits).log_prob(x).sum(-1)


def td_log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.size(dim))


def td_negative_elbo_bound(x, encoder, decoder):
    m, v = encoder(x)
    q = Normal(m, v.sqrt())
    z = q.rsample()
    rec = -Bernoulli(logits=decoder(z)).log_prob(x).sum(-1).mean()
    kl = kl_divergence(q, Normal(torch.zeros_like(m), torch.ones_like(v))).sum(-1).mean()
    return kl + rec, kl, rec


def td_negative_iwae_bound(x, encoder, decoder, iw):
    """All ``iw`` samples at once (the usual way; memory grows with iw)."""
    m, v = encoder(x)
    q, p = Normal(m, v.sqrt()), Normal(torch.zeros_like(m), torch.ones_like(v))
    z = q.rsample((iw,))  # (iw, B, D)
    log_px_z = Bernoulli(logits=decoder(z)).log_prob(x.expand(iw, *x.shape)).sum(-1)
    log_w = log_px_z + p.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    niwae = -(torch.logsumexp(log_w, 0) - math.log(iw)).mean()
    kl = kl_divergence(q, p).sum(-1).mean()
    return niwae, kl, -log_px_z.mean()


# ---------------------------------------------------------------------------------- naive
def naive_sample_gaussian(m, v):
    return m + torch.randn_like(m) * v**0.5


def naive_log_normal(x, m, v):
    return torch.sum(-0.5 * torch.log(2 * math.pi * v) - (x - m) ** 2 / (2 * v), -1)


def naive_kl_normal(qm, qv, pm, pv):
    return torch.sum(0.5 * torch.log(pv / qv) + (qv + (qm - pm) ** 2) / (2 * pv) - 0.5, -1)


def naive_log_bernoulli_with_logits(x, logits):
    p = torch.sigmoid(logits)
    return torch.sum(x * torch.log(p) + (1 - x) * torch.log(1 - p), -1)


def naive_log_mean_exp(x, dim):
    return torch.log(torch.mean(torch.exp(x), dim))


def naive_negative_elbo_bound(x, encoder, decoder):
    m, v = encoder(x)
    z = naive_sample_gaussian(m, v)
    rec = -naive_log_bernoulli_with_logits(x, decoder(z)).mean()
    kl = naive_kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    return kl + rec, kl, rec


def naive_negative_iwae_bound(x, encoder, decoder, iw):
    """The CS236 starter's way: repeat the batch iw times (sample-major), one big pass."""
    m, v = encoder(x)
    m_, v_, x_ = m.repeat(iw, 1), v.repeat(iw, 1), x.repeat(iw, 1)
    z = naive_sample_gaussian(m_, v_)
    log_px_z = naive_log_bernoulli_with_logits(x_, decoder(z))
    log_w = log_px_z + naive_log_normal(z, torch.zeros_like(z), torch.ones_like(z)) - naive_log_normal(z, m_, v_)
    niwae = -naive_log_mean_exp(log_w.view(iw, -1), 0).mean()
    kl = naive_kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    return niwae, kl, -log_px_z.mean()


# ---------------------------------------------------------------------------------- flows
class CouplingTransform(Transform):
    """y = mask * x + (1 - mask) * (x * exp(s) + t), s, t from mask * x, as a torch.distributions Transform."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, mask, scale_net, shift_net, cache_size=0):
        super().__init__(cache_size=cache_size)
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net

    def _call(self, x):
        xm = self.mask * x
        return xm + (1 - self.mask) * (x * torch.exp(self.scale_net(xm)) + self.shift_net(xm))

    def _inverse(self, y):
        ym = self.mask * y
        return ym + (1 - self.mask) * (y - self.shift_net(ym)) * torch.exp(-self.scale_net(ym))

    def log_abs_det_jacobian(self, x, y):
        return ((1 - self.mask) * self.scale_net(self.mask * x)).sum(-1)


def td_coupling_forward(transform, x):
    y = transform(x)
    return y, transform.log_abs_det_jacobian(x, y)


def td_coupling_inverse(transform, y):
    return transform.inv(y)


def td_flow_distribution(transforms, dim, dtype, device):
    """``transforms`` map data -> latent (the flow's forward); TransformedDistribution wants
    base -> data, i.e. their inverses in reverse order."""
    base = Independent(Normal(torch.zeros(dim, dtype=dtype, device=device), torch.ones(dim, dtype=dtype, device=device)), 1)
    return TransformedDistribution(base, [t.inv for t in reversed(transforms)])


def naive_coupling_forward(mask, scale_net, shift_net, x):
    """Index the transformed features instead of multiplying by masks."""
    free = mask == 0
    xm = x * mask
    s, t = scale_net(xm)[:, free], shift_net(xm)[:, free]
    y = x.clone()
    y[:, free] = x[:, free] * torch.exp(s) + t
    return y, s.sum(1)


def naive_coupling_inverse(mask, scale_net, shift_net, y):
    free = mask == 0
    ym = y * mask
    x = y.clone()
    x[:, free] = (y[:, free] - shift_net(ym)[:, free]) * torch.exp(-scale_net(ym)[:, free])
    return x


def naive_flow_log_prob(layers, x):
    """``layers``: (mask, scale_net, shift_net) triples, data -> latent."""
    log_det = 0
    for mask, scale_net, shift_net in layers:
        x, ld = naive_coupling_forward(mask, scale_net, shift_net, x)
        log_det = log_det + ld
    return torch.sum(-0.5 * LOG_2PI - x**2 / 2, 1) + log_det
