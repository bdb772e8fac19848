"""The IWAE-5000 log-likelihood estimate over the 10,000 MNIST test images, reference model.

The model is the CS236 VAE, untrained with a fixed seed (the time does not depend on the weights),
the images statically binarized with a fixed seed, batches of 100, ``torch.no_grad()``. It is
expensive: 10,000 x 5,000 = 5e7 decoder rows, about 3.3e13 FLOP (minutes on 2 cores), so it is
marked ``slow`` (deselected by the configured ``-m "not slow"``) and ``heavy`` (skipped when
benchmarking is disabled). Run it with

    pytest benchmarks/test_mnist_iwae.py --benchmark-only -m slow

``DGM_BENCH_MNIST_IMAGES=N`` uses the first N test images instead (a quicker estimate).
Peak memory: torch's allocations during one batch (every batch allocates alike), and the
process's resident-set high-water mark over the whole run above its resident set before.
"""
import os

import numpy as np
import pytest
import torch

from benchmarks.machine import cpu_peak_allocated, decoder_flops, encoder_flops, peak_rss
from training.data import MNISTNotFoundError, binarize_static, load_mnist
from impls.vae import VAE

IW, BATCH = 5000, 100


@pytest.mark.slow
@pytest.mark.heavy
def test_iwae5000_mnist_test_set(bench):
    try:
        images, _ = load_mnist("test")
    except MNISTNotFoundError as exc:
        pytest.skip(str(exc).splitlines()[0])
    n = int(os.environ.get("DGM_BENCH_MNIST_IMAGES", "10000"))
    x = binarize_static(images[:n], seed=0)
    n = len(x)
    torch.manual_seed(0)
    model = VAE().eval()
    result = {}

    def estimate():
        total = 0.0
        with torch.no_grad():
            for batch in x.split(BATCH):
                total += model.negative_iwae_bound(batch, IW)[0].item() * len(batch)
        return -total / n

    def measured():
        result["rss"] = peak_rss(lambda: result.update(log_px=estimate()))
        return result["log_px"]

    log_px = bench.run(measured, kernel="IWAE-5000 MNIST test set", variant="ours", device="cpu",
                       dtype=torch.float32, size=f"{n} images", n_images=n, iw=IW, batch=BATCH,
                       flops=encoder_flops(n) + decoder_flops(n * IW), limit="matmul",
                       rounds=1, warmup=False, memory=False)
    with torch.no_grad():  # every batch allocates alike: the peak of one is the run's
        peak = cpu_peak_allocated(lambda: model.negative_iwae_bound(x[:BATCH], IW))
    bench.benchmark.extra_info.update(peak_memory_bytes=peak, peak_rss_bytes=result["rss"],
                                      mean_log_px_lower_bound=log_px, threads=torch.get_num_threads())
    assert np.isfinite(log_px)
