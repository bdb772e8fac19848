"""The machine's limits as benchmarks of their own, so they appear in the JSON and the report next
to the kernels (the fractions use the session's measurement, benchmarks/machine.py)."""
import pytest
import torch

from benchmarks.common import DEVICES, DTYPES
from benchmarks.machine import COPY_ELEMENTS, DECODER_ROWS, HIDDEN, X_DIM, Z_DIM, decoder_flops


@pytest.mark.parametrize("device", DEVICES)
def test_copy_bandwidth(bench, device):
    src = torch.empty(COPY_ELEMENTS, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    bench.run(lambda: dst.copy_(src), kernel="limit: copy", variant="limit", device=device, dtype=torch.float32,
              size=f"{COPY_ELEMENTS >> 20}Mi", nbytes=2 * src.nbytes, limit="copy", memory=False)
    assert torch.equal(dst, src)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_matmul_decoder_shapes(bench, device, dtype):
    g = torch.Generator().manual_seed(0)
    widths = (Z_DIM, HIDDEN, HIDDEN, X_DIM)
    ws = [torch.randn(b, a, generator=g, dtype=dtype).to(device) / a**0.5 for a, b in zip(widths[:-1], widths[1:])]
    bs = [torch.zeros(b, dtype=dtype, device=device) for b in widths[1:]]
    z = torch.randn(DECODER_ROWS, Z_DIM, generator=g, dtype=dtype).to(device)

    def chain():
        h = z
        for w, b in zip(ws, bs):
            h = torch.addmm(b, h, w.t())
        return h

    out = bench.run(chain, kernel="limit: matmul", variant="limit", device=device, dtype=dtype,
                    size=f"{DECODER_ROWS} rows", flops=decoder_flops(DECODER_ROWS), limit="matmul", memory=False)
    assert out.shape == (DECODER_ROWS, X_DIM)
