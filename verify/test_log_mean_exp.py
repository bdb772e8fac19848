"""log_mean_exp(x, dim) = log(mean(exp(x), dim)), stable for entries of size 1e4."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from verify import oracles
from verify.assertions import assert_close, assert_gradients_match_oracle, check_tensor
from verify.strategies import SHAPES_1D_TO_4D
from verify.strategies import reals
from verify.contract import grades

pytestmark = grades('log_mean_exp')


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
def test_log_mean_exp_matches_closed_form(impl, device, shape, data):
    x = data.draw(reals(tuple(shape), -30, 30))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    out = impl.log_mean_exp(torch.as_tensor(x, device=device), dim)
    expected = oracles.log_mean_exp(x, dim)
    check_tensor(out, name=f"log_mean_exp(x{tuple(shape)}, dim={dim})", shape=expected.shape, dtype=torch.float64,
                 device=device.type)
    assert_close(out, expected, what=f"log_mean_exp(x, dim={dim}) vs log(mean(exp(x)))",
                 inputs=f"Inputs: x = {x.tolist()}, dim = {dim}", rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("dim", [0, 1], ids=["dim0", "dim1"])
def test_log_mean_exp_extreme_values(impl, device, dtype, dim):
    """Rows (or columns) around +1e4 and around -1e4 in one tensor: each reduced on its own scale."""
    base = np.array([[1e4, 1e4 - 1.0, 1e4 - 3.0], [-1e4, -1e4 + 2.0, -1e4 - 0.5], [0.0, 5.0, -7.0]])
    x = base if dim == 1 else base.T
    out = impl.log_mean_exp(torch.as_tensor(x, dtype=dtype, device=device), dim)
    check_tensor(out, name=f"log_mean_exp on {dtype}", shape=(3,), dtype=dtype, device=device.type)
    assert_close(out, oracles.log_mean_exp(x, dim), what=f"log_mean_exp(x, dim={dim}) with entries of +-1e4 ({dtype})",
                 inputs=f"Inputs: x = {x.tolist()}", rtol=1e-6, atol=1e-3 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D.values(), ids=SHAPES_1D_TO_4D)
def test_log_mean_exp_gradients(impl, device, rng, shape):
    """d/dx (the softmax along dim) vs autograd of the float64 oracle, over every dim of 1-D to 4-D inputs,
    some entries near 1e3 (a naive exp overflows)."""
    x = rng.uniform(-30, 30, size=shape)
    x.reshape(-1)[::5] += 1e3
    for dim in range(-len(shape), len(shape)):
        assert_gradients_match_oracle(
            impl.log_mean_exp, oracles.torch_log_mean_exp, dict(x=x), extra=(dim,), cotangent_rng=rng, device=device,
            what=f"log_mean_exp(x, dim={dim}) on x of shape {shape}", inputs=f"Inputs: x = {x.tolist()}, dim = {dim}",
            causes="Usual causes: the log-mean-exp computed in numpy (or scipy) and turned back into a tensor, "
                   "or its maximum shift computed in a way autograd cannot follow.")
