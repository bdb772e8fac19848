"""benchmarks/fused.py gives the reference's results: float64, random inputs, rtol 1e-10.

The sampling functions draw the same noise as the reference under the same seed, so their
outputs are compared value for value too. The fallback (eager when torch.compile fails) is
checked with a function that cannot be compiled whole.
"""
import math
import warnings

import pytest
import torch

import impls
from benchmarks import fused
from impls.vae import Decoder, Encoder

RTOL = 1e-10
DT = torch.float64


def same(a, b):
    torch.testing.assert_close(a, b, rtol=RTOL, atol=0, equal_nan=True)


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=_g(seed), dtype=DT)


def _var(*shape, seed=0):
    return torch.rand(*shape, generator=_g(seed), dtype=DT) * 3 + 0.05


SHAPES = [((7, 33), (7, 33)), ((4, 5, 12), (1, 5, 12))]  # x shape, parameter shape (broadcast)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.mark.parametrize("xs, ps", SHAPES)
def test_log_normal(xs, ps):
    x, m, v = _randn(*xs, seed=1), _randn(*ps, seed=2), _var(*ps, seed=3)
    same(fused.log_normal(x, m, v), impls.log_normal(x, m, v))


@pytest.mark.parametrize("xs, ps", SHAPES)
def test_kl_normal(xs, ps):
    qm, qv, pm, pv = _randn(*xs, seed=1), _var(*xs, seed=2), _randn(*ps, seed=3), _var(*ps, seed=4)
    same(fused.kl_normal(qm, qv, pm, pv), impls.kl_normal(qm, qv, pm, pv))


def test_log_bernoulli_with_logits():
    x = torch.bernoulli(torch.full((9, 40), 0.5, dtype=DT), generator=_g(5))
    for scale in (1.0, 30.0, 1e3):  # up to logits far beyond where log(sigmoid) underflows
        logits = _randn(9, 40, seed=6, scale=scale)
        same(fused.log_bernoulli_with_logits(x, logits), impls.log_bernoulli_with_logits(x, logits))
    # x broadcast over a leading sample dim, as in the IWAE bound
    logits3 = _randn(3, 9, 40, seed=7, scale=30.0)
    same(fused.log_bernoulli_with_logits(x, logits3), impls.log_bernoulli_with_logits(x, logits3))


@pytest.mark.parametrize("dim", [0, -1])
def test_log_mean_exp(dim):
    x = _randn(6, 50, seed=8, scale=1e4)  # entries of size 1e4: no overflow
    same(fused.log_mean_exp(x, dim), impls.log_mean_exp(x, dim))
    x[2] = -math.inf  # a row of zeros' logs: -inf, as the reference
    x[3, 7] = math.inf  # an infinite entry: +inf, not nan
    x[4, 9] = math.nan
    got = fused.log_mean_exp(x, -1)
    same(got, impls.log_mean_exp(x, -1))
    assert got[2] == -math.inf and got[3] == math.inf and math.isnan(got[4]) and torch.isfinite(got[[0, 1, 5]]).all()


def test_sample_gaussian_same_noise_and_gradients():
    m, v = _randn(5, 8, seed=9).requires_grad_(), _var(5, 8, seed=10).requires_grad_()
    torch.manual_seed(11)
    z = fused.sample_gaussian(m, v)
    torch.manual_seed(11)
    same(z, impls.sample_gaussian(m, v))
    z.sum().backward()
    eps = (z - m) / v.sqrt()
    same(m.grad, torch.ones_like(m))
    same(v.grad, (eps / (2 * v.sqrt())).detach())


def _nets():
    torch.manual_seed(12)
    return Encoder(z_dim=3, x_dim=20, hidden=8).to(DT), Decoder(z_dim=3, x_dim=20, hidden=8).to(DT)


def _x():
    return torch.bernoulli(torch.full((6, 20), 0.4, dtype=DT), generator=_g(13))


def test_negative_elbo_bound():
    enc, dec = _nets()
    x = _x()
    with torch.no_grad():
        torch.manual_seed(14)
        got = fused.negative_elbo_bound(x, enc, dec)
        torch.manual_seed(14)
        want = impls.negative_elbo_bound(x, enc, dec)
    for a, b in zip(got, want):
        same(a, b)


@pytest.mark.parametrize("iw, chunk_elements", [(1, 2**22), (7, 2**22), (50, 6 * 20 * 8)])
def test_negative_iwae_bound(iw, chunk_elements):
    """The last case runs 7 chunks of 8 samples and a tail of 2, as the reference does."""
    enc, dec = _nets()
    x = _x()
    with torch.no_grad():
        torch.manual_seed(15)
        got = fused.negative_iwae_bound(x, enc, dec, iw, chunk_elements)
        torch.manual_seed(15)
        want = impls.negative_iwae_bound(x, enc, dec, iw, chunk_elements)
    for a, b in zip(got, want):
        same(a, b)
    assert fused.backend() == "inductor"


def test_falls_back_to_eager_with_one_warning(monkeypatch):
    monkeypatch.setattr(fused, "_status", {})

    def branchy(x):
        if x.sum() > 0:  # data-dependent Python control flow: no single graph (fullgraph=True)
            return x + 1
        return x - 1

    f = fused._fused(branchy)
    x = torch.ones(3, dtype=DT)
    with pytest.warns(RuntimeWarning, match="running branchy eagerly"):
        same(f(x), x + 1)
    assert fused.backend().startswith("branchy: eager (")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        same(f(-x), -x - 1)


def test_bad_arguments_raise_and_keep_the_compiled_path(monkeypatch):
    monkeypatch.setattr(fused, "_status", {})

    def dot(a, b):
        return (a * b).sum(-1)

    f = fused._fused(dot)
    with pytest.raises(RuntimeError):  # shapes that do not broadcast: the caller's error, no fallback
        f(torch.ones(2, 3, dtype=DT), torch.ones(2, 4, dtype=DT))
    same(f(torch.ones(2, 3, dtype=DT), torch.ones(2, 3, dtype=DT)), torch.full((2,), 3.0, dtype=DT))
    assert fused.backend() == "inductor"
