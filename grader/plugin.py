"""pytest plugin for the process that runs the checks: ``-p grader.plugin --grading-out FILE``.

Writes one JSON line per check as soon as it finishes (so a killed worker still leaves the checks it
completed): node id, check name, targeted contract names, outcome, the failure message, the
docstring's first line, duration, the catalogued bugs that reproduce the failure (``diagnosis``: the
first; ``findings``: one per output, grader/diagnosis.py) and the precision notes of passed checks.
Loaded by ``python -m verify`` too: the terminal summary then lists each diagnosed bug once, with
its fix. A check that ran past its time limit says "too slow, not wrong".
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

from verify import loader
from verify.lazy import OnFirstUse
from verify.contract import CLASS_NAMES, graded_names
from verify.problems import scrub
from grader.zygote import CHECKS_PROCESS

assertions = OnFirstUse("verify.assertions")  # torch: imported after the suite has launched its worker

MAX_MESSAGE = 4000


def pytest_addoption(parser):
    group = parser.getgroup("dgm-verify")
    group.addoption("--grading-out", default=None, help="JSON-lines file of check results")
    group.addoption("--grading-rubric", default=None,
                    help="the rubric: after each check of a group students do not see now, the worker is replaced")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    """After a check whose group students do not see now (hidden, or shown later), the submission's
    worker is stopped, so that nothing it kept of that check's inputs reaches a later check's
    message; the next check starts a fresh one."""
    yield
    if _unseen(item):
        sandbox = getattr(item.funcargs.get("impl"), "sandbox", None)
        if sandbox is not None:
            sandbox.stop()


def _unseen(item) -> bool:
    path = item.config.getoption("--grading-rubric")
    if path is None:
        return False
    if not hasattr(item.config, "_dgm_rubric"):
        from grader.rubric import load

        item.config._dgm_rubric = load(path)
    group = item.config._dgm_rubric.group_of({"name": item.name.removeprefix("test_"), "targets": list(graded_names(item))})
    return group is not None and group.visibility != "visible"


def pytest_collection_finish(session):
    """First line: every check this run will report on, with what it grades (the grader fails the ones with no result)."""
    path = session.config.getoption("--grading-out")
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"collected": [item.nodeid for item in session.items],
                                "targets": {item.nodeid: list(graded_names(item)) for item in session.items}}) + "\n")


def pytest_sessionfinish(session, exitstatus):
    """Last lines: how the submission's worker was confined (its own report), for report.json, and the
    load report's notes (they become the result's notes)."""
    path = session.config.getoption("--grading-out")
    sandbox = getattr(session.config, "_dgm_sandbox", None)
    if path is not None and sandbox is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"sandbox": sandbox.confinement or ["in process"], "restarts": sandbox.restarts})
                    + "\n")
    notes = getattr(session.config, "_dgm_load_notes", None)  # which form was graded, stand-ins given
    if path is not None and notes:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"load_notes": list(notes)}) + "\n")
    session.config._dgm_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A grader's checks' process (the grader marks its environment: :data:`CHECKS_PROCESS`) ends
    here, once every result line is written and the worker is stopped (the suite's own unconfigure
    ran before this one): no interpreter shutdown, which tears down torch, scipy and sympy for a
    second or more of nothing. A run inside another program (``pytest.main`` in a test) returns."""
    if os.environ.get(CHECKS_PROCESS) == "1" and hasattr(config, "_dgm_exitstatus"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._dgm_exitstatus)


try:
    _GROUP = BaseExceptionGroup
except NameError:  # Python 3.10: pytest's own backport
    from exceptiongroup import BaseExceptionGroup as _GROUP


def _leaves(exc):
    if isinstance(exc, _GROUP):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    else:
        yield exc


def _message(excinfo) -> str:
    exc = excinfo.value
    if isinstance(exc, _GROUP):
        # e.g. hypothesis's FlakyFailure when the sandbox stopped a worker between replays: the
        # student needs the reason (the worker's death, the time limit), not hypothesis's bookkeeping
        leaves = list(_leaves(exc))
        exc = next((e for e in leaves if isinstance(e, loader.SubmissionError)),
                   next((e for e in leaves if isinstance(e, AssertionError)), exc))
    if isinstance(exc, AssertionError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "__notes__", None)
    if notes:
        text += "\n" + "\n".join(str(n) for n in notes)
    return too_slow(text)[:MAX_MESSAGE]


SLOW = re.compile(r"did not finish within the time limit \(([\d.]+) s per check\)")


def too_slow(text: str) -> str:
    """A time-limit failure says so first: too slow is not wrong."""
    found = SLOW.search(text)
    if found is None:
        return text
    return (f"did not finish within {found.group(1)} s: too slow, not wrong (correct code of any usual style, "
            f"a Python loop over the examples included, finishes each check in a few seconds). {text}")


def _diagnose(item, target) -> list:
    from grader.diagnosis import Finding, explain_class, explain_outputs  # on a failure only

    impl = item.funcargs.get("impl")
    if impl is None or target is None or not impl.has(target):
        return []
    reference = loader.load(None).raw(target)
    if target in CLASS_NAMES:
        bug = explain_class(target, impl.raw(target), reference)
        return [] if bug is None else [Finding(target, target, bug)]
    return explain_outputs(target, impl.calls or [], reference, getattr(impl, target))


def _findings_of(item, targets) -> list:
    try:
        return _diagnose(item, targets[0] if targets else None)
    except Exception:  # diagnosis is a courtesy; it never changes a verdict
        return []


def pytest_configure(config):
    config._dgm_findings = {}  # (target, output, bug name) -> [the finding, the checks it explains]


def pytest_terminal_summary(terminalreporter, config):
    """Each diagnosed bug once (not once per check or parametrization), with its fix."""
    findings = getattr(config, "_dgm_findings", {})
    if not findings:
        return
    tr = terminalreporter
    tr.section("dgm-verify: diagnosis")
    for finding, checks in findings.values():
        bug = finding.bug
        where = finding.target if finding.output == finding.target else f"{finding.target}: {finding.output}"
        tr.write_line(f"{where}: your output equals what you get by {bug.teaches}.")
        if bug.fix:
            tr.write_line(f"    fix: {bug.fix}")
        tr.write_line(f"    (failed checks: {', '.join(sorted(set(checks)))})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    impl = item.funcargs.get("impl")
    if impl is not None:
        impl.record(True)
    assertions.NOTES.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    path = item.config.getoption("--grading-out")
    record = _record(item, call, report)
    impl = item.funcargs.get("impl")
    if impl is not None:
        impl.record(False)
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _record(item, call, report) -> dict:
    """The check's result line: what it grades, its outcome, the failure's message and diagnosis."""
    targets = list(graded_names(item))
    record = {
        "nodeid": item.nodeid,
        "name": item.name.removeprefix("test_"),
        "targets": targets,
        "outcome": "skipped" if report.skipped else ("passed" if report.passed else "failed"),
        "doc": ((item.function.__doc__ or "").strip().splitlines() or [""])[0],
        "duration": round(report.duration, 4),
        "message": "",
        "diagnosis": None,
        "findings": [],
        "notes": list(assertions.NOTES) if report.when == "call" else [],
    }
    assertions.NOTES.clear()
    if report.failed and call.excinfo is not None:
        record["message"] = scrub(_message(call.excinfo), item.config.getoption("--submission"))  # no grader paths
        findings = _findings_of(item, targets)
        record["findings"] = [f.as_dict() for f in findings]
        record["diagnosis"] = record["findings"][0] if findings else None
        seen = getattr(item.config, "_dgm_findings", {})
        for f in findings:
            seen.setdefault((f.target, f.output, f.bug.name), [f, []])[1].append(record["name"].split("[")[0])
    elif report.skipped and call.excinfo is not None:
        record["message"] = str(call.excinfo.value)[:MAX_MESSAGE]
    return record
