"""The float64 closed forms the derivations prove, in numpy alone (no SymPy).

Each function here is the ``oracle`` of a :class:`derivations.Derivation` (the derivation module
passes it to ``conclude``; tests/test_derivations.py checks the identity and that it agrees with
the SymPy closed form). The checks (verify/oracles.py) import this module only, so a check run
pays neither SymPy's import nor a derivation's proof.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np


def float64_oracle(fn: Callable) -> Callable[..., np.ndarray]:
    """Decorate a numpy formula: cast every argument and the result to float64."""

    @functools.wraps(fn)
    def oracle(*values):
        values = [np.asarray(v, dtype=np.float64) for v in values]
        return np.asarray(fn(*values), dtype=np.float64)

    return oracle


@float64_oracle
def log_density_oracle(x, m, v):
    """log N(x; m, v), elementwise: the closed form of :func:`derivations.gaussian.log_density`."""
    return -0.5 * (np.log(2 * np.pi) + np.log(v) + (x - m) ** 2 / v)


@float64_oracle
def kl_oracle(qm, qv, pm, pv):
    """KL(N(qm, qv) || N(pm, pv)), elementwise: the closed form of :func:`derivations.gaussian.kl`."""
    ratio = qv / pv  # r - 1 - log r >= 0 and the mean term >= 0: no cancellation between them
    return 0.5 * (ratio - 1.0 - np.log(ratio)) + 0.5 * (qm - pm) ** 2 / pv


@float64_oracle
def log_likelihood_oracle(x, l):
    """x log sigmoid(l) + (1 - x) log sigmoid(-l), elementwise: :func:`derivations.bernoulli.log_likelihood`."""
    return -(x * np.logaddexp(0.0, -l) + (1.0 - x) * np.logaddexp(0.0, l))


@float64_oracle
def kl_uniform_term(q, n_classes):
    """q log q + q log n, one class's term of KL(q || uniform over n): :func:`derivations.categorical.kl_uniform`."""
    from scipy.special import xlogy

    return xlogy(q, q) + q * np.log(n_classes)
