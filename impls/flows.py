"""Coupling flows: the affine flow, the RealNVP affine coupling layer, masks and a RealNVP model.

Conventions (../shared/CONTRACT.md): ``forward`` goes from data x to latent z, so a flow's density
is  log p(x) = log N(f(x); 0, I) + log|det df/dx|.  A mask is a 0/1 tensor of the feature shape;
1 marks the features that pass through a coupling unchanged.
"""
import torch
from torch import nn

from impls.gaussian import log_standard_normal

__all__ = [
    "affine_flow_log_prob",
    "AffineCoupling",
    "vector_mask",
    "checkerboard_mask",
    "channel_mask",
    "BoundedScale",
    "RealNVP",
]


# ------------------------------------------------------------------------------ affine flow
def affine_flow_log_prob(x, scale, shift):
    """log p(x) for x = a z + b, z ~ N(0, 1), elementwise (a = ``scale`` != 0, b = ``shift``).

    Change of variables with the inverse z = (x - b) / a, dz/dx = 1 / a:
        log p(x) = log N((x - b) / a; 0, 1) - log|a| = log N(x; b, a^2).
    A negative scale gives the same density as |a| (hence log|a|). Broadcasts its arguments.
    """
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    z = (x - shift) / scale
    return log_standard_normal(z, event_dims=0) - torch.log(torch.abs(scale))


# -------------------------------------------------------------------------- coupling layer
class AffineCoupling(nn.Module):
    """RealNVP affine coupling  y = mask * x + (1 - mask) * (x * exp(s) + t).

    ``s = scale_net(mask * x)`` and ``t = shift_net(mask * x)`` see only the pass-through
    features, so dy/dx is triangular (after a permutation) with diagonal 1 on the masked
    features and exp(s) on the others:  log|det dy/dx| = sum over (1 - mask) of s.
    ``mask`` has the feature shape (``(D,)`` or ``(C, H, W)``); inputs have a leading batch dim.
    """

    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask))
        self.scale_net = scale_net
        self.shift_net = shift_net

    def _mask(self, x):
        return self.mask.to(dtype=x.dtype, device=x.device)

    def scale_shift(self, x_pass):
        """(s, t) computed from the pass-through part ``mask * x`` only."""
        return self.scale_net(x_pass), self.shift_net(x_pass)

    def log_det(self, s, mask):
        """log|det dy/dx| = sum of s over the transformed features, per example: shape (B,)."""
        return ((1 - mask) * s).flatten(1).sum(1)

    def forward(self, x):
        """x -> (y, log|det dy/dx|).

        ``where`` picks x on the masked features and x * exp(s) + t (one ``addcmul`` pass) on
        the others: the same values as the masked sum for a 0/1 mask, in fewer passes.
        """
        mask = self._mask(x)
        s, t = self.scale_shift(mask * x)
        y = torch.where(mask.bool(), x, torch.addcmul(t, x, torch.exp(s)))
        return y, self.log_det(s, mask)

    def inverse(self, y):
        """y -> x:  x = mask * y + (1 - mask) * (y - t) * exp(-s); s, t from mask * y = mask * x.

        t is dropped as soon as it is used, so one fewer full-size tensor is live at the exp.
        """
        mask = self._mask(y)
        s, t = self.scale_shift(mask * y)
        x = y - t
        del t
        return torch.where(mask.bool(), y, x * torch.exp(-s))


# ----------------------------------------------------------------------------------- masks
def vector_mask(dim, parity=0, pattern="halves", dtype=None):
    """0/1 mask of shape (dim,). ``"halves"``: the first dim // 2 entries are 1 (parity 0) or the
    rest are (parity 1); ``"alternate"``: entry i is 1 when i + parity is even."""
    i = torch.arange(dim)
    if pattern == "halves":
        keep = i < dim // 2
        keep = keep if parity % 2 == 0 else ~keep
    elif pattern == "alternate":
        keep = (i + parity) % 2 == 0
    else:
        raise ValueError(f"pattern must be 'halves' or 'alternate', not {pattern!r}")
    return keep.to(dtype or torch.get_default_dtype())


def checkerboard_mask(c, h, w, parity=0, dtype=None):
    """0/1 mask of shape (c, h, w): pixel (i, j) is 1 when i + j + parity is even, in every channel."""
    i = torch.arange(h).view(h, 1)
    j = torch.arange(w).view(1, w)
    keep = (i + j + parity) % 2 == 0
    return keep.expand(c, h, w).to(dtype or torch.get_default_dtype())


def channel_mask(c, h, w, parity=0, dtype=None):
    """0/1 mask of shape (c, h, w): the first c // 2 channels are 1 (parity 0) or the rest are (parity 1)."""
    keep = torch.arange(c) < c // 2
    keep = keep if parity % 2 == 0 else ~keep
    return keep.view(c, 1, 1).expand(c, h, w).to(dtype or torch.get_default_dtype())


# ---------------------------------------------------------------------------------- RealNVP
class BoundedScale(nn.Module):
    """s = factor * tanh(net(x)) with a learned per-feature ``factor`` (RealNVP, Dinh et al. 2017):
    |s| <= |factor|, so one coupling can scale by at most exp(|factor|)."""

    def __init__(self, net, feature_shape):
        super().__init__()
        self.net = net
        self.factor = nn.Parameter(torch.ones(feature_shape))

    def forward(self, x):
        return self.factor * torch.tanh(self.net(x))


def _mlp(dim, hidden):
    """D -> D with tanh hidden layers: smooth, so the model's density is smooth too."""
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, dim)
    )


def _convnet(channels, hidden):
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, channels, 3, padding=1),
    )


class RealNVP(nn.Module):
    """A stack of affine couplings with alternating masks over a N(0, I) base.

    ``shape`` is the feature shape: an int D (vectors, masks alternate between the two halves) or
    (C, H, W) (images, checkerboard masks of alternating parity). ``forward(x) -> (z, log_det)``
    with the log-determinants of the layers summed; ``log_prob(x) = log N(z; 0, I) + log_det``.
    ``bounded_scale=True`` uses s = factor * tanh(h) (see :class:`BoundedScale`), else s = h.
    A subclass with couplings of its own (training/mnist_flow.py) replaces ``layers``; forward,
    inverse, log_prob and sample work on whatever ``layers`` holds.
    """

    def __init__(self, shape, n_layers=4, hidden=64, bounded_scale=True):
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if len(self.shape) not in (1, 3):
            raise ValueError(f"shape must be D or (C, H, W), not {shape!r}")
        layers = []
        for k in range(n_layers):
            if len(self.shape) == 1:
                (dim,) = self.shape
                mask, scale, shift = vector_mask(dim, k), _mlp(dim, hidden), _mlp(dim, hidden)
            else:
                mask = checkerboard_mask(*self.shape, parity=k)
                scale, shift = _convnet(self.shape[0], hidden), _convnet(self.shape[0], hidden)
            if bounded_scale:
                scale = BoundedScale(scale, self.shape)
            layers.append(AffineCoupling(mask, scale, shift))
        self.layers = nn.ModuleList(layers)

    def forward(self, x, log_det=None):
        """x -> (z, sum of the layers' log|det|), shape (B,).

        ``log_det``: the log|det| (B,) of a transform applied to x before the layers, which the
        layers' terms are added to, in order (default zeros).
        """
        if log_det is None:
            log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z):
        """z -> x, the layers inverted in reverse order."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def base_log_prob(self, z):
        """log N(z; 0, I) summed over the features, shape (B,)."""
        return log_standard_normal(z, event_dims=len(self.shape))

    def log_prob(self, x):
        """log p(x) = log N(f(x); 0, I) + log|det df/dx|, shape (B,)."""
        z, log_det = self(x)
        return self.base_log_prob(z) + log_det

    def sample(self, n, temperature=1.0):
        """n samples x = f^{-1}(temperature * z), z ~ N(0, I), with the model's dtype and device
        (``temperature`` < 1 draws from nearer the mode)."""
        p = next(self.parameters())
        z = temperature * torch.randn(n, *self.shape, dtype=p.dtype, device=p.device)
        return self.inverse(z)
