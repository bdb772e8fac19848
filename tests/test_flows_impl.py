"""Unit tests of impls/flows.py (masks, AffineCoupling, RealNVP) and of the flow derivations."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import integrate, stats

import derivations.affine_flow as affine
import derivations.coupling as coupling
from impls.flows import (
    AffineCoupling,
    BoundedScale,
    RealNVP,
    affine_flow_log_prob,
    channel_mask,
    checkerboard_mask,
    vector_mask,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one thread is faster, and immune to contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ masks
def test_vector_mask_halves_and_alternate():
    assert vector_mask(6).tolist() == [1, 1, 1, 0, 0, 0]
    assert vector_mask(6, parity=1).tolist() == [0, 0, 0, 1, 1, 1]
    assert vector_mask(5).tolist() == [1, 1, 0, 0, 0]
    assert vector_mask(5, pattern="alternate").tolist() == [1, 0, 1, 0, 1]
    assert vector_mask(5, 1, pattern="alternate").tolist() == [0, 1, 0, 1, 0]
    assert vector_mask(4, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError):
        vector_mask(4, pattern="random")


def test_checkerboard_mask():
    m = checkerboard_mask(3, 4, 5)
    assert m.shape == (3, 4, 5)
    assert torch.equal(m[0], m[2])
    assert m[0, 0, 0] == 1 and m[0, 0, 1] == 0 and m[0, 1, 0] == 0 and m[0, 1, 1] == 1
    assert torch.equal(checkerboard_mask(3, 4, 5, parity=1), 1 - m)
    assert m.sum() == 3 * 10


def test_channel_mask():
    m = channel_mask(4, 2, 3)
    assert m.shape == (4, 2, 3)
    assert m[:2].eq(1).all() and m[2:].eq(0).all()
    assert torch.equal(channel_mask(4, 2, 3, parity=1), 1 - m)


# ------------------------------------------------------------------------------ affine flow
def test_affine_flow_matches_scipy_and_negative_scale():
    x = torch.linspace(-5, 10, 31, dtype=torch.float64)
    expected = stats.norm(3, 1.5).logpdf(x.numpy())
    np.testing.assert_allclose(affine_flow_log_prob(x, torch.tensor(1.5), torch.tensor(3.0)), expected, rtol=1e-12)
    np.testing.assert_allclose(affine_flow_log_prob(x, -1.5, 3.0), expected, rtol=1e-12)


def test_affine_flow_density_integrates_to_one():
    def density(x):
        return math.exp(affine_flow_log_prob(torch.tensor([x], dtype=torch.float64), 1.5, 3.0).item())

    assert integrate.quad(density, -np.inf, np.inf)[0] == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------- coupling layer
def _coupling(mask, seed=0):
    torch.manual_seed(seed)
    d = mask.numel()
    scale = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, d)).double()
    shift = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, d)).double()
    return AffineCoupling(mask, scale, shift)


def test_coupling_accepts_bool_mask_and_moves_with_module():
    layer = _coupling(vector_mask(4, dtype=torch.float64).bool())
    x = torch.randn(3, 4, dtype=torch.float64)
    y, log_det = layer(x)
    assert torch.equal(y[:, :2], x[:, :2]) and log_det.shape == (3,)
    assert "mask" in dict(layer.named_buffers())
    torch.testing.assert_close(layer.inverse(y), x, rtol=0, atol=1e-12)


def test_coupling_log_det_is_derivation_oracle():
    mask = vector_mask(4, dtype=torch.float64)
    layer = _coupling(mask)
    x = torch.randn(5, 4, dtype=torch.float64)
    _, log_det = layer(x)
    s = layer.scale_net(mask * x).detach().numpy()
    np.testing.assert_allclose(log_det.detach(), coupling.log_det(s, mask.numpy()), rtol=1e-13)
    # the 2 + 2 derivation's oracle on the transformed coordinates (mask 0: the last two)
    np.testing.assert_allclose(log_det.detach(), coupling.COUPLING_LOG_DET.oracle(s[:, 2], s[:, 3]), rtol=1e-13)


# ---------------------------------------------------------------------------------- RealNVP
@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
@pytest.mark.parametrize("shape", [4, (2, 4, 4)], ids=["vector", "image"])
def test_realnvp_roundtrip_log_prob_and_sample(shape, bounded):
    torch.manual_seed(0)
    model = RealNVP(shape, n_layers=4, hidden=8, bounded_scale=bounded).double()
    feature = (shape,) if isinstance(shape, int) else shape
    x = torch.randn(6, *feature, dtype=torch.float64)
    z, log_det = model(x)
    assert z.shape == x.shape and log_det.shape == (6,)
    assert not torch.allclose(z, x)  # random, non-identity layers
    torch.testing.assert_close(model.inverse(z), x, rtol=0, atol=1e-10)
    lp = model.log_prob(x)
    assert lp.shape == (6,) and torch.isfinite(lp).all()
    expected = stats.norm.logpdf(z.detach().numpy()).reshape(6, -1).sum(1) + log_det.detach().numpy()
    np.testing.assert_allclose(lp.detach(), expected, rtol=1e-12)
    samples = model.sample(7)
    assert samples.shape == (7, *feature) and samples.dtype == torch.float64
    assert torch.isfinite(model.log_prob(samples)).all()


def test_realnvp_masks_alternate():
    model = RealNVP(6, n_layers=3, hidden=4)
    masks = [layer.mask for layer in model.layers]
    assert torch.equal(masks[0], 1 - masks[1]) and torch.equal(masks[0], masks[2])
    image = RealNVP((1, 4, 4), n_layers=2, hidden=4)
    assert torch.equal(image.layers[0].mask, 1 - image.layers[1].mask)


def test_realnvp_bounded_scale():
    torch.manual_seed(1)
    model = RealNVP(4, n_layers=2, hidden=8, bounded_scale=True)
    scale_net = model.layers[0].scale_net
    assert isinstance(scale_net, BoundedScale)
    with torch.no_grad():
        scale_net.factor.fill_(0.25)
        s = scale_net(100 * torch.randn(50, 4))
    assert s.abs().max() <= 0.25
    assert isinstance(RealNVP(4, bounded_scale=False).layers[0].scale_net, torch.nn.Sequential)
    with pytest.raises(ValueError):
        RealNVP((3, 4))


def test_realnvp_2d_density_normalizes():
    torch.manual_seed(2)
    model = RealNVP(2, n_layers=3, hidden=8).double()

    def density(points):
        with torch.no_grad():
            return model.log_prob(torch.as_tensor(points)).exp().numpy()

    result = integrate.cubature(density, [-30, -30], [30, 30], rtol=1e-10, atol=1e-12)
    assert result.estimate == pytest.approx(1.0, abs=1e-6)


def test_realnvp_trains():
    """A few Adam steps on a shifted, stretched Gaussian raise the log-likelihood."""
    torch.manual_seed(3)
    data = torch.randn(512, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -1.0])
    model = RealNVP(2, n_layers=4, hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.log_prob(data).mean().item()
    for _ in range(60):
        opt.zero_grad()
        loss = -model.log_prob(data).mean()
        loss.backward()
        opt.step()
    assert model.log_prob(data).mean().item() > before + 0.5


# ------------------------------------------------------------------------------ derivations
def test_affine_flow_derivation():
    d = affine.AFFINE_FLOW
    assert d is affine.affine_flow()
    x, a, b = d.symbols
    assert sp.integrate(d.expr, (x, -sp.oo, sp.oo)) == 1
    assert sp.simplify(d.expr - sp.exp(-(x - b) ** 2 / (2 * a**2)) / sp.sqrt(2 * sp.pi * a**2)) == 0
    assert "integrates to 2/3" in d.pretty() and d.latex()
    xs = np.linspace(-4, 8, 25)
    np.testing.assert_allclose(d.oracle(xs, 1.5, 3.0), stats.norm(3, 1.5).pdf(xs), rtol=1e-12)
    np.testing.assert_allclose(d.oracle(xs, -1.5, 3.0), stats.norm(3, 1.5).pdf(xs), rtol=1e-12)
    np.testing.assert_allclose(affine.log_density(xs, -1.5, 3.0), stats.norm(3, 1.5).logpdf(xs), rtol=1e-12)
    np.testing.assert_allclose(d.oracle(xs, 0.7, -1.0), d.lambdify()(xs, 0.7, -1.0), rtol=1e-12)
    log_expr = sp.lambdify(d.symbols, sp.expand_log(sp.log(d.expr), force=True))
    np.testing.assert_allclose(affine.log_density(xs, 0.7, -1.0), log_expr(xs, 0.7, -1.0), rtol=1e-12)
    assert affine.affine_flow_density is affine.affine_flow


def test_two_thirds_answer_integrates_to_two_thirds():
    half_right = sp.Rational(2, 3) * affine.homework_density()
    assert affine.total_mass(half_right) == sp.Rational(2, 3)
    assert affine.total_mass("2/3 * exp(-(x - 3)**2 / (2 * (3/2)**2)) / sqrt(2 * pi * (3/2)**2)") == sp.Rational(2, 3)
    ok, message = affine.check_density_answer(half_right)
    assert not ok and "2/3" in message and "twice" in message
    ok, message = affine.check_density_answer("exp(-(x - 3)**2 / (2 * 9/4)) / sqrt(2 * pi * 9/4)")
    assert ok, message
    ok, message = affine.check_density_answer("exp(-(x - 3)**2 / (2 * 9/4)) / sqrt(2 * pi)")
    assert not ok and "3/2" in message and "missing" in message
    ok, message = affine.check_density_answer("exp(-(x - 3)**2 / 2) / sqrt(2 * pi)")
    assert not ok and "integrates to 1" in message


def test_coupling_derivation():
    d = coupling.COUPLING_LOG_DET
    assert d is coupling.coupling_log_det()
    s1, s2 = d.symbols
    assert d.expr == s1 + s2
    x, y, jac, s, t = coupling.coupling_jacobian(2, 2)
    assert jac[:2, 2:] == sp.zeros(2, 2) and jac[:2, :2] == sp.eye(2)
    assert sp.simplify(jac.det() - sp.exp(s[0] + s[1])) == 0
    _, _, jac3, s3, _ = coupling.coupling_jacobian(1, 3)
    assert sp.simplify(jac3.det() - sp.exp(sum(s3))) == 0
    assert "lower-triangular" in d.pretty() and d.latex() == "s_{1} + s_{2}"
    assert d.oracle(0.5, -2.0) == pytest.approx(-1.5)
    s_num = np.array([[0.3, -1.0, 2.0], [0.1, 0.2, 0.3]])
    np.testing.assert_allclose(coupling.log_det(s_num, [1, 0, 0]), [1.0, 0.5])


def test_flow_derivations_are_lazy():
    import importlib

    for module in (affine, coupling):
        assert "AFFINE_FLOW" not in vars(module) and "COUPLING_LOG_DET" not in vars(module)
        with pytest.raises(AttributeError):
            getattr(module, "NOT_A_DERIVATION")
    assert importlib.import_module("derivations.coupling") is coupling
