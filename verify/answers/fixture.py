"""The written answers of the submission under test (``--submission``), for the ``answers`` fixture.

The fixture is ``verify/test_written_answers.py``'s; it imports this module when a written answer's
check first runs (SymPy's import is paid by those checks alone). Without ``--submission`` (or
with ``reference``) it gives the reference answers, the derived closed forms. The submission's
``answers.py`` is read as text, never imported (see :mod:`.source`).
"""
from __future__ import annotations

from .source import Answers, for_submission


def answers_of(config) -> Answers:
    """The answers of the submission that pytest's ``config`` names (``--submission``)."""
    return for_submission(config.getoption("--submission", default=None))
