"""negative_elbo_bound(x, encoder, decoder) -> (nelbo, kl, rec), batch means, prior N(0, I).

The checks plug in their own networks (verify/models.py). The decoder records the latents it is
given, so ``rec`` is recomputed from the very samples the submission drew ("replay").
"""
import numpy as np
import pytest
import torch

from verify import oracles
from verify.assertions import (as_numpy, assert_close, assert_gradients_close, backward_gradients, check_tensor, fmt,
                               matching_option, oracle_gradients, outputs_with_right_values, within)
from verify.models import MLPDecoder, MLPEncoder, Recorder
from verify.stats import ALPHA_CHECK, assert_independent_standard_pairs_by_dkwm, assert_true_cdf_equal_by_dkwm
from verify.contract import grades

pytestmark = grades('negative_elbo_bound')

X_DIM, Z_DIM = 8, 3


def _setup(device, rng, batch, log10_v=None):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=10, device=device, log10_v=log10_v)
    dec = Recorder(MLPDecoder(Z_DIM, X_DIM, seed=11, device=device))
    x = torch.as_tensor((rng.uniform(size=(batch, X_DIM)) < 0.5).astype(float), device=device)
    return x, enc, dec


def _outputs(out, name):
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple (bound, kl, rec)")
    for label, t in zip(("bound", "kl", "rec"), out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


def _replayed_rec(dec, x, device, name="negative_elbo_bound"):
    """-mean_b log p(x_b | z_b) over the latents the decoder received, and per call (a student may
    decode twice: the bound's sample and rec's)."""
    batch = x.shape[0]
    z = dec.by_example(batch, Z_DIM, name)  # (S, B, D)
    logits = as_numpy(dec.decoder(torch.as_tensor(z, device=device)))
    log_px_z = oracles.log_bernoulli_with_logits(as_numpy(x)[None], logits)  # (S, B)
    return -log_px_z.mean(), [float(-r.mean()) for r in log_px_z], log_px_z


def test_negative_elbo_bound_returns_batch_mean_scalars(impl, device, rng):
    """Three 0-dim tensors, each finite and depending on the batch."""
    x, enc, dec = _setup(device, rng, 6)
    first = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    other = _outputs(impl.negative_elbo_bound(1 - x, enc, dec), "negative_elbo_bound")
    for label, a, b in zip(("nelbo", "kl", "rec"), first, other):
        if not np.isfinite(float(a)) or float(a) == float(b):
            raise AssertionError(
                f"negative_elbo_bound: {label} = {float(a):.10g} on one batch and {float(b):.10g} on another: it does "
                "not respond to its input (a placeholder such as `return 0, 0, 0` is not an implementation)")


def test_negative_elbo_bound_nelbo_by_replay(impl, device, rng):
    """nelbo = mean_b KL(q(z|x_b) || p) - mean_b log p(x_b|z_b) for the latents the decoder received
    (judged on its own: a wrong kl or rec output does not fail it)."""
    x, enc, dec = _setup(device, rng, 6)
    nelbo, _, _ = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    m, v = (as_numpy(t) for t in enc(x))
    kl = oracles.kl_normal(m, v, 0.0, 1.0).mean()
    rec, per_call, _ = _replayed_rec(dec, x, device)
    options = [kl + rec] + [kl + r for r in per_call]
    best = min(options, key=lambda o: abs(o - float(nelbo)))
    assert_close(nelbo, best, what="negative_elbo_bound: nelbo = mean_b KL(q(z|x_b) || p(z)) + mean_b -log p(x_b|z_b) "
                 "for the decoded samples z_b", inputs=f"Analytic KL {kl:.10g}, replayed rec {rec:.10g}",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("log10_v", [None, (-6, 6)], ids=["ordinary", "variances-1e-6..1e6"])
def test_negative_elbo_bound_kl_is_analytic_batch_mean(impl, device, rng, log10_v):
    """kl = mean_b KL(q(z|x_b) || N(0, I)); also with the encoder's variances from 1e-6 to 1e6 (a clamped
    variance shows)."""
    x, enc, dec = _setup(device, rng, 6, log10_v)
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
    expected, per_call, log_px_z = _replayed_rec(dec, x, device)
    best = min([expected] + per_call, key=lambda o: abs(o - float(rec)))
    hint = (" rec has the sign of the log-likelihood: it is a loss, -log p(x|z)." if within(-float(rec), expected)
            else "")
    assert_close(rec, best,
                 what="negative_elbo_bound: rec = -mean_b log p(x_b|z_b), summed over pixels, for the decoded "
                 "samples z_b", inputs=f"Per-example -log p(x|z): {np.round(-log_px_z.mean(0), 6).tolist()}.{hint}",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.stochastic
def test_negative_elbo_bound_decodes_samples_from_q(impl, device, rng):
    """The decoded latents are fresh draws from q(z|x_b): standardized, N(0, 1) and independent across
    the batch (DKW; alpha/2 for the distribution, alpha/2 for the pairs (b, b + B/2)).

    False-failure rate: 1e-6 (5e-7 each). Power, each with probability at least 1 - 1e-6: detects a
    sup-CDF error of 0.045 in the 15,000 standardized latents (e.g. a standard deviation 20% off),
    shared noise always, and a correlation of 0.41 between the latents of examples b and b + B/2
    (5000 examples: a per-example loop finishes in seconds, sandboxed too; the sampler's own checks
    have the finer power, and decoding the mean instead of a sample is caught at any size).
    """
    batch = 5000  # a per-example loop makes 2 network calls an example, each crossing the sandbox
    x, enc, dec = _setup(device, rng, batch)
    impl.negative_elbo_bound(x, enc, dec)
    z = dec.by_example(batch, Z_DIM, "negative_elbo_bound")
    m, v = (as_numpy(t) for t in enc(x))
    eps = (z - m) / np.sqrt(v)  # (S, B, D)
    what = "negative_elbo_bound: decoded latents standardized by q(z|x), (z - m)/sqrt(v)"
    assert_true_cdf_equal_by_dkwm(eps, false_fail_rate=ALPHA_CHECK / 2, what=what + " (a sample, not the mean m)")
    assert_independent_standard_pairs_by_dkwm(eps[:, : batch // 2], eps[:, batch // 2 :],
                                              false_fail_rate=ALPHA_CHECK / 2, what=what + ", examples b and b + B/2")


def test_negative_elbo_bound_float32(impl, device, rng):
    """float32 networks and data give float32 outputs, with the values of the float64 replay (to float32 precision)."""
    x, enc, dec = _setup(device, rng, 4)
    enc32 = lambda t: tuple(a.float() for a in enc(t.double()))  # noqa: E731
    dec32 = lambda z: dec(z.double()).float()  # noqa: E731
    enc32.z_dim = Z_DIM
    out = impl.negative_elbo_bound(x.float(), enc32, dec32)
    for label, t in zip(("nelbo", "kl", "rec"), _outputs(out, "negative_elbo_bound")):
        check_tensor(t, name=f"negative_elbo_bound on float32 data: {label}", shape=(), dtype=torch.float32,
                     device=device.type)
    m, v = (as_numpy(t.float()) for t in enc(x))
    kl = oracles.kl_normal(m, v, 0.0, 1.0).mean()
    rec, per_call, _ = _replayed_rec(dec, x, device)
    best = min([kl + rec] + [kl + r for r in per_call], key=lambda o: abs(o - float(out[0])))
    assert_close(out[0], best, what="negative_elbo_bound on float32 data: nelbo vs the float64 replay",
                 rtol=1e-5, atol=1e-5, ops=64)


GRADIENT_CAUSES = ("Usual causes: z drawn with .sample() or detached (not reparameterized: the encoder then gets no "
                   "gradient through rec), or a term (the KL, the log-likelihood, a mean) computed in numpy or detached.")


def _oracle_terms(x, enc, decoder, latents):
    """Float64 torch oracle of (kl, [rec of each decoded sample set]) from the replayed latents (S, B, D):
    z = m + sqrt(v) eps with eps = (z_decoded - m)/sqrt(v) held fixed, so that autograd follows the
    reparameterization into x and the encoder's and decoder's weights."""
    m, v = enc(x)
    kl = oracles.torch_kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    eps = ((torch.as_tensor(latents, device=x.device) - m) / v.sqrt()).detach()
    recs = [-oracles.torch_log_bernoulli_with_logits(x, decoder(m + v.sqrt() * e)).mean() for e in eps]
    return kl, recs + [torch.stack(recs).mean()]




@pytest.mark.parametrize("batch, log10_v", [(1, None), (5, None), (7, (-6, 6))], ids=["1", "5", "7-wide-variances"])
def test_negative_elbo_bound_gradients(impl, device, rng, batch, log10_v):
    """Values and d nelbo, d kl, d rec with respect to x (binary pixels; the bound is differentiable in x) and
    every weight of the checks' encoder and decoder vs autograd of the float64 oracle on the very latents the
    submission decoded (replay); with an encoder whose variances span 1e-6 to 1e6 (a clamped variance shows)."""
    enc = MLPEncoder(X_DIM, Z_DIM, seed=10, device=device, log10_v=log10_v)
    base = MLPDecoder(Z_DIM, X_DIM, seed=11, device=device)
    dec = Recorder(base)
    x = torch.as_tensor((rng.uniform(size=(batch, X_DIM)) < 0.5).astype(float), device=device).requires_grad_(True)
    wrt = {"x": x, **enc.weights("encoder"), **base.weights("decoder")}
    out = _outputs(impl.negative_elbo_bound(x, enc, dec), "negative_elbo_bound")
    latents = dec.by_example(batch, Z_DIM, "negative_elbo_bound")  # before any backward pass decodes more
    kl, recs = _oracle_terms(x, enc, base, latents)
    wide = "" if log10_v is None else f", the encoder's variances from 1e{log10_v[0]} to 1e{log10_v[1]}"
    what = f"negative_elbo_bound on a batch of {batch} (binary x, the checks' networks{wide})"
    expected = {"nelbo": matching_option(out[0], [kl + r for r in recs]),
                "kl": matching_option(out[1], [kl]),
                "rec": matching_option(out[2], recs)}
    inputs = f"Inputs: x = {fmt(as_numpy(x))}; the replayed latents {fmt(latents)}."
    judged = outputs_with_right_values(expected, out, what)
    for index, (label, exp) in enumerate(expected.items()):
        if label not in judged:
            continue
        assert_gradients_close(backward_gradients(out[index], wrt, 1.0), oracle_gradients(exp, wrt, 1.0),
                               what=f"{what}: the gradient of {label}", inputs=inputs, causes=GRADIENT_CAUSES)


def test_negative_elbo_bound_fresh_samples_each_call(impl, device, rng):
    """Two consecutive calls on the same batch decode different latents: each call draws fresh noise (a
    module-level cache of the noise, or torch.manual_seed inside, repeats it)."""
    x, enc, dec = _setup(device, rng, 6)
    impl.negative_elbo_bound(x, enc, dec)
    first = dec.by_example(6, Z_DIM, "negative_elbo_bound")
    dec.inputs.clear()
    impl.negative_elbo_bound(x, enc, dec)
    second = dec.by_example(6, Z_DIM, "negative_elbo_bound")
    if first.shape == second.shape and np.array_equal(first, second):
        raise AssertionError("negative_elbo_bound: two consecutive calls on the same batch decoded the same latents "
                             f"{fmt(first)}: each call must draw fresh samples z ~ q(z|x)")
