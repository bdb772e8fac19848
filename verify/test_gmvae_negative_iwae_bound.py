"""gmvae_negative_iwae_bound(x, encoder, decoder, prior_m, prior_v, iw) -> (niwae, kl, rec), under the
uniform mixture prior: niwae = -mean_b log (1/iw) sum_i p(x_b|z_i) p(z_i) / q(z_i|x_b), z_i ~ q(z|x_b).

* exact: a mixture of k identical N(0, I) components is N(0, I), so with q the exact posterior of a
  conjugate model every weight is p(x_b): every bound equals log p(x_b) on every draw, on a
  heterogeneous batch (weights grouped across examples fail; a missing -log k shifts every weight);
* replay: the decoder records the latents it receives; niwae, kl and rec are recomputed from those
  samples under a mixture of distinct components, to float64 precision;
* statistical, on a 1-D GMVAE whose log-weights are bounded (verify/latent_models.py): E L_1 <= E L_5
  <= E L_50 <= log p(x) (quadrature); E L_1 exact, E L_200 >= E L_2; E L_1 = the ELBO's expectation
  (gmvae_negative_elbo_bound's mean meets it in a check of its own).
"""
import math

import numpy as np
import pytest
import torch

from verify import oracles
from verify.assertions import (as_numpy, assert_close, assert_gradients_close, backward_gradients, check_tensor,
                               matching_option, oracle_gradients, outputs_with_right_values, within)
from verify.contract import grades
from verify.lazy import OnFirstUse
from verify.latent_models import BoundedMixtureModel, mixture_prior
from verify.models import ConjugateModel, MLPDecoder, MLPEncoder, Recorder
from verify.stats import (
    ALPHA_CHECK,
    assert_true_mean_at_least_by_hoeffding,
    assert_true_mean_at_most_by_hoeffding,
    assert_true_mean_equal_by_hoeffding,
    assert_two_sample_means_ordered_by_hoeffding,
)

special = OnFirstUse("scipy.special")  # imported when first used

pytestmark = grades("gmvae_negative_iwae_bound")

NAME = "gmvae_negative_iwae_bound"
X_DIM, Z_DIM, K = 6, 2, 3
LABELS = ("niwae", "kl", "rec")
N_EXAMPLES = 2000  # examples per mean in the statistical checks (a per-example loop finishes in seconds)


def _outputs(out, labels=LABELS, name=NAME):
    if not isinstance(out, (tuple, list)) or len(out) != len(labels):
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple ({', '.join(labels)})")
    for label, t in zip(labels, out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


def _single_example(device, rng, logit_shift=0.0):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=40, device=device)
    base = MLPDecoder(Z_DIM, X_DIM, seed=41, device=device)
    dec = Recorder(lambda z: base(z) + logit_shift)
    x = torch.as_tensor((rng.uniform(size=(1, X_DIM)) < 0.5).astype(float), device=device)
    if logit_shift:
        x = torch.ones_like(x)
    prior_m, prior_v = mixture_prior(K, Z_DIM, seed=42, device=device)
    return x, enc, dec, prior_m, prior_v


class Replay:
    """One example's decoded latents, the iw of the bound identified among them (all of them, the
    first or the last iw: a student may decode extra fresh samples for rec), and their log-weights
    under the mixture prior."""

    def __init__(self, x, enc, dec, prior_m, prior_v, iw, niwae):
        self.iw = iw
        calls = [as_numpy(z).reshape(-1, Z_DIM) for z in dec.inputs]
        self.all = np.concatenate(calls) if calls else np.zeros((0, Z_DIM))
        m, v = (as_numpy(t)[0] for t in enc(x))
        logits = as_numpy(dec.decoder(torch.as_tensor(self.all, device=x.device)))
        self.log_px_z = oracles.log_bernoulli_with_logits(as_numpy(x), logits)
        log_p = oracles.log_normal_mixture(self.all, as_numpy(prior_m), as_numpy(prior_v))
        self.kl_all = oracles.log_normal(self.all, m, v) - log_p
        self.log_w = self.log_px_z - self.kl_all
        n, ends = len(self.all), np.cumsum([0] + [len(c) for c in calls])
        found = [np.arange(n)] if n == iw else []
        found += [np.arange(0, e) for e in ends if e == iw] + [np.arange(s, n) for s in ends if n - s == iw]
        found += [np.arange(iw), np.arange(n - iw, n)] if n > iw else []
        self.bound = next((r for r in found if within(niwae, self.niwae_of(r))), found[0] if found else None)

    def niwae_of(self, rows):
        return float(-(special.logsumexp(self.log_w[rows]) - math.log(len(rows))))

    def require_bound(self):
        if self.bound is None:
            raise AssertionError(f"{NAME}(iw={self.iw}) on one example decoded {len(self.all)} latents; expected iw = "
                                 f"{self.iw} fresh samples (and, at most, extra fresh samples for rec)")
        if np.unique(self.all[self.bound], axis=0).shape[0] < self.iw:
            raise AssertionError(f"{NAME}(iw={self.iw}): the iw decoded latents are not distinct; each importance "
                                 "sample must be a fresh draw from q(z|x)")
        return self.bound

    def options(self, per_sample):
        """The mean of ``per_sample`` over the bound's samples, over the others, over all of them."""
        rest = np.setdiff1d(np.arange(len(self.all)), self.bound if self.bound is not None else [])
        groups = [g for g in (self.bound, rest, np.arange(len(self.all))) if g is not None and len(g)]
        return [float(per_sample[g].mean()) for g in groups]


def _replay_case(impl, device, rng, iw, logit_shift=0.0):
    x, enc, dec, pm, pv = _single_example(device, rng, logit_shift)
    out = _outputs(impl.gmvae_negative_iwae_bound(x, enc, dec, pm, pv, iw))
    return out, Replay(x, enc, dec, pm, pv, iw, float(out[0]))


def test_gmvae_negative_iwae_bound_returns_batch_mean_scalars(impl, device, rng):
    """Three 0-dim tensors, each finite and depending on the batch."""
    enc, dec = MLPEncoder(X_DIM, Z_DIM, seed=40, device=device), MLPDecoder(Z_DIM, X_DIM, seed=41, device=device)
    x = torch.as_tensor((rng.uniform(size=(4, X_DIM)) < 0.5).astype(float), device=device)
    pm, pv = mixture_prior(K, Z_DIM, seed=42, device=device)
    first = _outputs(impl.gmvae_negative_iwae_bound(x, enc, dec, pm, pv, 5))
    other = _outputs(impl.gmvae_negative_iwae_bound(1 - x, enc, dec, pm, pv, 5))
    for label, a, b in zip(LABELS, first, other):
        if not np.isfinite(float(a)) or float(a) == float(b):
            raise AssertionError(f"{NAME}: {label} = {float(a):.10g} on one batch and {float(b):.10g} on another: it "
                                 "does not respond to its input (a placeholder such as `return 0, 0, 0` is not an "
                                 "implementation)")


@pytest.mark.parametrize("iw", [1, 7, 50], ids=lambda k: f"iw{k}")
def test_gmvae_negative_iwae_bound_exact_when_q_is_posterior(impl, device, iw):
    """k = 3 identical N(0, I) components and q = p(z|x): every weight is p(x_b), so -niwae = mean_b log p(x_b)
    on every draw (5 different examples)."""
    model = ConjugateModel(device=device)
    pm = torch.zeros(1, K, model.z_dim, dtype=torch.float64, device=device)
    niwae = _outputs(impl.gmvae_negative_iwae_bound(model.x, model.encoder, model.decoder, pm, torch.ones_like(pm),
                                                    iw))[0]
    mean, top = float(model.log_px.mean()), float(model.log_px.max())
    hint = ""
    if within(-float(niwae), mean + math.log(K)):
        hint = f" The bound is log k = log {K} above: the mixture's log density lacks its -log k (a sum, not a mean)."
    elif iw > 1 and mean < -float(niwae) <= top:
        hint = " The bound lies between mean_b and max_b log p(x_b): weights grouped across examples give that."
    assert_close(niwae, -mean, what=f"{NAME}(iw={iw}) with q the exact posterior, the prior a mixture of {K} identical "
                 "N(0, I)", inputs=f"Every weight of example b is p(x_b); log p(x_b) = "
                 f"{np.round(model.log_px, 6).tolist()}.{hint}", rtol=1e-9, atol=1e-9)


def _assert_bound_replayed(niwae, replay):
    rows = replay.require_bound()
    assert_close(niwae, replay.niwae_of(rows),
                 what=f"{NAME}(iw={replay.iw}): niwae = -log (1/iw) sum_i w_i over the decoded samples, "
                 "w_i = p(x|z_i) p(z_i) / q(z_i|x) with p(z) the mixture",
                 inputs=f"Replayed log-weights {np.round(replay.log_w[rows], 4).tolist()[:6]}...",
                 rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("iw", [1, 5, 50], ids=lambda k: f"iw{k}")
def test_gmvae_negative_iwae_bound_niwae_matches_replayed_weights(impl, device, rng, iw):
    """niwae = -(logsumexp_i log w_i - log iw) from the decoded latents, under the mixture prior."""
    (niwae, _, _), replay = _replay_case(impl, device, rng, iw)
    _assert_bound_replayed(niwae, replay)


def test_gmvae_negative_iwae_bound_stable_for_log_weights_near_minus_1e4(impl, device, rng):
    """Log-weights near -1e4 (every exp underflows): niwae is still the replayed value, finite."""
    (niwae, _, _), replay = _replay_case(impl, device, rng, 50, logit_shift=-2500.0)
    _assert_bound_replayed(niwae, replay)


@pytest.mark.parametrize("output", ["kl", "rec"])
def test_gmvae_negative_iwae_bound_kl_and_rec_match_replay(impl, device, rng, output):
    """kl = mean_i log q(z_i|x) - log p(z_i) (p the mixture), rec = -mean_i log p(x|z_i), over the bound's
    samples or fresh ones (docs/CONTRACT.md), each judged on its own."""
    out, replay = _replay_case(impl, device, rng, 5)
    value = out[LABELS.index(output)]
    options = replay.options(replay.kl_all if output == "kl" else -replay.log_px_z)
    if not any(within(value, o) for o in options):
        raise AssertionError(f"{NAME}(iw=5): {output} = {float(value):.10g} is not its replayed value over the decoded "
                             f"samples: {', '.join(f'{o:.10g}' for o in options)}")


def test_gmvae_negative_iwae_bound_kl_and_rec_are_batch_means(impl, device, rng):
    """On a batch of 40 copies of one x, kl and rec are means over examples and samples, so each lies
    between the smallest and the largest of its per-sample values over the decoded latents (a sum over
    the batch is about 40 times one of them)."""
    x, enc, dec, pm, pv = _single_example(device, rng)
    out = _outputs(impl.gmvae_negative_iwae_bound(x.expand(40, X_DIM).clone(), enc, dec, pm, pv, 5))
    replay = Replay(x, enc, dec, pm, pv, 5, float(out[0]))
    for label, per_sample in (("kl", replay.kl_all), ("rec", -replay.log_px_z)):
        value, lo, hi = float(out[LABELS.index(label)]), per_sample.min(), per_sample.max()
        if not (lo - 1e-6 * (1 + abs(lo)) <= value <= hi + 1e-6 * (1 + abs(hi))):
            raise AssertionError(f"{NAME}(iw=5) on 40 copies of one example: {label} = {value:.10g} lies outside the "
                                 f"range of its per-sample values [{lo:.10g}, {hi:.10g}]: it must be a mean over the "
                                 "examples and samples, not a sum")


def _oracle_outputs(x, enc, dec, pm, pv, replay):
    """niwae (the bound's rows) and the kl / rec candidates (the bound's rows, the others, all), in torch
    float64 as functions of x, the networks and the prior, at the replayed noise eps = (z - m) / sqrt v."""
    m, v = enc(x)
    eps = (torch.as_tensor(replay.all, dtype=m.dtype, device=m.device) - m.detach()) / v.detach().sqrt()
    z = m + v.sqrt() * eps
    log_px_z = oracles.torch_log_bernoulli_with_logits(x, dec(z))
    kl = oracles.torch_log_normal(z, m, v) - oracles.torch_log_normal_mixture(z, pm, pv)
    log_w = log_px_z - kl
    rows = torch.as_tensor(replay.bound, device=x.device)
    niwae = -(torch.logsumexp(log_w[rows], 0) - math.log(len(rows)))
    rest = np.setdiff1d(np.arange(len(replay.all)), replay.bound)
    groups = [torch.as_tensor(g, device=x.device) for g in (replay.bound, rest, np.arange(len(replay.all))) if len(g)]
    return niwae, [kl[g].mean() for g in groups], [-log_px_z[g].mean() for g in groups]


@pytest.mark.parametrize("iw", [1, 5], ids=lambda k: f"iw{k}")
def test_gmvae_negative_iwae_bound_gradients(impl, device, rng, iw):
    """d niwae, d kl, d rec with respect to x, the prior's means and variances and every weight of the
    checks' encoder and decoder vs autograd of the float64 oracle on the replayed latents; each output
    whose value is right is judged (a wrong value is its own check's to fail)."""
    x, enc, _, pm, pv = _single_example(device, rng)
    base = MLPDecoder(Z_DIM, X_DIM, seed=41, device=device)
    dec = Recorder(base)
    x, pm, pv = (t.detach().clone().requires_grad_(True) for t in (x, pm, pv))
    wrt = {"x": x, "prior_m": pm, "prior_v": pv, **enc.weights("encoder"), **base.weights("decoder")}
    out = _outputs(impl.gmvae_negative_iwae_bound(x, enc, dec, pm, pv, iw))
    replay = Replay(x.detach(), enc, dec, pm.detach(), pv.detach(), iw, float(out[0].detach()))
    replay.require_bound()
    niwae, kls, recs = _oracle_outputs(x, enc, base, pm, pv, replay)
    what = f"{NAME}(iw={iw}) on one example"
    expected = {"niwae": matching_option(out[0], [niwae]), "kl": matching_option(out[1], kls),
                "rec": matching_option(out[2], recs)}
    judged = outputs_with_right_values(expected, out, what)  # a wrong value is its own check's to fail
    for index, (label, exp) in enumerate(expected.items()):
        if label in judged:
            assert_gradients_close(backward_gradients(out[index], wrt, 1.0), oracle_gradients(exp, wrt, 1.0),
                                   what=f"{what}: the gradient of {label}", inputs=f"Inputs: x = {as_numpy(x).tolist()}",
                                   causes="Usual causes: z detached or drawn with .sample(), the prior's parameters "
                                          "detached, a log-mean-exp done outside torch.")


def _mean_bounds(impl, model, ks, n=N_EXAMPLES):
    """Sample mean over n iid examples (one batch of n copies of x) of L_k for each k."""
    x = model.x(n)
    return {k: -float(_outputs(impl.gmvae_negative_iwae_bound(x, model.encoder, model.decoder, model.prior_m,
                                                              model.prior_v, k))[0]) for k in ks}


@pytest.mark.stochastic
def test_gmvae_negative_iwae_bound_ordering_in_expectation(impl, device):
    """E L_1 <= E L_5 <= E L_50 <= log p(x) (quadrature), on the 1-D GMVAE whose L_k lie in an interval of
    length R = 14.6; n = 2000 examples per mean; one-sided Hoeffding (two-sample for the ordering).

    False-failure rate: 1e-6 (3.3e-7 per comparison). Power, each with probability at least 1 - 1e-6:
    detects E L_k above E L_k' (k < k') by 3.5 nats, and E L_50 above log p(x) by 1.8 nats (a missing
    -log iw puts it log 50 = 3.9 nats above).
    """
    model, ks = BoundedMixtureModel(device=device), (1, 5, 50)
    means = _mean_bounds(impl, model, ks)
    a = ALPHA_CHECK / 3
    shown = ", ".join(f"L_{k} = {means[k]:.4f}" for k in ks) + f", log p(x) = {model.log_px:.4f} (quadrature)"
    for lo, hi in zip(ks, ks[1:]):
        assert_two_sample_means_ordered_by_hoeffding(
            means[lo], means[hi], n=N_EXAMPLES, value_range=model.RANGE, false_fail_rate=a,
            what=f"{NAME}: mean L_{lo} <= mean L_{hi} in expectation", details=f"The bound must grow with iw. {shown}")
    assert_true_mean_at_most_by_hoeffding(
        means[50], bound=model.log_px, n=N_EXAMPLES, value_range=model.RANGE, false_fail_rate=a,
        what=f"{NAME}: mean L_50 <= log p(x) in expectation",
        details=f"No IWAE bound is above log p(x) in expectation (a missing -log iw is). {shown}")


@pytest.mark.stochastic
def test_gmvae_negative_iwae_bound_converges_towards_log_px(impl, device):
    """E L_1 exact (quadrature) and E L_200 >= E L_2 (Burda et al.; E L_2 by a 2-D quadrature, 1.7 nats
    above E L_1 here). Two-sided Hoeffding for L_1, one-sided for L_200, each at ALPHA_CHECK / 2
    (R = 14.6, n = 2000).

    False-failure rate: 1e-6 (5e-7 per comparison). Power, each with probability at least 1 - 1e-6:
    detects a bias of 1.8 nats in the mean of L_1 (a wrong prior or weight is caught exactly by replay), and
    E L_200 below E L_2 by 1.7 nats (a mean of log-weights stays at E L_1; the replay checks catch it
    exactly).
    """
    model = BoundedMixtureModel(device=device)
    means = _mean_bounds(impl, model, (1, 200))
    shown = (f"Observed L_1 = {means[1]:.4f}, L_200 = {means[200]:.4f}; exact E L_1 = {model.expected_l1:.4f}, "
             f"E L_2 = {model.expected_l2:.4f}, log p(x) = {model.log_px:.4f}")
    assert_true_mean_equal_by_hoeffding(
        means[1], expected=model.expected_l1, n=N_EXAMPLES, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK / 2,
        what=f"{NAME}(iw=1): mean over {N_EXAMPLES} examples vs E log w = {model.expected_l1:.4f}", details=shown)
    assert_true_mean_at_least_by_hoeffding(
        means[200], bound=model.expected_l2, n=N_EXAMPLES, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK / 2,
        what=f"{NAME}(iw=200): mean >= E L_2 = {model.expected_l2:.4f} in expectation",
        details=f"The bound does not tighten towards log p(x) as iw grows. {shown}")


@pytest.mark.stochastic
def test_gmvae_negative_iwae_bound_iw1_mean_equals_elbo_expectation(impl, device):
    """L_1 and -nelbo share their expectation (CLARIFICATIONS.md): E L_1 = E_q log p(x|z) + log p(z) - log q(z|x),
    by quadrature on the 1-D GMVAE whose log-weights lie in an interval of length R = 14.6. Two-sided
    Hoeffding on the mean of L_1 over n = 2000 examples. (The bound is judged on its own: the submission's
    gmvae_negative_elbo_bound meets the same expectation in a check of its own.)

    False-failure rate: 1e-6. Power: detects a bias of 1.7 nats with probability at least 1 - 1e-6.
    """
    model = BoundedMixtureModel(device=device)
    l1 = _mean_bounds(impl, model, (1,))[1]
    lo, hi = model.log_weight_interval
    if not lo <= l1 <= hi:
        raise AssertionError(f"{NAME}(iw=1): mean L_1 = {l1:.6g} over {N_EXAMPLES} examples is outside "
                             f"[{lo:.4f}, {hi:.4f}], the interval holding every log-weight of this model")
    assert_true_mean_equal_by_hoeffding(
        l1, expected=model.expected_l1, n=N_EXAMPLES, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK,
        what=f"{NAME}(iw=1): mean over {N_EXAMPLES} examples vs E[-nelbo] = {model.expected_l1:.4f} (quadrature)",
        details=f"L_1 = {l1:.4f}; with iw = 1 the bound is the ELBO in expectation")
