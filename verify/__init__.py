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

# The suite's own options, in one place: ``verify/conftest.py`` adds them to pytest's parser and
# ``python -m verify --help`` (``verify/__main__.py``) to its argparse parser (same names, same kwargs).
SUITE_OPTIONS: tuple[tuple[str, dict], ...] = (
    ("--submission", dict(default=None, metavar="PATH",
                          help="submission to check (file or directory); default: the reference")),
    ("--device", dict(default="cpu", choices=("cpu", "cuda"), help="device for the checks' tensors (default cpu)")),
    ("--verify-seed", dict(type=int, default=None, metavar="N",
                           help=f"seed for every random choice (default {DEFAULT_SEED})")),
    ("--verify-seed-count", dict(type=int, default=0, metavar="N",
                                 help="run every stochastic check under this many seeds")),
    ("--in-process", dict(action="store_true",
                          help="import the submission into the checks' process (fast; trusted code only: no sandbox)")),
    ("--check-timeout", dict(type=float, default=120.0, metavar="SECONDS",
                             help="wall-clock seconds each check may spend in the sandboxed submission (default 120)")),
    ("--worker-memory", dict(type=int, default=4096, metavar="MIB",
                             help="address-space limit of the sandboxed submission's process, MiB (default 4096)")),
)
SUITE = Path(__file__).resolve().parent  # this folder: the checks


def suite_args(*, select: str | None = None, extra: Iterable[str] = (), relative: bool = False) -> list[str]:
    """pytest's arguments (after ``pytest`` or ``python -m pytest``) that run the suite.

    The suite's folder, no cache, no unraisable-exception plugin, none of the project's ``addopts``, the slow checks left out, the
    repository as rootdir; then ``-k select`` when given, then ``extra``. With ``relative``, the
    paths are relative to the repository root, for a command run from the root of another copy
    (the Gradescope bundle's ``setup.sh``).
    """
    suite, root = (SUITE.name, ".") if relative else (str(SUITE), str(SUITE.parent))
    # no:unraisableexception: its clean-up runs gc.collect() five times over torch's, scipy's and
    # sympy's objects, 1-3 CPU-seconds per run; the checks' process runs no untrusted code to watch
    args = [suite, "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-o", "addopts=", "-m", "not slow",
            "--rootdir", root]
    return args + (["-k", select] if select else []) + list(extra)
