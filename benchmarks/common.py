"""Parameters and the timing-and-recording helper shared by the benchmark modules (see conftest.py)."""
import time

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
            limit="copy", memory=True, rounds=None, warmup=True, reference=None, **extra):
        """Time ``fn()`` (device-synchronized) and record what the report needs; returns fn's result.

        ``limit``: "copy" (achieved bandwidth from ``nbytes``), "matmul" (FLOP/s from ``flops``) or
        "roofline" (both; the fraction is that of whichever limit is closer). The limit is measured
        right before the timing (benchmarks/machine.py); the fraction reported is against the
        median of all the run's measurements of that limit (set at the end of the run). ``rounds``: fixed
        rounds of one call (heavy benchmarks) instead of pytest-benchmark's calibration. ``warmup``:
        one untimed call first (lazy initialisation, torch.compile). ``memory``: one more call to
        measure its peak memory. ``reference``: the torch.distributions equivalent on the same
        inputs; the two are then also timed alternately, call for call, and the median of the
        per-pair ratios recorded (``ratio_to_torch_distributions_interleaved``): on a machine whose
        speed drifts, pairs taken back to back compare like with like; and the ratio of their
        fastest calls (``ratio_to_torch_distributions_best``).
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
            from benchmarks import fused

            info["fused_backend"] = fused.backend()

        def call():
            out = fn()
            sync(device)
            return out

        kinds = {"copy": ["copy"], "matmul": ["matmul"], "roofline": ["copy", "matmul"]}[limit]
        kinds = [k for k in kinds if (nbytes if k == "copy" else flops)]
        if self.enabled:
            if warmup:
                call()  # warm-up: lazy initialisation, torch.compile
            # the limits right before the timing, under the same conditions
            limits = {k: self.limits.measure(k, device, dtype) for k in kinds}
            if variant == "fused":
                from benchmarks import fused

                info["fused_backend"] = fused.backend()
        result = bm.pedantic(call, rounds=rounds, iterations=1) if rounds else bm(call)
        if not self.enabled:
            return result
        median, fastest = bm.stats.stats.median, bm.stats.stats.min
        candidates = []
        for k, (value, name, key) in limits.items():
            work = nbytes if k == "copy" else flops
            candidates.append((work / median / value, work / median, work / fastest, "B/s" if k == "copy" else "FLOP/s",
                               name, value, key))
        if candidates:
            # provisional: against the limit measured right before; conftest.py's
            # pytest_benchmark_update_json replaces it by the fraction of the run's median limit
            # (and adds fraction_of_limit_best: the fastest call against the run's best limit)
            fraction, achieved, achieved_best, unit, name, value, key = max(candidates)
            info.update(achieved=achieved, achieved_best=achieved_best, achieved_unit=unit, limit_name=name,
                        limit_key=key, limit_local_value=value, fraction_of_local_limit=fraction,
                        limit_value=value, fraction_of_limit=fraction)
        if reference is not None and variant != "td":
            ratio, best, _ = interleaved_times(call, reference, device, median)
            info.update(ratio_to_torch_distributions_interleaved=ratio, ratio_to_torch_distributions_best=best)
        if memory:
            info["peak_memory_bytes"] = peak_memory(fn, device)
        return result


def interleaved_times(fn, reference, device, seconds_hint):
    """``fn`` and ``reference`` timed alternately, back to back: 9 pairs (5 when a call takes more
    than 0.2 s). Returns (the median over the pairs of time(fn) / time(reference), the ratio of
    the two fastest calls, the median time of ``reference``). On a shared machine the first
    compares calls taken under the same load; the second, the calls least disturbed by other work."""
    reference()  # warm-up
    pairs = []
    for _ in range(9 if seconds_hint < 0.2 else 5):
        times = []
        for f in (fn, reference):
            t0 = time.perf_counter()
            f()
            sync(device)
            times.append(time.perf_counter() - t0)
        pairs.append(times)
    ratios = sorted(a / b for a, b in pairs)
    reference_times = sorted(b for _, b in pairs)
    return (ratios[len(ratios) // 2], min(a for a, _ in pairs) / min(b for _, b in pairs),
            reference_times[len(reference_times) // 2])
