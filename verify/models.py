"""The networks the checks plug into a submission's ELBO / IWAE code.

All are deterministic functions of a seed, float64 by default, and answer every spelling of the
starters (``enc(x)``, ``enc.encode(x)``, ``dec(z)``, ``dec.decode(z)``) through the loader.

* :class:`MLPEncoder` / :class:`MLPDecoder`: small random nets for generic checks;
* :class:`Recorder`: wraps a decoder and keeps every latent it was asked to decode, so a check can
  recompute the bound from the very samples the submission drew ("replay");
* :class:`ConjugateModel`: a Bernoulli decoder whose exact posterior is a diagonal Gaussian, so
  q can equal the posterior and every importance weight equals p(x);
* :class:`BoundedModel`: a 1-D latent, logits bounded by 3, q = prior: every log-weight lies in an
  interval of known length (Hoeffding applies) and log p(x) is a 1-D quadrature.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from verify.assertions import trapezoid_mass
from verify.lazy import OnFirstUse
from verify.oracles import log_standard_normal

special, lg = OnFirstUse("scipy.special"), OnFirstUse("derivations.elbo")


def integral_on_grid(f, lo: float = -12.0, hi: float = 12.0, nodes: int = 4801) -> float:
    """int_lo^hi f(z) dz by the trapezoid rule on ``nodes`` equally spaced points (``f`` vectorized).

    For the analytic, Gaussian-damped integrands of the check models the rule converges
    geometrically (error ~ exp(-2 pi a / h) for a function analytic in a strip of half-width a);
    the same rule on every other node (:func:`verify.assertions.trapezoid_mass`'s error estimate;
    ``nodes`` odd) must agree to 1e-11 (relative), or this raises. It agreed with adaptive
    quadrature (scipy.integrate.quad, epsabs 1e-13) to 3e-14, in a thousandth of the time (quad
    calls the integrand once a point)."""
    z = np.linspace(lo, hi, nodes)
    full, error = trapezoid_mass(f(z), (z[1] - z[0],))
    if not error <= 1e-11 * max(1.0, abs(full)):
        raise RuntimeError(f"the trapezoid rule has not converged on [{lo}, {hi}] with {nodes} nodes: "
                           f"{full!r}, {error:.3g} from the rule on every other node")
    return full


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _weights(net, prefix: str, requires_grad: bool) -> dict:
    for name in ("w1", "w2", "b2"):
        getattr(net, name).requires_grad_(requires_grad)
    return {f"{prefix}.{name}": getattr(net, name) for name in ("w1", "w2", "b2")}


class MLPEncoder(torch.nn.Module):
    """x (..., P) -> (m, v): one tanh hidden layer, v = softplus(h) + 0.05 (bounded away from 0), or with
    ``log10_v=(lo, hi)`` v = 10^(mid + half tanh(4 h)), spread over [10^lo, 10^hi] (the contract's
    variances reach the bounds: a clamped variance shows)."""

    def __init__(self, x_dim, z_dim, hidden=16, seed=0, dtype=torch.float64, device="cpu", spread=1.0, log10_v=None):
        super().__init__()
        self.log10_v = log10_v
        g = _generator(seed)
        self.z_dim = z_dim
        self.w1 = torch.randn(x_dim, hidden, generator=g, dtype=dtype).to(device) / math.sqrt(x_dim)
        self.w2 = spread * torch.randn(hidden, 2 * z_dim, generator=g, dtype=dtype).to(device) / math.sqrt(hidden)
        self.b2 = torch.randn(2 * z_dim, generator=g, dtype=dtype).to(device) * 0.3

    def weights(self, prefix: str, requires_grad: bool = True) -> dict:
        """The network's tensors by name (``prefix.w1``, ...), made leaves that require grad: the
        gradient checks read each one's ``.grad`` after the submission's backward pass."""
        return _weights(self, prefix, requires_grad)

    def forward(self, x):
        h = torch.tanh(x @ self.w1) @ self.w2 + self.b2
        m, s = h.chunk(2, dim=-1)
        if self.log10_v is not None:
            lo, hi = self.log10_v
            return m, 10.0 ** ((lo + hi) / 2 + (hi - lo) / 2 * torch.tanh(4 * s))
        return m, torch.nn.functional.softplus(s) + 0.05


class MLPDecoder(torch.nn.Module):
    """z (..., D) -> logits (..., P): one tanh hidden layer."""

    def __init__(self, z_dim, x_dim, hidden=16, seed=1, dtype=torch.float64, device="cpu"):
        super().__init__()
        g = _generator(seed)
        self.w1 = torch.randn(z_dim, hidden, generator=g, dtype=dtype).to(device)
        self.w2 = 2 * torch.randn(hidden, x_dim, generator=g, dtype=dtype).to(device) / math.sqrt(hidden)
        self.b2 = torch.randn(x_dim, generator=g, dtype=dtype).to(device)

    weights = MLPEncoder.weights

    def forward(self, z):
        return torch.tanh(z @ self.w1) @ self.w2 + self.b2


class Recorder:
    """A decoder wrapper that records each input latent (detached) it receives."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.inputs: list[torch.Tensor] = []
        self.z_dim = getattr(decoder, "z_dim", None)

    def __call__(self, z):
        self.inputs.append(z.detach().clone())
        return self.decoder(z)

    def by_example(self, batch: int, z_dim: int, name: str) -> np.ndarray:
        """The recorded latents as (samples, batch, D), in the order decoded: calls of shape (..., B, D), or
        one call per example (a Python loop over the batch), (1, D) or (D,) each; ``name`` heads the
        failure when the calls fit no such layout."""
        rows = []
        for z in self.inputs:
            if z.shape[-1] != z_dim:
                raise AssertionError(f"{name}: the decoder was called with latents of shape {tuple(z.shape)}; expected "
                                     f"(..., {batch}, {z_dim}) for a batch of {batch} examples with a {z_dim}-dim latent "
                                     "(or one example at a time)")
            rows.append(z.reshape(-1, z_dim))
        if not rows:
            raise AssertionError(f"{name}: the decoder was never called")
        flat = torch.cat(rows)
        if flat.shape[0] % batch:
            raise AssertionError(f"{name}: the decoder received {flat.shape[0]} latents for a batch of {batch} examples; "
                                 "expected one sample (or a fixed number of samples) per example")
        return flat.reshape(-1, batch, z_dim).detach().cpu().numpy().astype(np.float64)

    def latents(self, z_dim: int) -> torch.Tensor:
        """All recorded latents as rows (N, z_dim)."""
        return torch.cat([z.reshape(-1, z_dim) for z in self.inputs]) if self.inputs else torch.zeros(0, z_dim)


class ConstantEncoder:
    """Returns the same (m, v) for every example: ``m``, ``v`` of shape (D,), broadcast to (B, D)."""

    def __init__(self, m, v):
        self.m, self.v = m, v
        self.z_dim = m.shape[-1]

    def __call__(self, x):
        shape = (*x.shape[:-1], self.m.shape[-1])
        return self.m.expand(shape).clone(), self.v.expand(shape).clone()


class ConjugateModel:
    """A Bernoulli decoder with an exactly Gaussian (diagonal) posterior.

    ``k`` informative pixels are 1 in every example; pixel d has p(x_d = 1 | z) = exp(g_d(z)) with
    g_d(z) = log N(y_d; a_d^T z, s2) + log sqrt(2 pi s2) - c_d <= -c_d < 0, i.e. logits
    g_d - log(-expm1(g_d)). This is the linear-Gaussian model y | z ~ N(A z, s2 I) of
    ``derivations.elbo`` up to the constant sum_d (log sqrt(2 pi s2) - c_d), so the posterior is that
    model's (diagonal, since A has orthogonal columns) and log p(x) is its closed form plus
    constants. The other pixels have logits independent of z; the examples differ there, so the
    batch is heterogeneous: each example has its own log p(x_b), all share one posterior.
    """

    def __init__(self, z_dim=2, n_informative=3, n_free=5, batch=5, seed=3, dtype=torch.float64, device="cpu"):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(n_informative, z_dim)))
        self.A = q * rng.uniform(0.8, 2.0, size=z_dim)  # orthogonal columns
        self.y = rng.normal(size=n_informative)
        self.s2 = 0.7
        self.c = rng.uniform(0.3, 1.0, size=n_informative)
        self.free_logits = rng.uniform(-3, 3, size=n_free)
        free = rng.integers(0, 2, size=(batch, n_free)).astype(float)
        free[:, 0] = np.arange(batch) % 2  # examples differ
        free[:, 1] = (np.arange(batch) // 2) % 2
        self.x_np = np.concatenate([np.ones((batch, n_informative)), free], axis=1)
        mean, cov = lg.posterior(self.y, self.A, np.zeros(n_informative), self.s2)
        self.post_m, self.post_v = np.asarray(mean), np.diag(cov).copy()
        assert np.allclose(cov, np.diag(self.post_v), atol=1e-12)
        log_k = np.sum(0.5 * np.log(2 * np.pi * self.s2) - self.c)
        log_free = self.x_np[:, n_informative:] @ self.free_logits + np.sum(special.log_expit(-self.free_logits))
        self.log_px = lg.log_marginal(self.y, self.A, np.zeros(n_informative), self.s2) + log_k + log_free
        t = functools.partial(torch.as_tensor, dtype=dtype, device=device)
        self.x = t(self.x_np)
        self._A, self._y, self._c, self._free = t(self.A), t(self.y), t(self.c), t(self.free_logits)
        self.encoder = ConstantEncoder(t(self.post_m), t(self.post_v))
        self.z_dim = z_dim

    def decoder(self, z):
        mean = z @ self._A.T  # (..., k)
        g = -0.5 * (self._y - mean) ** 2 / self.s2 - self._c
        informative = g - torch.log(-torch.expm1(g))
        return torch.cat([informative, self._free.expand(*z.shape[:-1], -1)], dim=-1)


def log_prior(z):
    """log N(z; 0, 1) of a 1-D latent, elementwise (the float64 oracle of verify/oracles.py)."""
    return log_standard_normal(np.asarray(z, dtype=np.float64)[..., None])


class BoundedModel:
    """1-D latent, ``P`` pixels all equal to 1, logits 3 tanh(4 (z - 1)), q = p(z) = N(0, 1).

    Every log-weight log p(x|z) + log p(z) - log q(z) = log p(x|z) lies in
    [-P softplus(3), -P softplus(-3)], an interval of length exactly ``RANGE`` = 3 P, and so does
    every IWAE bound L_k. p(x|z) is high only for z > 1, so the bounds L_1 < L_2 < ... are far apart.
    """

    SCALE = 3.0

    def __init__(self, pixels=4, dtype=torch.float64, device="cpu"):
        self.pixels = pixels
        self.RANGE = self.SCALE * pixels
        self.encoder = ConstantEncoder(torch.zeros(1, dtype=dtype, device=device), torch.ones(1, dtype=dtype, device=device))
        self.dtype, self.device = dtype, device
        self.z_dim = 1

    @property
    def log_weight_interval(self) -> tuple[float, float]:
        """[-P softplus(3), -P softplus(-3)]: every log-weight, and so every L_k, lies in it."""
        return (float(self.pixels * special.log_expit(-self.SCALE)),
                float(self.pixels * special.log_expit(self.SCALE)))

    def x(self, batch):
        return torch.ones(batch, self.pixels, dtype=self.dtype, device=self.device)

    def decoder(self, z):
        return (self.SCALE * torch.tanh(4 * (z - 1))).expand(*z.shape[:-1], self.pixels)

    def log_px_given_z(self, z):
        """float64 numpy: log p(x|z) for x = all ones."""
        return self.pixels * special.log_expit(self.SCALE * np.tanh(4 * (np.asarray(z) - 1)))

    @functools.cached_property
    def log_px(self) -> float:
        """log p(x) = log int p(x|z) N(z; 0, 1) dz (:func:`integral_on_grid`)."""
        return math.log(integral_on_grid(lambda z: np.exp(self.log_px_given_z(z) + log_prior(z))))

    @functools.cached_property
    def expected_l1(self) -> float:
        """E[L_1] = E_p(z) log p(x|z) (:func:`integral_on_grid`)."""
        return integral_on_grid(lambda z: self.log_px_given_z(z) * np.exp(log_prior(z)))

    @functools.cached_property
    def expected_l2(self) -> float:
        """E[L_2] = E log((w1 + w2)/2), w_i = p(x|z_i), z_i ~ N(0, 1) iid.

        A 2-D trapezoid rule on [-11, 11]^2 with 2001 nodes a side: the integrand is analytic and
        Gaussian-damped, so the rule converges geometrically (it agrees with nested adaptive
        quadrature to 1e-12; tests/test_check_models.py compares them).
        """
        z = np.linspace(-11, 11, 2001)
        w = np.exp(log_prior(z)) * (z[1] - z[0])
        a = self.log_px_given_z(z)
        return float(w @ (np.logaddexp(a[:, None], a[None, :]) - math.log(2)) @ w)
