"""Float64 oracles in the contract's shapes, built from the derivations (ground truth).

The derivations give elementwise closed forms; here they are summed over the last dimension
and reduced the way the contract says. ``log_mean_exp`` uses scipy's logsumexp. The closed forms are
the derivations' own numpy functions (``derivations.numeric``: the ``oracle`` of each
:class:`derivations.Derivation`), called without SymPy or building the derivation: SymPy's proof that the closed form is right is the
derivations' tests' business (tests/test_derivations.py), not a cost of every check run.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from derivations import numeric


def log_normal(x, m, v):
    """log N(x; m, diag v), summed over the last dim (broadcasting)."""
    return np.sum(numeric.log_density_oracle(*np.broadcast_arrays(x, m, v)), axis=-1)


def log_standard_normal(x):
    """log N(x; 0, I), summed over the last dim: the base density of the flows and the VAE prior."""
    return log_normal(x, 0.0, 1.0)


def kl_normal(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)), summed over the last dim (broadcasting)."""
    return np.sum(numeric.kl_oracle(*np.broadcast_arrays(qm, qv, pm, pv)), axis=-1)


def log_bernoulli_with_logits(x, logits):
    """sum_d x log sigmoid(l) + (1 - x) log sigmoid(-l)."""
    return np.sum(numeric.log_likelihood_oracle(*np.broadcast_arrays(x, logits)), axis=-1)


def log_mean_exp(x, dim):
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    return logsumexp(x, axis=dim) - math.log(x.shape[dim])


def log_normal_mixture(z, m, v):
    """log (1/K) sum_k N(z; m_k, v_k) for z (B, D), m, v (B or 1, K, D)."""
    return log_mean_exp(log_normal(np.asarray(z)[:, None, :], m, v), dim=-1)


def log_softmax(logits):
    """log q(y|x) from the classifier's logits, over the last dim (scipy)."""
    from scipy.special import logsumexp

    logits = np.asarray(logits, dtype=np.float64)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def kl_categorical_uniform(logits):
    """KL(q || uniform) of q = softmax(logits) over the last dim: the derivation's per-class term, summed."""
    q = np.exp(log_softmax(logits))
    return np.sum(numeric.kl_uniform_term(q, q.shape[-1]), axis=-1)


# ------------------------------------------------------------------ float64 torch oracles (gradients)
# The same closed forms as above, written in torch so that autograd differentiates them: a
# submission's gradient is compared with the gradient of these, in float64, on the same inputs (and,
# for the stochastic bounds, the same replayed noise). tests/test_gradient_oracles.py checks that their
# values equal the numpy oracles'.
LOG_2PI = math.log(2 * math.pi)


def torch_log_normal(x, m, v):
    """log N(x; m, diag v) = -1/2 sum_d [log 2 pi + log v_d + (x_d - m_d)^2 / v_d] (last dim)."""
    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)


def torch_log_standard_normal(z):
    """log N(z; 0, I) = -1/2 sum_d [log 2 pi + z_d^2] (last dim)."""
    return -0.5 * (LOG_2PI + z**2).sum(-1)


def torch_kl_normal(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)) = 1/2 sum_d [log pv - log qv + (qv + (qm - pm)^2) / pv - 1] (last dim)."""
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)


def torch_log_bernoulli_with_logits(x, logits):
    """sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) (last dim; any x in [0, 1])."""
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)


def torch_log_mean_exp(x, dim):
    """log (1/n) sum_i exp(x_i) along ``dim`` = max + log mean exp(x - max)."""
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def torch_log_normal_mixture(z, m, v):
    """log (1/K) sum_k N(z; m_k, diag v_k) for z (B, D), m, v (B or 1, K, D)."""
    return torch_log_mean_exp(torch_log_normal(z.unsqueeze(-2), m, v), -1)


def torch_affine_flow_log_prob(x, scale, shift):
    """log N((x - b) / a; 0, 1) - log|a|, elementwise."""
    return -0.5 * (LOG_2PI + ((x - shift) / scale) ** 2) - torch.log(torch.abs(scale))


def torch_kl_standard_normal(m, v):
    """KL(N(m, diag v) || N(0, I)) = 1/2 sum (v + m^2 - 1 - log v)."""
    return 0.5 * (v + m ** 2 - 1 - torch.log(v)).sum(-1)


def torch_kl_categorical_uniform(logits):
    """KL(softmax(logits) || uniform) = sum_y q_y (log q_y + log Y)."""
    log_q = torch.log_softmax(logits, dim=-1)
    return (log_q.exp() * (log_q + math.log(logits.shape[-1]))).sum(-1)
