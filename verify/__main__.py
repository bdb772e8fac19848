"""``python -m verify``: run the conformance suite and summarize it per contract name.

    python -m verify                          # check the reference (the answer key)
    python -m verify grade PATH [PATH ...]    # grade submissions: points, feedback, reports (--help)
    python -m verify gradescope-bundle --rubric R -o autograder.zip   # a Gradescope autograder (--help)
    python -m verify grade-metrics FILE [--rubric R]   # check a student's reported test-set numbers (--help)
    python -m verify --submission PATH        # check a submission (file or directory)
    python -m verify --submission PATH -x -k kl_normal   # any other pytest option passes through
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

from verify.contract import CONTRACT_NAMES, MARKER

HERE = Path(__file__).resolve().parent


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
        for note in getattr(tr.config, "_dgm_load_notes", None) or []:  # which form was loaded, stand-ins given
            tr.write_line(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "grade":
        from grader.cli import main as grade_main

        return grade_main(argv[1:])
    if argv and argv[0] == "grade-metrics":
        from grader.metrics import main as metrics_main

        return metrics_main(argv[1:])
    if argv and argv[0] == "gradescope-bundle":
        from grader.gradescope.bundle import main as bundle_main

        return bundle_main(argv[1:])
    if argv and argv[0] == "check":
        argv = argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    sub = [a for a in argv if a.startswith("--submission")]
    if sub:
        path = sub[0].split("=", 1)[1] if "=" in sub[0] else (argv[argv.index(sub[0]) + 1] if argv.index(sub[0]) + 1 < len(argv) else None)
        if path is None:
            print("error: --submission needs a path", file=sys.stderr)
            return 2
    args = [str(HERE), "-p", "no:cacheprovider", "-o", "addopts=", "-m", "not slow", "--rootdir", str(HERE.parent)]
    return int(pytest.main(args + argv, plugins=[Summary()]))


if __name__ == "__main__":
    sys.exit(main())
