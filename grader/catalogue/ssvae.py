"""Planted bugs in the SSVAE's bound (the label enumerated). Each function is the reference with one
bug; its ``teaches`` sentence completes "your output equals what you get by ...".
"""
import math

import torch
from torch.nn import functional as F

from impls import log_bernoulli_with_logits, sample_gaussian
from impls.bounds import kl_per_dimension
from impls.ssvae import kl_categorical_uniform
from grader.catalogue.registry import bug

TARGET = "ssvae_negative_elbo_bound"


def _per_label(x, encoder, decoder, log_q_y, detach_z=False):
    """(kl_z, rec), each (Y, B): every example with every label, one reparameterized z per pair."""
    batch, classes = log_q_y.shape
    y = torch.eye(classes, dtype=x.dtype, device=x.device).repeat_interleave(batch, 0)
    xs = x.repeat(classes, 1)
    m, v = encoder(xs, y)
    z = sample_gaussian(m, v)
    z = z.detach() if detach_z else z
    kl_z = kl_per_dimension(m, v).sum(-1).reshape(classes, batch)
    rec = -log_bernoulli_with_logits(xs, decoder(z, y)).reshape(classes, batch)
    return kl_z, rec


def _bound(kl_y, kl_z, rec):
    return kl_y + kl_z + rec, kl_z, kl_y, rec


def _weighted(x, encoder, decoder, classifier, detach_z=False, detach_q=False):
    log_q_y = F.log_softmax(classifier(x), dim=-1)
    kl_z, rec = _per_label(x, encoder, decoder, log_q_y, detach_z)
    q = log_q_y.exp().t()
    q = q.detach() if detach_q else q
    return log_q_y, (q * kl_z).sum(0).mean(), (q * rec).sum(0).mean()


@bug(TARGET, "computing kl_y against log p(y) = +log Y instead of log(1/Y) (e.g. ut.kl_cat(q, log q, np.log(y_dim)))",
     fix="kl_y = sum_y q(y|x) (log q(y|x) - log(1/Y)): the uniform prior's log-probability is -log Y")
def ssvae_kl_y_prior_log_sign(x, encoder, decoder, classifier):
    log_q_y, kl_z, rec = _weighted(x, encoder, decoder, classifier)
    kl_y = (log_q_y.exp() * (log_q_y - math.log(log_q_y.shape[-1]))).sum(-1).mean()
    return _bound(kl_y, kl_z, rec)


@bug(TARGET, "computing kl_y against a non-uniform prior over the labels (here p(y) proportional to y + 1)")
def ssvae_kl_y_nonuniform_prior(x, encoder, decoder, classifier):
    log_q_y, kl_z, rec = _weighted(x, encoder, decoder, classifier)
    prior = torch.arange(1, log_q_y.shape[-1] + 1, dtype=x.dtype, device=x.device)
    kl_y = (log_q_y.exp() * (log_q_y - torch.log(prior / prior.sum()))).sum(-1).mean()
    return _bound(kl_y, kl_z, rec)


@bug(TARGET, "flipping the sign of kl_y: sum_y q(y|x) (log p(y) - log q(y|x))")
def ssvae_kl_y_sign_flipped(x, encoder, decoder, classifier):
    log_q_y, kl_z, rec = _weighted(x, encoder, decoder, classifier)
    kl_y = -kl_categorical_uniform(log_q_y).mean()
    return _bound(kl_y, kl_z, rec)


@bug(TARGET, "decoding only the most likely label (argmax of q(y|x)) instead of marginalising every label",
     fix="enumerate every label: kl_z and rec are sum_y q(y|x) (term for y) over all Y labels")
def ssvae_argmax_label(x, encoder, decoder, classifier):
    log_q_y = F.log_softmax(classifier(x), dim=-1)
    y = F.one_hot(log_q_y.argmax(-1), log_q_y.shape[-1]).to(x.dtype)
    m, v = encoder(x, y)
    z = sample_gaussian(m, v)
    kl_z = kl_per_dimension(m, v).sum(-1).mean()
    rec = -log_bernoulli_with_logits(x, decoder(z, y)).mean()
    return _bound(kl_categorical_uniform(log_q_y).mean(), kl_z, rec)


@bug(TARGET, "averaging kl_z over the labels instead of weighting each label's KL by q(y|x)",
     fix="kl_z = sum_y q(y|x) KL(q(z|x,y) || p(z)), batch mean")
def ssvae_kl_z_unweighted(x, encoder, decoder, classifier):
    log_q_y, _, rec = _weighted(x, encoder, decoder, classifier)
    kl_z, _ = _per_label(x, encoder, decoder, log_q_y)
    return _bound(kl_categorical_uniform(log_q_y).mean(), kl_z.mean(), rec)


@bug(TARGET, "averaging rec over the labels instead of weighting each label's reconstruction by q(y|x)",
     fix="rec = sum_y q(y|x) (-log p(x|y,z_y)), batch mean")
def ssvae_rec_unweighted(x, encoder, decoder, classifier):
    log_q_y = F.log_softmax(classifier(x), dim=-1)
    kl_z, rec = _per_label(x, encoder, decoder, log_q_y)
    q = log_q_y.exp().t()
    return _bound(kl_categorical_uniform(log_q_y).mean(), (q * kl_z).sum(0).mean(), rec.mean())


@bug(TARGET, "summing over the batch instead of taking the mean")
def ssvae_sum_over_batch(x, encoder, decoder, classifier):
    log_q_y = F.log_softmax(classifier(x), dim=-1)
    kl_z, rec = _per_label(x, encoder, decoder, log_q_y)
    q = log_q_y.exp().t()
    return _bound(kl_categorical_uniform(log_q_y).sum(), (q * kl_z).sum(), (q * rec).sum())


@bug(TARGET, "detaching the sample z, so no gradient flows through the reparameterization to the encoder")
def ssvae_z_detached(x, encoder, decoder, classifier):
    log_q_y, kl_z, rec = _weighted(x, encoder, decoder, classifier, detach_z=True)
    return _bound(kl_categorical_uniform(log_q_y).mean(), kl_z, rec)


@bug(TARGET, "detaching q(y|x) where it weighs kl_z and rec, so the classifier learns only from kl_y",
     fix="weigh the labels' terms by q(y|x) in the graph: the ELBO trains the classifier too")
def ssvae_q_y_detached_in_weights(x, encoder, decoder, classifier):
    log_q_y, kl_z, rec = _weighted(x, encoder, decoder, classifier, detach_q=True)
    return _bound(kl_categorical_uniform(log_q_y).mean(), kl_z, rec)
