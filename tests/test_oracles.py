"""The torch float64 oracles (the GMVAE's and SSVAE's gradient checks differentiate them) equal the numpy
oracles built from the derivations, and the categorical oracle equals its derivation."""
import numpy as np
import torch

import derivations
from verify import oracles


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def test_torch_oracles_equal_the_numpy_oracles():
    rng = np.random.default_rng(0)
    x, m = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    v = rng.uniform(0.2, 3.0, size=(5, 3))
    np.testing.assert_allclose(oracles.torch_log_normal(_t(x), _t(m), _t(v)), oracles.log_normal(x, m, v), rtol=1e-13)
    np.testing.assert_allclose(oracles.torch_kl_standard_normal(_t(m), _t(v)), oracles.kl_normal(m, v, 0.0, 1.0),
                               rtol=1e-13)
    pm, pv = rng.normal(size=(1, 4, 3)), rng.uniform(0.2, 3.0, size=(1, 4, 3))
    np.testing.assert_allclose(oracles.torch_log_normal_mixture(_t(x), _t(pm), _t(pv)),
                               oracles.log_normal_mixture(x, pm, pv), rtol=1e-13)
    bits, logits = (rng.uniform(size=(5, 7)) < 0.5).astype(float), 20 * rng.normal(size=(5, 7))
    np.testing.assert_allclose(oracles.torch_log_bernoulli_with_logits(_t(bits), _t(logits)),
                               oracles.log_bernoulli_with_logits(bits, logits), rtol=1e-13)
    y_logits = 3 * rng.normal(size=(6, 10))
    np.testing.assert_allclose(oracles.torch_kl_categorical_uniform(_t(y_logits)),
                               oracles.kl_categorical_uniform(y_logits), rtol=1e-12, atol=1e-15)


def test_categorical_oracle_is_the_derivation_summed_over_classes():
    q = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    term = derivations.get("categorical.kl_uniform").lambdify()
    expected = [sum(term(p, 3) for p in row if p > 0) for row in q]
    np.testing.assert_allclose(oracles.kl_categorical_uniform(np.log(q)), expected, rtol=1e-13)
    np.testing.assert_allclose(oracles.kl_categorical_uniform(np.log(q))[1], np.log(3), rtol=1e-15)


def test_mixture_oracle_agrees_with_the_derivation():
    """verify's log_normal_mixture (a log-mean-exp of log_normal) is the derivation's log-sum-exp form (K = 2)."""
    rng = np.random.default_rng(1)
    z, m, v = rng.normal(size=(8, 1)), rng.normal(size=(1, 2, 1)), rng.uniform(0.2, 3, size=(1, 2, 1))
    d = derivations.get("categorical.mixture_log_density")
    np.testing.assert_allclose(oracles.log_normal_mixture(z, m, v),
                               d.oracle(z[:, 0], m[0, 0, 0], v[0, 0, 0], m[0, 1, 0], v[0, 1, 0]), rtol=1e-13)
