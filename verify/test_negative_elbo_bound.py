"""negative_elbo_bound(x, encoder, decoder) -> (nelbo, kl, rec), batch means, prior N(0, I).

The checks plug in their own networks (verify/models.py). The decoder records the latents it is
given, so ``rec`` is recomputed from the very samples the submission drew ("replay").
"""
import numpy as np
import pytest
import torch

from verify import oracles
from verify.assertions import as_numpy, assert_close, check_tensor
from verify.models import MLPDecoder, MLPEncoder, Recorder
from verify.stats import ALPHA_CHECK, assert_independent_standard_pairs_by_dkwm, assert_true_cdf_equal_by_dkwm
from verify.contract import grades

pytestmark = grades('negative_elbo_bound')

X_DIM, Z_DIM = 8, 3


def _setup(device, rng, batch):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=10, device=device)
    dec = Recorder(MLPDecoder(Z_DIM, X_DIM, seed=11, device=device))
    x = torch.as_tensor((rng.uniform(size=(batch, X_DIM)) < 0.5).astype(float), device=device)
    return x, enc, dec


def _outputs(out, name):
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple (bound, kl, rec)")
    for label, t in zip(("bound", "kl", "rec"), out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


def _latents_by_example(dec, batch, name):
    """Recorded latents as (samples, batch, D); the decoder must see them as (..., B, D)."""
    rows = []
    for z in dec.inputs:
        if z.dim() < 2 or tuple(z.shape[-2:]) != (batch, Z_DIM):
            raise AssertionError(
                f"{name}: the decoder was called with latents of shape {tuple(z.shape)}; expected (..., {batch}, {Z_DIM}) "
                "for a batch of {batch} examples with a {Z_DIM}-dim latent"
            )
        rows.append(z.reshape(-1, batch, Z_DIM))
    if not rows:
        raise AssertionError(f"{name}: the decoder was never called")
    return as_numpy(torch.cat(rows))


def test_negative_elbo_bound_returns_batch_mean_scalars(impl, device, rng):
    x, enc, dec = _setup(device, rng, 6)
    _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")


def test_negative_elbo_bound_nelbo_is_kl_plus_rec(impl, device, rng):
    x, enc, dec = _setup(device, rng, 6)
    nelbo, kl, rec = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    assert_close(nelbo, float(kl) + float(rec), what="negative_elbo_bound: nelbo = kl + rec",
                 inputs=f"Observed kl = {float(kl):.10g}, rec = {float(rec):.10g}", rtol=1e-12, atol=1e-12)


def test_negative_elbo_bound_kl_is_analytic_batch_mean(impl, device, rng):
    x, enc, dec = _setup(device, rng, 6)
    _, kl, _ = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    m, v = (as_numpy(t) for t in enc(x))
    expected = oracles.kl_normal(m, v, 0.0, 1.0)
    assert_close(kl, expected.mean(), what="negative_elbo_bound: kl = mean over the batch of KL(q(z|x_b) || N(0, I))",
                 inputs=f"Per-example KLs: {np.round(expected, 6).tolist()} (their sum is {expected.sum():.10g})",
                 rtol=1e-10, atol=1e-12)


def test_negative_elbo_bound_rec_by_replay(impl, device, rng):
    """rec = -mean_b log p(x_b | z_b) for the latents the decoder actually received."""
    x, enc, dec = _setup(device, rng, 6)
    _, _, rec = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    z = _latents_by_example(dec, 6, "negative_elbo_bound")  # (S, B, D)
    logits = as_numpy(dec.decoder(torch.as_tensor(z, device=device)))
    log_px_z = oracles.log_bernoulli_with_logits(as_numpy(x)[None], logits)  # (S, B)
    assert_close(rec, -log_px_z.mean(),
                 what="negative_elbo_bound: rec = -mean_b log p(x_b|z_b), summed over pixels, for the decoded "
                 "samples z_b", inputs=f"Per-example -log p(x|z): {np.round(-log_px_z.mean(0), 6).tolist()}",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.stochastic
def test_negative_elbo_bound_decodes_samples_from_q(impl, device, rng):
    """The decoded latents are fresh draws from q(z|x_b): standardized, N(0, 1) and independent across
    the batch (DKW; alpha/2 for the distribution, alpha/2 for the pairs (b, b + B/2)).

    False-failure rate: 1e-6 (5e-7 each). Power, each with probability at least 1 - 1e-6: detects a
    sup-CDF error of 0.022 in the 60,000 standardized latents (e.g. a standard deviation 9.6% off),
    shared noise always, and a correlation of 0.23 between the latents of examples b and b + B/2.
    """
    batch = 20000
    x, enc, dec = _setup(device, rng, batch)
    impl.negative_elbo_bound(x, enc, dec)
    z = _latents_by_example(dec, batch, "negative_elbo_bound")
    m, v = (as_numpy(t) for t in enc(x))
    eps = (z - m) / np.sqrt(v)  # (S, B, D)
    what = "negative_elbo_bound: decoded latents standardized by q(z|x), (z - m)/sqrt(v)"
    assert_true_cdf_equal_by_dkwm(eps, false_fail_rate=ALPHA_CHECK / 2, what=what + " (a sample, not the mean m)")
    assert_independent_standard_pairs_by_dkwm(eps[:, : batch // 2], eps[:, batch // 2 :],
                                              false_fail_rate=ALPHA_CHECK / 2, what=what + ", examples b and b + B/2")


def test_negative_elbo_bound_float32(impl, device, rng):
    x, enc, dec = _setup(device, rng, 4)
    enc32 = lambda t: tuple(a.float() for a in enc(t.double()))  # noqa: E731
    dec32 = lambda z: dec.decoder(z.double()).float()  # noqa: E731
    enc32.z_dim = Z_DIM
    out = impl.negative_elbo_bound(x.float(), enc32, dec32)
    for label, t in zip(("nelbo", "kl", "rec"), _outputs(out, "negative_elbo_bound")):
        check_tensor(t, name=f"negative_elbo_bound on float32 data: {label}", shape=(), dtype=torch.float32,
                     device=device.type)
