r"""Bernoulli log-likelihood parameterised by a logit.

With ``p = sigmoid(l) = 1 / (1 + exp(-l))`` and a target ``x`` in [0, 1]::

    x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))
        = -x softplus(-l) - (1 - x) softplus(l)        (softplus(t) = log(1 + e^t))
        = x l - log(1 + e^l)

The oracle uses the middle form: both terms are <= 0 for x in [0, 1], so
nothing cancels, and ``numpy.logaddexp(0, t)`` is exact and finite for
|l| up to ~1e308 (e.g. x = 1, l = -1e4 gives exactly -1e4).
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, conclude, float64_oracle, lazy_attributes, require_equal
from .numeric import log_likelihood_oracle

__all__ = ["log_likelihood", "LOG_LIKELIHOOD"]


@functools.lru_cache(maxsize=None)
def log_likelihood() -> Derivation:
    """x log sigmoid(l) + (1 - x) log(1 - sigmoid(l)) = x l - log(1 + e^l)."""
    x, l, p = sp.symbols("x l p", real=True)
    sigmoid = 1 / (1 + sp.exp(-l))
    generic = x * sp.log(p) + (1 - x) * sp.log(1 - p)
    naive = generic.subs(p, sigmoid)
    # 1 - sigmoid(l) = sigmoid(-l) = 1 / (1 + e^l)
    softplus_form = -x * sp.log(1 + sp.exp(-l)) - (1 - x) * sp.log(1 + sp.exp(l))
    closed = x * l - sp.log(1 + sp.exp(l))
    require_equal(naive, softplus_form, "the softplus form")
    return conclude(
        "bernoulli.log_likelihood", (x, l), log_likelihood_oracle,
        derived=softplus_form, what="the logit form",
        steps=(
            ("Bernoulli log-likelihood, mean p", generic),
            ("p = sigmoid(l)", naive),
            ("1 - sigmoid(l) = sigmoid(-l), log sigmoid(t) = -log(1 + e^-t)",
             softplus_form),
            ("log(1 + e^-l) = log(1 + e^l) - l", closed),
        ),
    )


__getattr__ = lazy_attributes(__name__, {"LOG_LIKELIHOOD": log_likelihood})
