r"""ELBO identity for the linear-Gaussian latent variable model.

Model (``A`` is ``(n, k)``, ``b`` is ``(n,)``, ``s2 > 0`` a scalar variance)::

    z ~ N(0, I_k),        x | z ~ N(A z + b, s2 I_n)

Everything is Gaussian, so all quantities are closed form:

* marginal:   ``log p(x) = log N(x; b, A A^T + s2 I_n)``
* posterior:  ``p(z | x) = N(mean, cov)`` with
  ``cov = (I_k + A^T A / s2)^{-1}``, ``mean = cov A^T (x - b) / s2``
* ELBO of ``q = N(qm, qcov)``::

      ELBO(q) = E_q[log p(x | z)] - KL(q || p(z))
      E_q[log p(x | z)] = -n/2 log(2 pi s2)
                          - (||x - A qm - b||^2 + tr(A qcov A^T)) / (2 s2)

* identity:   ``log p(x) = ELBO(q) + KL(q || p(z | x))`` for every q, so the
  ELBO is a lower bound, tight exactly at q = posterior.

:func:`identity` proves the identity with SymPy in the scalar case
(k = n = 1, ``A = a``); the numpy functions below are float64 oracles for
any k, n (the tests check the identity numerically).
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, conclude, float64_oracle, lazy_attributes, require_equal
from .gaussian import log_density_oracle, expectation, kl, kl_gaussians, log_density

__all__ = ["log_marginal", "posterior", "elbo", "kl_gaussians", "identity", "IDENTITY"]

_LOG_2PI = np.log(2 * np.pi)


def _as_float64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def log_marginal(x, A, b, s2):
    """log p(x) = log N(x; b, A A^T + s2 I); x (n,) -> scalar, (B, n) -> (B,)."""
    x, A, b, s2 = _as_float64(x, A, b, s2)
    n = A.shape[0]
    L = np.linalg.cholesky(A @ A.T + s2 * np.eye(n))
    white = np.linalg.solve(L, (x - b).T)  # L^{-1} (x - b), shape (n,) or (n, B)
    logdet = 2 * np.log(np.diag(L)).sum()
    return -0.5 * (n * _LOG_2PI + logdet + (white**2).sum(0))


def posterior(x, A, b, s2):
    """p(z | x) = N(mean, cov); mean (k,) or (B, k), cov (k, k)."""
    x, A, b, s2 = _as_float64(x, A, b, s2)
    k = A.shape[1]
    cov = np.linalg.inv(np.eye(k) + A.T @ A / s2)
    cov = 0.5 * (cov + cov.T)
    mean = (x - b) @ A @ cov / s2  # row form of cov A^T (x - b) / s2 (cov is symmetric)
    return mean, cov


def elbo(x, A, b, s2, qm, qcov):
    """E_q[log p(x | z)] - KL(q || N(0, I)) for q = N(qm, qcov).

    x (n,) or (B, n); qm (k,) or (B, k); qcov (k, k) or (B, k, k).
    """
    x, A, b, s2, qm, qcov = _as_float64(x, A, b, s2, qm, qcov)
    n, k = A.shape
    residual = x - b - qm @ A.T
    trace = (A.T @ A * np.swapaxes(qcov, -1, -2)).sum((-2, -1))  # tr(A qcov A^T)
    expected_loglik = -0.5 * (n * (_LOG_2PI + np.log(s2))
                              + ((residual**2).sum(-1) + trace) / s2)
    return expected_loglik - kl_gaussians(qm, qcov, np.zeros(k), np.eye(k))


@float64_oracle
def _log_marginal_1d(x, a, b, s2):
    return log_density_oracle(x, b, a * a + s2)


def _log_normal(x, m, v):
    return log_density().expr.subs(dict(zip(log_density().symbols, (x, m, v))),
                                   simultaneous=True)


def _kl_1d(qm, qv, pm, pv):
    return kl().expr.subs(dict(zip(kl().symbols, (qm, qv, pm, pv))), simultaneous=True)


@functools.lru_cache(maxsize=None)
def identity() -> Derivation:
    """Scalar case: ELBO(q) + KL(q || p(z|x)) = log p(x) = log N(x; b, a^2 + s2)."""
    x, z, a, b, mq = sp.symbols("x z a b m_q", real=True)
    s2, vq = sp.symbols("s2 v_q", positive=True)
    log_lik, log_prior = _log_normal(x, a * z + b, s2), _log_normal(z, 0, 1)

    # Posterior: log p(x|z) + log p(z) is quadratic in z; complete the square.
    joint = sp.Poly(sp.expand(log_lik + log_prior), z)
    precision = -2 * joint.coeff_monomial(z**2)
    post_var = sp.simplify(1 / precision)
    post_mean = sp.simplify(joint.coeff_monomial(z) / precision)

    # Bayes: log p(x) = log p(x|z) + log p(z) - log p(z|x), at any z (take z = 0).
    bayes = (log_lik + log_prior - _log_normal(z, post_mean, post_var)).subs(z, 0)
    closed = _log_normal(x, b, a**2 + s2)
    require_equal(bayes, closed, "log p(x) = log N(x; b, a^2 + s2)")

    expected_loglik = expectation(log_lik, z, mq, vq)
    elbo_q = expected_loglik - _kl_1d(mq, vq, 0, 1)
    kl_post = _kl_1d(mq, vq, post_mean, post_var)

    return conclude(
        "elbo.identity", (x, a, b, s2), _log_marginal_1d,
        derived=elbo_q + kl_post, what="ELBO + KL(q || posterior) = log p(x)",
        steps=(
            ("posterior variance (complete the square in z)", post_var),
            ("posterior mean", post_mean),
            ("log p(x) = log p(x|z) + log p(z) - log p(z|x) at z = 0", bayes),
            ("E_q[log p(x|z)], q = N(m_q, v_q), by sympy.integrate", expected_loglik),
            ("ELBO(q) = E_q[log p(x|z)] - KL(q || N(0, 1))", elbo_q),
            ("KL(q || p(z|x))", kl_post),
            ("ELBO(q) + KL(q || p(z|x)) - log p(x) simplifies to",
             sp.simplify(sp.expand_log(elbo_q + kl_post - closed, force=True))),
            ("hence log p(x) = log N(x; b, a^2 + s2)", closed),
        ),
    )


__getattr__ = lazy_attributes(__name__, {"IDENTITY": identity})
