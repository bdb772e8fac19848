"""The float64 torch oracles of the gradient checks (verify/oracles.py) have the values of the numpy
oracles built from the derivations, on the contract's whole input range."""
import numpy as np
import torch

from derivations import affine_flow
from verify import oracles


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def test_torch_oracles_equal_the_derivations_oracles():
    rng = np.random.default_rng(0)
    shape = (3, 2, 5)
    x, m, m2 = (rng.normal(size=shape) * 5 for _ in range(3))
    v, v2 = (10.0 ** rng.uniform(-6, 6, size=shape) for _ in range(2))
    x_far = m + np.sqrt(v) * 50
    grey, logits = rng.uniform(size=shape), rng.uniform(-60, 60, size=shape)
    pairs = [
        (oracles.torch_log_normal(_t(x_far), _t(m), _t(v)), oracles.log_normal(x_far, m, v)),
        (oracles.torch_log_standard_normal(_t(x)), oracles.log_standard_normal(x)),
        (oracles.torch_kl_normal(_t(m), _t(v), _t(m2), _t(v2)), oracles.kl_normal(m, v, m2, v2)),
        (oracles.torch_log_bernoulli_with_logits(_t(grey), _t(logits)), oracles.log_bernoulli_with_logits(grey, logits)),
        (oracles.torch_log_mean_exp(_t(x * 100), 1), oracles.log_mean_exp(x * 100, 1)),
        (oracles.torch_log_normal_mixture(_t(x[0]), _t(m.transpose(1, 0, 2)), _t(v.transpose(1, 0, 2))),
         oracles.log_normal_mixture(x[0], m.transpose(1, 0, 2), v.transpose(1, 0, 2))),
        (oracles.torch_affine_flow_log_prob(_t(x), _t(-m), _t(m2)), affine_flow.log_density(x, -m, m2)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-9)
