"""Grading cost, side by side: the zygotes (the default) and today's fresh processes (``--no-zygote``).

``python -m benchmarks.throughput [--rounds N] [--copies K]`` prints, for each path, measured in the
same run on the example class (examples/class: alice, bob, carol, dave, erin; default rubric):

- per submission alone: each student graded as a job of its own (``python -m verify grade S
  --single``, a fresh checks' process: a job of one submission starts no zygote): wall time and
  CPU seconds of every process (``RUSAGE_CHILDREN``: the grader, the checks' processes, the
  workers, the zygotes; each reaped by its parent), the median over the students;
- a class in one job with ``--jobs 1`` and ``--jobs 2``: the example class K times over (K = 4 by
  default: 20 submissions, so that the job's start-up, paid once, weighs as it does in a real
  class; K = 1 is the five students alone): wall time, CPU seconds, CPU seconds per submission (the
  job's total over its submissions, start-up included), the cost of each submission alone (its
  checks' process and its worker, from the phase plugin benchmarks/phases.py: the median over the
  class), submissions per minute, and the speed-up of ``--jobs 2`` over ``--jobs 1``;
- a one-check regrade of one student (``grade examples/class/alice --single -k CHECK``).

With ``--rounds N`` each figure is the median of N repetitions (run alternately, path by path).
The machine's load average is printed with each figure: others' work slows every figure alike.
``benchmarks/test_grading.py`` records the same in a benchmark's ``extra_info``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASS = ROOT / "examples" / "class"
STUDENTS = ("alice", "bob", "carol", "dave", "erin")
REGRADE = ("alice", "kl_normal_matches_closed_form")  # a one-check regrade: the student and the check
PATHS = {"zygotes": (), "fresh processes (--no-zygote)": ("--no-zygote",)}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def grade_once(paths: list[Path], extra: tuple[str, ...] = ()) -> dict:
    """Run one grading job on ``paths``; its wall time, CPU seconds (every process), scores and the
    checks' CPU per submission (the phase plugin's files, one per checks' process)."""
    with tempfile.TemporaryDirectory(prefix="dgm-throughput-") as tmp:
        env = dict(os.environ, PYTEST_ADDOPTS="-p benchmarks.phases", DGM_PHASES_OUT=f"{tmp}/phases-%p.json")
        cmd = [sys.executable, "-m", "verify", "grade", *map(str, paths), "--format", "json", "--out",
               f"{tmp}/out", *extra]
        load = os.getloadavg()[0]
        cpu0, start = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        scores = {p.parent.name: json.loads(p.read_text())["score"] for p in Path(tmp, "out").glob("*/report.json")}
        checks_cpu = []
        for f in Path(tmp).glob("phases-*.json"):
            last = json.loads(f.read_text())["marks"][-1]
            checks_cpu.append(last["cpu_self"] + last["cpu_children"])
    return {"wall": wall, "cpu": cpu, "scores": scores, "checks_cpu": checks_cpu, "load": load}


def class_folder(tmp: Path, copies: int) -> Path:
    """The example class ``copies`` times over in one folder (``alice``, ``alice-2``, ...)."""
    folder = tmp / f"class-x{copies}"
    if not folder.exists():
        for k in range(1, copies + 1):
            for s in STUDENTS:
                shutil.copytree(CLASS / s, folder / (s if k == 1 else f"{s}-{k}"))
    return folder


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(rounds: int = 1, paths: dict = PATHS, copies: int = 4) -> dict:
    """Every figure of the module docstring, for each path; the medians over ``rounds``."""
    out = {name: {"per_submission": {}, "class": {}, "regrade": []} for name in paths}
    with tempfile.TemporaryDirectory(prefix="dgm-class-") as tmp:
        folder = class_folder(Path(tmp), copies)
        for _ in range(rounds):
            for name, extra in paths.items():
                fig = out[name]
                for s in STUDENTS:
                    fig["per_submission"].setdefault(s, []).append(grade_once([CLASS / s], ("--single", *extra)))
                for jobs in (1, 2):
                    fig["class"].setdefault(jobs, []).append(grade_once([folder], ("--jobs", str(jobs), *extra)))
                student, check = REGRADE
                fig["regrade"].append(grade_once([CLASS / student], ("--single", "-k", check, *extra)))
    return {name: summarize(fig, copies) for name, fig in out.items()}


def summarize(fig: dict, copies: int = 1) -> dict:
    """The medians: per submission (over the students), the class runs, the regrade."""
    per = {s: {"wall": _median(runs, "wall"), "cpu": _median(runs, "cpu"), "score": runs[0]["scores"].get(s),
               "load": _median(runs, "load")} for s, runs in fig["per_submission"].items()}
    size = copies * len(STUDENTS)
    classes = {}
    for jobs, runs in fig["class"].items():
        checks = [statistics.median(r["checks_cpu"]) for r in runs if r["checks_cpu"]]
        classes[jobs] = {"wall": _median(runs, "wall"), "cpu": _median(runs, "cpu"), "size": size,
                         "cpu_per_submission": _median(runs, "cpu") / size,
                         "checks_cpu_median": statistics.median(checks) if checks else None,
                         "per_minute": 60 * size / _median(runs, "wall"),
                         "scores": runs[0]["scores"], "load": _median(runs, "load")}
    regrade = fig["regrade"]
    return {"per_submission": per,
            "per_submission_wall_median": statistics.median(p["wall"] for p in per.values()),
            "per_submission_cpu_median": statistics.median(p["cpu"] for p in per.values()),
            "class": classes, "speedup_jobs2": classes[1]["wall"] / classes[2]["wall"],
            "regrade": {"wall": _median(regrade, "wall"), "cpu": _median(regrade, "cpu"),
                        "load": _median(regrade, "load")}}


def render(results: dict) -> str:
    lines = []
    for name, r in results.items():
        lines.append(f"== {name}")
        for s, p in r["per_submission"].items():
            lines.append(f"  {s:6s} alone: {p['wall']:6.2f} s wall {p['cpu']:6.2f} CPU-s  score {p['score']:g}"
                         f"  (load {p['load']:.2f})")
        lines.append(f"  per submission, median: {r['per_submission_wall_median']:.2f} s wall, "
                     f"{r['per_submission_cpu_median']:.2f} CPU-s")
        for jobs, c in r["class"].items():
            checks = "" if c["checks_cpu_median"] is None else \
                f"; each submission's checks' process + worker {c['checks_cpu_median']:.2f} CPU-s (median)"
            lines.append(f"  class of {c['size']}, --jobs {jobs}: {c['wall']:6.2f} s wall, {c['cpu']:6.2f} CPU-s "
                         f"({c['cpu_per_submission']:.2f} per submission, start-up included{checks}; "
                         f"{c['per_minute']:.1f} per minute; load {c['load']:.2f})")
        lines.append(f"  --jobs 2 speed-up over --jobs 1: {r['speedup_jobs2']:.2f}")
        g = r["regrade"]
        lines.append(f"  one-check regrade ({REGRADE[0]}, -k {REGRADE[1]}): {g['wall']:.2f} s wall, "
                     f"{g['cpu']:.2f} CPU-s (load {g['load']:.2f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=1, help="repetitions; each figure is their median")
    p.add_argument("--copies", type=int, default=4, help="the class graded as one job: the example class K times")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    results = measure(args.rounds, copies=args.copies)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
