"""A correct XCS236-layout VAE: self.enc(x), self.dec(z), the prior read from the tuple self.z_prior;
samples laid out example-major, (B, iw, D)."""
import torch
from torch import nn

from submission import utils as ut


class VAE(nn.Module):
    def negative_elbo_bound(self, x):
        m, v = self.enc(x)
        z = ut.sample_gaussian(m, v)
        rec = -ut.log_bernoulli_with_logits(x, self.dec(z)).mean()
        pm, pv = self.z_prior
        kl = ut.kl_normal(m, v, pm.expand_as(m), pv.expand_as(v)).mean()
        return kl + rec, kl, rec

    def negative_iwae_bound(self, x, iw):
        pm, pv = self.z_prior
        m, v = self.enc(x)
        m_up, v_up = m.unsqueeze(1).expand(-1, iw, -1), v.unsqueeze(1).expand(-1, iw, -1)
        x_up = x.unsqueeze(1).expand(-1, iw, -1)
        z = ut.sample_gaussian(m_up, v_up)
        log_px_z = ut.log_bernoulli_with_logits(x_up, self.dec(z))
        log_w = log_px_z + ut.log_normal(z, pm, pv) - ut.log_normal(z, m_up, v_up)
        niwae = -ut.log_mean_exp(log_w, 1).mean()
        return niwae, ut.kl_normal(m, v, pm, pv).mean(), -log_px_z.mean()
