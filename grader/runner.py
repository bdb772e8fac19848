"""Grade submissions: run the suite per submission in a worker process, score it with the rubric.

The worker is ``python -m pytest verify/ --submission PATH -p grader.plugin``: the same
checks as ``pytest verify/``, not a second copy. It writes one JSON line per finished check; a
check with no line (the worker timed out or died) fails with that reason, and the reports are
written all the same.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from verify import DEFAULT_SEED, loader
from grader.labels import unique_labels
from grader.rubric import Rubric
from sandbox.submission import _find_cs236_package as find_cs236_package

VERIFY_DIR = Path(loader.__file__).resolve().parent
ROOT = VERIFY_DIR.parent


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

    def failed(self):
        return [c for c in self.checks if c.outcome != "passed"]


@functools.lru_cache(maxsize=4)
def expected_checks(select: str | None = None) -> dict[str, list[str]]:
    """Every check the suite runs, with the names it grades, collected without any submission (used
    only when a worker died before reporting its own collection)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "collected.jsonl"
        proc = subprocess.run(_pytest_cmd(select) + ["--collect-only", "-p", "grader.plugin", "--grading-out", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        line = json.loads(out.read_text(encoding="utf-8").splitlines()[0]) if out.exists() else {}
    if not line.get("collected"):
        raise RuntimeError(f"could not collect the checks:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return _targets_by_id(line)


def _targets_by_id(collection: dict) -> dict[str, list[str]]:
    """The plugin's collection line as {node id: names it grades}, in collection order."""
    targets = collection.get("targets", {})
    return {nodeid: targets.get(nodeid, []) for nodeid in collection["collected"]}


def _pytest_cmd(select: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(VERIFY_DIR), "-p", "no:cacheprovider", "-o", "addopts=",
           "-m", "not slow", "--rootdir", str(ROOT), "-q", "--no-header"]
    return cmd + (["-k", select] if select else [])


def run_worker(path: Path, seed: int, timeout: float, workdir: Path, check_timeout: float = 120.0,
               in_process: bool = False, memory_mb: int = 4096,
               select: str | None = None) -> tuple[list[dict], str | None, float]:
    """Run the checks on one submission; returns (result lines, problem or None, seconds).

    The checks run in a child process of ours (trusted: it computes verdicts); the submission runs
    in that child's sandboxed worker, or, with ``in_process`` (trusted code only), inside it.
    """
    out = workdir / "checks.jsonl"
    cmd = _pytest_cmd(select) + ["--submission", str(path), "--verify-seed", str(seed), "--check-timeout",
                           str(check_timeout), "--worker-memory", str(memory_mb),
                           "-p", "grader.plugin", "--grading-out", str(out)]
    if in_process:
        cmd.append("--in-process")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
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
    seconds = time.perf_counter() - start
    lines = []
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines, problem, seconds


def score(label: str, path: str, lines: list[dict], rubric: Rubric, problem: str | None, seconds: float,
          select: str | None = None) -> Result:
    """Apply the rubric to the check results; checks without a result fail with the reason."""
    collection = next((d for d in lines if "collected" in d), None)
    expected = _targets_by_id(collection) if collection is not None else expected_checks(select)
    by_id = {d["nodeid"]: d for d in lines if "nodeid" in d}
    checks = []
    for nodeid in expected:
        d = by_id.get(nodeid)
        if d is None:
            name = nodeid.split("::")[-1]
            d = {"nodeid": nodeid, "name": name.removeprefix("test_"), "outcome": "failed",
                 "targets": expected[nodeid],
                 "message": f"not run: {problem or 'the process running the checks gave no result for this check'}"}
        checks.append(Check(
            nodeid=d["nodeid"], name=d["name"], targets=d.get("targets", []), outcome=d["outcome"],
            message=d.get("message", ""), doc=d.get("doc", ""), duration=d.get("duration", 0.0),
            diagnosis=d.get("diagnosis")))
    problems = [problem] if problem else []
    groups = {g.name: {"score": 0.0, "max_score": g.points, "passed": 0, "total": 0} for g in rubric.groups}
    members = {g.name: [] for g in rubric.groups}
    for c in checks:
        g = rubric.group_of({"name": c.name, "targets": c.targets})
        if g is None:
            problems.append(f"check {c.name} is in no rubric group: reported, not graded")
            continue
        c.group, c.visibility = g.name, g.visibility
        members[g.name].append(c)
    for g in rubric.groups:
        cs = members[g.name]
        if not cs:
            problems.append(f"rubric group '{g.name}' matches no check: its {g.points:g} points cannot be earned")
            continue
        passed = sum(c.outcome == "passed" for c in cs)
        share = g.points / len(cs)
        all_passed = passed == len(cs)
        for c in cs:
            c.max_score = round(share, 6)
            c.score = c.max_score if c.outcome == "passed" and (g.partial_credit or all_passed) else 0.0
        got = g.points * passed / len(cs) if g.partial_credit else (g.points if all_passed else 0.0)
        groups[g.name].update(score=round(got, 4), passed=passed, total=len(cs))
    problems += list(rubric.warnings)
    total = round(sum(v["score"] for v in groups.values()), 4)
    sandbox = next((d["sandbox"] for d in lines if isinstance(d.get("sandbox"), list)), [])
    return Result(label, path, checks, groups, total, rubric.max_score, round(seconds, 3), problems,
                  [str(x) for x in sandbox])


def discover(paths: list[str]) -> list[tuple[str, Path]]:
    """(label, path) per submission: a submission itself, or each entry of a class folder."""
    found = []
    for raw in paths:
        p = Path(raw).expanduser()
        if _is_class_folder(p):
            for child in sorted(p.iterdir()):
                if child.name.startswith((".", "__")):
                    continue
                if child.is_dir() or child.suffix == ".py":
                    found.append((child.stem if child.is_file() else child.name, child))
        else:
            found.append((p.stem if p.suffix == ".py" else (p.name or str(p)), p))
    return list(zip(unique_labels([label for label, _ in found]), [p for _, p in found]))


def _is_class_folder(p: Path) -> bool:
    if not p.is_dir() or (p / "submission.py").is_file() or find_cs236_package(p) is not None:
        return False
    return any(c.is_dir() or c.suffix == ".py" for c in p.iterdir() if not c.name.startswith((".", "__")))


def grade(paths: list[str], rubric: Rubric, seed: int = DEFAULT_SEED, jobs: int = 1, timeout: float = 600,
          progress: bool = True, check_timeout: float = 120.0, in_process: bool = False,
          memory_mb: int = 4096, select: str | None = None) -> list[Result]:
    """Grade every submission found under ``paths``; one broken submission never stops the others.

    ``select``: a pytest ``-k`` expression, to grade only some checks (e.g. a re-grade of one part).
    """
    subs = discover(paths)

    def one(item):
        label, path = item
        with tempfile.TemporaryDirectory(prefix="dgm-grade-") as tmp:
            lines, problem, seconds = run_worker(path, seed, timeout, Path(tmp), check_timeout, in_process,
                                                 memory_mb, select)
        return score(label, str(path), lines, rubric, problem, seconds, select)

    results: dict[int, Result] = {}
    bar = None
    if progress and len(subs) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(subs), desc="grading", unit="submission")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, s): i for i, s in enumerate(subs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return [results[i] for i in range(len(subs))]
