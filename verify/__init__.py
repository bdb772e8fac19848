"""dgm-verify's conformance suite and what runs it.

``pytest verify/`` checks the reference (``impls``); ``pytest verify/ --submission PATH`` checks
anyone's code. Every check reaches the implementation under test through the ``impl`` fixture,
an :class:`verify.loader.Implementation`, and never imports a submission itself.

:func:`suite_args` is the one pytest command line that runs the suite (``python -m verify``, the
grader's worker, the Gradescope bundle's setup check).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_SEED = 236  # the suite's fixed default seed (``--verify-seed`` changes it)
SUITE = Path(__file__).resolve().parent  # this folder: the checks


def suite_args(*, select: str | None = None, extra: Iterable[str] = (), relative: bool = False) -> list[str]:
    """pytest's arguments (after ``pytest`` or ``python -m pytest``) that run the suite.

    The suite's folder, no cache, none of the project's ``addopts``, the slow checks left out, the
    repository as rootdir; then ``-k select`` when given, then ``extra``. With ``relative``, the
    paths are relative to the repository root, for a command run from the root of another copy
    (the Gradescope bundle's ``setup.sh``).
    """
    suite, root = (SUITE.name, ".") if relative else (str(SUITE), str(SUITE.parent))
    args = [suite, "-p", "no:cacheprovider", "-o", "addopts=", "-m", "not slow", "--rootdir", root]
    return args + (["-k", select] if select else []) + list(extra)
