"""kl_normal(qm, qv, pm, pv) = KL(N(qm, qv) || N(pm, pv)), summed over the last dim."""
import numpy as np
import pytest
import torch
from hypothesis import given

from verify import oracles
from verify.assertions import assert_close, assert_gradients_match_oracle, check_tensor
from verify.strategies import SHAPES_1D_TO_4D, gaussian_args, wide_variances
from verify.contract import grades

pytestmark = grades('kl_normal')


def _t(a, device, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@given(args=gaussian_args(n=2))
def test_kl_normal_matches_closed_form(impl, device, args):
    shape, (qm, qv, pm, pv) = args
    out = impl.kl_normal(*(_t(a, device) for a in (qm, qv, pm, pv)))
    check_tensor(out, name="kl_normal", shape=shape[:-1], dtype=torch.float64, device=device.type)
    assert_close(out, oracles.kl_normal(qm, qv, pm, pv), what="kl_normal vs the derived KL(N(qm, qv) || N(pm, pv))",
                 inputs=f"Inputs: qm = {qm.tolist()}, qv = {qv.tolist()}, pm = {pm.tolist()}, pv = {pv.tolist()}",
                 rtol=1e-10, atol=1e-10)


def test_kl_normal_against_cs236_prior(impl, device, rng):
    """The homework's call: q (B, D) against the prior z_prior_m = zeros(1), z_prior_v = ones(1)."""
    qm, qv = rng.normal(size=(6, 3)), rng.uniform(0.1, 4, size=(6, 3))
    pm, pv = np.zeros(1), np.ones(1)
    out = impl.kl_normal(_t(qm, device), _t(qv, device), _t(pm, device), _t(pv, device))
    check_tensor(out, name="kl_normal(q (6, 3), prior (1,))", shape=(6,), dtype=torch.float64, device=device.type)
    assert_close(out, oracles.kl_normal(qm, qv, pm, pv),
                 what="kl_normal against N(0, I) given as tensors of shape (1,)", rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_kl_normal_extreme_variances(impl, device, rng, dtype):
    """Variances from 1e-6 to 1e6 on both sides: finite and accurate (rtol 1e-5 in float32)."""
    grid = 10.0 ** np.linspace(-6, 6, 7)
    qv, pv = (a.ravel()[:, None] for a in np.meshgrid(grid, grid))
    qm, pm = rng.normal(size=qv.shape), rng.normal(size=qv.shape)
    qm, qv, pm, pv = (a.astype(np.float32).astype(np.float64) for a in (qm, qv, pm, pv))
    out = impl.kl_normal(*(_t(a, device, dtype) for a in (qm, qv, pm, pv)))
    check_tensor(out, name=f"kl_normal on {dtype} inputs", shape=(qv.shape[0],), dtype=dtype, device=device.type)
    expected = oracles.kl_normal(qm, qv, pm, pv)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert_close(out, expected, what=f"kl_normal with qv, pv from 1e-6 to 1e6 ({dtype})", rtol=tol, atol=tol)


@pytest.mark.parametrize("v_range", [(1e-6, 1e6), (0.3, 3.0)], ids=["v-1e-6..1e6", "v-0.3..3"])
@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D.values(), ids=SHAPES_1D_TO_4D)
def test_kl_normal_gradients(impl, device, rng, shape, v_range):
    """d/dqm, d/dqv, d/dpm, d/dpv vs autograd of the float64 oracle, on 1-D to 4-D inputs (a sum over the
    last dim only), variances from 1e-6 to 1e6 (and from 0.3 to 3, where an ordinary gradient term is not
    lost in the tolerance of another entry's huge one)."""
    qm, pm = rng.uniform(-5, 5, size=shape), rng.uniform(-5, 5, size=shape)
    qv, pv = wide_variances(rng, shape, *v_range), wide_variances(rng, shape, *v_range)
    assert_gradients_match_oracle(
        impl.kl_normal, oracles.torch_kl_normal, dict(qm=qm, qv=qv, pm=pm, pv=pv), cotangent_rng=rng, device=device,
        what=f"kl_normal(qm, qv, pm, pv) on inputs of shape {shape} (the KL sums over the last dim only)",
        inputs=f"Inputs: qm = {qm.tolist()}, qv = {qv.tolist()}, pm = {pm.tolist()}, pv = {pv.tolist()}",
        causes="Usual causes: a term computed in numpy, math.* or .item() and turned back into a tensor, or detached.")
