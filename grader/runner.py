"""Grade submissions: run the suite per submission in a worker process, score it with the rubric.

The worker is ``python -m pytest verify/ --submission PATH -p grader.plugin`` (the suite's command
line, :func:`verify.suite_args`): the same checks as ``pytest verify/``, not a second copy. It
writes one JSON line per finished check; a check with no line (the worker timed out or died)
fails with that reason, and the reports are written all the same.
"""
from __future__ import annotations

import functools
from fractions import Fraction
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from verify import SUITE, suite_args
from grader.options import GradeOptions
from grader.rubric import DEFAULT as DEFAULT_RUBRIC, Group, Rubric, load as load_rubric
from grader import discovery
from grader.zygote import Zygote, checks_environment

ROOT = SUITE.parent  # the repository: the worker runs there
_RUNNING: set[subprocess.Popen] = set()  # the processes running checks now (killed on an interrupt)
_STOPPING = threading.Event()  # set on an interrupt: nothing new starts, nothing unfinished is scored
_ZYGOTES: set[Zygote] = set()  # the pre-imported processes forking the checks' processes (grader/zygote.py)


class Interrupted(KeyboardInterrupt):
    """Grading was interrupted (Ctrl-C); ``results``: the submissions finished before it, in order."""

    def __init__(self, results: list):
        super().__init__("interrupted")
        self.results = results


@dataclass
class Check:
    nodeid: str
    name: str
    targets: list
    outcome: str
    message: str = ""
    doc: str = ""
    duration: float = 0.0
    diagnosis: dict | None = None
    group: str | None = None
    visibility: str = "visible"
    score: float = 0.0
    max_score: float = 0.0


@dataclass
class Result:
    label: str
    path: str
    checks: list
    groups: dict  # group name -> {"score", "max_score", "passed", "total"}
    score: float
    max_score: float
    execution_time: float
    problems: list = field(default_factory=list)  # worker timed out or died, ungraded checks
    sandbox: list = field(default_factory=list)  # how the submission's code was confined (the worker's report)
    incomplete: str | None = None  # why some checks could not be run (time limit, the process died), or None
    fingerprint: dict = field(default_factory=dict)  # what was graded, with what (grader.workflow: --resume)

    def failed(self):
        return [c for c in self.checks if c.outcome != "passed"]


@functools.lru_cache(maxsize=4)
def expected_checks(select: str | None = None) -> dict[str, list[str]]:
    """Every check the suite runs, with the names it grades, collected without any submission (used
    only when a worker died before reporting its own collection)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "collected.jsonl"
        proc = subprocess.run(_pytest_cmd(select, "--collect-only", "-p", "grader.plugin", "--grading-out", str(out)),
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        line = json.loads(out.read_text(encoding="utf-8").splitlines()[0]) if out.exists() else {}
    if not line.get("collected"):
        raise RuntimeError(f"could not collect the checks:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return _targets_by_id(line)


def _targets_by_id(collection: dict) -> dict[str, list[str]]:
    """The plugin's collection line as {node id: names it grades}, in collection order."""
    targets = collection.get("targets", {})
    return {nodeid: targets.get(nodeid, []) for nodeid in collection["collected"]}


def _pytest_cmd(select: str | None = None, *extra: str) -> list[str]:
    """The child process running the suite, quietly: ``python -m pytest`` and :func:`verify.suite_args`.
    No tracebacks in its log (``--tb=no``): the grader reads each check's message from its result
    line, and formatting a failing submission's tracebacks cost up to a CPU-second."""
    return [sys.executable, "-m", "pytest", *suite_args(select=select, extra=("-q", "--no-header", "--tb=no", *extra))]


# ------------------------------------------------------------------------------- the worker
def run_worker(path: Path, workdir: Path, options: GradeOptions,
               zygote: Zygote | None = None) -> tuple[list[dict], str | None, float]:
    """Run the checks on one submission; returns (result lines, problem or None, seconds).

    The checks run in a child process of ours (trusted: it computes verdicts), forked from
    ``zygote`` when given (grader/zygote.py), else a fresh ``python -m pytest``; the submission runs
    in that child's sandboxed worker, or, with ``options.in_process`` (trusted code only), inside it.
    """
    out = workdir / "checks.jsonl"
    start = time.perf_counter()
    cmd = _worker_cmd(path, out, options)
    if zygote is not None and zygote.alive():  # a zygote that died: fresh processes for the rest
        problem = _run_forked(zygote, cmd[3:], workdir / "checks.log", options.timeout)  # cmd: python -m pytest ...
    else:
        problem = _run_to_end(cmd, options.timeout)
    seconds = time.perf_counter() - start
    return _read_lines(out), problem, seconds


def _worker_cmd(path: Path, out: Path, options: GradeOptions) -> list[str]:
    """The suite on the submission at ``path``, one JSON line per check written to ``out``."""
    return _pytest_cmd(options.select, "--submission", str(Path(path).resolve()), "--verify-seed", str(options.seed),
                       "--check-timeout", str(options.check_timeout), "--worker-memory", str(options.memory_mb),
                       "-p", "grader.plugin", "--grading-out", str(out),
                       *(["--in-process"] if options.in_process else []),
                       *(["--grading-rubric", str(options.rubric or DEFAULT_RUBRIC)] if _has_unseen_groups(options) else []))


def _has_unseen_groups(options: GradeOptions) -> bool:
    """Does the rubric hide some group from students now (hidden, or shown only later)?"""
    return any(g.visibility != "visible" for g in load_rubric(options.rubric).groups)


def _run_to_end(cmd: list[str], timeout: float) -> str | None:
    """Run ``cmd`` for at most ``timeout`` seconds, then kill whatever it started; what went wrong, or None."""
    if _STOPPING.is_set():
        return "grading was interrupted"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=checks_environment(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    _RUNNING.add(proc)
    problem = None
    try:
        log, _ = proc.communicate(timeout=timeout)
        if proc.returncode not in (0, 1):  # pytest: 0 all passed, 1 some failed
            tail = log.decode(errors="replace")[-1500:]
            problem = f"the process running the checks ended with exit code {proc.returncode}; its last output:\n{tail}"
    except subprocess.TimeoutExpired:
        problem = f"grading this submission hit the time limit of {timeout:g} s"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing the submission started outlives grading
        except ProcessLookupError:
            pass
        proc.wait()
        _RUNNING.discard(proc)
    return problem


def _run_forked(zygote: Zygote, args: list[str], log: Path, timeout: float) -> str | None:
    """:func:`_run_to_end`, in a child forked from ``zygote`` that writes its output to ``log``."""
    if _STOPPING.is_set():
        return "grading was interrupted"
    code, timed_out = zygote.run(args, log, timeout)
    if timed_out:
        return f"grading this submission hit the time limit of {timeout:g} s"
    if code not in (0, 1):  # pytest: 0 all passed, 1 some failed
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        ended = "ended with exit code {}".format(code) if code is not None else "was lost with the checks' zygote"
        return f"the process running the checks {ended}; its last output:\n{tail}"
    return None


def _read_lines(out: Path) -> list[dict]:
    """The JSON lines the plugin wrote to ``out`` (none if it wrote nothing; a broken line is skipped)."""
    lines = []
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


# ------------------------------------------------------------------------------- scoring
def score(label: str, path: str, lines: list[dict], rubric: Rubric, problem: str | None, seconds: float,
          select: str | None = None) -> Result:
    """Apply the rubric to the check results; checks without a result fail with the reason."""
    checks = _checks(lines, problem, select)
    members, ungrouped = _assign_groups(checks, rubric)
    groups = {g.name: _score_group(g, members[g.name]) for g in rubric.groups}
    problems = _problems(problem, ungrouped, members, rubric, lines)
    total = float(sum(Fraction(v["score"]) for v in groups.values()))  # exact: rounded once, for display
    sandbox = next((d["sandbox"] for d in lines if isinstance(d.get("sandbox"), list)), [])
    return Result(label, path, checks, groups, total, rubric.max_score, round(seconds, 3), problems,
                  [str(x) for x in sandbox], incomplete=problem)


def _checks(lines: list[dict], problem: str | None, select: str | None) -> list[Check]:
    """A Check per expected check (the worker's collection, else the suite's), from its result line;
    one with no line failed with ``problem`` as the reason."""
    collection = next((d for d in lines if "collected" in d), None)
    expected = _targets_by_id(collection) if collection is not None else expected_checks(select)
    by_id = {d["nodeid"]: d for d in lines if "nodeid" in d}
    checks = []
    for nodeid, targets in expected.items():
        d = by_id.get(nodeid) or _not_run(nodeid, targets, problem)
        checks.append(Check(
            nodeid=d["nodeid"], name=d["name"], targets=d.get("targets", []), outcome=d["outcome"],
            message=d.get("message", ""), doc=d.get("doc", ""), duration=d.get("duration", 0.0),
            diagnosis=d.get("diagnosis")))
    return checks


def _not_run(nodeid: str, targets: list[str], problem: str | None) -> dict:
    """The result line of a check the worker gave no result for: failed, with the reason."""
    return {"nodeid": nodeid, "name": nodeid.split("::")[-1].removeprefix("test_"), "outcome": "failed",
            "targets": targets,
            "message": f"not run: {problem or 'the process running the checks gave no result for this check'}"}


def _assign_groups(checks: list[Check], rubric: Rubric) -> tuple[dict[str, list[Check]], list[Check]]:
    """Each check into its rubric group (setting its group and visibility): the checks per group,
    and the checks no group claims."""
    members = {g.name: [] for g in rubric.groups}
    ungrouped = []
    for c in checks:
        g = rubric.group_of({"name": c.name, "targets": c.targets})
        if g is None:
            ungrouped.append(c)
            continue
        c.group, c.visibility = g.name, g.visibility
        members[g.name].append(c)
    return members, ungrouped


def _score_group(group: Group, checks: list[Check]) -> dict:
    """Score a group's checks (each an equal share of its points; without partial credit, all or
    nothing), setting each check's score; the group's line: score, max_score, passed, total,
    partial_credit. Scores are exact (fractions of the points), never rounded: the reports round
    once, for display."""
    line = {"score": 0.0, "max_score": group.points, "passed": 0, "total": 0, "partial_credit": group.partial_credit,
            "visibility": group.visibility}
    if not checks:
        return line
    passed = sum(c.outcome == "passed" for c in checks)
    all_passed = passed == len(checks)
    share = Fraction(group.points) / len(checks)
    for c in checks:
        c.max_score = float(share)
        c.score = c.max_score if c.outcome == "passed" and (group.partial_credit or all_passed) else 0.0
    got = share * passed if group.partial_credit else (Fraction(group.points) if all_passed else Fraction(0))
    line.update(score=float(got), passed=passed, total=len(checks))
    return line


def _problems(problem: str | None, ungrouped: list[Check], members: dict[str, list[Check]],
              rubric: Rubric, lines: list[dict]) -> list[str]:
    """The notes of a result: the worker's problem, checks graded by no group, groups with no check,
    how the submission was loaded (the worker's load report), the rubric's warnings."""
    notes = [problem] if problem else []
    notes += [f"check {c.name} is in no rubric group: reported, not graded" for c in ungrouped]
    notes += [f"rubric group '{g.name}' matches no check: its {g.points:g} points cannot be earned"
              for g in rubric.groups if not members[g.name]]
    notes += [str(n) for d in lines for n in d.get("load_notes", [])]  # how the submission was loaded
    return notes + list(rubric.warnings)


def grade(paths: list[str], rubric: Rubric, options: GradeOptions | None = None, *, progress: bool = True,
          reuse=None, **settings) -> list[Result]:
    """Grade every submission found under ``paths``; one broken submission never stops the others.

    ``options`` (default: the command line's defaults) with ``settings``, :class:`GradeOptions`
    fields, replacing some of them: ``grade(paths, rubric, jobs=2, select="iwae")``. ``progress``:
    a progress bar (a line per submission when stderr is no terminal) when there are several
    submissions. ``reuse(label, path)``: an earlier Result to keep instead of grading again, or None.
    Ctrl-C stops the running checks at once and raises :class:`Interrupted` with the finished results.
    """
    options = replace(options or GradeOptions(), **settings)
    subs, decided = discovery.discover(paths, options.layout)  # by content; paths against the current folder
    if progress:
        print("\n".join(decided), file=sys.stderr, flush=True)
    results: list[Result | None] = [None] * len(subs)
    tick = _progress(len(subs)) if progress and len(subs) > 1 else (lambda result, reused=False: None)
    pool = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    zygote = None
    try:
        futures = {}
        for i, (label, path) in enumerate(subs):
            results[i] = reuse(label, path) if reuse is not None else None
            if results[i] is not None:
                tick(results[i], reused=True)
        todo = [i for i, r in enumerate(results) if r is None]
        # a zygote pays every import once for all; for one submission a fresh process imports only
        # what its checks use (a one-check regrade needs neither scipy nor sympy)
        zygote = _start_zygote(options) if len(todo) > 1 else None
        for i in todo:
            label, path = subs[i]
            futures[pool.submit(grade_submission, label, path, rubric, options, zygote)] = i
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            tick(results[futures[fut]])
    except KeyboardInterrupt:
        stop_all()
        raise Interrupted([r for r in results if r is not None]) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if zygote is not None:
            _ZYGOTES.discard(zygote)
            zygote.close()
        tick(None)
    return results


def _start_zygote(options: GradeOptions) -> Zygote | None:
    """The job's pre-imported process forking the checks' processes, or None (``options.zygote``
    False, or it could not start: each submission then gets a fresh ``python -m pytest``)."""
    if not options.zygote:
        return None
    try:
        zygote = Zygote()
    except (OSError, RuntimeError):
        return None
    _ZYGOTES.add(zygote)
    return zygote


def stop_all() -> None:
    """Start nothing new and kill every process running checks now (their submissions stay ungraded)."""
    _STOPPING.set()
    for zygote in list(_ZYGOTES):
        zygote.kill_all()
    for proc in list(_RUNNING):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the sandboxed workers die with their parent
        except ProcessLookupError:
            pass


def grade_submission(label: str, path: Path, rubric: Rubric, options: GradeOptions,
                     zygote: Zygote | None = None) -> Result | None:
    """Run the checks on one submission in a fresh working folder and score them (None if interrupted)."""
    with tempfile.TemporaryDirectory(prefix="dgm-grade-") as tmp:
        lines, problem, seconds = run_worker(path, Path(tmp), options, zygote)
    if _STOPPING.is_set():
        return None
    return score(label, str(path), lines, rubric, problem, seconds, options.select)


def _progress(total: int):
    """``tick(result)`` per graded submission, ``tick(None)`` at the end: a tqdm bar on a terminal,
    else a plain line per submission (no carriage returns in logs)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc="grading", unit="submission")
        return lambda result, reused=False: bar.update(1) if result is not None else bar.close()
    done = [0]

    def tick(result, reused=False):
        if result is not None:
            done[0] += 1
            how = "kept from an earlier run" if reused else f"{result.execution_time:.0f} s"
            print(f"graded {done[0]}/{total}: {result.label} {result.score:g} / {result.max_score:g} ({how})",
                  file=sys.stderr, flush=True)
    return tick
