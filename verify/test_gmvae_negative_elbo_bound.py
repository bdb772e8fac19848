"""gmvae_negative_elbo_bound(x, encoder, decoder, prior_m, prior_v) -> (nelbo, kl, rec), batch means,
under the uniform mixture prior p(z) = (1/k) sum_j N(z; prior_m[0, j], diag prior_v[0, j]).

The checks plug in their own networks and prior (verify/models.py, verify/latent_models.py). The
decoder records the latents it is given, so each output is recomputed from the very samples the
submission drew ("replay") and judged on its own; the gradients with respect to x (through every
network) and to the prior's means and variances are compared with autograd of the float64 oracle
on the same noise.
"""
import numpy as np
import pytest
import torch

from verify import oracles
from verify.assertions import as_numpy, assert_close, check_tensor, within
from verify.contract import grades
from verify.latent_models import BoundedMixtureModel, Float32, mixture_prior
from verify.models import MLPDecoder, MLPEncoder, Recorder
from verify.stats import (
    ALPHA_CHECK,
    assert_independent_standard_pairs_by_dkwm,
    assert_true_cdf_equal_by_dkwm,
    assert_true_mean_equal_by_hoeffding,
)

pytestmark = grades("gmvae_negative_elbo_bound")

NAME = "gmvae_negative_elbo_bound"
X_DIM, Z_DIM, K = 8, 2, 3
LABELS = ("nelbo", "kl", "rec")


def _setup(device, rng, batch, requires_grad=False):
    enc = MLPEncoder(X_DIM, Z_DIM, seed=30, device=device)
    dec = Recorder(MLPDecoder(Z_DIM, X_DIM, seed=31, device=device))
    x = torch.as_tensor((rng.uniform(size=(batch, X_DIM)) < 0.5).astype(float), device=device)
    prior_m, prior_v = mixture_prior(K, Z_DIM, seed=32, device=device)
    if requires_grad:
        x, prior_m, prior_v = (t.clone().requires_grad_(True) for t in (x, prior_m, prior_v))
    return x, enc, dec, prior_m, prior_v


def _outputs(out, labels=LABELS, name=NAME):
    if not isinstance(out, (tuple, list)) or len(out) != len(labels):
        raise AssertionError(f"{name} returned {type(out).__name__}, expected the tuple ({', '.join(labels)})")
    for label, t in zip(labels, out):
        check_tensor(t, name=f"{name}: {label}", shape=())
    return out


class ElboReplay:
    """Per decoded sample s and example b: the Monte Carlo KL log q(z|x) - log p(z) under the mixture,
    -log p(x|z), and the same KL against N(0, I) and without the mixture's -log k (for the hints)."""

    def __init__(self, x, enc, dec, prior_m, prior_v):
        batch = x.shape[0]
        self.z = dec.by_example(batch, Z_DIM, NAME)  # (S, B, D)
        m, v = (as_numpy(t) for t in enc(x))
        pm, pv = as_numpy(prior_m), as_numpy(prior_v)
        flat = self.z.reshape(-1, Z_DIM)
        log_q = oracles.log_normal(self.z, m, v)
        log_p = oracles.log_normal_mixture(flat, pm, pv).reshape(log_q.shape)
        self.kl = log_q - log_p  # (S, B)
        self.kl_standard = log_q - oracles.log_standard_normal(self.z)
        self.kl_missing_log_k = self.kl - np.log(pm.shape[1])
        logits = as_numpy(dec.decoder(torch.as_tensor(self.z, device=x.device)))
        self.rec = -oracles.log_bernoulli_with_logits(as_numpy(x)[None], logits)  # (S, B)
        self.eps = (self.z - m) / np.sqrt(v)

    @staticmethod
    def options(per_sample):
        """The batch mean over all decoded samples, and over each sample s (a student may decode twice)."""
        return [float(per_sample.mean())] + [float(r.mean()) for r in per_sample]

    def nelbo_options(self):
        kls, recs = self.options(self.kl), self.options(self.rec)
        return [k + r for k in kls for r in recs]


def _closest(value, options):
    return min(options, key=lambda o: abs(o - float(value)))


def _run(impl, device, rng, batch=6):
    x, enc, dec, pm, pv = _setup(device, rng, batch)
    out = _outputs(impl.gmvae_negative_elbo_bound(x, enc, dec, pm, pv))
    return out, ElboReplay(x, enc, dec, pm, pv)


def test_gmvae_negative_elbo_bound_returns_batch_mean_scalars(impl, device, rng):
    """Three 0-dim tensors, each finite and depending on the batch."""
    x, enc, dec, pm, pv = _setup(device, rng, 6)
    first = _outputs(impl.gmvae_negative_elbo_bound(x, enc, dec, pm, pv))
    other = _outputs(impl.gmvae_negative_elbo_bound(1 - x, enc, dec, pm, pv))
    for label, a, b in zip(LABELS, first, other):
        if not np.isfinite(float(a)) or float(a) == float(b):
            raise AssertionError(
                f"{NAME}: {label} = {float(a):.10g} on one batch and {float(b):.10g} on another: it does not respond "
                "to its input (a placeholder such as `return 0, 0, 0` is not an implementation)")


def test_gmvae_negative_elbo_bound_nelbo_by_replay(impl, device, rng):
    """nelbo = mean_b [log q(z_b|x_b) - log p(z_b) - log p(x_b|z_b)] at the decoded samples, p the mixture."""
    (nelbo, _, _), replay = _run(impl, device, rng)
    expected = _closest(nelbo, replay.nelbo_options())
    assert_close(nelbo, expected, what=f"{NAME}: nelbo = mean_b (log q(z_b|x_b) - log p(z_b)) + mean_b -log p(x_b|z_b) "
                 "for the decoded samples z_b, p the uniform mixture prior",
                 inputs=f"Replayed kl {replay.options(replay.kl)[0]:.10g}, rec {replay.options(replay.rec)[0]:.10g}",
                 rtol=1e-10, atol=1e-12)


def _kl_hint(kl, replay):
    """What the observed kl matches, when it matches a known mistake."""
    for per_sample, what in ((replay.kl_standard, "the KL against N(0, I), not the mixture prior"),
                             (replay.kl_missing_log_k, "the mixture's log density without its -log k (a sum over "
                              "the components, not a mean)"),
                             (replay.kl * len(replay.kl[0]), "a sum over the batch, not a mean")):
        if any(within(kl, o) for o in replay.options(per_sample)):
            return f" It equals {what}."
    return ""


def test_gmvae_negative_elbo_bound_kl_by_replay(impl, device, rng):
    """kl = mean_b log q(z_b|x_b) - log p(z_b), the Monte Carlo KL at the decoded sample, p the mixture."""
    (_, kl, _), replay = _run(impl, device, rng)
    assert_close(kl, _closest(kl, replay.options(replay.kl)),
                 what=f"{NAME}: kl = mean_b log N(z_b; m_b, v_b) - log (1/k) sum_j N(z_b; prior_m_j, prior_v_j) at the "
                 "decoded samples z_b", inputs=f"Per-example: {np.round(replay.kl.mean(0), 6).tolist()}."
                 + _kl_hint(kl, replay), rtol=1e-10, atol=1e-12)


def test_gmvae_negative_elbo_bound_rec_by_replay(impl, device, rng):
    """rec = -mean_b log p(x_b | z_b) for the latents the decoder actually received."""
    (_, _, rec), replay = _run(impl, device, rng)
    hint = (" rec has the sign of the log-likelihood: it is a loss, -log p(x|z)."
            if any(within(-float(rec), o) for o in replay.options(replay.rec)) else "")
    assert_close(rec, _closest(rec, replay.options(replay.rec)),
                 what=f"{NAME}: rec = -mean_b log p(x_b|z_b), summed over pixels, for the decoded samples z_b",
                 inputs=f"Per-example -log p(x|z): {np.round(replay.rec.mean(0), 6).tolist()}.{hint}",
                 rtol=1e-10, atol=1e-12)


def _oracle_outputs(x, enc, dec, prior_m, prior_v, eps):
    """(nelbo, kl, rec) in torch float64 at z = m(x) + sqrt(v(x)) eps: differentiable in x and the prior."""
    m, v = enc(x)
    z = m + torch.sqrt(v) * eps
    kl = (oracles.torch_log_normal(z, m, v) - oracles.torch_log_normal_mixture(z, prior_m, prior_v)).mean()
    rec = -oracles.torch_log_bernoulli_with_logits(x, dec.decoder(z)).mean()
    return kl + rec, kl, rec


@pytest.mark.parametrize("output", LABELS)
def test_gmvae_negative_elbo_bound_gradients(impl, device, rng, output):
    """d output / d (x, prior_m, prior_v) = autograd of the float64 oracle at the decoded sample's noise.

    x reaches the encoder and, through the reparameterized z, the decoder: a z, m or v detached from
    the graph, or a prior that is not differentiated, changes the gradient with respect to x or the prior.
    """
    x, enc, dec, pm, pv = _setup(device, rng, 5, requires_grad=True)
    index = LABELS.index(output)
    out = _outputs(impl.gmvae_negative_elbo_bound(x, enc, dec, pm, pv))[index]
    replay = ElboReplay(x.detach(), enc, dec, pm.detach(), pv.detach())  # before backward: it may call again
    if not out.requires_grad:
        raise AssertionError(f"{NAME}: {output} does not require grad although x and the prior do: it is detached "
                             "from the graph (no gradient would reach the networks or the prior)")
    got = torch.autograd.grad(out, (x, pm, pv), allow_unused=True)
    got = [torch.zeros_like(t) if g is None else g for g, t in zip(got, (x, pm, pv))]
    candidates = []
    for eps in replay.eps:
        ref = _oracle_outputs(x, enc, dec, pm, pv, torch.as_tensor(eps, device=device))[index]
        candidates.append((float(ref.detach()), torch.autograd.grad(ref, (x, pm, pv), allow_unused=True)))
    value, expected = min(candidates, key=lambda c: abs(c[0] - float(out.detach())))
    for label, g, e in zip(("x", "prior_m", "prior_v"), got, expected):
        e = torch.zeros_like(g) if e is None else e
        assert_close(g, as_numpy(e), what=f"{NAME}: d {output} / d {label}",
                     inputs=f"Autograd of the float64 oracle at the decoded samples' noise ({output} = {value:.10g}). "
                     "A zero or partial gradient means part of the computation was detached (z, m, v, the prior).",
                     rtol=1e-8, atol=1e-10)


@pytest.mark.stochastic
def test_gmvae_negative_elbo_bound_decodes_samples_from_q(impl, device, rng):
    """The decoded latents are fresh draws from q(z|x_b): standardized, N(0, 1), independent across the
    batch (DKW; alpha/2 for the distribution, alpha/2 for the pairs (b, b + B/2)).

    False-failure rate: 1e-6 (5e-7 each). Power, each with probability at least 1 - 1e-6: detects a
    sup-CDF error of 0.061 in the 8,000 standardized latents (a standard deviation 29% off), shared
    noise always, and a correlation of 0.52 between examples b and b + B/2 (4,000 examples: a
    per-example loop finishes in seconds; the sampler's own checks have the finer power).
    """
    batch = 4000
    x, enc, dec, pm, pv = _setup(device, rng, batch)
    impl.gmvae_negative_elbo_bound(x, enc, dec, pm, pv)
    z = dec.by_example(batch, Z_DIM, NAME)
    m, v = (as_numpy(t) for t in enc(x))
    eps = (z - m) / np.sqrt(v)
    what = f"{NAME}: decoded latents standardized by q(z|x), (z - m)/sqrt(v)"
    assert_true_cdf_equal_by_dkwm(eps, false_fail_rate=ALPHA_CHECK / 2, what=what + " (a sample, not the mean m)")
    assert_independent_standard_pairs_by_dkwm(eps[:, : batch // 2], eps[:, batch // 2:],
                                              false_fail_rate=ALPHA_CHECK / 2, what=what + ", examples b and b + B/2")


@pytest.mark.stochastic
def test_gmvae_negative_elbo_bound_mean_equals_exact_elbo(impl, device):
    """mean_b -nelbo_b over n = 2000 examples vs the exact ELBO E_q[log p(x|z) + log p(z) - log q(z|x)] of the
    1-D GMVAE (verify/latent_models.py: q one of the prior's components, logits bounded), by quadrature.
    Every one-sample -nelbo_b lies in an interval of length R = 14.6: two-sided Hoeffding. (The IWAE's
    L_1 meets the same expectation in a check of its own.)

    False-failure rate: 1e-6. Power: detects a bias of 1.7 nats with probability at least 1 - 1e-6.
    """
    model, n = BoundedMixtureModel(device=device), 2000
    nelbo = _outputs(impl.gmvae_negative_elbo_bound(model.x(n), model.encoder, model.decoder, model.prior_m,
                                                    model.prior_v))[0]
    assert_true_mean_equal_by_hoeffding(
        -float(nelbo), expected=model.expected_l1, n=n, value_range=model.RANGE, false_fail_rate=ALPHA_CHECK,
        what=f"{NAME}: -nelbo over {n} examples vs the exact ELBO {model.expected_l1:.4f} (quadrature)",
        details=f"-nelbo = {-float(nelbo):.4f}, log p(x) = {model.log_px:.4f}")


def test_gmvae_negative_elbo_bound_float32(impl, device, rng):
    """float32 networks, data and prior give float32 outputs, with the float64 replay's values (to float32 precision)."""
    x, enc, dec, pm, pv = _setup(device, rng, 4)
    out = _outputs(impl.gmvae_negative_elbo_bound(x.float(), Float32(enc), Float32(dec), pm.float(), pv.float()))
    for label, t in zip(LABELS, out):
        check_tensor(t, name=f"{NAME} on float32 inputs: {label}", shape=(), dtype=torch.float32, device=device.type)
    replay = ElboReplay(x, enc, dec, pm.float().double(), pv.float().double())
    assert_close(out[0], _closest(out[0], replay.nelbo_options()), what=f"{NAME} on float32 inputs: nelbo vs the "
                 "float64 replay", rtol=1e-5, atol=1e-5, ops=64)
