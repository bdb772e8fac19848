"""The negative ELBO and IWAE bounds of the CS236 model (untrained, fixed seed) against the
matmul FLOP/s at the decoder's shapes.

FLOPs counted: the encoder on the batch plus the decoder on every sample (2 per multiply-add);
the elementwise work around them is what separates an implementation from the matmul limit.
All under ``torch.no_grad()`` (evaluation, as in the IWAE log-likelihood estimate).

Sizes: the ELBO at batch 100 and 10000; the IWAE bound at batch 10 and 100 for iw in
{1, 5, 50, 150, 5000}, ours in chunks of 2**22 decoder outputs (BENCH_IWAE_CHUNK_ELEMENTS, not the
reference's smaller default). The unchunked baselines (torch.distributions, naive) at iw = 5000 and
batch 100 would hold several (5000, 100, 784) tensors (1.5 GiB each in float32) and skip;
compare them at batch 10. iw = 5000 is heavy (seconds a call): benchmarked, not run by the plain
test run (tests/test_benchmarks_report.py runs the reference at iw = 5000 for its memory bound).
"""
from functools import partial

import pytest
import torch

import impls
from benchmarks import baselines as bl
from benchmarks.common import DEVICES, DTYPES, VARIANTS
from benchmarks.machine import BENCH_IWAE_CHUNK_ELEMENTS, decoder_flops, encoder_flops
from benchmarks import fused
from impls.vae import VAE

IWS = [1, 5, 50, 150, 5000]
UNCHUNKED_LIMIT = 5000 * 100  # decoder rows from which the unchunked baselines skip
HEAVY_IW = 5000  # seconds a call: benchmarked only, not run by the plain test run


def _model_and_data(inputs, batch, dtype, device):
    def build():
        torch.manual_seed(0)
        model = VAE().to(dtype=dtype, device=device).eval()
        g = torch.Generator().manual_seed(1)
        x = torch.bernoulli(torch.rand(batch, 784, generator=g, dtype=dtype), generator=g).to(device)
        return model, x

    return inputs.get(("vae", batch, dtype, device), build)


ELBO = {"ours": impls.negative_elbo_bound, "fused": fused.negative_elbo_bound,
        "td": bl.td_negative_elbo_bound, "naive": bl.naive_negative_elbo_bound}
# The chunked bounds in chunks of BENCH_IWAE_CHUNK_ELEMENTS (benchmarks/machine.py), passed explicitly.
IWAE = {"ours": partial(impls.negative_iwae_bound, chunk_elements=BENCH_IWAE_CHUNK_ELEMENTS),
        "fused": partial(fused.negative_iwae_bound, chunk_elements=BENCH_IWAE_CHUNK_ELEMENTS),
        "td": bl.td_negative_iwae_bound, "naive": bl.naive_negative_iwae_bound}


def _check(out, dtype):
    assert len(out) == 3 and all(t.dim() == 0 and t.dtype == dtype for t in out)
    assert torch.isfinite(out[1]) and torch.isfinite(out[2])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", [100, 10000])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_negative_elbo_bound(bench, inputs, device, dtype, batch, variant):
    model, x = _model_and_data(inputs, batch, dtype, device)
    f = ELBO[variant]
    with torch.no_grad():
        out = bench.run(lambda: f(x, model.enc, model.dec), kernel="negative_elbo_bound", variant=variant,
                        device=device, dtype=dtype, size=f"{batch}x784", size_order=batch, batch=batch,
                        flops=encoder_flops(batch) + decoder_flops(batch), limit="matmul",
                        reference=lambda: ELBO["td"](x, model.enc, model.dec))
    _check(out, dtype)


def _iwae_params():
    for batch in (10, 100):
        for iw in IWS:
            for v in VARIANTS:
                variant = v.values[0]
                marks = list(v.marks)
                if iw * batch >= UNCHUNKED_LIMIT and variant in ("td", "naive"):
                    marks.append(pytest.mark.skip(reason=f"the unchunked {variant} baseline at iw={iw}, batch {batch} "
                                                         "would hold several GiB; compared at batch 10"))
                if iw >= HEAVY_IW:
                    marks.append(pytest.mark.heavy)
                yield pytest.param(batch, iw, variant, marks=marks, id=f"B{batch}-iw{iw}-{variant}")


@pytest.mark.parametrize("batch, iw, variant", list(_iwae_params()))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_negative_iwae_bound(bench, inputs, device, dtype, batch, iw, variant):
    model, x = _model_and_data(inputs, batch, dtype, device)
    f = IWAE[variant]
    heavy = iw * batch >= UNCHUNKED_LIMIT  # seconds a call: a few fixed rounds
    with torch.no_grad():
        out = bench.run(lambda: f(x, model.enc, model.dec, iw), kernel="negative_iwae_bound", variant=variant,
                        device=device, dtype=dtype, size=f"{batch}x784 iw={iw}", size_order=batch * 10**5 + iw,
                        batch=batch, iw=iw, flops=encoder_flops(batch) + decoder_flops(iw * batch), limit="matmul",
                        chunk_elements=BENCH_IWAE_CHUNK_ELEMENTS if variant in ("ours", "fused") else None,
                        rounds=3 if heavy else None,
                        reference=None if heavy else lambda: IWAE["td"](x, model.enc, model.dec, iw))
    _check(out, dtype)
