"""The chunked IWAE checks (verify/test_negative_iwae_bound.py) make the reference chunk as they say.

verify/ does not import the reference, so it restates the reference's chunk (IWAE_CHUNK_ELEMENTS of
impls/bounds.py) and sizes its batches from it: these tests pin the restated constant to the reference's and
the chunks (in samples per decoder call) that each size makes the reference draw, for this chunk and others.
"""
import pytest
import torch

from impls.bounds import IWAE_CHUNK_ELEMENTS, iwae_sums
from verify import test_negative_iwae_bound as checks

Z = 2


def _chunks(batch, pixels, iw, elements):
    """The samples per decoder call of the reference's IWAE pass on ``batch`` examples of ``pixels`` pixels."""
    calls = []

    def encoder(x):
        return x.new_zeros(len(x), Z), x.new_ones(len(x), Z)

    def decoder(z):
        calls.append(z.shape[0])
        return z.new_zeros(*z.shape[:-1], pixels)

    iwae_sums(torch.zeros(batch, pixels), encoder, decoder, iw, elements)
    return calls


def test_the_checks_restate_the_reference_chunk():
    assert checks.REFERENCE_CHUNK_ELEMENTS == IWAE_CHUNK_ELEMENTS
    assert checks.chunked_sizes(IWAE_CHUNK_ELEMENTS) == (checks.CHUNK_BATCH, checks.OVER_CHUNK_BATCH,
                                                         checks.GRADIENT_PIXELS)


@pytest.mark.parametrize("elements", [2**16, IWAE_CHUNK_ELEMENTS, 2**20, 2**22])
def test_the_checks_sizes_make_the_chunks_they_name(elements):
    """chunks-of-3-then-2 and the gradient check: 3 samples, then 2; over-one-chunk: x alone exceeds a chunk
    (one sample a call, where a chunk size without its floor of 1 is 0)."""
    batch, over, gradient_pixels = checks.chunked_sizes(elements)
    assert _chunks(batch, checks.CHUNK_PIXELS, checks.CHUNK_IW, elements) == [3, 2]
    assert _chunks(checks.GRADIENT_BATCH, gradient_pixels, checks.CHUNK_IW, elements) == [3, 2]
    assert over * checks.CHUNK_PIXELS > elements
    assert _chunks(over, checks.CHUNK_PIXELS, 1, elements) == [1]
    assert _chunks(over, checks.CHUNK_PIXELS, 3, elements) == [1, 1, 1]
