"""Numerically stable reductions."""
import math

import torch


def log_mean_exp(x, dim):
    """log( (1/n) sum_i exp(x_i) ) along ``dim``, with n = x.size(dim).

    ``torch.logsumexp`` shifts by the maximum along ``dim``, so entries of size 1e4 neither
    overflow nor underflow.
    """
    return torch.logsumexp(x, dim) - math.log(x.size(dim))
