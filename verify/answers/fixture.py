"""The ``answers`` fixture: the written answers of the submission under test (``--submission``).

Registered by ``verify/test_written_answers.py`` (``from verify.answers.fixture import answers``).
Without ``--submission`` (or with ``reference``) it gives the reference answers, the derived closed
forms. The submission's ``answers.py`` is read as text, never imported (see :mod:`.source`).
"""
from __future__ import annotations

import pytest

from .source import Answers, for_submission


@pytest.fixture(scope="session")
def answers(request) -> Answers:
    return for_submission(request.config.getoption("--submission", default=None))
