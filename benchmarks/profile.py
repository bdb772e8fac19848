"""Where the time of one grading goes: ``python -m benchmarks.profile [PATH] [-k EXPR] [--no-zygote]``.

Runs ``python -m verify grade PATH --single --format json`` (PATH: default examples/class/alice)
once with the phase plugin (benchmarks/phases.py, through ``PYTEST_ADDOPTS``) and prints, by phase,
the wall time and the CPU seconds of every process: the grader's own start-up, the process running
the checks (interpreter and pytest; the conftest's imports; collection, i.e. the check modules'
imports), the sandboxed worker's start (interpreter, torch, confinement, the submission), each
check with its worker round trips, and the end (reports). ``benchmarks/test_profile.py`` records
the same in a benchmark's ``extra_info``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "examples" / "class" / "alice"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def profile(path: Path = ALICE, select: str | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Grade ``path`` once with the phase plugin; returns the phases, the checks and the totals."""
    with tempfile.TemporaryDirectory(prefix="dgm-profile-") as tmp:
        phases = Path(tmp) / "phases.json"
        env = dict(os.environ, PYTEST_ADDOPTS="-p benchmarks.phases", DGM_PHASES_OUT=str(phases))
        cmd = [sys.executable, "-m", "verify", "grade", str(path), "--single", "--format", "json",
               "--out", str(Path(tmp) / "out"), *(["-k", select] if select else []), *extra]
        cpu0, start = _children_cpu(), time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall, cpu = time.time() - start, _children_cpu() - cpu0
        if proc.returncode != 0 or not phases.exists():
            raise RuntimeError(f"grading failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        data = json.loads(phases.read_text())
        report = json.loads(next((Path(tmp) / "out").glob("*/report.json")).read_text())
    return summarize(data, start, wall, cpu, report["score"])


def summarize(data: dict, start: float, wall: float, cpu: float, score: float) -> dict:
    """The phases as rows (name, wall seconds, CPU seconds of the checks' process, of its workers)."""
    marks = data["marks"]
    checks_started = time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - data["started_boottime"])
    rows = [("grader start-up until the checks' process starts", checks_started - start, None, None)]
    prev = {"wall": 0.0, "cpu_self": 0.0, "cpu_children": 0.0}
    for m in marks:
        rows.append((m["phase"], m["wall"] - prev["wall"], m["cpu_self"] - prev["cpu_self"],
                     m["cpu_children"] - prev["cpu_children"]))
        prev = m
    end_of_checks = checks_started + marks[-1]["wall"]
    rows.append(("grader: scores and reports, until it exits", start + wall - end_of_checks, None, None))
    workers = data.get("workers", [])
    first = workers[0] if workers else {}
    return {"rows": rows, "wall": wall, "cpu": cpu, "score": score, "round_trips": data["round_trips"],
            "workers": len(workers), "worker_ready_after_launch": first.get("ready", 0) - first.get("launched", 0),
            "worker_waited": first.get("ready", 0) - first.get("asked", 0),
            "checks_cpu_self": marks[-1]["cpu_self"], "workers_cpu": marks[-1]["cpu_children"],
            "checks": data["checks"], "load_average": os.getloadavg()}


def render(result: dict, top: int = 12) -> str:
    lines = [f"{'phase':62s} {'wall s':>7s} {'cpu checks':>10s} {'cpu worker':>10s}"]
    for name, wall, cpu_self, cpu_kids in result["rows"]:
        fmt = lambda v: f"{v:10.2f}" if v is not None else f"{'':10s}"
        lines.append(f"{name[:62]:62s} {wall:7.2f} {fmt(cpu_self)} {fmt(cpu_kids)}")
    lines.append(f"total: {result['wall']:.2f} s wall, {result['cpu']:.2f} CPU-s (every process), score "
                 f"{result['score']:g}; workers started {result['workers']}; the first ready "
                 f"{result['worker_ready_after_launch']:.2f} s after its launch (the checks waited "
                 f"{result['worker_waited']:.2f} s for it); round trips {result['round_trips']}; "
                 f"load average {' '.join(f'{x:.2f}' for x in result['load_average'])}")
    slow = sorted(result["checks"].items(), key=lambda kv: -kv[1].get("wall", 0))[:top]
    lines.append(f"slowest checks (of {len(result['checks'])}; wall s, cpu s of the checks' process, "
                 "requests, callbacks):")
    for nodeid, c in slow:
        lines.append(f"  {c.get('wall', 0):6.2f} {c.get('cpu_self', 0):6.2f} {c.get('requests', 0):5d} "
                     f"{c.get('callbacks', 0):6d}  {nodeid.split('::')[-1]}")
    total = sum(c.get("wall", 0) for c in result["checks"].values())
    lines.append(f"  all checks together: {total:.2f} s wall")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", default=str(ALICE))
    p.add_argument("-k", dest="select", default=None)
    p.add_argument("--no-zygote", action="store_true", help="today's path: fresh processes per submission")
    args = p.parse_args(argv)
    print(render(profile(Path(args.path), args.select, ("--no-zygote",) if args.no_zygote else ())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
