"""``python -m verify``: run the conformance suite and summarize it per contract name.

    python -m verify                          # check the reference (the answer key)
    python -m verify grade PATH [PATH ...]    # grade submissions: points, feedback, reports (--help)
    python -m verify gradescope-bundle --rubric R -o autograder.zip   # a Gradescope autograder (--help)
    python -m verify grade-metrics FILE [--rubric R]   # check a student's reported test-set numbers (--help)
    python -m verify --submission PATH        # check a submission (file or directory)
    python -m verify --submission PATH -x -k kl_normal   # any other pytest option passes through
"""
from __future__ import annotations

import importlib
import sys
from collections import defaultdict

import pytest

from verify import suite_args
from verify.contract import CONTRACT_NAMES, MARKER


class Summary:
    """Tallies outcomes per contract name and prints one table at the end."""

    def __init__(self):
        self.counts = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            graded = dict(report.user_properties).get(MARKER) or ('other',)
            self.counts[graded[0]][report.outcome] += 1

    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("dgm-verify: checks per contract name")
        for name in sorted(self.counts, key=lambda n: CONTRACT_NAMES.index(n) if n in CONTRACT_NAMES else 99):
            c = self.counts[name]
            verdict = "FAIL" if c["failed"] else ("ok" if c["passed"] else "skipped")
            tr.write_line(f"{name:28s} {verdict:8s} {c['passed']:3d} passed {c['failed']:3d} failed {c['skipped']:3d} skipped")


# ``python -m verify NAME ...``: the module whose ``main(argv)`` runs the subcommand NAME
SUBCOMMANDS = {
    "grade": "grader.cli",
    "grade-metrics": "grader.metrics",
    "gradescope-bundle": "grader.gradescope.bundle",
}


def _missing_submission_path(argv: list[str]) -> bool:
    """Does ``--submission`` come without a path (last on the line)?"""
    sub = [a for a in argv if a.startswith("--submission")]
    return bool(sub) and "=" not in sub[0] and argv.index(sub[0]) + 1 >= len(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    if argv and argv[0] == "check":
        argv = argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if _missing_submission_path(argv):
        print("error: --submission needs a path", file=sys.stderr)
        return 2
    # grader.plugin: the diagnosis of failures (each known bug once, with its fix) in the summary
    return int(pytest.main(suite_args(extra=["-p", "grader.plugin", *argv]), plugins=[Summary()]))


if __name__ == "__main__":
    sys.exit(main())
