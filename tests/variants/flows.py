"""Correct implementations of the flow contract that differ from the reference (impls/flows.py).

The flow checks must pass every one of them (tests/test_variants.py): a check that fails a
correct variant tests the reference's spelling, not the contract.
"""
import torch
from torch import nn
from torch.distributions import AffineTransform, Normal, TransformedDistribution

COUPLING_VARIANTS = ("MaskedExpCoupling", "SplitCoupling", "WhereCoupling")
AFFINE_FLOW_VARIANTS = ("transformed_distribution_log_prob", "normal_log_prob")


# ----------------------------------------------------------------------- affine_flow_log_prob
def transformed_distribution_log_prob(x, scale, shift):
    """torch.distributions: N(0, 1) pushed through AffineTransform(shift, scale)."""
    base = Normal(torch.zeros_like(x), torch.ones_like(x))
    return TransformedDistribution(base, [AffineTransform(shift, scale)]).log_prob(x)


def normal_log_prob(x, scale, shift):
    """The closed form N(x; b, a^2), with torch.distributions.Normal(b, |a|)."""
    return Normal(shift, torch.abs(scale)).log_prob(x)


# ------------------------------------------------------------------------------- couplings
class MaskedExpCoupling(nn.Module):
    """y = x * exp((1 - mask) * s) + (1 - mask) * t: the mask applied inside the exponent."""

    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net

    def _st(self, v):
        m = self.mask.to(v.dtype)
        return m, (1 - m) * self.scale_net(m * v), (1 - m) * self.shift_net(m * v)

    def forward(self, x):
        _, s, t = self._st(x)
        return x * torch.exp(s) + t, s.reshape(x.shape[0], -1).sum(-1)

    def inverse(self, y):
        _, s, t = self._st(y)
        return (y - t) * torch.exp(-s)


class SplitCoupling(nn.Module):
    """Split the flattened features into pass-through and transformed parts, transform, concatenate
    and undo the permutation."""

    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net
        flat = mask.reshape(-1).bool()
        self.keep = torch.nonzero(flat).flatten()
        self.change = torch.nonzero(~flat).flatten()
        self.unpermute = torch.argsort(torch.cat([self.keep, self.change]))

    def _split(self, v):
        flat = v.reshape(v.shape[0], -1)
        s = self.scale_net(self.mask.to(v.dtype) * v).reshape(flat.shape)
        t = self.shift_net(self.mask.to(v.dtype) * v).reshape(flat.shape)
        k, c = self.keep.to(v.device), self.change.to(v.device)
        return flat[:, k], flat[:, c], s[:, c], t[:, c]

    def _join(self, kept, changed, like):
        return torch.cat([kept, changed], dim=1)[:, self.unpermute.to(like.device)].reshape(like.shape)

    def forward(self, x):
        kept, changed, s, t = self._split(x)
        return self._join(kept, changed * torch.exp(s) + t, x), s.sum(-1)

    def inverse(self, y):
        kept, changed, s, t = self._split(y)
        return self._join(kept, (changed - t) * torch.exp(-s), y)


class WhereCoupling(nn.Module):
    """torch.where(mask, x, x * exp(s) + t) with log_det summed over the selected entries of s."""

    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.keep = mask.bool()
        self.scale_net, self.shift_net = scale_net, shift_net

    def _st(self, v):
        masked = torch.where(self.keep.to(v.device), v, torch.zeros_like(v))
        return self.scale_net(masked), self.shift_net(masked)

    def forward(self, x):
        s, t = self._st(x)
        keep = self.keep.to(x.device)
        log_det = torch.where(keep, torch.zeros_like(s), s).reshape(x.shape[0], -1).sum(-1)
        return torch.where(keep, x, x * torch.exp(s) + t), log_det

    def inverse(self, y):
        s, t = self._st(y)
        return torch.where(self.keep.to(y.device), y, (y - t) * torch.exp(-s))
