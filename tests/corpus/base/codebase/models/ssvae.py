# CS236 HW2 models/ssvae.py (the corpus's shared starting point): the labels enumerated example-major
# (x.repeat_interleave, y tiled), ut.kl_cat against log(1/y_dim), ut.kl_normal against the prior.
import math

import torch
from torch import nn
from torch.nn import functional as F

from codebase import utils as ut


class SSVAE(nn.Module):
    def negative_elbo_bound(self, x):
        batch = x.shape[0]
        y_logits = self.cls.classify(x)
        y_logprob = F.log_softmax(y_logits, dim=1)
        y_prob = torch.exp(y_logprob)
        x_rep = x.repeat_interleave(self.y_dim, dim=0)  # (B * Y, 784): example b, label c at row b Y + c
        y = torch.eye(self.y_dim, dtype=x.dtype, device=x.device).repeat(batch, 1)
        m, v = self.enc.encode(x_rep, y)
        z = ut.sample_gaussian(m, v)
        kl_z = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).view(batch, self.y_dim)
        rec = -ut.log_bernoulli_with_logits(x_rep, self.dec.decode(z, y)).view(batch, self.y_dim)
        kl_y = torch.mean(ut.kl_cat(y_prob, y_logprob, math.log(1.0 / self.y_dim)))
        kl_z = torch.mean(torch.sum(y_prob * kl_z, dim=1))
        rec = torch.mean(torch.sum(y_prob * rec, dim=1))
        return kl_y + kl_z + rec, kl_z, kl_y, rec
