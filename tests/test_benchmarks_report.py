"""The benchmarks' own machinery: the report, the IDX reader, the peak-memory measurement, the
option glue (--benchmark-only over --benchmark-disable), and the memory bound of the chunked
IWAE bound: peak memory at iw = 5000 at most 1.5x that at iw = 50, same batch (issue 7)."""
import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import impls
from benchmarks import report
from benchmarks.machine import BENCH_IWAE_CHUNK_ELEMENTS, cpu_peak_supported, peak_memory, peak_rss
from training.data import DEFAULT_DIRS, read_idx
from impls.vae import VAE

TEST_IMAGES = DEFAULT_DIRS[0] / "t10k-images-idx3-ubyte.gz"

REPO = Path(__file__).resolve().parents[1]


def _bench(kernel, variant, median, size="8x784", **info):
    """The fastest call takes half the median."""
    return {"name": f"test_{kernel}[{variant}]", "group": kernel, "stats": {"median": median, "min": median / 2},
            "extra_info": {"kernel": kernel, "variant": variant, "device": "cpu", "dtype": "float32", "size": size, **info}}


def _synthetic():
    return [
        _bench("kl_normal", "ours", 0.002, achieved=6e9, achieved_unit="B/s", limit_name="copy bandwidth",
               fraction_of_limit=0.6, peak_memory_bytes=2**20, achieved_best=12e9, fraction_of_limit_best=0.7),
        _bench("kl_normal", "ours (fused)", 0.001, ratio_to_torch_distributions_interleaved=0.3,
               ratio_to_torch_distributions_best=0.2),
        _bench("kl_normal", "torch.distributions", 0.004),
        _bench("kl_normal", "naive", 0.008),
        _bench("sample_gaussian", "ours", 0.03, ratio_to_randn=1.125, ratio_to_randn_best=1.05),
        _bench("sample_gaussian", "naive", 0.04, ratio_to_randn=1.5),
        _bench("log_mean_exp", "ours (fused)", 0.002, floor="its exp alone (compiled)", ratio_to_floor=1.25,
               ratio_to_floor_best=1.1, floor_fraction_of_limit=0.4),
        _bench("negative_iwae_bound", "ours", 1.0, size="100x784 iw=50", batch=100, iw=50, peak_memory_bytes=100 * 2**20),
        _bench("negative_iwae_bound", "ours", 9.0, size="100x784 iw=5000", batch=100, iw=5000,
               peak_memory_bytes=120 * 2**20, achieved=5e10, achieved_unit="FLOP/s", limit_name="matmul FLOP/s",
               fraction_of_limit=0.55),
    ]


def test_enrich_ratios_are_taken_within_the_same_kernel_and_size():
    benches = report.enrich(_synthetic())
    info = {b["extra_info"]["variant"]: b["extra_info"] for b in benches[:4]}
    assert info["ours"]["ratio_to_torch_distributions"] == pytest.approx(0.5)
    assert info["ours"]["ratio_to_naive"] == pytest.approx(0.25)
    assert info["ours (fused)"]["ratio_to_torch_distributions"] == pytest.approx(0.25)
    assert info["torch.distributions"]["ratio_to_torch_distributions"] == pytest.approx(1.0)
    assert "ratio_to_torch_distributions" not in benches[-1]["extra_info"]  # no td variant for that size
    assert report.iwae_memory_ratios(benches) == {("ours", "cpu", "float32", 100): pytest.approx(1.2)}


def test_table_has_one_row_per_benchmark_with_the_figures():
    limits = {"copy cpu": {"name": "copy bandwidth", "best": 1e10, "median": 9e9, "n": 3, "unit": "B/s", "what": "x"}}
    text = report.format_table(_synthetic(), limits)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["kernel", "variant", "device", "dtype", "size"]
    row = next(line for line in lines if line.startswith("kl_normal") and " ours " in line and "fused" not in line)
    for expected in ("2 ms", "0.50", "6 GB/s", "60% copy", "1 MiB"):
        assert expected in row, (expected, row)
    fused = next(line for line in lines if line.startswith("kl_normal") and "fused" in line)
    assert " 0.30 " in fused  # the interleaved ratio, where measured, over median / median (0.25)
    assert "55% matmul" in text
    assert "limit: copy bandwidth best 10 GB/s, median 9 GB/s over the run's 3 measurements" in text
    assert "iw=5000 / iw=50 at batch 100 (ours, cpu, float32): 1.20x" in text
    assert "sample_gaussian time / torch.randn alone (cpu, float32, 8x784): ours 1.12, naive 1.50" in text
    assert ("log_mean_exp time / its exp alone (compiled) (cpu, float32, 8x784): ours (fused) 1.25; "
            "the floor alone reaches 40% of copy") in text


def test_best_table_has_the_fastest_calls_figures():
    limits = {"copy cpu": {"name": "copy bandwidth", "best": 1e10, "median": 9e9, "n": 3, "unit": "B/s", "what": "x"}}
    text = report.format_table(_synthetic(), limits, best=True)
    lines = text.splitlines()
    assert lines[0].split()[5] == "min"
    assert "median" not in lines[0]
    row = next(line for line in lines if line.startswith("kl_normal") and " ours " in line and "fused" not in line)
    for expected in ("1 ms", "0.50", "12 GB/s", "70% copy", "1 MiB"):  # 0.50: min / min of the run
        assert expected in row, (expected, row)
    fused = next(line for line in lines if line.startswith("kl_normal") and "fused" in line)
    assert " 0.20 " in fused  # the alternately timed fastest calls' ratio
    assert "sample_gaussian time / torch.randn alone (cpu, float32, 8x784): ours 1.05" in text
    assert "log_mean_exp time / its exp alone (compiled) (cpu, float32, 8x784): ours (fused) 1.10" in text
    assert "60% copy" not in text and "6 GB/s" not in text


def test_report_cli(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": _synthetic(), "torch_threads": 2}))
    assert report.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "kl_normal" in out and "torch threads: 2" in out
    assert report.main([str(path), "--best"]) == 0
    assert "70% copy" in capsys.readouterr().out
    path.write_text(json.dumps({"benchmarks": []}))
    assert report.main([str(path)]) == 1


def test_read_idx(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB3I", 0, 0x08, 3, 2, 3, 4) + data.tobytes())
    np.testing.assert_array_equal(read_idx(path), data)
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)


@pytest.mark.skipif(not TEST_IMAGES.exists(), reason=f"MNIST test images not found at {TEST_IMAGES}")
def test_read_mnist_test_images():
    images = read_idx(TEST_IMAGES)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and images.max() == 255


def test_peak_memory_sees_torch_allocations_and_temporaries():
    n = 16 * 2**20  # 64 MiB of float32, invisible to tracemalloc

    def allocate():
        a = torch.ones(n)
        b = a * 2  # two live at once: 128 MiB
        del a
        return float((b + 1).sum())  # b and b + 1 live at once: 128 MiB again

    allocate()
    assert 2 * 4 * n <= peak_memory(allocate, "cpu") <= 2 * 4 * n + 2**20


@pytest.mark.skipif(not cpu_peak_supported(), reason="needs Linux /proc/self/clear_refs and glibc")
def test_peak_rss_sees_touched_pages():
    n = 16 * 2**20
    assert 0.9 * 4 * n <= peak_rss(lambda: float(torch.ones(n).sum())) <= 2 * 4 * n


def test_iwae_peak_memory_bounded_in_iw():
    """Chunked evaluation: iw = 5000 needs at most 1.5x the memory of iw = 50 (batch 100, the
    reference CS236 model). A few seconds: 5e5 decoder rows. In chunks of 2**22 decoder outputs (the
    benchmarks' chunk, passed explicitly; the reference's default is smaller): iw = 50 is one chunk of
    50 samples, iw = 5000 chunks of 53."""
    torch.manual_seed(0)
    model = VAE().eval()
    x = torch.bernoulli(torch.full((100, 784), 0.3), generator=torch.Generator().manual_seed(0))
    chunk = BENCH_IWAE_CHUNK_ELEMENTS
    with torch.no_grad():
        impls.negative_iwae_bound(x, model.enc, model.dec, 50, chunk)  # lazy initialisation not counted
        peak50 = peak_memory(lambda: impls.negative_iwae_bound(x, model.enc, model.dec, 50, chunk), "cpu")
        peak5000 = peak_memory(lambda: impls.negative_iwae_bound(x, model.enc, model.dec, 5000, chunk), "cpu")
    assert peak50 > 15 * 2**20  # at least the (50, 100, 784) logits: the measurement sees them
    assert peak5000 <= 1.5 * peak50, f"peak memory iw=5000: {peak5000 / 2**20:.1f} MiB, iw=50: {peak50 / 2**20:.1f} MiB"


def test_benchmark_only_overrides_benchmark_disable(tmp_path):
    """With --benchmark-disable configured (addopts), --benchmark-only still benchmarks
    (pytest-benchmark alone refuses the combination; benchmarks/conftest.py resolves it)."""
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "pytest", "benchmarks/test_limits.py", "-k", "matmul and cpu and float32",
            "-p", "no:cacheprovider", "-q", "-o", "addopts=--benchmark-disable",
            "--benchmark-only", f"--benchmark-json={out}", "--benchmark-max-time=0.05"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    benches = json.loads(out.read_text())["benchmarks"]
    assert len(benches) == 1 and benches[0]["stats"]["median"] > 0
    # the benchmark process's own thread count: a fresh interpreter's default (this test process may
    # have been left at one thread by the in-process suite runs before it)
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], cwd=REPO,
                           capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(out.read_text())["torch_threads"] == int(fresh.stdout.strip())
    assert benches[0]["extra_info"]["fraction_of_limit"] > 0
