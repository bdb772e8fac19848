"""``python -m verify`` (or ``dgm-verify``): run the conformance suite and summarize it per contract
name, then list what to fix, one entry per distinct problem.

    python -m verify                          # check the reference (the answer key)
    python -m verify grade PATH [PATH ...]    # grade submissions: points, feedback, reports (--help)
    python -m verify gradescope-bundle --rubric R -o autograder.zip   # a Gradescope autograder (--help)
    python -m verify grade-metrics FILE [--rubric R]   # check a student's reported test-set numbers (--help)
    python -m verify --submission PATH        # check a submission (file or directory)
    python -m verify --submission PATH -x -k kl_normal   # any other pytest option passes through
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections import defaultdict

import pytest

from verify import SUITE_OPTIONS, suite_args
from verify.contract import CONTRACT_NAMES, MARKER
from verify.problems import LOADING, problems, render, scrub


class Summary:
    """Tallies outcomes per contract name and prints one table at the end, then one entry per
    distinct problem (:mod:`verify.problems`); a load error's traceback is shown once, not per check."""

    def __init__(self, submission: str | None = None):
        self.counts = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})
        self.failures: list[tuple[str, str, None]] = []
        self.submission = submission

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        if not report.failed or call.excinfo is None:
            return
        exc = call.excinfo.value
        message = scrub(str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}",
                        self.submission)
        if LOADING in message:  # the same reason for every check: the reason once, then a pointer to it
            first = not any(LOADING in m for _, m, _ in self.failures)
            report.longrepr = message if first else "the submission could not be loaded (the reason is above)"
        self.failures.append((item.name.removeprefix("test_"), message, None))

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
        if self.failures:
            found = problems(self.failures)
            tr.section(f"dgm-verify: what to fix ({len(found)} distinct problems, {len(self.failures)} failed checks)")
            for line in render(found):
                tr.write_line(line)


# ``python -m verify NAME ...``: the module whose ``main(argv)`` runs the subcommand NAME
SUBCOMMANDS = {
    "grade": ("grader.cli", "grade submissions: points, feedback, reports (a class folder, or one submission)"),
    "grade-metrics": ("grader.metrics", "check a student's reported test-set numbers (JSON, CSV, a log, or the course's pickles, never unpickled)"),
    "gradescope-bundle": ("grader.gradescope.bundle", "build a Gradescope autograder zip from a rubric"),
    "check": (None, "the default: run the checks (the options above)"),
}


def parser() -> argparse.ArgumentParser:
    """The front door's options (the suite's own, shared with pytest's parser) and subcommands: what
    ``--help`` prints and what is checked before pytest gets the command line."""
    p = argparse.ArgumentParser(
        prog="python -m verify", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands (each has --help):\n" + "\n".join(
            f"  {name:18s} {what}" for name, (_, what) in SUBCOMMANDS.items())
        + "\n\nAny other option is pytest's and passes through: -x, -k EXPR, -q, --lf, ...")
    for flag, kwargs in SUITE_OPTIONS:
        p.add_argument(flag, **kwargs)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS and SUBCOMMANDS[argv[0]][0] is not None:
        return importlib.import_module(SUBCOMMANDS[argv[0]][0]).main(argv[1:])
    if argv and argv[0] == "check":
        argv = argv[1:]
    try:
        known, _ = parser().parse_known_args(argv)  # --help; a missing value or a bad choice: exit 2
    except SystemExit as exc:
        return int(exc.code or 0)
    # grader.plugin: the diagnosis of failures (each known bug once, with its fix) in the summary
    return int(pytest.main(suite_args(extra=["-p", "grader.plugin", *argv]), plugins=[Summary(known.submission)]))


if __name__ == "__main__":
    sys.exit(main())
