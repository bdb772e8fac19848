"""Planted bugs in the VAE side of the contract. Each function is the reference with one bug;
its ``teaches`` sentence completes "your output equals what you get by ...".
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from impls import kl_normal, log_bernoulli_with_logits, log_mean_exp, log_normal, sample_gaussian
from impls.gaussian import LOG_2PI
from grader.catalogue.registry import bug

# ---------------------------------------------------------------- sample_gaussian


@bug("sample_gaussian", "using the variance where the standard deviation is expected: z = m + v * eps")
def sample_std_as_variance(m, v):
    return m + v * torch.randn_like(m)


@bug("sample_gaussian", "sampling with torch.normal(m, sqrt(v)), which is not reparameterized: its gradients are zero")
def sample_torch_normal(m, v):
    return torch.normal(m, torch.sqrt(v))


@bug("sample_gaussian", "detaching the sample from the graph, so no gradient reaches m and v")
def sample_detached(m, v):
    return (m + torch.sqrt(v) * torch.randn_like(m)).detach()


@bug("sample_gaussian", "drawing with Normal(m, sqrt(v)).sample() instead of .rsample(): no gradients")
def sample_distribution_sample(m, v):
    return Normal(m, torch.sqrt(v)).sample()


@bug("sample_gaussian", "detaching the variance, so no gradient reaches v")
def sample_variance_detached(m, v):
    return m + torch.sqrt(v.detach()) * torch.randn_like(m)


@bug("sample_gaussian", "drawing one noise vector and sharing it across the batch")
def sample_noise_shared_across_batch(m, v):
    return m + torch.sqrt(v) * torch.randn(m.shape[-1], dtype=m.dtype, device=m.device)


@bug("sample_gaussian", "drawing one noise value per example and sharing it across the elements")
def sample_noise_shared_across_elements(m, v):
    return m + torch.sqrt(v) * torch.randn(*m.shape[:-1], 1, dtype=m.dtype, device=m.device)


@bug("sample_gaussian", "using uniform noise (torch.rand, rescaled to variance 1) instead of Gaussian noise")
def sample_uniform_noise(m, v):
    return m + torch.sqrt(v) * (torch.rand_like(m) - 0.5) * math.sqrt(12)


# ---------------------------------------------------------------- log_normal


@bug("log_normal", "using the variance as a standard deviation: log N(x; m, v^2)")
def log_normal_std_as_variance(x, m, v):
    return -0.5 * (LOG_2PI + 2 * torch.log(v) + (x - m) ** 2 / v**2).sum(-1)


@bug("log_normal", "taking the mean over the last dimension instead of the sum")
def log_normal_mean_over_dim(x, m, v):
    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).mean(-1)


@bug("log_normal", "leaving out the log(2 pi) constant")
def log_normal_missing_2pi(x, m, v):
    return -0.5 * (torch.log(v) + (x - m) ** 2 / v).sum(-1)


@bug("log_normal", "leaving out the log-variance term -1/2 log v")
def log_normal_missing_log_variance(x, m, v):
    return -0.5 * (LOG_2PI + (x - m) ** 2 / v).sum(-1)


@bug("log_normal", "adding +1/2 log v instead of subtracting it", fix="log N(x; m, v) = -1/2 (log 2 pi + log v + "
     "(x - m)^2 / v), summed over the last dimension")
def log_normal_log_variance_sign_flipped(x, m, v):
    return -0.5 * (LOG_2PI - torch.log(v) + (x - m) ** 2 / v).sum(-1)


@bug("log_normal", "flipping the sign of the log density")
def log_normal_sign_flipped(x, m, v):
    return 0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)


# ---------------------------------------------------------------- log_normal_mixture


@bug("log_normal_mixture", "leaving out the -log K of the uniform mixture weights (a sum, not a mean)")
def mixture_missing_log_k(z, m, v):
    return torch.logsumexp(log_normal(z.unsqueeze(-2), m, v), -1)


@bug("log_normal_mixture", "computing log(mean(exp(.))) directly, which underflows to -inf for far components")
def mixture_naive_log_mean_exp(z, m, v):
    return torch.log(torch.exp(log_normal(z.unsqueeze(-2), m, v)).mean(-1))


@bug("log_normal_mixture", "averaging the components' log densities instead of their densities")
def mixture_mean_of_log_densities(z, m, v):
    return log_normal(z.unsqueeze(-2), m, v).mean(-1)


# ---------------------------------------------------------------- kl_normal


@bug("kl_normal", "using the variances as standard deviations")
def kl_std_as_variance(qm, qv, pm, pv):
    return 0.5 * (2 * torch.log(pv) - 2 * torch.log(qv) + (qv**2 + (qm - pm) ** 2) / pv**2 - 1).sum(-1)


@bug("kl_normal", "computing KL(p || q), the reverse direction")
def kl_reversed(qm, qv, pm, pv):
    return kl_normal(pm, pv, qm, qv)


@bug("kl_normal", "ignoring the prior arguments and always comparing against N(0, I)")
def kl_ignores_prior(qm, qv, pm, pv):
    return 0.5 * (-torch.log(qv) + qv + qm**2 - 1).sum(-1)


@bug("kl_normal", "taking the mean over the last dimension instead of the sum")
def kl_mean_over_dim(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).mean(-1)


@bug("kl_normal", "flipping the sign of the KL")
def kl_sign_flipped(qm, qv, pm, pv):
    return -kl_normal(qm, qv, pm, pv)


@bug("kl_normal", "leaving out the log-variance term log(pv / qv)")
def kl_missing_log_variance(qm, qv, pm, pv):
    return 0.5 * ((qv + (qm - pm) ** 2) / pv - 1).sum(-1)


# ---------------------------------------------------------------- log_bernoulli_with_logits


@bug("log_bernoulli_with_logits", "writing log(sigmoid(l)), which is -inf for logits below about -750 (float64)")
def bernoulli_log_of_sigmoid(x, logits):
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


@bug("log_bernoulli_with_logits", "averaging the binary cross-entropy over pixels instead of summing it")
def bernoulli_mean_over_pixels(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(-1)


@bug("log_bernoulli_with_logits", "returning the binary cross-entropy (the negative log-likelihood)")
def bernoulli_sign_flipped(x, logits):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


@bug("log_bernoulli_with_logits", "reducing over the whole batch (reduction='sum'), one number instead of one per example")
def bernoulli_batch_reduced(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="sum")


@bug("log_bernoulli_with_logits", "swapping the roles of x and the logits")
def bernoulli_arguments_swapped(x, logits):
    return (logits * x + F.logsigmoid(-x)).sum(-1)


# ---------------------------------------------------------------- log_mean_exp


@bug("log_mean_exp", "computing log(mean(exp(x))) directly, which overflows at 1e4 and underflows at -1e4")
def lme_naive(x, dim):
    return torch.log(torch.exp(x).mean(dim))


@bug("log_mean_exp", "shifting by the maximum of the whole tensor instead of the maximum along dim")
def lme_global_max_shift(x, dim):
    c = x.max()
    return c + torch.log(torch.exp(x - c).mean(dim))


@bug("log_mean_exp", "leaving out the -log n (a log-sum-exp, not a log-mean-exp)")
def lme_missing_log_n(x, dim):
    return torch.logsumexp(x, dim)


@bug("log_mean_exp", "dividing by the number of elements of the whole tensor instead of x.size(dim)")
def lme_numel_denominator(x, dim):
    return torch.logsumexp(x, dim) - math.log(x.numel())


@bug("log_mean_exp", "averaging the log values instead of the values (mean of logs)")
def lme_mean_of_logs(x, dim):
    return x.mean(dim)


# ---------------------------------------------------------------- negative_elbo_bound


def _prior(m, v):
    return torch.zeros_like(m), torch.ones_like(v)


def _encode_decode(x, encoder, decoder):
    """q(z|x)'s (m, v) and the decoder's logits for one reparameterized z ~ q(z|x), as the reference draws it."""
    m, v = encoder(x)
    return m, v, decoder(sample_gaussian(m, v))


def _kl_to_prior(m, v):
    """KL(q(z|x) || p(z)) per example."""
    return kl_normal(m, v, *_prior(m, v))


def _nelbo(kl, rec):
    """The bound's outputs (nelbo, kl, rec) from its two terms, as the reference returns them."""
    return kl + rec, kl, rec


@bug("negative_elbo_bound", "giving rec the wrong sign: +E_q log p(x|z) instead of -E_q log p(x|z)")
def elbo_rec_wrong_sign(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    return _nelbo(_kl_to_prior(m, v).mean(), log_bernoulli_with_logits(x, logits).mean())


@bug("negative_elbo_bound", "reporting rec with the wrong sign while nelbo is right: rec = E_q log p(x|z), "
     "nelbo = kl - rec", fix="return rec = -log_bernoulli_with_logits(x, logits).mean(), a loss, and nelbo = kl + rec")
def elbo_rec_reported_negated(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    kl, log_lik = _kl_to_prior(m, v).mean(), log_bernoulli_with_logits(x, logits).mean()
    return kl - log_lik, kl, log_lik


@bug("negative_elbo_bound", "summing the KL over the batch instead of averaging it",
     fix="kl = kl_normal(m, v, prior_m, prior_v).mean(): the outputs are batch means")
def elbo_kl_summed_over_batch(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    return _nelbo(_kl_to_prior(m, v).sum(), -log_bernoulli_with_logits(x, logits).mean())


@bug("negative_elbo_bound", "averaging the binary cross-entropy over pixels (F.binary_cross_entropy's default)",
     fix="rec = -log_bernoulli_with_logits(x, logits).mean(): a sum over the pixels, a mean over the batch")
def elbo_bce_averaged_over_pixels(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    return _nelbo(_kl_to_prior(m, v).mean(), F.binary_cross_entropy_with_logits(logits, x))


@bug("negative_elbo_bound", "returning per-example values where batch-mean scalars are due")
def elbo_per_example_outputs(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    return _nelbo(_kl_to_prior(m, v), -log_bernoulli_with_logits(x, logits))


@bug("negative_elbo_bound", "decoding the posterior mean m instead of a sample z ~ q(z|x)")
def elbo_decodes_posterior_mean(x, encoder, decoder):
    m, v = encoder(x)
    return _nelbo(_kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, decoder(m)).mean())


@bug("negative_elbo_bound", "subtracting the KL: nelbo = rec - kl")
def elbo_minus_kl(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    kl, rec = _kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, logits).mean()
    return rec - kl, kl, rec


@bug("negative_elbo_bound", "computing KL(p(z) || q(z|x)) instead of KL(q(z|x) || p(z))")
def elbo_kl_reversed(x, encoder, decoder):
    m, v, logits = _encode_decode(x, encoder, decoder)
    return _nelbo(kl_normal(*_prior(m, v), m, v).mean(), -log_bernoulli_with_logits(x, logits).mean())


# ---------------------------------------------------------------- negative_iwae_bound


def _iwae_from_log_w(log_w, log_px_z, m, v):
    """(niwae, kl, rec) from sample-major log-weights (iw, B) with the reference's conventions."""
    kl = kl_normal(m, v, *_prior(m, v)).mean()
    return -log_mean_exp(log_w, 0).mean(), kl, -log_px_z.mean()


def _weights(x, encoder, decoder, iw, prior=True, posterior=True):
    m, v = encoder(x)
    z = sample_gaussian(m.expand(iw, *m.shape), v.expand(iw, *v.shape))
    log_px_z = log_bernoulli_with_logits(x, decoder(z))
    log_w = log_px_z.clone()
    if prior:
        log_w = log_w + log_normal(z, *_prior(m, v))
    if posterior:
        log_w = log_w - log_normal(z, m, v)
    return log_w, log_px_z, m, v


@bug("negative_iwae_bound", "duplicating the batch rep-major (x.repeat(iw, 1), as the CS236 duplicate does) and then "
     "grouping with view(-1, iw), which mixes different examples' weights (the official CS236 grader accepts this)",
     fix="group each example's own iw weights: with rep-major duplicates, log_w.view(iw, -1) and log_mean_exp over "
     "dim 0 (or lay the samples out as (B, iw) with x.unsqueeze(1).expand(-1, iw, -1))")
def iwae_grouping_bug(x, encoder, decoder, iw):
    m, v = encoder(x)
    x_dup, m_dup, v_dup = (t.repeat(iw, *([1] * (t.dim() - 1))) for t in (x, m, v))
    z = sample_gaussian(m_dup, v_dup)
    log_px_z = log_bernoulli_with_logits(x_dup, decoder(z))
    log_w = log_px_z + log_normal(z, *_prior(m_dup, v_dup)) - log_normal(z, m_dup, v_dup)
    niwae = -log_mean_exp(log_w.view(-1, iw), 1).mean()
    return niwae, kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


@bug("negative_iwae_bound", "leaving the prior term log p(z) out of the log-weights")
def iwae_missing_prior(x, encoder, decoder, iw):
    return _iwae_from_log_w(*_weights(x, encoder, decoder, iw, prior=False))


@bug("negative_iwae_bound", "leaving the proposal term -log q(z|x) out of the log-weights")
def iwae_missing_q(x, encoder, decoder, iw):
    return _iwae_from_log_w(*_weights(x, encoder, decoder, iw, posterior=False))


@bug("negative_iwae_bound", "averaging the log-weights instead of taking the log of the mean weight (that is the ELBO)")
def iwae_mean_of_log_weights(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -log_w.mean(0).mean(), kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


@bug("negative_iwae_bound", "drawing one sample z and reusing it for all iw importance samples")
def iwae_sample_reused(x, encoder, decoder, iw):
    m, v = encoder(x)
    z = sample_gaussian(m, v).expand(iw, *m.shape)
    log_px_z = log_bernoulli_with_logits(x, decoder(z))
    log_w = log_px_z + log_normal(z, *_prior(m, v)) - log_normal(z, m, v)
    return _iwae_from_log_w(log_w, log_px_z, m, v)


@bug("negative_iwae_bound", "putting the batch-mean reconstruction loss rec (one scalar) into the log-weights in place of "
     "each sample's log p(x|z_i)", fix="log_w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), with log p(x|z_i) per sample "
     "and example (before any mean)")
def iwae_scalar_rec_in_weights(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    rec = -log_px_z.mean()
    log_w = log_w - log_px_z - rec
    return -log_mean_exp(log_w, 0).mean(), kl_normal(m, v, *_prior(m, v)).mean(), rec


@bug("negative_iwae_bound", "taking the largest weight instead of the mean weight")
def iwae_max_weight(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -log_w.max(0).values.mean(), kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


@bug("negative_iwae_bound", "leaving out the -log iw: a log of the sum of the weights, not of their mean")
def iwae_missing_log_k(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -torch.logsumexp(log_w, 0).mean(), kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


@bug("negative_iwae_bound", "returning per-example values where batch-mean scalars are due")
def iwae_per_example_outputs(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -log_mean_exp(log_w, 0), kl_normal(m, v, *_prior(m, v)), -log_px_z.mean(0)


@bug("negative_iwae_bound", "computing log(mean(exp(log w))) directly, which underflows for log-weights near -1e4")
def iwae_naive_log_mean_exp(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -torch.log(torch.exp(log_w).mean(0)).mean(), kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


@bug("negative_iwae_bound", "giving rec the wrong sign: +log p(x|z) averaged over the samples")
def iwae_rec_wrong_sign(x, encoder, decoder, iw):
    niwae, kl, rec = _iwae_from_log_w(*_weights(x, encoder, decoder, iw))
    return niwae, kl, -rec


# ---------------------------------------------------------------- gradient-only bugs: right value, wrong gradient


@bug("log_normal", "computing log v in numpy and turning it back into a tensor: the value is right, but no gradient "
     "reaches v through the log-variance term", fix="keep every term in torch: torch.log(v)")
def log_normal_log_variance_in_numpy(x, m, v):
    log_v = torch.as_tensor(np.log(v.detach().cpu().numpy()), dtype=v.dtype, device=v.device)
    return -0.5 * (LOG_2PI + log_v + (x - m) ** 2 / v).sum(-1)


@bug("kl_normal", "detaching the prior's variance (pv.detach()): the value is right, the gradient with respect to pv "
     "is wrong")
def kl_prior_variance_detached(qm, qv, pm, pv):
    pv = pv.detach()
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)


@bug("log_bernoulli_with_logits", "detaching the softplus(l) term of x l - softplus(l): right value, wrong gradient "
     "with respect to the logits")
def bernoulli_softplus_detached(x, logits):
    return (x * logits - F.softplus(logits).detach()).sum(-1)


@bug("log_mean_exp", "computing the log-mean-exp in numpy (scipy.special.logsumexp) and converting back: right "
     "value, no gradient", fix="torch.logsumexp(x, dim) - log n keeps the graph")
def lme_in_numpy(x, dim):
    from scipy.special import logsumexp

    out = logsumexp(x.detach().cpu().numpy(), axis=dim) - math.log(x.shape[dim])
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)


@bug("log_normal_mixture", "taking the log-mean-exp over the components in numpy: right value, no gradient")
def mixture_log_mean_exp_in_numpy(z, m, v):
    return lme_in_numpy(log_normal(z.unsqueeze(-2), m, v), -1)


@bug("negative_elbo_bound", "drawing z with Normal(m, sqrt(v)).sample() instead of .rsample(): the value is right, "
     "but the encoder gets no gradient through the reconstruction term", fix="z = m + sqrt(v) * eps (.rsample())")
def elbo_z_sampled_without_gradient(x, encoder, decoder):
    m, v = encoder(x)
    z = Normal(m, torch.sqrt(v)).sample()
    return _nelbo(_kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, decoder(z)).mean())


@bug("negative_elbo_bound", "detaching z before decoding it: right value, but no gradient reaches the encoder through "
     "the reconstruction term")
def elbo_z_detached(x, encoder, decoder):
    m, v = encoder(x)
    z = sample_gaussian(m, v).detach()
    return _nelbo(_kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, decoder(z)).mean())


@bug("negative_iwae_bound", "detaching the samples z: right value, but the encoder's gradient misses the path through "
     "the samples")
def iwae_z_detached(x, encoder, decoder, iw):
    m, v = encoder(x)
    z = sample_gaussian(m.expand(iw, *m.shape), v.expand(iw, *v.shape)).detach()
    log_px_z = log_bernoulli_with_logits(x, decoder(z))
    log_w = log_px_z + log_normal(z, *_prior(m, v)) - log_normal(z, m, v)
    return _iwae_from_log_w(log_w, log_px_z, m, v)


@bug("negative_iwae_bound", "computing the log-mean-exp of the weights in numpy and converting back: right value, no "
     "gradient through the bound")
def iwae_log_mean_exp_in_numpy(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -lme_in_numpy(log_w, 0).mean(), kl_normal(m, v, *_prior(m, v)).mean(), -log_px_z.mean()


# ---------------------------------------------------------------- side effects: inputs changed in place


@bug("log_mean_exp", "shifting x by its maximum in place (x -= max): the value is right, but the caller's tensor is "
     "changed", fix="c = x.max(dim, keepdim=True).values; work on x - c, a new tensor")
def lme_shifts_input_in_place(x, dim):
    c = x.detach().max(dim, keepdim=True).values
    with torch.no_grad():
        x.sub_(c)
    return (torch.log(torch.exp(x).mean(dim, keepdim=True)) + c).squeeze(dim)


@bug("log_normal", "centring x in place (x.sub_(m)): the value is right, but the caller's x is changed")
def log_normal_centres_x_in_place(x, m, v):
    with torch.no_grad():
        x.sub_(m.expand_as(x)) if x.shape == torch.broadcast_shapes(x.shape, m.shape) else None
    d = x if x.shape == torch.broadcast_shapes(x.shape, m.shape) else x - m
    return -0.5 * (LOG_2PI + torch.log(v) + d**2 / v).sum(-1)


# ---------------------------------------------------------------- inputs beyond the usual range


@bug("kl_normal", "summing over dim 1 instead of the last dim: the same on (B, D) inputs, wrong on 1-D, 3-D and 4-D ones",
     fix="sum over the last dimension: .sum(-1)")
def kl_sum_over_dim_1(qm, qv, pm, pv):
    qm, qv, pm, pv = torch.broadcast_tensors(qm, qv, pm, pv)
    terms = 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1)
    return terms.sum(1) if terms.dim() > 1 else terms.sum(0)


@bug("log_bernoulli_with_logits", "picking log sigmoid(l) where x is 1 and log sigmoid(-l) elsewhere: right for binary x "
     "only, wrong for x in (0, 1)", fix="x log sigmoid(l) + (1 - x) log sigmoid(-l), a weighted sum for any x in [0, 1]")
def bernoulli_binary_only(x, logits):
    return torch.where(x > 0.5, F.logsigmoid(logits), F.logsigmoid(-logits)).sum(-1)


@bug("log_normal", "taking the log of the exponentiated density, log(exp(...)): the exp underflows to 0 far in the "
     "tails (50 standard deviations out) and the log gives -inf", fix="compute the log density directly")
def log_normal_log_of_exp(x, m, v):
    return torch.log(torch.exp(-0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v))).sum(-1)


@bug("negative_elbo_bound", "clamping the encoder's variance to at least 1e-4: the same for ordinary variances, wrong "
     "for small ones (the contract's v goes down to 1e-6)")
def elbo_variance_clamped(x, encoder, decoder):
    m, v = encoder(x)
    v = v.clamp(min=1e-4)
    return _nelbo(_kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, decoder(sample_gaussian(m, v))).mean())


@bug("negative_iwae_bound", "clamping the encoder's variance to at least 1e-4: wrong for the contract's small variances")
def iwae_variance_clamped(x, encoder, decoder, iw):
    def clamped(t):
        m, v = encoder(t)
        return m, v.clamp(min=1e-4)

    return _iwae_from_log_w(*_weights(x, clamped, decoder, iw))


# ---------------------------------------------------------------- IWAE chunking (as impls/bounds.py chunks)


def _chunked(x, encoder, decoder, iw, *, chunk_fn, combine="logaddexp", rec_last_only=False):
    """The reference's chunked IWAE loop with one of its steps changed (``chunk_fn(iw, numel, elements)``: the
    chunk size, from the reference's chunk of ``elements`` = IWAE_CHUNK_ELEMENTS decoder outputs, read at call
    time so that the bugs chunk where the reference and the chunked checks do; the others as named)."""
    from impls.bounds import IWAE_CHUNK_ELEMENTS

    m, v = encoder(x)
    chunk = chunk_fn(iw, x.numel(), IWAE_CHUNK_ELEMENTS)
    parts, rec_sum, rec_n = [], 0.0, 0
    for start in range(0, iw, chunk):
        k = chunk if chunk_fn.__name__ == "_full_last_chunk" else min(chunk, iw - start)
        z = sample_gaussian(m.expand(k, *m.shape), v.expand(k, *v.shape))
        log_px_z = log_bernoulli_with_logits(x, decoder(z))
        parts.append(log_px_z + log_normal(z, *_prior(m, v)) - log_normal(z, m, v))
        rec_sum, rec_n = (0.0, 0) if rec_last_only else (rec_sum, rec_n)
        rec_sum, rec_n = rec_sum + log_px_z.sum(0), rec_n + k
    if combine == "mean":
        iwae = torch.stack([log_mean_exp(p, 0) for p in parts]).mean(0)
    else:
        iwae = torch.logsumexp(torch.cat(parts), 0) - math.log(iw)
    return -iwae.mean(), kl_normal(m, v, *_prior(m, v)).mean(), -(rec_sum / rec_n).mean()


def _reference_chunk(iw, numel, elements):
    return max(1, min(iw, elements // max(1, numel)))


def _no_floor_chunk(iw, numel, elements):
    return min(iw, elements // numel)


def _full_last_chunk(iw, numel, elements):
    return _reference_chunk(iw, numel, elements)


@bug("negative_iwae_bound", "sizing the chunk as chunk_elements // x.numel() without a floor of 1: a batch larger than "
     "a chunk gets chunks of 0 samples (range() with step 0 raises)", fix="chunk = max(1, min(iw, elements // numel))")
def iwae_chunk_size_zero(x, encoder, decoder, iw):
    return _chunked(x, encoder, decoder, iw, chunk_fn=_no_floor_chunk)


@bug("negative_iwae_bound", "drawing a full chunk in the last iteration too: more than iw samples when iw is not a "
     "multiple of the chunk", fix="the last chunk draws min(chunk, iw - start) samples")
def iwae_last_chunk_too_large(x, encoder, decoder, iw):
    return _chunked(x, encoder, decoder, iw, chunk_fn=_full_last_chunk)


@bug("negative_iwae_bound", "taking rec from the last chunk's samples only", fix="accumulate log p(x|z) over every chunk")
def iwae_rec_from_last_chunk(x, encoder, decoder, iw):
    return _chunked(x, encoder, decoder, iw, chunk_fn=_reference_chunk, rec_last_only=True)


@bug("negative_iwae_bound", "averaging the chunks' bounds instead of combining their log-sum-exps: the log-mean-exp "
     "of all iw weights is not the mean of the chunks' log-mean-exps", fix="logaddexp the chunks' logsumexp, then -log iw")
def iwae_chunk_bounds_averaged(x, encoder, decoder, iw):
    return _chunked(x, encoder, decoder, iw, chunk_fn=_reference_chunk, combine="mean")


@bug("negative_iwae_bound", "summing the analytic KL over the batch instead of averaging it (invisible on one example)")
def iwae_kl_summed_over_batch(x, encoder, decoder, iw):
    log_w, log_px_z, m, v = _weights(x, encoder, decoder, iw)
    return -log_mean_exp(log_w, 0).mean(), kl_normal(m, v, *_prior(m, v)).sum(), -log_px_z.mean()


# ---------------------------------------------------------------- noise: power and state

_NOISE_CACHE: dict = {}


@bug("sample_gaussian", "caching the noise in a module-level dict by shape: every call with the same shape reuses it")
def sample_noise_cached(m, v):
    key = (tuple(torch.broadcast_shapes(m.shape, v.shape)), m.dtype, str(m.device))
    if key not in _NOISE_CACHE:
        _NOISE_CACHE[key] = torch.randn(key[0], dtype=m.dtype, device=m.device)
    return m + torch.sqrt(v) * _NOISE_CACHE[key]


@bug("sample_gaussian", "calling torch.manual_seed(0) inside the function: every call draws the same noise and the "
     "caller's RNG stream is reset", fix="never reseed; draw from the global RNG (or a generator of your own)")
def sample_reseeds_rng(m, v):
    torch.manual_seed(0)
    return m + torch.sqrt(v) * torch.randn_like(m)


@bug("sample_gaussian", "truncating the noise at 3 standard deviations (trunc_normal_): no draw beyond +-3")
def sample_truncated_noise(m, v):
    eps = torch.nn.init.trunc_normal_(torch.empty_like(m), a=-3.0, b=3.0)
    return m + torch.sqrt(v) * eps


@bug("sample_gaussian", "a variance 1% too large (sqrt(1.01 v)): close, but not N(m, v)")
def sample_variance_one_percent_high(m, v):
    return m + torch.sqrt(1.01 * v) * torch.randn_like(m)


@bug("negative_elbo_bound", "reusing the noise of the first call (a module-level cache): every call decodes the same z")
def elbo_noise_cached(x, encoder, decoder):
    m, v = encoder(x)
    z = m + torch.sqrt(v) * sample_noise_cached(torch.zeros_like(m), torch.ones_like(v))
    return _nelbo(_kl_to_prior(m, v).mean(), -log_bernoulli_with_logits(x, decoder(z)).mean())
