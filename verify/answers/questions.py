"""The three written questions: their symbols, the derived closed forms, where to test them, and the
question-specific observations behind the feedback.

The reference answers are the derivations' closed forms (:mod:`derivations`):

* ``KL_GAUSSIAN``: ``derivations.gaussian.kl_standard`` (mu real, sigma > 0). Its closed form is
  written out here rather than derived at grading time (the SymPy integration takes about a second);
  ``tests/test_answers.py`` proves the two equal.
* ``AFFINE_FLOW_DENSITY``: ``derivations.affine_flow.homework_density()``, N(x; 3, 1.5^2) (x real).
* ``COUPLING_LOG_DET``: ``derivations.coupling.coupling_log_det`` for the 2 + 2 split, s1 + s2; an
  answer that uses s1, ..., sk (k > 2) is compared with s1 + ... + sk.
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

import sympy as sp

from derivations import affine_flow

from . import catalogue
from .parser import parse

MU = sp.Symbol("mu", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
X = affine_flow.X  # real, the symbol derivations.affine_flow integrates over
MAX_K = 32
_UNPREDICTABLE = random.SystemRandom()  # draws the written answers' hidden test points, per run
S = tuple(sp.Symbol(f"s{i}", real=True) for i in range(1, MAX_K + 1))


@dataclass(frozen=True)
class Question:
    name: str
    title: str
    symbols: dict  # the names an answer may use -> SymPy symbols
    reference_text: str  # the derived closed form, in SymPy syntax
    ranges: dict  # symbol -> (low, high) of the random test points

    def parse(self, text: str):
        return parse(text, self.symbols, self.name)

    def variables(self, expr) -> tuple:
        """The symbols the answer is a function of (all of the question's, for the coupling s1..sk)."""
        if self.name == "COUPLING_LOG_DET":
            used = [int(s.name[1:]) for s in expr.free_symbols if re.fullmatch(r"s\d+", s.name)]
            return S[: max([2, *used])]
        return tuple(dict.fromkeys(self.symbols.values()))

    def reference(self, expr=None):
        if self.name == "COUPLING_LOG_DET":
            return sp.Add(*self.variables(expr if expr is not None else sp.Integer(0)))
        return _reference(self.name)

    def points(self, expr, n: int = 8) -> list[dict]:
        """``n`` points fixed per question (the feedback quotes them: the same every run), then ``n``
        drawn from the operating system's randomness (:data:`_UNPREDICTABLE`), all in the question's
        domain: exact rationals, the random ones with random denominators up to 10**12, so that an
        answer cannot be built to agree with the closed form only where it is tested."""
        fixed = random.Random(f"written-answer:{self.name}")
        out = []
        for rng, denominators in ((fixed, (1000, 1000)), (_UNPREDICTABLE, (10**9, 10**12))):
            for _ in range(n):
                q = rng.randint(*denominators)
                point = {}
                for v in self.variables(expr):
                    lo, hi = self.ranges.get(v.name, self.ranges.get("s", (-2, 2)))
                    offset = sp.Rational(1, 7919) if rng is fixed else 0
                    point[v] = sp.Rational(rng.randint(int(lo * q), int(hi * q)), q) + offset
                out.append(point)
        return out

    def wrong_forms(self, expr) -> list[tuple]:
        """(name, expression, explanation) of the catalogued wrong answers to this question."""
        forms = []
        for wf in catalogue.ALL[self.name]:
            if callable(wf.form):
                forms.append((wf.name, wf.form(list(self.variables(expr))), wf.explanation))
            else:
                forms.append((wf.name, _parsed_form(self.name, wf.form), wf.explanation))
        return forms


@functools.lru_cache(maxsize=None)
def _parsed_form(name: str, text: str):
    return QUESTIONS[name].parse(text)


@functools.lru_cache(maxsize=None)
def _reference(name: str):
    if name == "AFFINE_FLOW_DENSITY":
        return affine_flow.homework_density()
    return QUESTIONS[name].parse(QUESTIONS[name].reference_text)


def _coupling_symbols() -> dict:
    names = {}
    for i, s in enumerate(S, 1):
        names[f"s{i}"] = s
        names[f"s_{i}"] = s
    return names


QUESTIONS = {
    q.name: q
    for q in (
        Question(
            "KL_GAUSSIAN", "KL(N(mu, sigma^2) || N(0, 1)) in one dimension",
            {"mu": MU, "sigma": SIGMA},
            "(sigma**2 + mu**2 - 1)/2 - log(sigma)",
            {"mu": (-2.5, 2.5), "sigma": (0.2, 3)},
        ),
        Question(
            "AFFINE_FLOW_DENSITY", "the density p(x) of x = 1.5 z + 3, z ~ N(0, 1)",
            {"x": X},
            sp.sstr(affine_flow.homework_density()),
            {"x": (-1, 7)},
        ),
        Question(
            "COUPLING_LOG_DET", "log|det dy/dx| of the affine coupling layer in the scale outputs s1, ..., sk",
            _coupling_symbols(),
            "s1 + s2",
            {"s": (-2, 2)},
        ),
    )
}
NAMES = tuple(QUESTIONS)
