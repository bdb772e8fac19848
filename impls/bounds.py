"""The VAE objectives: negative ELBO and negative IWAE bound (prior N(0, I), Bernoulli pixels)."""
import math

import torch

from impls.bernoulli import log_bernoulli_with_logits
from impls.gaussian import kl_normal, log_normal, sample_gaussian

# Upper bound on the number of decoder output elements evaluated at once by the IWAE bound.
IWAE_CHUNK_ELEMENTS = 2**22


def negative_elbo_bound(x, encoder, decoder):
    """-ELBO = KL(q(z|x) || p(z)) - E_q[log p(x|z)], batch means; one Monte Carlo sample.

    Returns ``(nelbo, kl, rec)`` with ``kl`` analytic and ``rec = -log p(x|z)``, z ~ q(z|x).
    """
    m, v = encoder(x)
    z = sample_gaussian(m, v)
    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()
    kl = kl_normal(m, v, torch.zeros_like(m), torch.ones_like(v)).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw, chunk_elements=IWAE_CHUNK_ELEMENTS):
    """-L_iw = -mean_b log (1/iw) sum_i p(x_b, z_i) / q(z_i | x_b),  z_i ~ q(z | x_b) iid.

    The ``iw`` samples are drawn and decoded in chunks of at most ``chunk_elements`` decoder
    outputs, and the log-sum-exp is accumulated across chunks, so memory does not grow with
    ``iw``. Returns ``(niwae, kl, rec)``: ``kl`` the analytic batch-mean KL(q || p) and
    ``rec`` the batch mean of -log p(x|z) over the samples.
    """
    m, v = encoder(x)
    zero, one = torch.zeros_like(m), torch.ones_like(v)
    chunk = max(1, min(iw, chunk_elements // max(1, x.numel())))
    log_sum_w = torch.full(m.shape[:-1], -math.inf, dtype=m.dtype, device=m.device)
    log_px_z_sum = torch.zeros_like(log_sum_w)
    for start in range(0, iw, chunk):
        k = min(chunk, iw - start)
        z = sample_gaussian(m.expand(k, *m.shape), v.expand(k, *v.shape))  # (k, B, D)
        log_px_z = log_bernoulli_with_logits(x, decoder(z))  # (k, B)
        log_w = log_px_z + log_normal(z, zero, one) - log_normal(z, m, v)
        log_sum_w = torch.logaddexp(log_sum_w, torch.logsumexp(log_w, 0))
        log_px_z_sum = log_px_z_sum + log_px_z.sum(0)
    iwae = log_sum_w - math.log(iw)
    kl = kl_normal(m, v, zero, one).mean()
    rec = -(log_px_z_sum / iw).mean()
    return -iwae.mean(), kl, rec
