"""Hostile (or just slow): a correct affine flow and coupling layer, and a kl_normal that never returns."""
import math

import torch
from torch import nn


def kl_normal(qm, qv, pm, pv):
    while True:
        pass


def affine_flow_log_prob(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * math.log(2 * math.pi) - 0.5 * z**2 - torch.log(torch.abs(torch.as_tensor(scale)))


class AffineCoupling(nn.Module):
    def __init__(self, mask, scale_net, shift_net):
        super().__init__()
        self.mask, self.scale_net, self.shift_net = mask, scale_net, shift_net

    def forward(self, x):
        mask = self.mask.to(x)
        s, t = self.scale_net(mask * x), self.shift_net(mask * x)
        y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
        return y, ((1 - mask) * s).reshape(x.shape[0], -1).sum(1)

    def inverse(self, y):
        mask = self.mask.to(y)
        s, t = self.scale_net(mask * y), self.shift_net(mask * y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(-s)
