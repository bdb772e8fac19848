"""A correct XCS236-layout GMVAE: self.enc(x), the prior as a torch.distributions MixtureSameFamily with
the weights self.pi; the IWAE bound's samples laid out example-major (B, iw, D), a float32 constant log iw."""
import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from submission import utils as ut


class GMVAE(nn.Module):
    def _prior(self):
        m, v = ut.gaussian_parameters(self.z_pre, dim=1)
        components = Independent(Normal(m[0], v[0].sqrt()), 1)
        return MixtureSameFamily(Categorical(probs=self.pi), components)

    def negative_elbo_bound(self, x):
        m, v = self.enc(x)
        q = Independent(Normal(m, v.sqrt()), 1)
        z = q.rsample()
        kl = (q.log_prob(z) - self._prior().log_prob(z)).mean()
        rec = -ut.log_bernoulli_with_logits(x, self.dec(z)).mean()
        return kl + rec, kl, rec

    def negative_iwae_bound(self, x, iw):
        m, v = self.enc(x)
        q = Independent(Normal(m.unsqueeze(1).expand(-1, iw, -1), v.unsqueeze(1).expand(-1, iw, -1).sqrt()), 1)
        z = q.rsample()  # (B, iw, D): example-major
        log_px_z = ut.log_bernoulli_with_logits(x.unsqueeze(1).expand(-1, iw, -1), self.dec(z))
        kl = q.log_prob(z) - self._prior().log_prob(z)
        log_iw = torch.log(torch.tensor(float(iw)))  # a float32 constant
        niwae = -(torch.logsumexp(log_px_z - kl, 1) - log_iw).mean()
        return niwae, kl.mean(), -log_px_z.mean()
