"""The elementwise kernels (and log_mean_exp) against the copy bandwidth.

Sizes: a batch of 100 x 784 (in cache) and 10240 x 784 = 8.0M elements (32 MiB per float32
tensor, 64 MiB per float64 one: the inputs of every kernel exceed the 32 MiB L3 of the CI
machines). The bytes counted are the least any implementation must move: every input read once,
the output written once; ``sample_gaussian`` also draws the noise, which is compute, not traffic
(its ``ratio_to_randn`` is its time over that of ``torch.randn`` alone, timed alternately: the
generator, not memory, bounds it on CPU).
``log_mean_exp`` reduces over the last dim (784 values a row).
"""
import pytest
import torch

import impls
from benchmarks import baselines as bl
from benchmarks.common import DEVICES, DTYPES, VARIANTS, interleaved
from impls import fused

X_DIM = 784
SIZES = [pytest.param(100, id="100x784"), pytest.param(10240, id="10240x784")]


SEEDS = {"mq": 1, "vq": 2, "mp": 3, "vp": 4, "bits": 5}


class _Tensors:
    """Inputs built on first use and kept for the module: every kernel, variant and dtype of one
    size shares them (at most 5 tensors a size and dtype, 320 MiB for the large float64 ones)."""

    def __init__(self):
        self.cache = {}

    def get(self, name, rows, dtype, device):
        key = (name, rows, dtype, str(device))
        if key not in self.cache:
            g = torch.Generator().manual_seed(SEEDS[name])
            u = torch.rand(rows, X_DIM, generator=g, dtype=dtype)
            if name == "bits":
                t = (u < 0.5).to(dtype)
            elif name.startswith("m"):
                t = u.mul_(4).sub_(2)
            else:
                t = u.add_(0.1)
            self.cache[key] = t.to(device)
        return self.cache[key]


@pytest.fixture(scope="module")
def tensors():
    return _Tensors()


KERNELS = {
    # name: (arguments: "m*" uniform on (-2, 2), "v*" uniform on (0.1, 1.1), "bits" 0/1;
    #        number of full-size tensors read; writes a full-size output)
    "sample_gaussian": (("mq", "vq"), 2, True),
    "log_normal": (("mp", "mq", "vq"), 3, False),
    "kl_normal": (("mq", "vq", "mp", "vp"), 4, False),
    "log_bernoulli_with_logits": (("bits", "mp"), 2, False),
    "log_mean_exp": (("mq",), 1, False),
}


def _implementation(kernel, variant):
    return {
        "ours": getattr(impls, kernel),
        "fused": getattr(fused, kernel),
        "td": getattr(bl, f"td_{kernel}"),
        "naive": getattr(bl, f"naive_{kernel}"),
    }[variant]


def _run(bench, tensors, kernel, variant, rows, dtype, device):
    names, n_read, full_output = KERNELS[kernel]
    args = [tensors.get(n, rows, dtype, device) for n in names]
    if kernel == "log_mean_exp":
        args.append(-1)
    f, td = _implementation(kernel, variant), _implementation(kernel, "td")
    n = rows * X_DIM
    itemsize = torch.finfo(dtype).bits // 8
    nbytes = itemsize * (n_read * n + (n if full_output else rows))
    with torch.no_grad():
        out = bench.run(lambda: f(*args), kernel=kernel, variant=variant, device=device, dtype=dtype,
                        size=f"{rows}x{X_DIM}", size_order=rows, nbytes=nbytes, limit="copy",
                        reference=lambda: td(*args))
    assert out.shape == ((rows, X_DIM) if full_output else (rows,))
    assert out.dtype == dtype
    if kernel == "sample_gaussian" and bench.enabled:
        # the noise alone: PyTorch's generator, not memory, bounds this kernel on CPU
        ratio, best = interleaved(lambda: f(*args), lambda: torch.randn(rows, X_DIM, dtype=dtype, device=device),
                                  device, bench.benchmark.stats.stats.median)
        bench.benchmark.extra_info.update(ratio_to_randn=ratio, ratio_to_randn_best=best)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_sample_gaussian(bench, tensors, device, dtype, rows, variant):
    _run(bench, tensors, "sample_gaussian", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_normal(bench, tensors, device, dtype, rows, variant):
    _run(bench, tensors, "log_normal", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_kl_normal(bench, tensors, device, dtype, rows, variant):
    _run(bench, tensors, "kl_normal", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_bernoulli_with_logits(bench, tensors, device, dtype, rows, variant):
    _run(bench, tensors, "log_bernoulli_with_logits", variant, rows, dtype, device)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_log_mean_exp(bench, tensors, device, dtype, rows, variant):
    _run(bench, tensors, "log_mean_exp", variant, rows, dtype, device)
