"""Helpers for the library's own tests: run the conformance suite in process on a submission."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from verify import suite_args

REPO = Path(__file__).resolve().parents[1]
VERIFY = REPO / "verify"


@dataclass
class SuiteRun:
    exit_code: int
    passed: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # nodeid -> failure text
    skipped: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)  # collection or fixture errors

    def failed_ids_naming(self, name: str) -> list:
        return [n for n in self.failed if name in n.split("::")[-1]]


class _Collector:
    def __init__(self, run: SuiteRun):
        self.run = run

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            if report.passed:
                self.run.passed.append(report.nodeid)
            elif report.failed:
                self.run.failed[report.nodeid] = report.longreprtext
            elif report.skipped:
                self.run.skipped.append(report.nodeid)
        elif report.failed:
            self.run.errors[report.nodeid] = report.longreprtext
        elif report.skipped:
            self.run.skipped.append(report.nodeid)

    def pytest_collectreport(self, report):
        if report.failed:
            self.run.errors[report.nodeid or "collection"] = report.longreprtext


def run_suite(submission: Path | None, *args: str, in_process: bool = True) -> SuiteRun:
    """``pytest verify/ [--submission submission] args`` in this process, outcomes per check.

    The inner run blocks the ``unraisableexception`` plugin (its session cleanup calls gc.collect()
    five times: about 0.7 s a run with torch and SymPy loaded) and uses one torch thread (the
    checks' tensors are small; two contending threads on a busy 2-core machine are much slower).
    """
    run = SuiteRun(exit_code=-1)
    argv = suite_args(extra=["-q", "-p", "no:unraisableexception", "--no-header"])
    # in process: these runs are about what the checks catch (the sandbox has its own tests)
    argv += ["--submission", str(submission)] if submission is not None else []
    argv += ["--in-process"] if submission is not None and in_process else []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run.exit_code = int(pytest.main(argv + list(args), plugins=[_Collector(run)]))
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture
def suite():
    return run_suite
