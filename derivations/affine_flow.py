r"""The affine flow x = a z + b, z ~ N(0, 1), by change of variables.

The map is invertible for a != 0, with inverse z = (x - b) / a and dz/dx = 1/a, so::

    p_x(x) = p_z((x - b) / a) * |dz/dx| = exp(-(x - b)^2 / (2 a^2)) / sqrt(2 pi a^2) = N(x; b, a^2)

SymPy derives this for a > 0 and for a < 0 (where |1/a| = -1/a) and proves that it integrates
to 1; for the homework's a = 3/2, b = 3 the density is N(3, 1.5^2) = N(3, 9/4).

A common written answer, "(2/3) N(3, 1.5)" (that is, 2/3 times the N(3, 1.5^2) density),
applies the Jacobian factor 1/|a| twice: N(3, 1.5^2) already contains it. It integrates to 2/3,
so it is not a density; :func:`check_density_answer` says so.

``AFFINE_FLOW`` (or :func:`affine_flow`) is the :class:`Derivation` of the density in (x, a, b);
its oracle is the density, :func:`log_density` the float64 log density (any a != 0).
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, float64_oracle, lazy_attributes, require_equal

__all__ = [
    "affine_flow", "affine_flow_density", "homework_density", "total_mass", "check_density_answer",
    "log_density", "AFFINE_FLOW", "HOMEWORK_SCALE", "HOMEWORK_SHIFT",
]

HOMEWORK_SCALE = sp.Rational(3, 2)
HOMEWORK_SHIFT = sp.Integer(3)

X = sp.Symbol("x", real=True)
_Z = sp.Symbol("z", real=True)
_B = sp.Symbol("b", real=True)
_A = sp.Symbol("a", positive=True)


def _standard_normal(z):
    return sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)


def _normal(x, mean, variance):
    return sp.exp(-(x - mean) ** 2 / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)


def _change_of_variables(a):
    """p_z(z(x)) |dz/dx| for z(x) = (x - b) / a: returns (inverse map, dz/dx, density)."""
    inverse = (X - _B) / a
    jacobian = sp.diff(inverse, X)
    return inverse, jacobian, _standard_normal(inverse) * sp.Abs(jacobian)


def total_mass(candidate):
    """The integral over the real line of ``candidate``, a density in ``x``.

    ``candidate`` is a SymPy expression or a string in SymPy syntax (as in ``answers.py``); any
    symbol named ``x`` is the variable of integration.
    """
    expr = sp.sympify(candidate, locals={"x": X}) if isinstance(candidate, str) else sp.sympify(candidate)
    expr = expr.subs({s: X for s in expr.free_symbols if s.name == "x"}, simultaneous=True)
    return sp.simplify(sp.integrate(expr, (X, -sp.oo, sp.oo)))


def homework_density():
    """The homework's answer N(x; 3, 1.5^2), as a SymPy expression in ``x`` (real)."""
    return _normal(X, HOMEWORK_SHIFT, HOMEWORK_SCALE**2)


def check_density_answer(candidate, scale=HOMEWORK_SCALE, shift=HOMEWORK_SHIFT):
    """(ok, message): is ``candidate`` the density of x = scale * z + shift, z ~ N(0, 1)?

    When it is not, the message gives its total mass and names the usual mistakes by it:
    mass 1/|a| (the Jacobian counted twice: the "(2/3) N(3, 1.5)" answer), |a| (no Jacobian
    factor) or a^2 (the factor |a| instead of 1/|a|).
    """
    expr = sp.sympify(candidate, locals={"x": X}) if isinstance(candidate, str) else sp.sympify(candidate)
    expr = expr.subs({s: X for s in expr.free_symbols if s.name == "x"}, simultaneous=True)
    scale, shift = sp.nsimplify(scale), sp.nsimplify(shift)
    target = _normal(X, shift, scale**2)
    if sp.simplify(expr - target) == 0:
        return True, f"correct: the density of N({shift}, ({scale})^2), which integrates to 1"
    mass = total_mass(expr)
    a = sp.Abs(scale)
    known = {
        1 / a: f"the Jacobian factor 1/|a| = {1 / a} is applied twice: N({shift}, ({scale})^2) already contains it",
        a: "the Jacobian factor 1/|a| of the change of variables is missing",
        a**2: "the Jacobian factor is inverted: |a| where 1/|a| belongs",
    }
    for value, reason in known.items():
        if sp.simplify(mass - value) == 0:
            return False, f"not a density: it integrates to {mass}, not 1; {reason}"
    if sp.simplify(mass - 1) == 0:
        return False, f"a density (it integrates to 1), but not N(x; {shift}, ({scale})^2)"
    return False, f"not a density: it integrates to {mass}, not 1"


@float64_oracle
def log_density(x, a, b):
    """log N(x; b, a^2) = -1/2 log(2 pi) - log|a| - ((x - b) / a)^2 / 2, float64, any a != 0."""
    return -0.5 * np.log(2 * np.pi) - np.log(np.abs(a)) - 0.5 * ((x - b) / a) ** 2


@float64_oracle
def _density_oracle(x, a, b):
    return np.exp(-0.5 * ((x - b) / a) ** 2) / (np.sqrt(2 * np.pi) * np.abs(a))


@functools.lru_cache(maxsize=None)
def affine_flow() -> Derivation:
    """p_x(x) = N(x; b, a^2) for x = a z + b, z ~ N(0, 1), by change of variables."""
    inverse, jacobian, density = _change_of_variables(_A)
    closed = _normal(X, _B, _A**2)
    require_equal(density, closed, "p_z((x - b)/a) |1/a| = N(x; b, a^2) for a > 0")
    mass = sp.integrate(closed, (X, -sp.oo, sp.oo))
    if mass != 1:
        raise AssertionError(f"SymPy could not show that N(x; b, a^2) integrates to 1: got {mass}")

    a_neg = sp.Symbol("a", negative=True)
    _, _, density_neg = _change_of_variables(a_neg)
    require_equal(density_neg, _normal(X, _B, a_neg**2), "the same density N(x; b, a^2) for a < 0")
    if sp.integrate(density_neg, (X, -sp.oo, sp.oo)) != 1:
        raise AssertionError("SymPy could not show that the density integrates to 1 for a < 0")

    homework = closed.subs({_A: HOMEWORK_SCALE, _B: HOMEWORK_SHIFT}, simultaneous=True)
    homework_mass = sp.integrate(homework, (X, -sp.oo, sp.oo))
    twice = homework * (1 / HOMEWORK_SCALE)
    twice_mass = sp.integrate(twice, (X, -sp.oo, sp.oo))
    if homework_mass != 1 or twice_mass != sp.Rational(2, 3):
        raise AssertionError(f"homework masses: {homework_mass} (expected 1), {twice_mass} (expected 2/3)")

    def integral(expr):
        return sp.Integral(expr, (X, -sp.oo, sp.oo))

    return Derivation(
        name="affine_flow.density",
        expr=closed,
        symbols=(X, _A, _B),
        steps=(
            ("base density p_z(z) = N(z; 0, 1)", _standard_normal(_Z)),
            ("invert x = a z + b: z(x) =", inverse),
            ("Jacobian dz/dx =", jacobian),
            ("change of variables p_x(x) = p_z(z(x)) |dz/dx|, a > 0", density),
            ("that is N(x; b, a^2); for a < 0, |dz/dx| = -1/a gives N(x; b, a^2) too", closed),
            ("it integrates to 1 (sympy.integrate, for a > 0 and for a < 0)",
             sp.Eq(integral(closed), mass, evaluate=False)),
            ("homework a = 3/2, b = 3: N(x; 3, 9/4)",
             sp.Eq(integral(homework), homework_mass, evaluate=False)),
            ("the answer '(2/3) N(3, 1.5)' counts 1/|a| twice: it integrates to 2/3",
             sp.Eq(integral(twice), twice_mass, evaluate=False)),
        ),
        oracle=_density_oracle,
    )


# The package can import this name without shadowing the module ``derivations.affine_flow``.
affine_flow_density = affine_flow


__getattr__ = lazy_attributes(__name__, {"AFFINE_FLOW": affine_flow})
