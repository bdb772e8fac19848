"""The :class:`Derivation` container shared by every derivation module.

A derivation couples a SymPy closed form with the steps that produced it and
a float64 numpy "oracle" computing the same quantity.  The test-suite checks
that ``oracle`` agrees with ``sympy.lambdify(symbols, expr)``, so the two can
never drift apart.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp

from .numeric import float64_oracle  # noqa: F401  (the derivation modules import it from here)


@dataclass(frozen=True)
class Derivation:
    """A closed form, how it was obtained, and a numerical oracle for it.

    Attributes:
        name:    registry key, e.g. ``"gaussian.kl"``.
        expr:    the closed form (a SymPy expression).
        symbols: SymPy symbols, in the order the oracle takes its arguments.
        steps:   ``(description, sympy expression)`` pairs, in order.
        oracle:  ``oracle(*values)`` -> float64 ndarray; elementwise and
                 broadcasting over numpy arrays / floats given in the order of
                 ``symbols``.
    """

    name: str
    expr: sp.Expr
    symbols: tuple
    steps: tuple
    oracle: Callable[..., np.ndarray]

    def __call__(self, *values):
        return self.oracle(*values)

    def latex(self) -> str:
        """LaTeX of the closed form."""
        return sp.latex(self.expr)

    def lambdify(self) -> Callable[..., np.ndarray]:
        """The closed form as a (naive) numpy function of ``symbols``."""
        return sp.lambdify(self.symbols, self.expr, modules="numpy")

    def pretty(self) -> str:
        """Short human-readable text: the name, the steps and the result."""

        def show(expr):
            return textwrap.indent(sp.pretty(expr, use_unicode=False), "    ")

        args = ", ".join(str(s) for s in self.symbols)
        lines = [self.name, "=" * len(self.name)]
        for i, (description, expr) in enumerate(self.steps, 1):
            lines += [f"{i}. {description}", show(expr)]
        lines += [f"Result, as a function of ({args}):", show(self.expr)]
        return "\n".join(lines)


def require_equal(lhs, rhs, what: str) -> None:
    """Let SymPy prove ``lhs == rhs`` (``simplify`` of the difference is 0)."""
    if sp.simplify(sp.expand_log(lhs - rhs, force=True)) != 0:
        raise AssertionError(f"SymPy could not show {what}: {lhs} != {rhs}")


def conclude(name: str, symbols, oracle, *, derived, what: str, steps) -> Derivation:
    """The :class:`Derivation` ``name`` whose closed form is the expression of its last step, once
    SymPy has shown it equal to ``derived``, the form the steps computed (:func:`require_equal`,
    ``what`` naming the claim)."""
    closed = steps[-1][1]
    require_equal(derived, closed, what)
    return Derivation(name=name, expr=closed, symbols=tuple(symbols), steps=tuple(steps), oracle=oracle)


def lazy_attributes(module_name: str, factories: dict):
    """A module ``__getattr__`` (PEP 562): ``factories[name]()`` for the names of the derivations a
    module builds on first use (``KL`` -> ``kl()``); any other missing name is an AttributeError."""

    def __getattr__(name):
        if name in factories:
            return factories[name]()
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
