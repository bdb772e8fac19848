"""The affine coupling layer (forward, inverse) and RealNVP.log_prob on flat 784-dim data.

Networks: MLPs 784-128-128-784 (ReLU; the scale network ends in tanh), 4 couplings for RealNVP.
The torch.distributions counterpart is the same coupling as a ``Transform`` inside a
``TransformedDistribution`` (benchmarks/baselines.py); the naive one indexes the transformed
features instead of multiplying by masks. The fraction is against whichever limit is closer
(roofline): matmul FLOP/s (the networks) or copy bandwidth (x in, y out).
"""
import pytest
import torch
from torch import nn

from benchmarks import baselines as bl
from benchmarks.common import DEVICES, DTYPES, VARIANTS
from benchmarks.machine import mlp_flops

flows = pytest.importorskip("impls.flows", reason="impls.flows is not available")

D, HIDDEN, N_LAYERS = 784, 128, 4
SIZES = [pytest.param(100, id="100x784"), pytest.param(4096, id="4096x784")]
FLOW_VARIANTS = [v for v in VARIANTS if v.values[0] != "fused"]  # no fused path for the flows


def _mlp(out_act=None):
    layers = [nn.Linear(D, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, D)]
    return nn.Sequential(*layers, *([out_act] if out_act is not None else []))


def _half_mask():
    return (torch.arange(D) < D // 2).to(torch.get_default_dtype())


def _coupling(inputs, rows, dtype, device):
    def build():
        torch.manual_seed(0)
        mask = _half_mask()
        scale_net, shift_net = _mlp(nn.Tanh()), _mlp()
        layer = flows.AffineCoupling(mask, scale_net, shift_net).to(dtype=dtype, device=device)  # nets moved in place
        parts = (mask.to(dtype=dtype, device=device), scale_net, shift_net)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(rows, D, generator=g, dtype=dtype).to(device)
        return layer, parts, x

    return inputs.get(("coupling", rows, dtype, device), build)


def _coupling_run(bench, inputs, device, dtype, rows, variant, direction):
    if not hasattr(flows, "AffineCoupling"):
        pytest.skip("impls.flows.AffineCoupling is not implemented yet")
    layer, parts, x = _coupling(inputs, rows, dtype, device)
    transform = bl.CouplingTransform(*parts)
    if direction == "forward":
        fs = {"ours": lambda: layer(x), "td": lambda: bl.td_coupling_forward(transform, x),
              "naive": lambda: bl.naive_coupling_forward(*parts, x)}
    else:
        fs = {"ours": lambda: layer.inverse(x), "td": lambda: bl.td_coupling_inverse(transform, x),
              "naive": lambda: bl.naive_coupling_inverse(*parts, x)}
    f = fs[variant]
    itemsize = torch.finfo(dtype).bits // 8
    with torch.no_grad():
        out = bench.run(f, kernel=f"AffineCoupling.{direction}", variant=variant, device=device, dtype=dtype,
                        size=f"{rows}x{D}", size_order=rows, flops=2 * mlp_flops(rows, (D, HIDDEN, HIDDEN, D)),
                        nbytes=itemsize * (2 * rows * D + (rows if direction == "forward" else 0)), limit="roofline",
                        reference=fs["td"])
    y = out[0] if direction == "forward" else out
    assert y.shape == x.shape and torch.isfinite(y).all()
    if direction == "forward":
        assert out[1].shape == (rows,)


@pytest.mark.parametrize("variant", FLOW_VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_affine_coupling(bench, inputs, direction, device, dtype, rows, variant):
    _coupling_run(bench, inputs, device, dtype, rows, variant, direction)


def _realnvp(inputs, rows, dtype, device):
    def build():
        torch.manual_seed(0)
        model = flows.RealNVP(D, n_layers=N_LAYERS, hidden=HIDDEN).to(dtype=dtype, device=device)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(rows, D, generator=g, dtype=dtype).to(device)
        return model, x

    return inputs.get(("realnvp", rows, dtype, device), build)


def _layer_parts(model, dtype, device):
    """(mask, scale_net, shift_net) of each coupling, for the baselines; None if the model's
    layers do not expose them."""
    try:
        return [(layer.mask.to(dtype=dtype, device=device), layer.scale_net, layer.shift_net) for layer in model.layers]
    except AttributeError:
        return None


@pytest.mark.parametrize("variant", FLOW_VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_realnvp_log_prob(bench, inputs, device, dtype, rows, variant):
    if not hasattr(flows, "RealNVP"):
        pytest.skip("impls.flows.RealNVP is not implemented yet")
    model, x = _realnvp(inputs, rows, dtype, device)
    parts = _layer_parts(model, dtype, device)
    if parts is None and variant != "ours":
        pytest.skip("RealNVP's layers do not expose mask / scale_net / shift_net; no baseline")
    td = None
    if parts is not None:
        dist = bl.td_flow_distribution([bl.CouplingTransform(*p) for p in parts], D, dtype, device)
        td = lambda: dist.log_prob(x)  # noqa: E731
    f = {"ours": lambda: model.log_prob(x), "td": td, "naive": lambda: bl.naive_flow_log_prob(parts, x)}[variant]
    itemsize = torch.finfo(dtype).bits // 8
    with torch.no_grad():
        out = bench.run(f, kernel="RealNVP.log_prob", variant=variant, device=device, dtype=dtype, size=f"{rows}x{D}",
                        size_order=rows, flops=N_LAYERS * 2 * mlp_flops(rows, (D, HIDDEN, HIDDEN, D)),
                        nbytes=itemsize * (rows * D + rows), limit="roofline", reference=td)
    assert out.shape == (rows,) and torch.isfinite(out).all()
