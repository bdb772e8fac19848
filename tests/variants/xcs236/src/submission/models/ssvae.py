"""A correct XCS236-layout SSVAE: self.cls(x), a Python loop over the labels (one encoder and decoder call
each), torch.distributions for both KLs and the likelihood, a float32 log(1/Y)."""
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence
from torch.nn import functional as F


class SSVAE(nn.Module):
    def negative_elbo_bound(self, x):
        logits = self.cls(x)
        q_y = torch.softmax(logits, dim=-1)
        uniform = Categorical(logits=torch.log(torch.tensor(1.0 / self.y_dim)).to(x.dtype).expand_as(logits))
        kl_y = kl_divergence(Categorical(logits=logits), uniform).mean()
        kl_z, rec = 0, 0
        for c in range(self.y_dim):
            y = F.one_hot(torch.full((x.shape[0],), c, device=x.device), self.y_dim).to(x.dtype)
            m, v = self.enc(x, y)
            q_z = Normal(m, v.sqrt())
            z = q_z.rsample()
            kl_c = kl_divergence(q_z, Normal(torch.zeros_like(m), torch.ones_like(v))).sum(-1)
            rec_c = -Bernoulli(logits=self.dec(z, y)).log_prob(x).sum(-1)
            kl_z = kl_z + q_y[:, c] * kl_c
            rec = rec + q_y[:, c] * rec_c
        kl_z, rec = kl_z.mean(), rec.mean()
        return kl_y + kl_z + rec, kl_z, kl_y, rec
