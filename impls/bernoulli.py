"""Bernoulli likelihood parameterized by logits."""
import torch.nn.functional as F


def log_bernoulli_with_logits(x, logits):
    """sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d)  =  sum_d x_d l_d - softplus(l_d).

    Written with ``logsigmoid(-l) = -softplus(l)``, which is exact for any finite logit
    (log(sigmoid(l)) underflows to -inf for l below about -100 in float32).
    """
    return (x * logits + F.logsigmoid(-logits)).sum(-1)
