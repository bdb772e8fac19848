"""The networks and models the GMVAE's and SSVAE's checks plug into a submission.

* :func:`mixture_prior`: the GMVAE's prior means and variances (1, k, D), well separated;
* :class:`LabelEncoder`, :class:`LabelDecoder`, :class:`Classifier`: the SSVAE's q(z|x, y),
  p(x|y, z) and q(y|x), small random float64 nets taking the label as one-hot rows;
* :class:`LabelRecorder`: wraps a label decoder and keeps every ``(z, y)`` it decodes, so a check can
  recompute the bound from the very samples drawn, per example and label ("replay");
* :class:`Float32`: a float64 net seen in float32 (inputs cast up, outputs cast down);
* :class:`BoundedMixtureModel`: a 1-D latent, q = N(0, 1) one of the prior's three components, the
  others narrower, logits bounded by 3: every log-weight lies in a known interval (Hoeffding
  applies) and log p(x), E L_1, E L_2 are 1-D and 2-D quadratures.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from verify import oracles
from verify.lazy import OnFirstUse
from verify.models import ConstantEncoder, integral_on_grid

special = OnFirstUse("scipy.special")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mixture_prior(k, z_dim, seed=0, dtype=torch.float64, device="cpu"):
    """(m, v), each (1, k, D): means N(0, 1.5^2), variances in [0.3, 2]."""
    g = _generator(seed)
    m = 1.5 * torch.randn(1, k, z_dim, generator=g, dtype=dtype)
    v = 0.3 + 1.7 * torch.rand(1, k, z_dim, generator=g, dtype=dtype)
    return m.to(device), v.to(device)


class _LabelNet(torch.nn.Module):
    """tanh(a W1 + y Wy) W2 + b2 for an input ``a`` and one-hot labels ``y`` of the same leading shape."""

    def __init__(self, in_dim, y_dim, out_dim, hidden, seed, dtype, device):
        super().__init__()
        g = _generator(seed)
        self.y_dim = y_dim
        self.w1 = (torch.randn(in_dim, hidden, generator=g, dtype=dtype) / math.sqrt(in_dim)).to(device)
        self.wy = (1.5 * torch.randn(y_dim, hidden, generator=g, dtype=dtype)).to(device)
        self.w2 = (torch.randn(hidden, out_dim, generator=g, dtype=dtype) / math.sqrt(hidden)).to(device)
        self.b2 = (0.3 * torch.randn(out_dim, generator=g, dtype=dtype)).to(device)

    def hidden(self, a, y):
        if y.shape[:-1] != a.shape[:-1] or y.shape[-1] != self.y_dim:
            raise ValueError(f"the label network takes (input, y) with y one-hot of shape (..., {self.y_dim}) and "
                             f"the input's leading shape; got {tuple(a.shape)} and {tuple(y.shape)}")
        return torch.tanh(a @ self.w1 + y.to(a.dtype) @ self.wy) @ self.w2 + self.b2


class LabelEncoder(_LabelNet):
    """(x, y) -> (m, v) of q(z | x, y); v = softplus(h) + 0.05."""

    def __init__(self, x_dim, y_dim, z_dim, hidden=16, seed=0, dtype=torch.float64, device="cpu"):
        super().__init__(x_dim, y_dim, 2 * z_dim, hidden, seed, dtype, device)
        self.z_dim = z_dim

    def forward(self, x, y):
        m, s = self.hidden(x, y).chunk(2, dim=-1)
        return m, torch.nn.functional.softplus(s) + 0.05


class LabelDecoder(_LabelNet):
    """(z, y) -> Bernoulli logits of p(x | y, z)."""

    def __init__(self, z_dim, y_dim, x_dim, hidden=16, seed=1, dtype=torch.float64, device="cpu"):
        super().__init__(z_dim, y_dim, x_dim, hidden, seed, dtype, device)
        self.z_dim = z_dim
        self.b2 = 3 * self.b2

    def forward(self, z, y):
        return 2 * self.hidden(z, y)


class Classifier(torch.nn.Module):
    """x -> logits of q(y | x): one tanh hidden layer; ``y_dim`` classes."""

    def __init__(self, x_dim, y_dim, hidden=16, seed=2, dtype=torch.float64, device="cpu"):
        super().__init__()
        g = _generator(seed)
        self.y_dim = y_dim
        self.w1 = (torch.randn(x_dim, hidden, generator=g, dtype=dtype) / math.sqrt(x_dim)).to(device)
        self.w2 = (2 * torch.randn(hidden, y_dim, generator=g, dtype=dtype) / math.sqrt(hidden)).to(device)

    def forward(self, x):
        return torch.tanh(x @ self.w1) @ self.w2


class LabelRecorder:
    """A label decoder wrapper that records each ``(z, y)`` (detached) it receives."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.z_dim, self.y_dim = decoder.z_dim, decoder.y_dim

    def __call__(self, z, y):
        self.inputs.append((z.detach().clone(), y.detach().clone()))
        return self.decoder(z, y)


class Float32:
    """``net`` in float32: its inputs cast to float64, its outputs (a tensor or a tuple) to float32."""

    def __init__(self, net):
        self.net = net
        for attr in ("z_dim", "y_dim"):
            if getattr(net, attr, None) is not None:
                setattr(self, attr, getattr(net, attr))

    def __call__(self, *args):
        out = self.net(*(a.double() for a in args))
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


class BoundedMixtureModel:
    """1-D latent, ``P`` pixels all 1, logits 3 tanh(4 (z - 1)); q = N(0, 1) for every x; the prior the
    uniform mixture of N(0, 1) (= q), N(1.5, 0.25) and N(-1, 0.5).

    Since q is one of the k components and the others are narrower, p(z)/q(z) lies in
    [1/k, (1 + sum_j max_z N(z; m_j, v_j)/N(z; 0, 1))/k], with log max_z N(z; m, v)/N(z; 0, 1)
    = -1/2 log v + m^2 / (2 (1 - v)) for v < 1. So every log-weight log p(x|z) + log p(z) - log q(z),
    and every IWAE bound L_k, lies in an interval of length ``RANGE``.
    """

    SCALE = 3.0
    MEANS = (0.0, 1.5, -1.0)
    VARIANCES = (1.0, 0.25, 0.5)

    def __init__(self, pixels=4, dtype=torch.float64, device="cpu"):
        self.pixels, self.dtype, self.device = pixels, dtype, device
        self.k, self.z_dim = len(self.MEANS), 1
        t = functools.partial(torch.tensor, dtype=dtype, device=device)
        self.prior_m = t(self.MEANS).reshape(1, self.k, 1)
        self.prior_v = t(self.VARIANCES).reshape(1, self.k, 1)
        self.encoder = ConstantEncoder(t([0.0]), t([1.0]))
        ratio = [0.0] + [-0.5 * math.log(v) + m * m / (2 * (1 - v)) for m, v in zip(self.MEANS[1:], self.VARIANCES[1:])]
        self.log_ratio_interval = (-math.log(self.k), float(special.logsumexp(ratio)) - math.log(self.k))
        lo = self.pixels * float(special.log_expit(-self.SCALE))
        hi = self.pixels * float(special.log_expit(self.SCALE))
        self.log_weight_interval = (lo + self.log_ratio_interval[0], hi + self.log_ratio_interval[1])
        self.RANGE = self.log_weight_interval[1] - self.log_weight_interval[0]

    def x(self, batch):
        return torch.ones(batch, self.pixels, dtype=self.dtype, device=self.device)

    def decoder(self, z):
        return (self.SCALE * torch.tanh(4 * (z - 1))).expand(*z.shape[:-1], self.pixels)

    def log_weight(self, z):
        """float64 numpy: log p(x|z) + log p(z) - log q(z) for x = all ones, elementwise in z."""
        z = np.asarray(z, dtype=np.float64)
        log_px_z = self.pixels * special.log_expit(self.SCALE * np.tanh(4 * (z - 1)))
        log_p = oracles.log_normal_mixture(z.reshape(-1, 1), np.reshape(self.MEANS, (1, -1, 1)),
                                           np.reshape(self.VARIANCES, (1, -1, 1))).reshape(z.shape)
        return log_px_z + log_p - oracles.log_standard_normal(z[..., None])

    def _q(self, z):
        return np.exp(oracles.log_standard_normal(np.asarray(z, dtype=np.float64)[..., None]))

    @functools.cached_property
    def log_px(self) -> float:
        """log p(x) = log E_q w = log int q(z) w(z) dz (:func:`verify.models.integral_on_grid`)."""
        return math.log(integral_on_grid(lambda z: self._q(z) * np.exp(self.log_weight(z))))

    @functools.cached_property
    def expected_l1(self) -> float:
        """E L_1 = E_q log w, the ELBO (:func:`verify.models.integral_on_grid`)."""
        return integral_on_grid(lambda z: self._q(z) * self.log_weight(z))

    @functools.cached_property
    def expected_l2(self) -> float:
        """E L_2 = E log((w1 + w2)/2), z_i ~ q iid: a 2-D trapezoid rule on [-11, 11]^2, 1201 nodes a side
        (the integrand is smooth and Gaussian-damped: the rule converges geometrically; 801 and 2001 nodes
        agree with it to 1e-12, and 2 million Monte Carlo pairs to their standard error 0.004)."""
        z = np.linspace(-11, 11, 1201)
        w = self._q(z) * (z[1] - z[0])
        a = self.log_weight(z)
        return float(w @ (np.logaddexp(a[:, None], a[None, :]) - math.log(2)) @ w)
