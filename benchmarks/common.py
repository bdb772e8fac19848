"""Parameters and the timing-and-recording helper shared by the benchmark modules (see conftest.py)."""
import pytest
import torch

from benchmarks.machine import peak_memory, sync

CUDA_REASON = "CUDA not available: no GPU on this machine (torch.cuda.is_available() is False)"
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=CUDA_REASON)),
]
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]

VARIANT_LABELS = {"ours": "ours", "fused": "ours (fused)", "td": "torch.distributions", "naive": "naive"}
VARIANTS = [
    pytest.param("ours", id="ours"),
    pytest.param("fused", id="fused", marks=pytest.mark.compiled),
    pytest.param("td", id="td"),
    pytest.param("naive", id="naive"),
]

HEAVY_REASON = "heavy benchmark (seconds per call): runs only when benchmarking (pytest --benchmark-only), not in the plain test run"
COMPILED_REASON = ("torch.compile variant: compiled and timed only when benchmarking (pytest --benchmark-only); "
                   "its agreement with the reference is tests/test_fused.py")


def benchmarking(config):
    """True unless benchmarking is disabled (--benchmark-disable, xdist, ...)."""
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


class Bench:
    """What a benchmark calls instead of the ``benchmark`` fixture (the ``bench`` fixture)."""

    def __init__(self, benchmark, limits, config):
        self.benchmark, self.limits = benchmark, limits
        self.enabled = benchmarking(config)

    def run(self, fn, *, kernel, variant, device, dtype, size, size_order=0, nbytes=None, flops=None,
            limit="copy", memory=True, rounds=None, **extra):
        """Time ``fn()`` (device-synchronized) and record what the report needs; returns fn's result.

        ``limit``: "copy" (achieved bandwidth from ``nbytes``), "matmul" (FLOP/s from ``flops``) or
        "roofline" (both; the fraction is that of whichever limit is closer). ``rounds``: fixed
        rounds of one call (heavy benchmarks) instead of pytest-benchmark's calibration.
        """
        device = str(device)
        dtype_name = str(dtype).replace("torch.", "")
        label = VARIANT_LABELS.get(variant, variant)
        bm = self.benchmark
        bm.group = f"{kernel} {device} {dtype_name} {size}"
        info = bm.extra_info
        info.update(kernel=kernel, variant=label, device=device, dtype=dtype_name, size=size, size_order=size_order,
                    bytes=nbytes, flops=flops, **extra)
        if variant == "fused":
            from impls import fused

            info["fused_backend"] = fused.backend()

        def call():
            out = fn()
            sync(device)
            return out

        if self.enabled:
            call()  # warm-up: lazy initialisation, torch.compile
            if variant == "fused":
                from impls import fused

                info["fused_backend"] = fused.backend()
        result = bm.pedantic(call, rounds=rounds, iterations=1) if rounds else bm(call)
        if not self.enabled:
            return result
        median = bm.stats.stats.median
        candidates = []
        if limit in ("copy", "roofline") and nbytes:
            candidates.append((nbytes / median, "B/s", self.limits.copy_bandwidth(device)))
        if limit in ("matmul", "roofline") and flops:
            candidates.append((flops / median, "FLOP/s", self.limits.matmul_flops(device, dtype)))
        if candidates:
            achieved, unit, lim = max(candidates, key=lambda c: c[0] / c[2]["value"])
            info.update(achieved=achieved, achieved_unit=unit, limit_name=lim["name"], limit_value=lim["value"],
                        fraction_of_limit=achieved / lim["value"])
        if memory:
            info["peak_memory_bytes"] = peak_memory(fn, device)
        return result


