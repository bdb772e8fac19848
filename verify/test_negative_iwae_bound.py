"""negative_iwae_bound(x, encoder, decoder, iw) -> (niwae, kl, rec).

niwae = -mean_b log (1/iw) sum_i p(x_b, z_i) / q(z_i | x_b), with iw fresh samples per example.
Three kinds of check (the networks are the checks' own, verify/models.py):

* exact: with q equal to the true posterior every weight equals p(x_b), so every bound equals
  log p(x_b) on every draw, on a heterogeneous batch (this catches mixing examples' weights);
* replay: the decoder records the latents it receives; the bound, rec and kl are recomputed from
  those very samples and must agree to float64 precision; Burda's leave-one-out inequality;
* statistical: the samples are from q; E L_1 <= E L_5 <= E L_50 <= E L_150 <= log p(x) with
  log p(x) by quadrature; L_k moves past E L_2 towards log p(x); E L_1 = E[-nelbo].
"""
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from verify import oracles
from verify.assertions import as_numpy, assert_close, check_tensor
from verify.models import BoundedModel, ConjugateModel, MLPDecoder, MLPEncoder, Recorder
from verify.stats import (
    ALPHA_CHECK,
    assert_independent_standard_pairs_by_dkwm,
    assert_true_cdf_equal_by_dkwm,
    assert_true_mean_at_least_by_hoeffding,
    assert_true_mean_at_most_by_hoeffding,
    assert_true_mean_equal_by_hoeffding,
    assert_two_sample_means_equal_by_hoeffding,
    assert_two_sample_means_ordered_by_hoeffding,
)
from verify.contract import grades

pytestmark = grades('negative_iwae_bound')

X_DIM, Z_DIM = 6, 2


def _outputs(out, name="negative_iwae_bound"):
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple (niwae, kl, rec)")
    for label, t in zip(("niwae", "kl", "rec"), out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


def _single_example(device, rng, logit_shift=0.0):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=20, device=device)
    base = MLPDecoder(Z_DIM, X_DIM, seed=21, device=device)
    dec = Recorder(lambda z: base(z) + logit_shift)
    x = torch.as_tensor((rng.uniform(size=(1, X_DIM)) < 0.5).astype(float), device=device)
    if logit_shift:
        x = torch.ones_like(x)
    return x, enc, dec


def _replay(x, enc, dec, iw):
    """Latents (iw, D) seen by the decoder and their log-weights, log p(x|z), log q(z|x), log p(z)."""
    z = as_numpy(dec.latents(Z_DIM))
    if z.shape[0] != iw:
        raise AssertionError(
            f"negative_iwae_bound(iw={iw}) on one example decoded {z.shape[0]} latents; expected {iw} fresh samples"
        )
    distinct = np.unique(z, axis=0).shape[0]
    if distinct < iw:
        raise AssertionError(
            f"negative_iwae_bound(iw={iw}): only {distinct} distinct latents among the {iw} decoded; each of the iw "
            "importance samples must be a fresh draw from q(z|x)"
        )
    m, v = (as_numpy(t)[0] for t in enc(x))
    logits = as_numpy(dec.decoder(torch.as_tensor(z, device=x.device)))
    log_px_z = oracles.log_bernoulli_with_logits(as_numpy(x), logits)
    log_q, log_p = oracles.log_normal(z, m, v), oracles.log_normal(z, 0.0, 1.0)
    return z, log_px_z + log_p - log_q, log_px_z, log_q, log_p, (m, v)


def test_negative_iwae_bound_returns_batch_mean_scalars(impl, device, rng):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=20, device=device)
    dec = MLPDecoder(Z_DIM, X_DIM, seed=21, device=device)
    x = torch.as_tensor((rng.uniform(size=(4, X_DIM)) < 0.5).astype(float), device=device)
    _outputs(impl.negative_iwae_bound(x, enc, dec, 5))


@pytest.mark.parametrize("iw", [1, 2, 7, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_exact_when_q_is_posterior(impl, device, iw):
    """q = p(z|x): every weight is p(x_b), so -niwae = mean_b log p(x_b) on every draw (5 different examples)."""
    model = ConjugateModel(device=device)
    niwae, _, _ = _outputs(impl.negative_iwae_bound(model.x, model.encoder, model.decoder, iw))
    assert_close(
        niwae, -model.log_px.mean(), what=f"negative_iwae_bound(iw={iw}) with q equal to the exact posterior",
        inputs=f"Every importance weight of example b equals p(x_b); log p(x_b) = {np.round(model.log_px, 6).tolist()} "
        "(a heterogeneous batch: weights grouped across examples give a larger value, by Jensen).",
        rtol=1e-9, atol=1e-9,
    )


@pytest.mark.parametrize("iw, logit_shift", [(1, 0.0), (5, 0.0), (50, 0.0), (50, -2500.0)],
                         ids=["iw1", "iw5", "iw50", "iw50-logweights-near-minus-1e4"])
def test_negative_iwae_bound_matches_replayed_weights(impl, device, rng, iw, logit_shift):
    """niwae = -(logsumexp_i log w_i - log iw), rec = -mean_i log p(x|z_i), kl analytic or the Monte Carlo
    mean of log q - log p over the same samples, all recomputed from the decoded latents."""
    x, enc, dec = _single_example(device, rng, logit_shift)
    niwae, kl, rec = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    z, log_w, log_px_z, log_q, log_p, (m, v) = _replay(x, enc, dec, iw)
    inputs = f"One example, iw = {iw}; replayed log-weights {np.round(log_w, 4).tolist()[:6]}..."
    assert_close(niwae, -(logsumexp(log_w) - math.log(iw)),
                 what=f"negative_iwae_bound(iw={iw}): niwae = -log (1/iw) sum_i w_i over the decoded samples",
                 inputs=inputs, rtol=1e-10, atol=1e-9)
    assert_close(rec, -log_px_z.mean(), what=f"negative_iwae_bound(iw={iw}): rec = -mean_i log p(x|z_i)", inputs=inputs,
                 rtol=1e-10, atol=1e-9)
    analytic, monte_carlo = oracles.kl_normal(m, v, 0.0, 1.0), float(np.mean(log_q - log_p))
    if not (np.isclose(float(kl), analytic, rtol=1e-10, atol=1e-10)
            or np.isclose(float(kl), monte_carlo, rtol=1e-10, atol=1e-10)):
        raise AssertionError(
            f"negative_iwae_bound(iw={iw}): kl = {float(kl):.10g} is neither the analytic KL(q || p) = {analytic:.10g} "
            f"nor its Monte Carlo estimate from the same samples, mean_i log q(z_i|x) - log p(z_i) = {monte_carlo:.10g}"
        )


@pytest.mark.parametrize("iw", [5, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_leave_one_out_inequality(impl, device, rng, iw):
    """Burda et al.: on every draw, L_k >= mean_j L_{k-1}(all samples but j), by concavity of log."""
    x, enc, dec = _single_example(device, rng)
    niwae, _, _ = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    _, log_w, *_ = _replay(x, enc, dec, iw)
    loo = np.mean([logsumexp(np.delete(log_w, j)) - math.log(iw - 1) for j in range(iw)])
    if -float(niwae) < loo - 1e-9 * max(1.0, abs(loo)):
        raise AssertionError(
            f"negative_iwae_bound(iw={iw}): L_{iw} = {-float(niwae):.10g} is below the mean of its leave-one-out bounds "
            f"L_{iw - 1} = {loo:.10g} computed from the same decoded samples; a log-mean-exp of the weights is never "
            "below that (mean of log-weights or a wrong normalization is)"
        )


@pytest.mark.stochastic
def test_negative_iwae_bound_samples_from_q(impl, device, rng):
    """The iw latents of one example are independent draws from q(z|x) (DKW, alpha/2 each test).

    False-failure rate: 1e-6 (5e-7 each). Power, each with probability at least 1 - 1e-6: detects a
    sup-CDF error of 0.019 in the 80,000 standardized latents (e.g. a standard deviation 8.3% off),
    shared noise always, and a correlation of 0.2 between samples i and i + iw/2.
    """
    iw = 40000
    x, enc, dec = _single_example(device, rng)
    impl.negative_iwae_bound(x, enc, dec, iw)
    z = as_numpy(dec.latents(Z_DIM))
    if z.shape[0] != iw:
        raise AssertionError(f"negative_iwae_bound(iw={iw}) on one example decoded {z.shape[0]} latents, not {iw}")
    m, v = (as_numpy(t)[0] for t in enc(x))
    eps = (z - m) / np.sqrt(v)
    what = f"negative_iwae_bound(iw={iw}): decoded latents standardized by q(z|x)"
    assert_true_cdf_equal_by_dkwm(eps, false_fail_rate=ALPHA_CHECK / 2, what=what)
    assert_independent_standard_pairs_by_dkwm(eps[: iw // 2], eps[iw // 2 :], false_fail_rate=ALPHA_CHECK / 2,
                                              what=what + ", samples i and i + iw/2")


def _mean_bounds(impl, model, ks, n):
    """Sample mean over n iid examples (one batch of n copies of x) of L_k for each k."""
    x = model.x(n)
    return {k: -float(_outputs(impl.negative_iwae_bound(x, model.encoder, model.decoder, k))[0]) for k in ks}


@pytest.mark.stochastic
def test_negative_iwae_bound_ordering_in_expectation(impl, device):
    """E L_1 <= E L_5 <= E L_50 <= E L_150 <= log p(x) (log p(x) by quadrature).

    Every L_k lies in an interval of length R = 12 (BoundedModel); n = 20000 examples per mean;
    one-sided Hoeffding, on the differences of two means (length 2R) for the ordering.
    False-failure rate: 1e-6 (2.5e-7 per comparison). Power, each with probability at least
    1 - 1e-6: detects E L_k above E L_k' (k < k') by 0.91 nats, and E L_150 above log p(x) by
    0.46 nats.
    """
    model, n, ks = BoundedModel(device=device), 20000, (1, 5, 50, 150)
    means = _mean_bounds(impl, model, ks, n)
    a = ALPHA_CHECK / 4
    shown = ", ".join(f"L_{k} = {means[k]:.4f}" for k in ks) + f", log p(x) = {model.log_px:.4f} (quadrature)"
    for lo, hi in zip(ks, ks[1:]):
        assert_two_sample_means_ordered_by_hoeffding(
            means[lo], means[hi], n=n, value_range=model.RANGE, false_fail_rate=a,
            what=f"negative_iwae_bound: mean L_{lo} <= mean L_{hi} in expectation",
            details=f"The bound must grow with iw. {shown}")
    assert_true_mean_at_most_by_hoeffding(
        means[150], bound=model.log_px, n=n, value_range=model.RANGE, false_fail_rate=a,
        what="negative_iwae_bound: mean L_150 <= log p(x) in expectation",
        details=f"No IWAE bound is above log p(x) in expectation (a missing -log iw, or a max in place of the mean, "
                f"is). {shown}")


@pytest.mark.stochastic
def test_negative_iwae_bound_converges_towards_log_px(impl, device):
    """E L_1 is computed exactly (quadrature); E L_k >= E L_2 for k >= 2 (Burda et al.), with E L_2 by
    quadrature far above E L_1 here. Two-sided Hoeffding for L_1 and one-sided for L_50, L_200, each at
    a = ALPHA_CHECK / 3 (range R = 12, n = 10000).

    False-failure rate: 1e-6 (3.3e-7 per comparison). Power, each with probability at least 1 - 1e-6:
    detects a bias of 0.65 nats in the mean of L_1, and E L_50 or E L_200 below E L_2 by 0.64 nats.
    """
    model, n = BoundedModel(device=device), 10000
    means = _mean_bounds(impl, model, (1, 50, 200), n)
    a = ALPHA_CHECK / 3
    shown = (f"Observed L_1 = {means[1]:.4f}, L_50 = {means[50]:.4f}, L_200 = {means[200]:.4f}; exact E L_1 = "
             f"{model.expected_l1:.4f}, E L_2 = {model.expected_l2:.4f}, log p(x) = {model.log_px:.4f}")
    assert_true_mean_equal_by_hoeffding(
        means[1], expected=model.expected_l1, n=n, value_range=model.RANGE, false_fail_rate=a,
        what=f"negative_iwae_bound(iw=1): mean over {n} examples vs E log w = {model.expected_l1:.4f}", details=shown)
    for k in (50, 200):
        assert_true_mean_at_least_by_hoeffding(
            means[k], bound=model.expected_l2, n=n, value_range=model.RANGE, false_fail_rate=a,
            what=f"negative_iwae_bound(iw={k}): mean >= E L_2 = {model.expected_l2:.4f} in expectation",
            details=f"The bound does not tighten towards log p(x) as iw grows (a mean of log-weights, or one sample "
                    f"reused for all iw, stays at E L_1). {shown}")


@grades('negative_iwae_bound', 'negative_elbo_bound')
@pytest.mark.stochastic
def test_negative_iwae_bound_iw1_matches_negative_elbo_bound_in_mean(impl, device):
    """L_1 and -nelbo share their expectation (not their distribution: CLARIFICATIONS.md). Here q = p(z),
    so both lie in [-12, 0]; two-sided Hoeffding on the difference of the two means, n = 20000 each.

    False-failure rate: 1e-6. Power: detects expectations 0.9 nats apart with probability at least
    1 - 1e-6.
    """
    model, n = BoundedModel(device=device), 20000
    x = model.x(n)
    l1 = -float(_outputs(impl.negative_iwae_bound(x, model.encoder, model.decoder, 1))[0])
    elbo = -float(_outputs(impl.negative_elbo_bound(x, model.encoder, model.decoder), "negative_elbo_bound")[0])
    assert_two_sample_means_equal_by_hoeffding(
        l1, elbo, n=n, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK,
        what=f"negative_iwae_bound(iw=1) and negative_elbo_bound: equal means over {n} examples",
        details=f"L_1 = {l1:.4f}, ELBO = {elbo:.4f}, exact E L_1 = {model.expected_l1:.4f}")
