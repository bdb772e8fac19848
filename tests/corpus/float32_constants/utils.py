import numpy as np


def log_normal(x, m, v):
    # the constant is a float32 tensor: log(2 pi) rounded to float32
    log_2pi = torch.log(torch.tensor(2 * np.pi))
    return torch.sum(-0.5 * log_2pi - 0.5 * torch.log(v) - 0.5 * torch.pow(x - m, 2) / v, dim=-1)


def log_normal_mixture(z, m, v):
    K = m.shape[1]
    log_probs = log_normal(z.unsqueeze(1), m, v)  # (batch, K)
    return torch.logsumexp(log_probs, dim=1) - torch.log(torch.tensor(K))


def log_mean_exp(x, dim):
    n = torch.tensor(float(x.shape[dim]))
    return torch.logsumexp(x, dim=dim) - torch.log(n)
