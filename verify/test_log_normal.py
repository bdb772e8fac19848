"""log_normal(x, m, v) = log N(x; m, diag v), summed over the last dim; log_normal_mixture."""
import numpy as np
import pytest
import torch
from hypothesis import given

from verify.contract import grades
from verify import oracles
from verify.assertions import as_numpy, assert_close, assert_gradients_match_oracle, check_tensor
from verify.strategies import (SHAPES_1D_TO_4D, gaussian_args, points_around, reals, shapes, variances,
                               wide_variances)
from hypothesis import strategies as st


def _t(a, device, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@grades('log_normal')
@given(args=gaussian_args(n=1), x_seed=st.integers(0, 2**31))
def test_log_normal_matches_closed_form(impl, device, args, x_seed):
    shape, (m, v) = args
    x = m + np.sqrt(v) * np.random.default_rng(x_seed).normal(size=shape) * 3
    out = impl.log_normal(_t(x, device), _t(m, device), _t(v, device))
    check_tensor(out, name="log_normal", shape=shape[:-1], dtype=torch.float64, device=device.type)
    assert_close(out, oracles.log_normal(x, m, v), what="log_normal vs the derived closed form (float64)",
                 inputs=f"Inputs: x = {x.tolist()}, m = {m.tolist()}, v = {v.tolist()}", rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "x_shape, m_shape, v_shape",
    [((6, 4), (1, 4), (1, 4)), ((3, 6, 4), (6, 4), (6, 4)), ((5, 4), (1,), (1,)), ((2, 1, 4), (1, 3, 4), (3, 1))],
    ids=["row-params", "samples-batch", "prior-of-shape-1", "outer"],
)
@grades('log_normal')
def test_log_normal_broadcasting(impl, device, rng, x_shape, m_shape, v_shape):
    x, m = rng.normal(size=x_shape), rng.normal(size=m_shape)
    v = rng.uniform(0.2, 3, size=v_shape)
    out = impl.log_normal(_t(x, device), _t(m, device), _t(v, device))
    expected = oracles.log_normal(x, m, v)
    check_tensor(out, name=f"log_normal(x{x_shape}, m{m_shape}, v{v_shape})", shape=expected.shape,
                 dtype=torch.float64, device=device.type)
    assert_close(out, expected, what=f"log_normal(x{x_shape}, m{m_shape}, v{v_shape}) with broadcasting", rtol=1e-10)


@grades('log_normal')
def test_log_normal_float32_extreme_variances(impl, device, rng):
    """float32 in, float32 out; variances 1e-6 .. 1e6 stay finite and accurate (rtol 1e-5 of the terms)."""
    v = 10.0 ** np.linspace(-6, 6, 13)[None, :].repeat(8, 0)
    m = rng.normal(size=v.shape)
    x = m + np.sqrt(v) * rng.normal(size=v.shape)
    x, m, v = (a.astype(np.float32).astype(np.float64) for a in (x, m, v))
    out = impl.log_normal(_t(x, device, torch.float32), _t(m, device, torch.float32), _t(v, device, torch.float32))
    check_tensor(out, name="log_normal on float32 inputs", shape=(8,), dtype=torch.float32, device=device.type)
    scale = np.sum(np.log(2 * np.pi) + np.abs(np.log(v)) + (x - m) ** 2 / v, axis=-1)
    assert_close(out, oracles.log_normal(x, m, v), what="log_normal in float32 with v from 1e-6 to 1e6",
                 inputs="Inputs: one row of 13 dims with v = 1e-6, 1e-5, ..., 1e6.", rtol=0,
                 atol=float(2e-6 * scale.max()))


@grades('log_normal_mixture')
@given(z_shape=shapes, k=st.integers(1, 5), shared=st.booleans(), data=st.data())
def test_log_normal_mixture_matches_closed_form(impl, device, z_shape, k, shared, data):
    b, d = z_shape
    z = data.draw(reals((b, d)))
    m = data.draw(reals((1 if shared else b, k, d)))
    v = data.draw(variances((1 if shared else b, k, d)))
    out = impl.log_normal_mixture(_t(z, device), _t(m, device), _t(v, device))
    check_tensor(out, name="log_normal_mixture", shape=(b,), dtype=torch.float64, device=device.type)
    assert_close(out, oracles.log_normal_mixture(z, m, v), what="log_normal_mixture vs log mean_k N(z; m_k, v_k)",
                 inputs=f"Inputs: z = {z.tolist()}, m = {m.tolist()}, v = {v.tolist()}", rtol=1e-10, atol=1e-10)


@grades('log_normal_mixture')
def test_log_normal_mixture_far_components_stay_finite(impl, device):
    """Components whose log densities are about -1e4: the mixture must not underflow to -inf."""
    z = torch.zeros(3, 2, dtype=torch.float64, device=device)
    m = torch.tensor([[[140.0, 0.0], [0.0, 141.0], [142.0, 1.0]]], dtype=torch.float64, device=device)
    v = torch.ones_like(m)
    out = impl.log_normal_mixture(z, m, v)
    assert_close(out, oracles.log_normal_mixture(as_numpy(z), as_numpy(m), as_numpy(v)),
                 what="log_normal_mixture with every component about 1e4 nats away",
                 inputs="Inputs: z = 0, m = ~140, v = 1", rtol=1e-12, atol=1e-9)


NO_GRAPH = ("Usual causes: a term computed in numpy, with math.*, .item() or .detach() and turned back into a "
            "tensor (the value survives, the gradient does not), or a tensor rebuilt with torch.tensor(...).")


# variances over the contract's whole range, and over one decade around 1 (where a gradient term of ordinary
# size is not lost in the tolerance of another entry's huge one)
VARIANCE_RANGES = {"v-1e-6..1e6": (1e-6, 1e6), "v-0.3..3": (0.3, 3.0)}


@grades('log_normal')
@pytest.mark.parametrize("v_range", VARIANCE_RANGES.values(), ids=VARIANCE_RANGES)
@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D.values(), ids=SHAPES_1D_TO_4D)
def test_log_normal_gradients(impl, device, rng, shape, v_range):
    """d/dx, d/dm, d/dv of a random projection vs autograd of the float64 oracle; v from 1e-6 to 1e6 (and
    from 0.3 to 3), a point 50 standard deviations out in each row."""
    m = rng.uniform(-5, 5, size=shape)
    v = wide_variances(rng, shape, *v_range)
    x = points_around(rng, m, v)
    assert_gradients_match_oracle(impl.log_normal, oracles.torch_log_normal, dict(x=x, m=m, v=v), cotangent_rng=rng,
                                  device=device, what=f"log_normal(x, m, v) on inputs of shape {shape}",
                                  inputs=f"Inputs: x = {x.tolist()}, m = {m.tolist()}, v = {v.tolist()}",
                                  causes=NO_GRAPH)


@grades('log_normal_mixture')
@pytest.mark.parametrize("v_range", VARIANCE_RANGES.values(), ids=VARIANCE_RANGES)
@pytest.mark.parametrize("shared", [False, True], ids=["per-example", "shared-components"])
def test_log_normal_mixture_gradients(impl, device, rng, shared, v_range):
    """d/dz, d/dm, d/dv vs autograd of the float64 oracle, z (5, 3), K = 4 components, v from 1e-6 to 1e6
    (and from 0.3 to 3)."""
    z = rng.normal(size=(5, 3)) * 2
    m = rng.normal(size=(1 if shared else 5, 4, 3)) * 2
    v = wide_variances(rng, m.shape, *v_range)
    assert_gradients_match_oracle(impl.log_normal_mixture, oracles.torch_log_normal_mixture, dict(z=z, m=m, v=v),
                                  cotangent_rng=rng, device=device, what=f"log_normal_mixture(z (5, 3), m {m.shape}, v)",
                                  inputs=f"Inputs: z = {z.tolist()}, m = {m.tolist()}, v = {v.tolist()}",
                                  causes=NO_GRAPH + " Or a log-mean-exp done in numpy.")
