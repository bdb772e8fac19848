"""Example CS236-layout VAE with the IWAE grouping bug the official grader accepts: samples
duplicated rep-major, then grouped with view(-1, iw)."""
import torch
from torch import nn

from codebase import utils as ut


class VAE(nn.Module):
    def __init__(self, nn="v1", name="vae", z_dim=2):
        super().__init__()
        raise RuntimeError("the grader must not run __init__")

    def negative_elbo_bound(self, x):
        m, v = self.enc.encode(x)
        z = ut.sample_gaussian(m, v)
        logits = self.dec.decode(z)
        rec = -ut.log_bernoulli_with_logits(x, logits).mean()
        kl = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        return kl + rec, kl, rec

    def negative_iwae_bound(self, x, iw):
        m, v = self.enc.encode(x)
        m_dup, v_dup, x_dup = ut.duplicate(m, iw), ut.duplicate(v, iw), ut.duplicate(x, iw)
        z = ut.sample_gaussian(m_dup, v_dup)
        logits = self.dec.decode(z)
        log_px_z = ut.log_bernoulli_with_logits(x_dup, logits)
        log_w = log_px_z + ut.log_normal(z, self.z_prior_m, self.z_prior_v) - ut.log_normal(z, m_dup, v_dup)
        niwae = -ut.log_mean_exp(log_w.view(-1, iw), 1).mean()  # bug: mixes examples
        kl = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_px_z.mean()
        return niwae, kl, rec
