"""The machine's limits (copy bandwidth, matmul FLOP/s at the decoder's shapes) and peak memory.

Both limits are measured in the same process as the benchmarks, so the fractions in the report
compare figures taken under the same conditions. A limit is the *best* of several repetitions
(interference only ever slows a run down), so the fractions it yields are conservative.
"""
import ctypes
import ctypes.util
import gc
import os
import time

import torch

from impls.bounds import IWAE_CHUNK_ELEMENTS

X_DIM, Z_DIM, HIDDEN = 784, 10, 300  # the CS236 model (impls/vae.py)
COPY_ELEMENTS = 2**26  # float32: 256 MiB read + 256 MiB written, far beyond any cache
# Rows the decoder sees per IWAE chunk at batch 100 (the chunk size the reference picks).
DECODER_ROWS = (IWAE_CHUNK_ELEMENTS // (100 * X_DIM)) * 100


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timings(fn, device, reps, warmup=1):
    """Wall-clock seconds of ``reps`` calls of ``fn`` (device synchronized), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def mlp_flops(rows, widths):
    """Multiply-add FLOPs (2 per MAC) of a chain of dense layers widths[0] -> widths[1] -> ..."""
    return 2 * rows * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def decoder_flops(rows):
    return mlp_flops(rows, (Z_DIM, HIDDEN, HIDDEN, X_DIM))


def encoder_flops(rows):
    return mlp_flops(rows, (X_DIM, HIDDEN, HIDDEN, 2 * Z_DIM))


class MachineLimits:
    """Lazily measured, cached per device (and dtype for matmul). ``reps`` repetitions each."""

    def __init__(self, reps=15):
        self.reps = reps
        self._cache = {}

    def copy_bandwidth(self, device):
        """dst.copy_(src) over COPY_ELEMENTS float32: (bytes read + bytes written) / second."""
        key = ("copy", str(device))
        if key not in self._cache:
            src = torch.empty(COPY_ELEMENTS, dtype=torch.float32, device=device).uniform_()
            dst = torch.empty_like(src)
            ts = timings(lambda: dst.copy_(src), device, self.reps)
            nbytes = 2 * src.nbytes
            self._cache[key] = {
                "name": "copy bandwidth",
                "what": f"copy of {COPY_ELEMENTS * 4 >> 20} MiB float32, bytes read + written per second",
                "value": nbytes / min(ts),
                "median": nbytes / sorted(ts)[len(ts) // 2],
                "unit": "B/s",
            }
            del src, dst
        return self._cache[key]

    def matmul_flops(self, device, dtype):
        """The decoder's three dense layers (addmm, bias included, no activation) on DECODER_ROWS rows."""
        key = ("matmul", str(device), str(dtype))
        if key not in self._cache:
            g = torch.Generator(device="cpu").manual_seed(0)
            widths = (Z_DIM, HIDDEN, HIDDEN, X_DIM)
            ws = [(torch.randn(b, a, generator=g, dtype=dtype) / a**0.5).to(device) for a, b in zip(widths[:-1], widths[1:])]
            bs = [torch.zeros(b, dtype=dtype, device=device) for b in widths[1:]]
            z = torch.randn(DECODER_ROWS, Z_DIM, generator=g, dtype=dtype).to(device)

            def chain():
                h = z
                for w, b in zip(ws, bs):
                    h = torch.addmm(b, h, w.t())
                return h

            ts = timings(chain, device, self.reps)
            flops = decoder_flops(DECODER_ROWS)
            self._cache[key] = {
                "name": "matmul FLOP/s",
                "what": f"decoder layers {DECODER_ROWS}x{Z_DIM}x{HIDDEN}, {DECODER_ROWS}x{HIDDEN}x{HIDDEN}, "
                        f"{DECODER_ROWS}x{HIDDEN}x{X_DIM} (addmm), {str(dtype).replace('torch.', '')}",
                "value": flops / min(ts),
                "median": flops / sorted(ts)[len(ts) // 2],
                "unit": "FLOP/s",
            }
        return self._cache[key]


# ---------------------------------------------------------------------------- peak memory
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name)
        lib.malloc_trim  # glibc only
        return lib
    except (OSError, AttributeError, TypeError):
        return None


_LIBC = _libc()


def _proc_status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def cpu_peak_supported():
    """Linux with a resettable high-water mark (/proc/self/clear_refs, value 5) and glibc."""
    if _LIBC is None or not os.path.exists("/proc/self/clear_refs"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _proc_status("VmHWM")
        return True
    except OSError:
        return False


def peak_memory(fn, device):
    """Peak memory (bytes) that one call of ``fn`` adds on ``device``, or None where unmeasurable.

    CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated before the call.
    CPU: the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs)
    above its resident set before the call, after ``malloc_trim(0)`` has handed freed heap pages
    back to the system, so every byte the call touches counts (torch's CPU allocations are
    invisible to tracemalloc). Page granularity; call ``fn`` once beforehand so lazy
    initialisation (thread pools, BLAS buffers) is not counted.
    """
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    if not cpu_peak_supported():
        return None
    _LIBC.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = _proc_status("VmRSS")
    fn()
    return max(0, _proc_status("VmHWM") - base)
