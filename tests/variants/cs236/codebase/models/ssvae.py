"""A correct CS236-layout SSVAE (starter style: self.cls.classify, np.repeat labels label-major,
ut.duplicate, ut.kl_cat against np.log(1 / y_dim), ut.kl_normal against self.z_prior_m/v)."""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from codebase import utils as ut
from codebase.models import nns


class SSVAE(nn.Module):
    def __init__(self, nn="v1", name="ssvae", gen_weight=1, class_weight=100):
        super().__init__()
        self.cls = nns.Classifier(10)
        raise RuntimeError("the grader must not run __init__")

    def negative_elbo_bound(self, x):
        batch = x.size(0)
        y_logits = self.cls.classify(x)
        y_logprob = F.log_softmax(y_logits, dim=1)
        y_prob = torch.softmax(y_logprob, dim=1)  # (batch, y_dim)

        y = np.repeat(np.arange(self.y_dim), batch)
        y = x.new(np.eye(self.y_dim)[y])
        x = ut.duplicate(x, self.y_dim)

        m, v = self.enc.encode(x, y)
        z = ut.sample_gaussian(m, v)
        logits = self.dec.decode(z, y)

        kl_y = ut.kl_cat(y_prob, y_logprob, np.log(1.0 / self.y_dim)).mean()
        kl_z = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).reshape(self.y_dim, batch)
        rec = -ut.log_bernoulli_with_logits(x, logits).reshape(self.y_dim, batch)
        kl_z = (y_prob.t() * kl_z).sum(0).mean()
        rec = (y_prob.t() * rec).sum(0).mean()
        return kl_y + kl_z + rec, kl_z, kl_y, rec
