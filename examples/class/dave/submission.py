import torch


def sample_gaussian(m, v)
    return m + torch.sqrt(v) * torch.randn_like(m)
