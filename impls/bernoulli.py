"""Bernoulli likelihood parameterized by logits."""
import torch
import torch.nn.functional as F


def log_bernoulli_with_logits(x, logits):
    """sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d)  =  sum_d x_d l_d - softplus(l_d).

    Each term is minus the binary cross-entropy with logits, which PyTorch evaluates in the form
    (1 - x) l - log sigmoid(l): exact for any finite logit (log(sigmoid(l)) itself underflows to
    -inf below about -100 in float32), and in fewer passes over memory than the formula spelled
    out. ``x`` and ``logits`` broadcast (x of shape (B, D) against logits of shape (K, B, D) in
    the IWAE bound) and are promoted to a common dtype.
    """
    dtype = torch.result_type(x, logits)
    x, logits = torch.broadcast_tensors(x.to(dtype), logits.to(dtype))
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
