"""A RealNVP for MNIST: affine couplings with binary masks on dequantized, logit-transformed pixels.

Data pipeline (Dinh et al. 2017; Papamakarios et al. 2017 for MNIST), for pixel values x in {0..255}:

1. uniform dequantization  u = (x + e) / 256,  e ~ U[0, 1)^D,  so u in [0, 1)^D;
2. logit transform  y = logit(alpha + (1 - 2 alpha) u),  alpha = 1e-6 by default (MAF's MNIST setting);
3. the flow  z = f(y), log p(y) = log N(z; 0, I) + log|det df/dy|  (impls/flows.py conventions).

The density of the dequantized pixels in [0, 256)^D is
    log p(x + e) = log p(y) + log|dy/du| - D log 256,
    log|dy/du|   = sum_d [ log(1 - 2 alpha) - log p_d - log(1 - p_d) ],   p_d = alpha + (1 - 2 alpha) u_d,
and  bits/dim = -log p(x + e) / (D log 2)  (a stochastic upper bound, by Jensen, on the discrete
model's -log2 P(x) / D; the test figure uses one fixed noise draw per image).

The flow, an :class:`impls.flows.RealNVP` with layers of its own: a learned elementwise affine map
initialised from the data (``ActNorm``, standing in for RealNVP's batch normalisation), then
``n_layers`` :class:`impls.flows.AffineCoupling` layers whose binary masks alternate a 28 x 28
checkerboard of either parity and, every third layer, the top / bottom halves; the scale and shift
of each coupling come from one MLP from the 392 pass-through pixels to the 2 x 392 scales and
shifts of the others, the scale bounded as ``factor * tanh`` (impls.flows.BoundedScale's form).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from training.evaluate import bits_per_dim as _bits
from impls.flows import AffineCoupling, RealNVP, checkerboard_mask, vector_mask

D = 784
ALPHA = 1e-6


def dequantize(x, generator=None):
    """u = (x + e) / 256 with e ~ U[0, 1): uint8 pixels (N, 784) -> floats in [0, 1)."""
    x = x.float()
    return (x + torch.rand(x.shape, generator=generator)) / 256.0


def logit_transform(u, alpha=ALPHA):
    """(y, log|dy/du| per example): y = logit(alpha + (1 - 2 alpha) u)."""
    p = alpha + (1 - 2 * alpha) * u
    y = torch.log(p) - torch.log1p(-p)
    log_det = (math.log(1 - 2 * alpha) - torch.log(p) - torch.log1p(-p)).sum(-1)
    return y, log_det


def inverse_logit(y, alpha=ALPHA):
    """u from y: the inverse of :func:`logit_transform`, clamped to [0, 1]."""
    return ((torch.sigmoid(y) - alpha) / (1 - 2 * alpha)).clamp(0, 1)


class ActNorm(nn.Module):
    """y = (x - b) * exp(-log_s) elementwise, initialised from the first batch to zero mean and unit
    variance per feature (Kingma & Dhariwal 2018); log|det| = -sum log_s."""

    def __init__(self, dim):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(dim))
        self.log_s = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x):
        self.b.copy_(x.mean(0))
        self.log_s.copy_(torch.log(x.std(0) + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x):
        if not self.initialized:
            self.initialize(x)
        return (x - self.b) * torch.exp(-self.log_s), (-self.log_s).sum().expand(x.shape[0])

    def inverse(self, y):
        return y * torch.exp(self.log_s) + self.b


class _Net(nn.Module):
    """(s, t) of a coupling from its pass-through features: an MLP on the features where ``mask`` is 1
    (the others are zero in ``mask * x`` and carry nothing), hidden ``hidden`` -> ``hidden`` (ReLU), to
    the scale and shift of the features where ``mask`` is 0; zero elsewhere. s = factor * tanh(h_s).
    The last layer starts at zero, so every coupling starts as the identity."""

    def __init__(self, mask, hidden):
        super().__init__()
        self.register_buffer("idx_in", torch.nonzero(mask).flatten())
        self.register_buffer("idx_out", torch.nonzero(mask == 0).flatten())
        n_in, n_out = len(self.idx_in), len(self.idx_out)
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2 * n_out)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.factor = nn.Parameter(torch.ones(n_out))

    def forward(self, x_pass):
        h_s, t = self.head(self.body(x_pass[:, self.idx_in])).chunk(2, dim=-1)
        zeros = x_pass.new_zeros(x_pass.shape)
        s = zeros.index_copy(1, self.idx_out, self.factor * torch.tanh(h_s))
        return s, zeros.index_copy(1, self.idx_out, t)


class MLPCoupling(AffineCoupling):
    """impls.flows.AffineCoupling with scale and shift from one shared network (half the cost of
    two): s, t = net(mask * x). Forward, inverse and log-determinant are the reference's."""

    def __init__(self, mask, net):
        super().__init__(mask, scale_net=None, shift_net=None)
        self.net = net

    def scale_shift(self, x_pass):
        return self.net(x_pass)


def coupling_masks(n_layers):
    """The binary masks (784,) of the layers: checkerboard parity 0, 1, then top / bottom halves of
    alternating parity, repeating."""
    masks = []
    for k in range(n_layers):
        if k % 3 == 2:
            masks.append(vector_mask(D, (k // 3) % 2, "halves"))
        else:
            masks.append(checkerboard_mask(1, 28, 28, parity=k % 3).flatten())
    return masks


class MNISTRealNVP(RealNVP):
    """The flow of the module docstring on dequantized pixels u in [0, 1)^784: impls' RealNVP (its
    forward and inverse loops, base density and sampling) with ActNorm before the couplings."""

    def __init__(self, n_layers=8, hidden=512, alpha=ALPHA):
        super().__init__(D, n_layers=0)
        # ``layers`` registered after ``norm``: the parameters in the order they always had (the
        # checkpoints' keys; gradient clipping sums the parameters' norms in that order)
        del self.layers
        self.alpha = alpha
        self.norm = ActNorm(D)
        self.layers = nn.ModuleList(MLPCoupling(m, _Net(m, hidden)) for m in coupling_masks(n_layers))

    def forward(self, y):
        """y (logit space) -> (z, log|det dz/dy|): ActNorm, then the couplings."""
        return super().forward(*self.norm(y))

    def inverse(self, z):
        return self.norm.inverse(super().inverse(z))

    def log_prob_dequantized(self, u):
        """log density of x + e = 256 u in [0, 256)^784, nats per example (B,)."""
        y, ld_logit = logit_transform(u, self.alpha)
        return self.log_prob(y) + ld_logit - D * math.log(256.0)

    @torch.no_grad()
    def sample(self, n, temperature=1.0):
        """n images in [0, 1] (N, 784): u = inverse_logit(f^{-1}(temperature * z)), z ~ N(0, I)."""
        return inverse_logit(super().sample(n, temperature), self.alpha)


def bits_per_dim(model, u):
    """bits/dim of the dequantized pixels 256 u, per example (B,)."""
    return _bits(model.log_prob_dequantized(u), D)


@torch.no_grad()
def evaluate_bpd(model, images, seed=0, batch=500):
    """Mean test bits/dim of the uint8 images (N, 784), one uniform dequantization per image from
    ``seed``, in float64 accumulation."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for xb in images.split(batch):
        total += float(bits_per_dim(model, dequantize(xb, generator=g)).double().sum())
    return total / len(images)
