r"""The discrete pieces of the GMVAE and the SSVAE: a categorical KL, the label enumerated, a mixture.

KL of a categorical ``q`` over ``Y`` classes from the uniform prior (the SSVAE's ``kl_y``)::

    KL(q || U_Y) = sum_y q_y log(q_y / (1/Y)) = sum_y (q_y log q_y + q_y log Y)

an elementwise term per class, summed over the classes (0 log 0 = 0). Its oracle takes the
probabilities ``q`` and the number of classes ``Y``.

The enumeration identity (the SSVAE's ELBO, label y unobserved, two classes here): with
q(y, z | x) = q(y|x) q(z|x, y), p(y, z) = U(y) N(z; 0, 1) and r_y = -E_q(z|x,y) log p(x|y, z)::

    E_q(y,z|x) [log p(x|y,z) + log p(y) + log p(z) - log q(y|x) - log q(z|x,y)]
        = -( KL(q(y|x) || U) + sum_y q(y|x) (KL(q(z|x,y) || N(0, 1)) + r_y) )

the z-expectations integrated by SymPy, the y-expectation the sum over the labels.

The uniform mixture's log density in log-sum-exp form (two components here)::

    log (1/2) (N(z; m1, v1) + N(z; m2, v2)) = a1 + log(1 + exp(a2 - a1)) - log 2,  a_k = log N(z; m_k, v_k)

for any choice of the shifted term; the oracle shifts by the larger (``numpy.logaddexp``), so it is
finite for components arbitrarily far from z.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from . import gaussian
from ._base import Derivation, conclude, float64_oracle, lazy_attributes, require_equal
from .numeric import kl_uniform_term

__all__ = ["kl_uniform", "enumerated_elbo", "mixture_log_density", "KL_UNIFORM", "ENUMERATED_ELBO",
           "MIXTURE_LOG_DENSITY"]


@functools.lru_cache(maxsize=None)
def kl_uniform() -> Derivation:
    """The per-class term q log q + q log Y of KL(q || uniform over Y classes)."""
    q, n = sp.symbols("q Y", positive=True)
    q1, q2 = sp.symbols("q1 q2", positive=True)
    probs = (q1, q2, 1 - q1 - q2)  # three classes: the probabilities sum to one
    definition = sum(p * sp.log(p / sp.Rational(1, 3)) for p in probs)
    term = q * sp.log(q) + q * sp.log(n)
    summed = sum(term.subs({q: p, n: 3}) for p in probs)
    require_equal(definition, summed, "KL(q || U_3) = sum_y (q_y log q_y + q_y log 3)")
    return Derivation(
        name="categorical.kl_uniform", expr=term, symbols=(q, n), oracle=kl_uniform_term,
        steps=(
            ("KL(q || U_3) = sum_y q_y log(q_y / (1/3)), three classes", definition),
            ("log(q/(1/Y)) = log q + log Y: a sum of per-class terms", summed),
            ("the per-class term (Y classes; 0 log 0 = 0)", term),
        ),
    )


@float64_oracle
def _enumerated_elbo_oracle(q, m1, v1, m2, v2, r1, r2):
    kl_y = kl_uniform_term(q, 2.0) + kl_uniform_term(1.0 - q, 2.0)
    kl1, kl2 = gaussian.KL.oracle(m1, v1, 0.0, 1.0), gaussian.KL.oracle(m2, v2, 0.0, 1.0)
    return -(kl_y + q * (kl1 + r1) + (1.0 - q) * (kl2 + r2))


@functools.lru_cache(maxsize=None)
def enumerated_elbo() -> Derivation:
    """The ELBO of (y, z) with y enumerated (two classes) = -(kl_y + sum_y q_y (kl_z,y + rec_y))."""
    q, m1, m2, r1, r2 = sp.symbols("q m1 m2 r1 r2", real=True)
    v1, v2 = sp.symbols("v1 v2", positive=True)
    z = sp.Symbol("z", real=True)
    log_p_z = sp.expand_log(sp.log(gaussian.density(z, 0, 1)), force=True)

    def z_part(m, v, r):  # E_q(z|x,y) [log p(x|y,z) + log p(z) - log q(z|x,y)]
        log_q_z = sp.expand_log(sp.log(gaussian.density(z, m, v)), force=True)
        return -r + gaussian.expectation(sp.expand(log_p_z - log_q_z), z, m, v)

    half = sp.Rational(1, 2)
    joint = (q * (z_part(m1, v1, r1) + sp.log(half) - sp.log(q))
             + (1 - q) * (z_part(m2, v2, r2) + sp.log(half) - sp.log(1 - q)))
    kl_y = q * sp.log(q / half) + (1 - q) * sp.log((1 - q) / half)
    kl = gaussian.KL.expr
    kl_z = [kl.subs(dict(zip(gaussian.KL.symbols, (m, v, 0, 1)))) for m, v in ((m1, v1), (m2, v2))]
    closed = -(kl_y + q * (kl_z[0] + r1) + (1 - q) * (kl_z[1] + r2))
    return conclude(
        "categorical.enumerated_elbo", (q, m1, v1, m2, v2, r1, r2), _enumerated_elbo_oracle,
        derived=joint, what="the enumeration identity",
        steps=(
            ("E over q(y|x) (two labels, q = q(1|x)) of E over q(z|x,y) of the joint log-ratio, with "
             "r_y = -E log p(x|y,z)", joint),
            ("= -(KL(q(y|x) || U) + sum_y q_y (KL(N(m_y, v_y) || N(0, 1)) + r_y))", closed),
        ),
    )


@float64_oracle
def _mixture_oracle(z, m1, v1, m2, v2):
    a1, a2 = gaussian.LOG_DENSITY.oracle(z, m1, v1), gaussian.LOG_DENSITY.oracle(z, m2, v2)
    return np.logaddexp(a1, a2) - np.log(2.0)


@functools.lru_cache(maxsize=None)
def mixture_log_density() -> Derivation:
    """log of the uniform mixture of two Gaussians, in log-sum-exp form."""
    z, m1, m2 = sp.symbols("z m1 m2", real=True)
    v1, v2 = sp.symbols("v1 v2", positive=True)
    a1 = -(sp.log(2 * sp.pi) + sp.log(v1) + (z - m1) ** 2 / v1) / 2
    a2 = -(sp.log(2 * sp.pi) + sp.log(v2) + (z - m2) ** 2 / v2) / 2
    naive = sp.log((gaussian.density(z, m1, v1) + gaussian.density(z, m2, v2)) / 2)
    closed = a1 + sp.log(1 + sp.exp(a2 - a1)) - sp.log(2)
    # both sides are logs of positive numbers: equal iff their exponentials are
    if sp.simplify(sp.powsimp(sp.expand(sp.exp(naive) - sp.exp(closed)), force=True)) != 0:
        raise AssertionError("SymPy could not show the log-sum-exp form of the mixture's log density")
    return Derivation(
        name="categorical.mixture_log_density", expr=closed, symbols=(z, m1, v1, m2, v2), oracle=_mixture_oracle,
        steps=(
            ("log (1/2) (N(z; m1, v1) + N(z; m2, v2))", naive),
            ("a_k = log N(z; m_k, v_k); shift by a1: a1 + log(1 + exp(a2 - a1)) - log 2", closed),
        ),
    )


__getattr__ = lazy_attributes(__name__, {"KL_UNIFORM": kl_uniform, "ENUMERATED_ELBO": enumerated_elbo,
                                         "MIXTURE_LOG_DENSITY": mixture_log_density})
