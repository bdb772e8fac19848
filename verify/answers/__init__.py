"""Written answers: closed forms in ``answers.py``, graded by equivalence with the derivations.

``answers.py`` (see ../shared/CONTRACT.md, "Written answers") may define, as strings in SymPy syntax
or LaTeX, ``KL_GAUSSIAN`` (in mu, sigma), ``AFFINE_FLOW_DENSITY`` (in x) and ``COUPLING_LOG_DET``
(in s1, ..., sk). The file is read as text and never run (:mod:`.source`); each string is parsed by
a parser that cannot run code (:mod:`.parser`); the comparison with the derived closed form and the
feedback run in a child process with a time limit (:mod:`.equivalence`), using a catalogue of known
wrong forms (:mod:`.catalogue`). The checks are ``verify/test_written_answers.py``.

    from verify.answers import judge
    judge("KL_GAUSSIAN", "0.5*(sigma**2 + mu**2 - 1 - log(sigma**2))").ok     # True
"""
from __future__ import annotations

from .equivalence import TIMEOUT, Verdict, judge
from .parser import ParseError, parse
from .questions import NAMES, QUESTIONS
from .source import Answers, for_submission, read

__all__ = ["NAMES", "QUESTIONS", "TIMEOUT", "Answers", "ParseError", "Verdict", "check", "for_submission", "judge",
           "parse", "read"]

def check(answers: Answers, name: str) -> Verdict:
    """Fail (AssertionError with the feedback) unless ``answers`` has a correct ``name``."""
    __tracebackhide__ = True
    text = answers.values.get(name)
    if text is None:
        raise AssertionError(f"{name}: not submitted ({answers.missing_reason(name)})")
    verdict = judge(name, text)
    if not verdict.ok:
        raise AssertionError(verdict.message)
    return verdict
