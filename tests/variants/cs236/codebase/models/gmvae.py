"""A correct CS236-layout GMVAE (2018-2021 starter style: self.enc.encode, ut.gaussian_parameters(self.z_pre),
ut.duplicate rep-major with the weights grouped (iw, B))."""
import torch
from torch import nn

from codebase import utils as ut
from codebase.models import nns


class GMVAE(nn.Module):
    def __init__(self, nn="v1", z_dim=2, k=500, name="gmvae"):
        super().__init__()
        self.enc = nns.Encoder(z_dim)
        raise RuntimeError("the grader must not run __init__")

    def negative_elbo_bound(self, x):
        prior = ut.gaussian_parameters(self.z_pre, dim=1)
        m, v = self.enc.encode(x)
        z = ut.sample_gaussian(m, v)
        logits = self.dec.decode(z)
        rec = -ut.log_bernoulli_with_logits(x, logits)
        prior_m = prior[0].expand(x.shape[0], *prior[0].shape[1:])
        prior_v = prior[1].expand(x.shape[0], *prior[1].shape[1:])
        kl = ut.log_normal(z, m, v) - ut.log_normal_mixture(z, prior_m, prior_v)
        kl, rec = kl.mean(), rec.mean()
        return kl + rec, kl, rec

    def negative_iwae_bound(self, x, iw):
        prior = ut.gaussian_parameters(self.z_pre, dim=1)
        m, v = self.enc.encode(x)
        m_dup, v_dup, x_dup = ut.duplicate(m, iw), ut.duplicate(v, iw), ut.duplicate(x, iw)
        z = ut.sample_gaussian(m_dup, v_dup)
        log_px_z = ut.log_bernoulli_with_logits(x_dup, self.dec.decode(z))
        kl = ut.log_normal(z, m_dup, v_dup) - ut.log_normal_mixture(z, prior[0], prior[1])
        log_w = (log_px_z - kl).reshape(iw, -1)
        niwae = -ut.log_mean_exp(log_w, 0).mean()
        return niwae, kl.mean(), -log_px_z.mean()

    def sample_z(self, batch):
        m, v = ut.gaussian_parameters(self.z_pre.squeeze(0), dim=0)
        idx = torch.distributions.categorical.Categorical(self.pi).sample((batch,))
        return ut.sample_gaussian(m[idx], v[idx])
