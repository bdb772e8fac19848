r"""The Jacobian of an affine coupling layer (RealNVP), symbolically.

Split x = (x_a, x_b): x_a passes through (mask 1), x_b is transformed (mask 0)::

    y_a = x_a,    y_b = x_b * exp(s(x_a)) + t(x_a)

with s, t arbitrary functions of x_a only (undefined SymPy functions here). Then::

    dy/dx = [[ I,          0              ],
             [ dy_b/dx_a,  diag(exp(s))   ]]

is block lower-triangular: the zero block (dy_a/dx_b) is what makes the determinant the product
of the diagonal, det = exp(s_1 + ... + s_k), so  log|det dy/dx| = s_1 + ... + s_k, the sum of
the scale outputs over the transformed coordinates. SymPy builds y for dimension 4 = 2 + 2,
differentiates, checks the blocks and simplifies the determinant to exp(s1 + s2).

``COUPLING_LOG_DET`` (or :func:`coupling_log_det`) is the :class:`Derivation` of the log-det in
the symbols (s1, s2); :func:`log_det` is the numeric oracle for any mask.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, float64_oracle, lazy_attributes

__all__ = ["coupling_jacobian", "coupling_log_det", "log_det", "COUPLING_LOG_DET"]


def coupling_jacobian(n_pass: int = 2, n_trans: int = 2):
    """Symbolic coupling of dimension n_pass + n_trans.

    Returns ``(x, y, J, s, t)``: the input symbols, the output column y, its Jacobian dy/dx
    (an ImmutableMatrix), and the lists of undefined functions s_i(x_a), t_i(x_a) applied.
    """
    x = sp.symbols(f"x1:{n_pass + n_trans + 1}", real=True)
    x_a, x_b = x[:n_pass], x[n_pass:]
    s = [sp.Function(f"s_{i + 1}")(*x_a) for i in range(n_trans)]
    t = [sp.Function(f"t_{i + 1}")(*x_a) for i in range(n_trans)]
    y = sp.ImmutableMatrix([*x_a, *(xb * sp.exp(si) + ti for xb, si, ti in zip(x_b, s, t))])
    return x, y, sp.ImmutableMatrix(y.jacobian(x)), s, t


@float64_oracle
def _log_det_2_oracle(s1, s2):
    return s1 + s2


def log_det(s, mask):
    """log|det dy/dx| per example: the sum of s over the transformed features (mask == 0).

    ``s`` has shape (B, *feature shape), ``mask`` the feature shape; returns float64, shape (B,).
    """
    s, mask = np.asarray(s, dtype=np.float64), np.asarray(mask, dtype=np.float64)
    return ((1.0 - mask) * s).reshape(s.shape[0], -1).sum(-1)


@functools.lru_cache(maxsize=None)
def coupling_log_det() -> Derivation:
    """log|det dy/dx| = s1 + s2 for the coupling of dimension 4 split 2 + 2."""
    n_pass, n_trans = 2, 2
    x, y, jac, s, _ = coupling_jacobian(n_pass, n_trans)
    pass_block, zero_block = jac[:n_pass, :n_pass], jac[:n_pass, n_pass:]
    trans_block = jac[n_pass:, n_pass:]
    if pass_block != sp.eye(n_pass):
        raise AssertionError(f"dy_a/dx_a is not the identity: {pass_block}")
    if zero_block != sp.zeros(n_pass, n_trans):
        raise AssertionError(f"dy_a/dx_b is not zero: {zero_block}")
    if trans_block != sp.diag(*(sp.exp(si) for si in s)):
        raise AssertionError(f"dy_b/dx_b is not diag(exp(s)): {trans_block}")
    det = jac.det()
    s_sym = sp.symbols(f"s1:{n_trans + 1}", real=True)
    det_s = sp.simplify(det).subs(dict(zip(s, s_sym)), simultaneous=True)
    if sp.simplify(det_s - sp.exp(sum(s_sym))) != 0:
        raise AssertionError(f"det dy/dx did not simplify to exp(s1 + s2): {det_s}")
    closed = sum(s_sym)
    log_abs_det = sp.expand_log(sp.log(sp.exp(closed)), force=True)
    if sp.simplify(log_abs_det - closed) != 0:
        raise AssertionError(f"log exp(s1 + s2) did not simplify: {log_abs_det}")
    return Derivation(
        name="coupling.log_det",
        expr=closed,
        symbols=s_sym,
        steps=(
            ("coupling y = (x1, x2, x3 exp(s_1(x1, x2)) + t_1(x1, x2), x4 exp(s_2(x1, x2)) + t_2(x1, x2))", y),
            ("Jacobian dy/dx", jac),
            ("block dy_a/dx_b is zero: dy/dx is block lower-triangular", zero_block),
            ("block dy_b/dx_b is diag(exp(s))", trans_block),
            ("determinant: the product of the diagonal", det),
            ("in terms of s1 = s_1(x1, x2), s2 = s_2(x1, x2)", sp.Eq(sp.Symbol("det"), det_s, evaluate=False)),
            ("log|det dy/dx| = s1 + s2 (exp > 0, so no absolute value is needed)", closed),
        ),
        oracle=_log_det_2_oracle,
    )


__getattr__ = lazy_attributes(__name__, {"COUPLING_LOG_DET": coupling_log_det})
