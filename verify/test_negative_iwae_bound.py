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

from verify import oracles
from verify.assertions import (as_numpy, assert_close, assert_gradients_close, backward_gradients, check_tensor, fmt,
                               matching_option, oracle_gradients, outputs_with_right_values, within)
from verify.models import BoundedModel, ConjugateModel, MLPDecoder, MLPEncoder, Recorder
from verify.stats import (
    ALPHA_CHECK,
    assert_independent_standard_pairs_by_dkwm,
    assert_true_cdf_equal_by_dkwm,
    assert_true_mean_at_least_by_hoeffding,
    assert_true_mean_at_most_by_hoeffding,
    assert_true_mean_equal_by_hoeffding,
    assert_two_sample_means_ordered_by_hoeffding,
)
from verify.contract import grades
from verify.lazy import OnFirstUse

special = OnFirstUse("scipy.special")  # imported when first used

pytestmark = grades('negative_iwae_bound')

X_DIM, Z_DIM = 6, 2
# examples per mean in the statistical checks: a per-example Python loop over them, calling the networks
# once an example, finishes far within the check time limit (docs/statistics.md states the power)
N_EXAMPLES = 2000


def _outputs(out, name="negative_iwae_bound"):
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple (niwae, kl, rec)")
    for label, t in zip(("niwae", "kl", "rec"), out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


def _single_example(device, rng, logit_shift=0.0, log10_v=None):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=20, device=device, log10_v=log10_v)
    base = MLPDecoder(Z_DIM, X_DIM, seed=21, device=device)
    dec = Recorder(lambda z: base(z) + logit_shift)
    x = torch.as_tensor((rng.uniform(size=(1, X_DIM)) < 0.5).astype(float), device=device)
    if logit_shift:
        x = torch.ones_like(x)
    return x, enc, dec


class Replay:
    """The latents one example's call decoded, split into the iw of the bound and any others.

    The contract lets ``rec`` come from the bound's samples or from fresh ones (docs/CONTRACT.md), so
    a call may decode more than iw latents. The bound's are the iw that reproduce the returned niwae:
    all of them, the first or the last decoder calls (or rows) holding iw; else the first iw rows.
    """

    def __init__(self, x, enc, dec, iw, niwae=None):
        self.iw = iw
        calls = [as_numpy(z).reshape(-1, Z_DIM) for z in dec.inputs]
        self.all = np.concatenate(calls) if calls else np.zeros((0, Z_DIM))
        m, v = (as_numpy(t)[0] for t in enc(x))
        self.m, self.v = m, v
        logits = as_numpy(dec.decoder(torch.as_tensor(self.all, device=x.device)))
        self.log_px_z_all = oracles.log_bernoulli_with_logits(as_numpy(x), logits) if len(self.all) else np.zeros(0)
        self.log_w_all = self.log_px_z_all + oracles.log_normal(self.all, 0.0, 1.0) - oracles.log_normal(self.all, m, v)
        self.candidates = self._candidates([len(c) for c in calls])
        self.bound = self._identify(niwae)

    def _candidates(self, sizes):
        n, iw = len(self.all), self.iw
        ends = np.cumsum([0] + sizes)
        found = [np.arange(n)] if n == iw else []
        found += [np.arange(0, e) for e in ends if e == iw] + [np.arange(s, n) for s in ends if n - s == iw]
        found += [np.arange(iw), np.arange(n - iw, n)] if n > iw else []
        return found

    def niwae_of(self, rows):
        return -(special.logsumexp(self.log_w_all[rows]) - math.log(len(rows)))

    def _identify(self, niwae):
        if niwae is not None:
            for rows in self.candidates:
                if within(niwae, self.niwae_of(rows)):
                    return rows
        return self.candidates[0] if self.candidates else None

    def require_bound(self):
        """The bound's rows, after checking there are iw distinct fresh latents."""
        n, iw = len(self.all), self.iw
        if self.bound is None:
            raise AssertionError(f"negative_iwae_bound(iw={iw}) on one example decoded {n} latents; expected iw = {iw} "
                                 "fresh samples (and, at most, extra fresh samples for rec)")
        distinct = np.unique(self.all[self.bound], axis=0).shape[0]
        if distinct < iw:
            raise AssertionError(
                f"negative_iwae_bound(iw={iw}): only {distinct} distinct latents among the {iw} decoded; each of the "
                "iw importance samples must be a fresh draw from q(z|x)")
        return self.bound

    def rec_options(self):
        """-mean log p(x|z) over the bound's samples, over the other (fresh) ones, over all."""
        rest = np.setdiff1d(np.arange(len(self.all)), self.bound if self.bound is not None else [])
        groups = [g for g in (self.bound, rest, np.arange(len(self.all))) if g is not None and len(g)]
        return [float(-self.log_px_z_all[g].mean()) for g in groups]

    def kl_options(self):
        """The analytic KL(q || p), and its Monte Carlo estimates from the decoded samples."""
        log_q, log_p = oracles.log_normal(self.all, self.m, self.v), oracles.log_normal(self.all, 0.0, 1.0)
        rest = np.setdiff1d(np.arange(len(self.all)), self.bound if self.bound is not None else [])
        groups = [g for g in (self.bound, rest, np.arange(len(self.all))) if g is not None and len(g)]
        return [float(oracles.kl_normal(self.m, self.v, 0.0, 1.0))] + [float(np.mean(log_q[g] - log_p[g])) for g in groups]


def _responds(outputs, others, name):
    """Each output differs between two different inputs: a constant placeholder is not an implementation."""
    for label, a, b in zip(("niwae", "kl", "rec") if len(outputs) == 3 else ("nelbo", "kl", "rec"), outputs, others):
        if not np.isfinite(float(a)) or float(a) == float(b):
            raise AssertionError(
                f"{name}: {label} = {float(a):.10g} on one batch and {float(b):.10g} on another: it does not respond to "
                "its input (a placeholder such as `return 0, 0, 0` is not an implementation)")


def test_negative_iwae_bound_returns_batch_mean_scalars(impl, device, rng):
    """Three 0-dim tensors, each finite and depending on the batch."""
    enc = MLPEncoder(X_DIM, Z_DIM, seed=20, device=device)
    dec = MLPDecoder(Z_DIM, X_DIM, seed=21, device=device)
    x = torch.as_tensor((rng.uniform(size=(4, X_DIM)) < 0.5).astype(float), device=device)
    first = _outputs(impl.negative_iwae_bound(x, enc, dec, 5))
    _responds(first, _outputs(impl.negative_iwae_bound(1 - x, enc, dec, 5)), "negative_iwae_bound")


def _exact_hint(observed_bound, log_px, iw):
    """What the observed bound says, only where the observation matches the explanation."""
    mean, top = float(log_px.mean()), float(log_px.max())
    if iw > 1 and mean < observed_bound <= top:
        return (" The bound is above mean_b log p(x_b) but not above max_b log p(x_b): what weights grouped across "
                "examples give, by Jensen (this batch is heterogeneous).")
    if observed_bound > top:
        return (f" The bound is above every example's log p(x_b) (max {top:.6g}): the weights are not p(x_b); a term "
                "of the log-weight (log p(x|z), log p(z), -log q(z|x)) or the -log iw is off.")
    return (" The bound is below mean_b log p(x_b): with q the exact posterior every weight is p(x_b), so a term of "
            "the log-weight (log p(x|z), log p(z) or -log q(z|x)) or the normalization is off.")


@pytest.mark.parametrize("iw", [1, 2, 7, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_exact_when_q_is_posterior(impl, device, iw):
    """q = p(z|x): every weight is p(x_b), so -niwae = mean_b log p(x_b) on every draw (5 different examples)."""
    model = ConjugateModel(device=device)
    niwae, _, _ = _outputs(impl.negative_iwae_bound(model.x, model.encoder, model.decoder, iw))
    assert_close(
        niwae, -model.log_px.mean(), what=f"negative_iwae_bound(iw={iw}) with q equal to the exact posterior",
        inputs=f"Every importance weight of example b equals p(x_b); log p(x_b) = {np.round(model.log_px, 6).tolist()}."
        + _exact_hint(-float(niwae), model.log_px, iw),
        rtol=1e-9, atol=1e-9,
    )


def _replay_case(impl, device, rng, iw, logit_shift=0.0, log10_v=None):
    x, enc, dec = _single_example(device, rng, logit_shift, log10_v)
    niwae, kl, rec = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    return (niwae, kl, rec), Replay(x, enc, dec, iw, float(niwae))


def _assert_bound_replayed(niwae, replay):
    iw = replay.iw
    rows = replay.require_bound()
    log_w = replay.log_w_all[rows]
    assert_close(niwae, replay.niwae_of(rows),
                 what=f"negative_iwae_bound(iw={iw}): niwae = -log (1/iw) sum_i w_i over the decoded samples",
                 inputs=f"One example, iw = {iw}; replayed log-weights {np.round(log_w, 4).tolist()[:6]}...",
                 rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("log10_v", [None, (-6, 6)], ids=["ordinary", "variances-1e-6..1e6"])
@pytest.mark.parametrize("iw", [1, 5, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_niwae_matches_replayed_weights(impl, device, rng, iw, log10_v):
    """niwae = -(logsumexp_i log w_i - log iw), recomputed from the iw decoded latents of the bound; also with
    the encoder's variances from 1e-6 to 1e6 (a clamped variance shows)."""
    (niwae, _, _), replay = _replay_case(impl, device, rng, iw, log10_v=log10_v)
    _assert_bound_replayed(niwae, replay)


def test_negative_iwae_bound_stable_for_log_weights_near_minus_1e4(impl, device, rng):
    """Log-weights near -1e4 (every exp underflows): niwae must still be the replayed value, finite."""
    (niwae, _, _), replay = _replay_case(impl, device, rng, 50, logit_shift=-2500.0)
    _assert_bound_replayed(niwae, replay)


SECONDARY = {  # output: (its index, what it may be, its accepted values from a Replay)
    "kl": (1, "the analytic KL(q || p), or its Monte Carlo estimate mean_i log q(z_i|x) - log p(z_i) from the decoded "
              "samples", Replay.kl_options),
    "rec": (2, "-mean_i log p(x|z_i) over the decoded samples: the bound's, or fresh ones (a reconstruction loss: "
               "minus the log-likelihood)", Replay.rec_options),
}


def _assert_secondary_output(impl, device, rng, iw, label):
    """Output ``label`` (kl or rec) is one of the values the contract allows for it, judged on its own."""
    index, meaning, accepted = SECONDARY[label]
    out, replay = _replay_case(impl, device, rng, iw)
    options = accepted(replay)
    if not any(within(out[index], o) for o in options):
        raise AssertionError(f"negative_iwae_bound(iw={iw}): {label} = {float(out[index]):.10g} is not {meaning}: "
                             f"{', '.join(f'{o:.10g}' for o in options)}")


@pytest.mark.parametrize("iw", [1, 5, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_rec_matches_replay(impl, device, rng, iw):
    """rec = -mean_i log p(x|z_i) over the bound's samples, or over fresh samples of q (docs/CONTRACT.md)."""
    _assert_secondary_output(impl, device, rng, iw, "rec")


@pytest.mark.parametrize("iw", [1, 5, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_kl_matches_replay(impl, device, rng, iw):
    """kl = the analytic KL(q || p), or its Monte Carlo estimate mean_i log q(z_i|x) - log p(z_i) from the samples."""
    _assert_secondary_output(impl, device, rng, iw, "kl")


@pytest.mark.parametrize("iw", [5, 50], ids=lambda k: f"iw{k}")
def test_negative_iwae_bound_leave_one_out_inequality(impl, device, rng, iw):
    """Burda et al.: on every draw, L_k >= mean_j L_{k-1}(all samples but j), by concavity of log."""
    (niwae, _, _), replay = _replay_case(impl, device, rng, iw)
    log_w = replay.log_w_all[replay.require_bound()]
    loo = np.mean([special.logsumexp(np.delete(log_w, j)) - math.log(iw - 1) for j in range(iw)])
    if -float(niwae) < loo and not within(-float(niwae), loo):
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
    niwae, _, _ = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    z = as_numpy(dec.latents(Z_DIM))
    if z.shape[0] < iw:
        raise AssertionError(f"negative_iwae_bound(iw={iw}) on one example decoded {z.shape[0]} latents, not {iw}")
    replay = Replay(x, enc, dec, iw, float(niwae))
    lo, hi = -float(np.max(replay.log_w_all)), -float(np.min(replay.log_w_all))
    if not (lo <= float(niwae) <= hi or within(niwae, lo) or within(niwae, hi)):
        raise AssertionError(f"negative_iwae_bound(iw={iw}): niwae = {float(niwae):.10g} is outside [{lo:.6g}, {hi:.6g}], "
                             "the range of -log w over the decoded samples, where -log mean_i w_i always lies")
    m, v = replay.m, replay.v
    eps = (z - m) / np.sqrt(v)
    half = len(eps) // 2
    what = f"negative_iwae_bound(iw={iw}): decoded latents standardized by q(z|x)"
    assert_true_cdf_equal_by_dkwm(eps[:iw], false_fail_rate=ALPHA_CHECK / 2, what=what)
    assert_independent_standard_pairs_by_dkwm(eps[:half], eps[half: 2 * half], false_fail_rate=ALPHA_CHECK / 2,
                                              what=what + ", samples i and i + iw/2")


def _mean_bounds(impl, model, ks, n):
    """Sample mean over n iid examples (one batch of n copies of x) of L_k for each k."""
    x = model.x(n)
    return {k: -float(_outputs(impl.negative_iwae_bound(x, model.encoder, model.decoder, k))[0]) for k in ks}


@pytest.mark.stochastic
def test_negative_iwae_bound_ordering_in_expectation(impl, device):
    """E L_1 <= E L_5 <= E L_50 <= E L_150 <= log p(x) (log p(x) by quadrature).

    Every L_k lies in an interval of length R = 12 (BoundedModel); n = 2000 examples per mean (a
    per-example Python loop finishes in seconds); one-sided Hoeffding, on the differences of two
    means (length 2R) for the ordering.
    False-failure rate: 1e-6 (2.5e-7 per comparison). Power, each with probability at least
    1 - 1e-6: detects E L_k above E L_k' (k < k') by 2.9 nats, and E L_150 above log p(x) by
    1.4 nats (a missing -log iw puts it log 150 = 5.0 nats above).
    """
    model, n, ks = BoundedModel(device=device), N_EXAMPLES, (1, 5, 50, 150)
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
    a = ALPHA_CHECK / 3 (range R = 12, n = 2000).

    False-failure rate: 1e-6 (3.3e-7 per comparison). Power, each with probability at least 1 - 1e-6:
    detects a bias of 1.5 nats in the mean of L_1, and E L_50 or E L_200 below E L_2 by 1.4 nats (the
    mean of the log-weights stays at E L_1, 1.5 nats below E L_2).
    """
    model, n = BoundedModel(device=device), N_EXAMPLES
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


@pytest.mark.stochastic
def test_negative_iwae_bound_iw1_mean_equals_elbo_expectation(impl, device):
    """L_1 and -nelbo share their expectation (not their distribution: CLARIFICATIONS.md). Here q = p(z),
    so KL = 0 and both equal E_q log p(x|z), computed by quadrature; every L_1 lies in an interval of
    length R = 12. Two-sided Hoeffding on the mean of L_1 over n examples. (The bound is judged on its
    own: the submission's negative_elbo_bound has its own checks.)

    False-failure rate: 1e-6. Power: detects a bias of 1.4 nats with probability at least 1 - 1e-6.
    """
    model, n = BoundedModel(device=device), N_EXAMPLES
    l1 = -float(_outputs(impl.negative_iwae_bound(model.x(n), model.encoder, model.decoder, 1))[0])
    lo, hi = model.log_weight_interval
    if not lo <= l1 <= hi:
        raise AssertionError(f"negative_iwae_bound(iw=1): mean L_1 = {l1:.6g} over {n} examples is outside "
                             f"[{lo:.4f}, {hi:.4f}], the interval holding every log-weight of this model")
    assert_true_mean_equal_by_hoeffding(
        l1, expected=model.expected_l1, n=n, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK,
        what=f"negative_iwae_bound(iw=1): mean over {n} examples vs E[-nelbo] = E_q log p(x|z) = "
             f"{model.expected_l1:.4f}", details=f"L_1 = {l1:.4f}; with iw = 1 the bound is the ELBO in expectation")


IWAE_GRADIENT_CAUSES = ("Usual causes: z drawn with .sample() or detached (the encoder then gets no gradient through "
                        "the weights' z), the log-mean-exp of the weights computed in numpy, or a term detached.")




def _oracle_outputs(x, enc, decoder, replay):
    """Float64 torch oracle of (niwae, kl options, rec options) on the replayed latents of one example:
    z = m + sqrt(v) eps with eps = (z_decoded - m)/sqrt(v) held fixed (the reparameterization)."""
    m, v = enc(x)  # (1, D)
    eps = ((torch.as_tensor(replay.all, device=x.device) - m) / v.sqrt()).detach()
    z = m + v.sqrt() * eps  # (N, D)
    log_px_z = oracles.torch_log_bernoulli_with_logits(x, decoder(z))
    log_p, log_q = oracles.torch_log_standard_normal(z), oracles.torch_log_normal(z, m, v)
    rows = torch.as_tensor(replay.require_bound(), device=x.device)
    niwae = -oracles.torch_log_mean_exp((log_px_z + log_p - log_q)[rows], 0)
    rest = np.setdiff1d(np.arange(len(replay.all)), replay.bound)
    groups = [torch.as_tensor(g, device=x.device) for g in (replay.bound, rest, np.arange(len(replay.all))) if len(g)]
    kls = [oracles.torch_kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()]
    kls += [(log_q[g] - log_p[g]).mean() for g in groups]
    return niwae, kls, [-log_px_z[g].mean() for g in groups]


@pytest.mark.parametrize("iw, log10_v", [(1, None), (5, None), (7, (-6, 6))], ids=["iw1", "iw5", "iw7-wide-variances"])
def test_negative_iwae_bound_gradients(impl, device, rng, iw, log10_v):
    """Values and d niwae, d kl, d rec with respect to x (binary pixels; the bound is differentiable in x) and
    every weight of the checks' encoder and decoder vs autograd of the float64 oracle on the very latents the
    submission decoded (replay); with an encoder whose variances span 1e-6 to 1e6 (a clamped variance shows)."""
    enc = MLPEncoder(X_DIM, Z_DIM, seed=20, device=device, log10_v=log10_v)
    base = MLPDecoder(Z_DIM, X_DIM, seed=21, device=device)
    dec = Recorder(base)
    x = torch.as_tensor((rng.uniform(size=(1, X_DIM)) < 0.5).astype(float), device=device).requires_grad_(True)
    wrt = {"x": x, **enc.weights("encoder"), **base.weights("decoder")}
    out = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    replay = Replay(x.detach(), enc, dec, iw, float(out[0].detach()))  # before any backward pass decodes more
    niwae, kls, recs = _oracle_outputs(x, enc, base, replay)
    wide = "" if log10_v is None else f", the encoder's variances from 1e{log10_v[0]} to 1e{log10_v[1]}"
    what = f"negative_iwae_bound(iw={iw}) on one example (binary x, the checks' networks{wide})"
    expected = {"niwae": matching_option(out[0], [niwae]),
                "kl": matching_option(out[1], kls),
                "rec": matching_option(out[2], recs)}
    inputs = f"Inputs: x = {fmt(as_numpy(x))}; the replayed latents {fmt(replay.all)}."
    judged = outputs_with_right_values(expected, out, what)
    for index, (label, exp) in enumerate(expected.items()):
        if label not in judged:
            continue
        assert_gradients_close(backward_gradients(out[index], wrt, 1.0), oracle_gradients(exp, wrt, 1.0),
                               what=f"{what}: the gradient of {label}", inputs=inputs, causes=IWAE_GRADIENT_CAUSES)


# The reference draws the iw samples in chunks of max(1, min(iw, E // x.numel())) samples, E =
# IWAE_CHUNK_ELEMENTS decoder outputs (impls/bounds.py). The checks below make it chunk, and are sized from E
# (restated here: verify/ does not import the reference; tests/test_iwae_chunk_sizes.py pins the two equal and
# the chunks each size makes), each in the middle of its range so that it stays right if E changes:
# * CHUNK_BATCH examples of 1000 pixels, x of E / 3.5 elements: with iw = 5, chunks of 3 samples, then 2 (a last
#   chunk smaller than the others);
# * OVER_CHUNK_BATCH examples, x of 9/8 E elements: x alone exceeds a chunk (one sample at a time, never 0);
# * GRADIENT_BATCH examples of GRADIENT_PIXELS pixels, again E / 3.5 elements: chunks of 3, then 2.
# A submission need not chunk; one that does must give the bound.
REFERENCE_CHUNK_ELEMENTS = 2**18
CHUNK_PIXELS, CHUNK_IW, GRADIENT_BATCH = 1000, 5, 4


def chunked_sizes(elements):
    """(CHUNK_BATCH, OVER_CHUNK_BATCH, GRADIENT_PIXELS) for a reference chunk of ``elements`` decoder outputs."""
    return (2 * elements // (7 * CHUNK_PIXELS), 9 * elements // (8 * CHUNK_PIXELS),
            2 * elements // (7 * GRADIENT_BATCH))


CHUNK_BATCH, OVER_CHUNK_BATCH, GRADIENT_PIXELS = chunked_sizes(REFERENCE_CHUNK_ELEMENTS)  # 74, 294, 18,724


def _batch_layouts(rows, batch, iw):
    """Candidate (iw, B, D) arrangements of the decoded latents: the first or the last iw * B rows, read
    sample-major (a (k, B, D) call per chunk, or CS236's rep-major duplicate) or example-major (a loop over
    the examples, iw rows each)."""
    n = batch * iw
    windows = [rows[:n]] + ([rows[-n:]] if len(rows) > n else [])
    out = []
    for w in windows:
        out += [w.reshape(iw, batch, -1), w.reshape(batch, iw, -1).transpose(1, 0, 2)]
    return out


def _batch_log_weights(x, enc, dec, z):
    """(log w, log p(x|z), log q(z|x), log p(z)) of latents z (S, B, D) by the float64 oracles."""
    m, v = (as_numpy(t) for t in enc(x))
    with torch.no_grad():  # the torch float64 oracle: the same closed form, faster on millions of pixels
        log_px_z = np.stack([as_numpy(oracles.torch_log_bernoulli_with_logits(
            x, dec.decoder(torch.as_tensor(zi, device=x.device)))) for zi in z])
    log_q, log_p = oracles.log_normal(z, m, v), oracles.log_normal(z, 0.0, 1.0)
    return log_px_z + log_p - log_q, log_px_z, log_q, log_p


@pytest.mark.parametrize("b, iw", [(CHUNK_BATCH, CHUNK_IW), (OVER_CHUNK_BATCH, 1)],
                         ids=["chunks-of-3-then-2", "over-one-chunk"])
def test_negative_iwae_bound_chunked_batch_by_replay(impl, device, rng, b, iw):
    """Batches the reference draws in chunks: CHUNK_BATCH (74) examples of 1000 pixels with iw = 5 (its chunks
    hold 3 samples, then 2), and OVER_CHUNK_BATCH (294) examples (x alone exceeds a chunk: one sample at a time,
    never a chunk of 0): niwae, rec and kl recomputed from the decoded latents over every example (the kl's
    batch mean on more than one example; a chunking that drops, adds or averages chunks shows)."""
    enc = MLPEncoder(CHUNK_PIXELS, Z_DIM, seed=22, device=device)
    dec = Recorder(MLPDecoder(Z_DIM, CHUNK_PIXELS, seed=23, device=device))
    x = torch.as_tensor((rng.uniform(size=(b, CHUNK_PIXELS)) < 0.5).astype(float), device=device)
    niwae, kl, rec = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    rows = as_numpy(dec.latents(Z_DIM))
    what = f"negative_iwae_bound(iw={iw}) on a batch of {b} examples of {CHUNK_PIXELS} pixels"
    if len(rows) < b * iw:
        raise AssertionError(f"{what}: the decoder received {len(rows)} latents; expected iw x B = {b * iw} fresh samples "
                             "(each example its own iw samples; a chunked loop must cover every sample once)")
    bounds, found = [], None
    for z in _batch_layouts(rows, b, iw):  # until one reproduces niwae
        weights = _batch_log_weights(x, enc, dec, z)
        bounds.append(float(-np.mean(special.logsumexp(weights[0], axis=0) - math.log(iw))))
        if within(niwae, bounds[-1]):
            found = weights
            break
    detail = (f"Replayed from the decoded latents ({len(rows)} rows, the first or last iw x B, sample- or "
              f"example-major): {', '.join(f'{v:.10g}' for v in bounds)}. A chunked bound must be the log-mean-exp "
              "of all iw weights of each example: every chunk but the last holds the same number of samples, the "
              "last the rest (not a full chunk), and the chunks' log-sum-exps are combined (logaddexp), never averaged.")
    if found is None:
        raise AssertionError(f"{what}: niwae = {float(niwae):.10g} is not the bound of the decoded samples. {detail}")
    _, log_px_z, log_q, log_p = found
    m, v = (as_numpy(t) for t in enc(x))
    kl_options = [float(oracles.kl_normal(m, v, 0.0, 1.0).mean()), float(np.mean(log_q - log_p))]
    if not any(within(kl, o) for o in kl_options):
        raise AssertionError(f"{what}: kl = {float(kl):.10g} is neither the analytic KL(q || p) averaged over the {b} "
                             f"examples ({kl_options[0]:.10g}) nor its Monte Carlo estimate over the samples "
                             f"({kl_options[1]:.10g}); a sum over the batch, or one example's KL, is neither")
    rec_options = [float(-log_px_z.mean())]
    if len(rows) > b * iw:  # fresh samples for rec: their mean
        rest = _batch_log_weights(x, enc, dec, rows[b * iw:].reshape(-1, b, Z_DIM))[1] if len(rows) % b == 0 else None
        rec_options += [] if rest is None else [float(-rest.mean())]
    if not any(within(rec, o) for o in rec_options):
        raise AssertionError(f"{what}: rec = {float(rec):.10g} is not -mean log p(x|z) over all iw samples of every "
                             f"example ({', '.join(f'{o:.10g}' for o in rec_options)}): with chunks, rec must "
                             "accumulate over every chunk, not come from the last one")


def test_negative_iwae_bound_fresh_samples_each_call(impl, device, rng):
    """Two consecutive calls on the same example decode different latents (no cached noise, no reseeding)."""
    x, enc, dec = _single_example(device, rng)
    impl.negative_iwae_bound(x, enc, dec, 5)
    first = as_numpy(dec.latents(Z_DIM))
    dec.inputs.clear()
    impl.negative_iwae_bound(x, enc, dec, 5)
    second = as_numpy(dec.latents(Z_DIM))
    if first.shape == second.shape and np.array_equal(first, second):
        raise AssertionError("negative_iwae_bound(iw=5): two consecutive calls on the same example decoded the same "
                             f"latents {fmt(first)}: each call must draw fresh samples z ~ q(z|x)")


def _torch_batch_bound(x, enc, decoder, latents):
    """Float64 torch oracle of (niwae, rec) on replayed latents (iw, B, D), eps = (z - m)/sqrt(v) held fixed."""
    m, v = enc(x)
    eps = ((torch.as_tensor(latents, device=x.device) - m) / v.sqrt()).detach()
    z = m + v.sqrt() * eps
    log_px_z = oracles.torch_log_bernoulli_with_logits(x, decoder(z))
    log_w = log_px_z + oracles.torch_log_standard_normal(z) - oracles.torch_log_normal(z, m, v)
    return -oracles.torch_log_mean_exp(log_w, 0).mean(), -log_px_z.mean()


def test_negative_iwae_bound_chunked_gradients(impl, device, rng):
    """The gradients of niwae and rec when the bound is drawn in chunks (GRADIENT_BATCH = 4 examples of
    GRADIENT_PIXELS = 18,724 pixels, iw = 5: the reference's chunks hold 3 samples, then 2) with respect to x and
    every weight of the checks' networks, vs autograd of the float64 oracle on the decoded latents: each chunk's
    samples must keep their gradient. (Few examples: a per-example loop's network calls are all kept for its
    backward pass, sandboxed too.)"""
    b, iw, pixels = GRADIENT_BATCH, CHUNK_IW, GRADIENT_PIXELS
    enc = MLPEncoder(pixels, Z_DIM, seed=24, device=device)
    base = MLPDecoder(Z_DIM, pixels, seed=25, device=device)
    dec = Recorder(base)
    x = torch.as_tensor((rng.uniform(size=(b, pixels)) < 0.5).astype(float), device=device).requires_grad_(True)
    wrt = {"x": x, **enc.weights("encoder"), **base.weights("decoder")}
    out = _outputs(impl.negative_iwae_bound(x, enc, dec, iw))
    rows = as_numpy(dec.latents(Z_DIM))  # before any backward pass decodes more
    what = f"negative_iwae_bound(iw={iw}) on a batch of {b} examples of {pixels} pixels (drawn in chunks)"
    layouts = _batch_layouts(rows, b, iw) if len(rows) >= b * iw else []
    with torch.no_grad():  # the layout whose bound is niwae; else the first (rec may still be right)
        found = next((z for z in layouts if within(out[0], float(_torch_batch_bound(x, enc, base, z)[0]))),
                     layouts[0] if layouts else None)
    if found is None:
        raise AssertionError(f"{what}: the decoder received {len(rows)} latents, fewer than iw x B = {b * iw}")
    niwae, rec = _torch_batch_bound(x, enc, base, found)
    expected = {"niwae": matching_option(out[0], [niwae]), "kl": None, "rec": matching_option(out[2], [rec])}
    judged = outputs_with_right_values(expected, out, what)  # a wrong value has its own check (chunked_batch_by_replay)
    inputs = f"Inputs: x of shape {tuple(x.shape)} (binary), iw = {iw}; the replayed latents {fmt(found)}."
    for index, label in ((0, "niwae"), (2, "rec")):
        if label not in judged:
            continue
        expected = judged[label]
        assert_gradients_close(backward_gradients(out[index], wrt, 1.0), oracle_gradients(expected, wrt, 1.0),
                               what=f"{what}: the gradient of {label}", inputs=inputs,
                               causes=IWAE_GRADIENT_CAUSES + " With chunks: a running sum detached between chunks.")
