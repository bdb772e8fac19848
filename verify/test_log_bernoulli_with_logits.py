"""log_bernoulli_with_logits(x, logits) = sum_d x log sigmoid(l) + (1 - x) log sigmoid(-l)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verify import oracles
from verify.assertions import assert_close, assert_gradients_match_oracle, check_tensor
from verify.strategies import SHAPES_1D_TO_4D, nd_shapes, reals, unit_interval
from verify.contract import grades

pytestmark = grades('log_bernoulli_with_logits')


def _t(a, device, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@given(shape=nd_shapes, data=st.data())
def test_log_bernoulli_with_logits_matches_closed_form(impl, device, shape, data):
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))))
    logits = data.draw(reals(shape, -40, 40))
    out = impl.log_bernoulli_with_logits(_t(x, device), _t(logits, device))
    check_tensor(out, name="log_bernoulli_with_logits", shape=shape[:-1], dtype=torch.float64, device=device.type)
    assert_close(out, oracles.log_bernoulli_with_logits(x, logits), what="log_bernoulli_with_logits vs the closed form",
                 inputs=f"Inputs: x = {x.tolist()}, logits = {logits.tolist()}", rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_log_bernoulli_with_logits_extreme_logits(impl, device, dtype):
    """Logits of +-1e4 with both labels: exact values 0 and -1e4, never -inf or nan."""
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=dtype, device=device).repeat(4, 1)
    logits = torch.diag(torch.tensor([1e4, -1e4, -1e4, 1e4], dtype=dtype, device=device))  # one extreme per row
    out = impl.log_bernoulli_with_logits(x, logits)
    check_tensor(out, name=f"log_bernoulli_with_logits on {dtype}", shape=(4,), dtype=dtype, device=device.type)
    expected = oracles.log_bernoulli_with_logits(x.double().cpu().numpy(), logits.double().cpu().numpy())
    assert_close(out, expected, what=f"log_bernoulli_with_logits with logits of +-1e4 ({dtype})",
                 inputs="Inputs: x = [1, 0, 1, 0] per row, one logit of +-1e4 per row, others 0 "
                 "(row 2: x = 1 with logit -1e4 gives -1e4 - 3 log 2)", rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("lead", [(5,), (3, 5)], ids=["batch", "samples-batch"])
def test_log_bernoulli_with_logits_sums_over_pixels(impl, device, rng, lead):
    """Output shape x.shape[:-1]: a sum over the last dim, one value per example (and per sample)."""
    x = (rng.uniform(size=(*lead, 7)) < 0.5).astype(float)
    logits = rng.normal(size=(*lead, 7)) * 3
    out = impl.log_bernoulli_with_logits(_t(x, device), _t(logits, device))
    check_tensor(out, name=f"log_bernoulli_with_logits on x{x.shape}", shape=lead, dtype=torch.float64,
                 device=device.type)
    assert_close(out, oracles.log_bernoulli_with_logits(x, logits), what=f"log_bernoulli_with_logits on {x.shape}",
                 rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D.values(), ids=SHAPES_1D_TO_4D)
def test_log_bernoulli_with_logits_gradients(impl, device, rng, shape):
    """Values and d/dx, d/dlogits vs autograd of the float64 oracle, with x anywhere in [0, 1] (not only
    0 and 1: the likelihood is defined, and used, for grey pixels too) and logits up to +-60."""
    x = unit_interval(rng, shape)
    logits = rng.uniform(-60, 60, size=shape)
    assert_gradients_match_oracle(
        impl.log_bernoulli_with_logits, oracles.torch_log_bernoulli_with_logits, dict(x=x, logits=logits),
        cotangent_rng=rng, device=device, what=f"log_bernoulli_with_logits(x, logits), x in [0, 1], shape {shape}",
        inputs=f"Inputs: x = {x.tolist()}, logits = {logits.tolist()}",
        causes="Usual causes: a formula that holds only for x in {0, 1} (e.g. torch.where(x == 1, ...)), or a "
               "term computed in numpy or detached.")
