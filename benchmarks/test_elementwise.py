"""The elementwise kernels (and log_mean_exp) against the copy bandwidth.

Sizes: a batch of 100 x 784 (in cache) and 10240 x 784 = 8.0M elements (32 MiB per float32
tensor, 64 MiB per float64 one: the inputs of every kernel exceed the 32 MiB L3 of the CI
machines). The bytes counted are the least any implementation must move: every input read once,
the output written once; ``sample_gaussian`` also draws the noise, which is compute, not traffic.
``log_mean_exp`` reduces over the last dim (784 values a row).
"""
import pytest
import torch

import impls
from benchmarks import baselines as bl
from benchmarks.common import DEVICES, DTYPES, VARIANTS
from impls import fused

X_DIM = 784
SIZES = [pytest.param(100, id="100x784"), pytest.param(10240, id="10240x784")]


def _inputs(inputs, rows, dtype, device):
    def build():
        g = torch.Generator().manual_seed(0)

        def randn():
            return torch.randn(rows, X_DIM, generator=g, dtype=dtype).to(device)

        def variance():
            return (torch.rand(rows, X_DIM, generator=g, dtype=dtype) + 0.1).to(device)

        return {
            "qm": randn(), "qv": variance(), "pm": randn(), "pv": variance(), "x": randn(),
            "bits": torch.bernoulli(torch.full((rows, X_DIM), 0.5, dtype=dtype), generator=g).to(device),
            "logits": 3 * randn(),
            "scores": 10 * randn(),
        }

    return inputs.get(("elementwise", rows, dtype, device), build)


KERNELS = {
    # name: (args from the inputs, number of full-size tensors read, writes a full-size output)
    "sample_gaussian": (("qm", "qv"), 2, True),
    "log_normal": (("x", "qm", "qv"), 3, False),
    "kl_normal": (("qm", "qv", "pm", "pv"), 4, False),
    "log_bernoulli_with_logits": (("bits", "logits"), 2, False),
    "log_mean_exp": (("scores",), 1, False),
}


def _implementation(kernel, variant):
    return {
        "ours": getattr(impls, kernel),
        "fused": getattr(fused, kernel),
        "td": getattr(bl, f"td_{kernel}"),
        "naive": getattr(bl, f"naive_{kernel}"),
    }[variant]


def _run(bench, inputs, kernel, variant, rows, dtype, device):
    names, n_read, full_output = KERNELS[kernel]
    data = _inputs(inputs, rows, dtype, device)
    args = [data[n] for n in names]
    if kernel == "log_mean_exp":
        args.append(-1)
    f = _implementation(kernel, variant)
    n = rows * X_DIM
    itemsize = torch.finfo(dtype).bits // 8
    nbytes = itemsize * (n_read * n + (n if full_output else rows))
    with torch.no_grad():
        out = bench.run(lambda: f(*args), kernel=kernel, variant=variant, device=device, dtype=dtype,
                        size=f"{rows}x{X_DIM}", size_order=rows, nbytes=nbytes, limit="copy")
    assert out.shape == ((rows, X_DIM) if full_output else (rows,))
    assert out.dtype == dtype


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_sample_gaussian(bench, inputs, device, dtype, rows, variant):
    _run(bench, inputs, "sample_gaussian", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_normal(bench, inputs, device, dtype, rows, variant):
    _run(bench, inputs, "log_normal", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_kl_normal(bench, inputs, device, dtype, rows, variant):
    _run(bench, inputs, "kl_normal", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_bernoulli_with_logits(bench, inputs, device, dtype, rows, variant):
    _run(bench, inputs, "log_bernoulli_with_logits", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_mean_exp(bench, inputs, device, dtype, rows, variant):
    _run(bench, inputs, "log_mean_exp", variant, rows, dtype, device)
