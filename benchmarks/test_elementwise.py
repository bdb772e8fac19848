"""The elementwise kernels (and log_mean_exp) against the copy bandwidth.

Sizes: a batch of 100 x 784 (in cache) and 10240 x 784 = 8.0M elements (32 MiB per float32
tensor, 64 MiB per float64 one: the inputs of every kernel exceed the 32 MiB L3 of the CI
machines). The bytes counted are the least any implementation must move: every input read once,
the output written once. ``log_mean_exp`` reduces over the last dim (784 values a row).

Each kernel also has a **floor**: the work it must do besides moving memory, timed alone on the
same inputs (``FLOORS``): the noise for ``sample_gaussian`` (``torch.randn``), and for the
others one compiled pass computing only the kernel's logs and exps. ``ratio_to_floor`` is the
kernel's time over the floor's (calls timed alternately); ``floor_fraction_of_limit`` is the
fraction of the copy bandwidth a kernel would reach if it took no longer than its floor. Where
that is below 50%, the kernel is bound by arithmetic (or the generator), not by memory.
"""
import pytest
import torch

import impls
from benchmarks import baselines as bl
from benchmarks.common import DEVICES, DTYPES, VARIANTS, interleaved_times
from benchmarks import fused

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


FLOORS = {
    # name: (what the floor computes, function of the kernel's arguments)
    "sample_gaussian": ("torch.randn alone", lambda m, v: torch.randn(m.shape, dtype=m.dtype, device=m.device)),
    "log_normal": ("its log alone", lambda x, m, v: torch.log(v).sum(-1)),
    "kl_normal": ("its two logs alone", lambda qm, qv, pm, pv: (torch.log(pv) - torch.log(qv)).sum(-1)),
    "log_bernoulli_with_logits": ("its exp and log1p alone", lambda x, logits: torch.log1p(torch.exp(-torch.abs(logits))).sum(-1)),
    "log_mean_exp": ("its exp alone", lambda x, dim: torch.exp(x).sum(dim)),
}
_compiled_floors = {}


def _floor(kernel):
    """(description, function): eager for the generator, compiled (one fused pass) for the rest."""
    what, fn = FLOORS[kernel]
    if kernel == "sample_gaussian":
        return what + " (eager)", fn
    if kernel not in _compiled_floors:
        _compiled_floors[kernel] = torch.compile(fn, dynamic=False)
    return what + " (compiled)", _compiled_floors[kernel]


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
    if bench.enabled:
        what, floor = _floor(kernel)
        ratio, best, floor_s = interleaved_times(lambda: f(*args), lambda: floor(*args), device,
                                                 bench.benchmark.stats.stats.median)
        bench.benchmark.extra_info.update(floor=what, ratio_to_floor=ratio, ratio_to_floor_best=best,
                                          floor_seconds=floor_s, floor_achieved=nbytes / floor_s)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_kernel(bench, tensors, kernel, device, dtype, rows, variant):
    _run(bench, tensors, kernel, variant, rows, dtype, device)
