"""Float64 oracles in the contract's shapes, built from the derivations (ground truth).

The derivations give elementwise closed forms; here they are summed over the last dimension
and reduced the way the contract says. ``log_mean_exp`` uses scipy's logsumexp.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from derivations import bernoulli, gaussian


def log_normal(x, m, v):
    """log N(x; m, diag v), summed over the last dim (broadcasting)."""
    return np.sum(gaussian.LOG_DENSITY.oracle(*np.broadcast_arrays(x, m, v)), axis=-1)


def log_standard_normal(x):
    """log N(x; 0, I), summed over the last dim: the base density of the flows and the VAE prior."""
    return log_normal(x, 0.0, 1.0)


def kl_normal(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)), summed over the last dim (broadcasting)."""
    return np.sum(gaussian.KL.oracle(*np.broadcast_arrays(qm, qv, pm, pv)), axis=-1)


def log_bernoulli_with_logits(x, logits):
    """sum_d x log sigmoid(l) + (1 - x) log sigmoid(-l)."""
    return np.sum(bernoulli.LOG_LIKELIHOOD.oracle(*np.broadcast_arrays(x, logits)), axis=-1)


def log_mean_exp(x, dim):
    x = np.asarray(x, dtype=np.float64)
    return logsumexp(x, axis=dim) - math.log(x.shape[dim])


def log_normal_mixture(z, m, v):
    """log (1/K) sum_k N(z; m_k, v_k) for z (B, D), m, v (B or 1, K, D)."""
    return log_mean_exp(log_normal(np.asarray(z)[:, None, :], m, v), dim=-1)
