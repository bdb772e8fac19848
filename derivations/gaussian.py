r"""One-dimensional Gaussian: log density and KL divergence.

Conventions: ``N(m, v)`` has mean ``m`` and *variance* ``v`` (not a standard
deviation), except in :func:`kl_standard` where ``sigma`` is the standard
deviation, as in the VAE homework.

Log density::

    log N(x; m, v) = -1/2 * (log(2 pi) + log v + (x - m)**2 / v)

KL divergence, computed by SymPy from the definition
``KL(q || p) = integral of q(x) (log q(x) - log p(x)) dx``::

    KL(N(qm, qv) || N(pm, pv)) = 1/2 * (log(pv/qv) + (qv + (qm - pm)**2)/pv - 1)

Multivariate diagonal case: a Gaussian with diagonal covariance factorises over
the dimensions, and log(q/p) is then a sum of per-dimension terms, so
``KL(N(qm, diag qv) || N(pm, diag pv))`` is the *sum over dimensions* of the
1-D formula.  The oracles here are elementwise; callers sum over the last
axis themselves.  :func:`kl_gaussians` handles full covariances (numpy only).

The SymPy integration takes about half a second, so the derivations are built
lazily and cached: call :func:`log_density`, :func:`kl`, :func:`kl_standard`,
or read the module attributes ``LOG_DENSITY``, ``KL``, ``KL_STANDARD``.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, conclude, float64_oracle, lazy_attributes
from .numeric import kl_oracle, log_density_oracle

__all__ = [
    "density", "expectation", "log_density", "kl", "kl_standard",
    "kl_gaussians", "LOG_DENSITY", "KL", "KL_STANDARD",
]


def density(x, m, v):
    """SymPy expression of the N(m, v) density at x (v is a variance)."""
    return sp.exp(-(x - m) ** 2 / (2 * v)) / sp.sqrt(2 * sp.pi * v)


_t = sp.Symbol("_t", real=True)
_mean = sp.Symbol("_mean", real=True)
_var = sp.Symbol("_var", positive=True)


@functools.lru_cache(maxsize=None)
def _moment(j: int):
    """E[t**j] for t ~ N(_mean, _var), integrated by SymPy."""
    integral = sp.integrate(_t**j * density(_t, _mean, _var), (_t, -sp.oo, sp.oo))
    return sp.expand(sp.simplify(integral))


def expectation(expr, var, mean, variance):
    """E[expr] for ``var ~ N(mean, variance)``, with ``expr`` a polynomial in ``var``.

    Every monomial ``c * var**j`` is integrated against the Gaussian density
    by SymPy (see ``_moment``); the results are summed.
    """
    poly = sp.Poly(sp.expand(expr), var)
    values = {_mean: mean, _var: variance}
    return sp.expand(sum(c * _moment(j).subs(values, simultaneous=True)
                         for (j,), c in poly.terms()))


# ---------------------------------------------------------------- log density
@functools.lru_cache(maxsize=None)
def log_density() -> Derivation:
    """log N(x; m, v) = -1/2 (log 2pi + log v + (x - m)^2 / v)."""
    x, m = sp.symbols("x m", real=True)
    v = sp.Symbol("v", positive=True)
    pdf = density(x, m, v)
    expanded = sp.expand(sp.expand_log(sp.log(pdf), force=True))
    closed = -(sp.log(2 * sp.pi) + sp.log(v) + (x - m) ** 2 / v) / 2
    return conclude(
        "gaussian.log_density", (x, m, v), log_density_oracle,
        derived=expanded, what="the log of the Gaussian density",
        steps=(
            ("density N(x; m, v), v = variance", pdf),
            ("take the log", sp.log(pdf)),
            ("expand the log", expanded),
            ("collect", closed),
        ),
    )


# ------------------------------------------------------------------------- KL
@functools.lru_cache(maxsize=None)
def kl() -> Derivation:
    """KL(N(qm, qv) || N(pm, pv)) = 1/2 (log(pv/qv) + (qv + (qm - pm)^2)/pv - 1)."""
    x, qm, pm = sp.symbols("x q_m p_m", real=True)
    qv, pv = sp.symbols("q_v p_v", positive=True)
    q, p = density(x, qm, qv), density(x, pm, pv)
    log_ratio = sp.expand(sp.expand_log(sp.log(q) - sp.log(p), force=True))
    moments = sp.Tuple(*(expectation(x**j, x, qm, qv) for j in range(3)))
    integrated = expectation(log_ratio, x, qm, qv)
    closed = (sp.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1) / 2
    return conclude(
        "gaussian.kl", (qm, qv, pm, pv), kl_oracle,
        derived=integrated, what="the Gaussian KL closed form",
        steps=(
            ("definition KL(q || p), q = N(q_m, q_v), p = N(p_m, p_v)",
             sp.Integral(q * sp.log(q / p), (x, -sp.oo, sp.oo))),
            ("log q - log p is a quadratic polynomial in x", log_ratio),
            ("E_q[1], E_q[x], E_q[x^2] by sympy.integrate", moments),
            ("integrate term by term against q", integrated),
            ("simplify", closed),
        ),
    )


@float64_oracle
def _kl_standard_oracle(mu, sigma):
    return 0.5 * (sigma**2 + mu**2 - 1.0) - np.log(sigma)


@functools.lru_cache(maxsize=None)
def kl_standard() -> Derivation:
    """KL(N(mu, sigma^2) || N(0, 1)) = (sigma^2 + mu^2 - 1)/2 - log sigma (sigma = std)."""
    general = kl()
    mu = sp.Symbol("mu", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    qm, qv, pm, pv = general.symbols
    substituted = general.expr.subs({qm: mu, qv: sigma**2, pm: 0, pv: 1}, simultaneous=True)
    closed = (sigma**2 + mu**2 - 1) / 2 - sp.log(sigma)
    return conclude(
        "gaussian.kl_standard", (mu, sigma), _kl_standard_oracle,
        derived=substituted, what="the KL against N(0, 1)",
        steps=(
            ("general KL", general.expr),
            ("substitute q_m = mu, q_v = sigma^2, p_m = 0, p_v = 1", substituted),
            ("log(1/sigma^2) = -2 log(sigma)", closed),
        ),
    )


# ------------------------------------------------------ full covariance (numpy)
def kl_gaussians(m1, S1, m2, S2):
    """KL(N(m1, S1) || N(m2, S2)) for full covariance matrices, in float64.

    ``1/2 [tr(S2^-1 S1) + (m2 - m1)^T S2^-1 (m2 - m1) - k + log det S2 - log det S1]``

    Means have shape ``(..., k)`` and covariances ``(..., k, k)``; leading
    dimensions broadcast.  Returns an array of shape ``(...)``.
    """
    m1, S1, m2, S2 = (np.asarray(a, dtype=np.float64) for a in (m1, S1, m2, S2))
    k = m1.shape[-1]
    L1, L2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    logdet1 = 2 * np.log(np.diagonal(L1, axis1=-2, axis2=-1)).sum(-1)
    logdet2 = 2 * np.log(np.diagonal(L2, axis1=-2, axis2=-1)).sum(-1)
    trace = np.trace(np.linalg.solve(S2, S1), axis1=-2, axis2=-1)
    diff = m2 - m1
    maha = (diff * np.linalg.solve(S2, diff[..., None])[..., 0]).sum(-1)
    return 0.5 * (trace + maha - k + logdet2 - logdet1)


__getattr__ = lazy_attributes(__name__, {"LOG_DENSITY": log_density, "KL": kl, "KL_STANDARD": kl_standard})
