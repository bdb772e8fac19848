"""Grading speed: one submission vs ``pytest verify/`` on the reference, and a class of 50 generated
submissions (one planted bug each) with --jobs 1 and --jobs 2, measured in the same run: throughput
(submissions per minute) and speed-up; and the example class graded by the zygotes and by today's
fresh processes side by side (benchmarks/throughput.py). Seconds to minutes per call, so ``heavy``: they run under
``pytest benchmarks/test_grading.py --benchmark-only`` and skip in the plain test run."""
import os
import subprocess
import sys
import time

import pytest

from grader.catalogue import BUGS, plant
from grader import rubric
from grader.runner import ROOT, grade
from benchmarks.throughput import STUDENTS, measure, render

ALICE = ROOT / "examples" / "class" / "alice"
CLASS_SIZE = 50


def _seconds(cmd) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


@pytest.mark.heavy
def test_grading_one_submission_vs_pytest_verify(benchmark, tmp_path):
    pytest_s = _seconds([sys.executable, "-m", "pytest", "verify", "-q", "-p", "no:cacheprovider"])
    cmd = [sys.executable, "-m", "verify", "grade", str(ALICE), "--out", str(tmp_path / "out")]
    grade_s = benchmark.pedantic(_seconds, args=(cmd,), rounds=1, iterations=1)
    benchmark.extra_info.update(kernel="grade one submission", variant="ours", device="cpu", size="alice",
                                pytest_verify_s=round(pytest_s, 2), grade_s=round(grade_s, 2),
                                ratio_to_pytest_verify=round(grade_s / pytest_s, 3))


@pytest.mark.heavy
def test_grading_a_class_with_two_jobs(benchmark, tmp_path):
    names = sorted(BUGS)[:CLASS_SIZE]
    for name in names:
        plant(name, tmp_path / "class" / name)
    rub = rubric.load()
    seconds, scores = {}, {}

    def run(jobs):
        start = time.perf_counter()
        results = grade([str(tmp_path / "class")], rub, jobs=jobs, progress=False)
        seconds[jobs] = time.perf_counter() - start
        scores[jobs] = [r.score for r in results]
        assert len(results) == CLASS_SIZE and all(r.score < 100 for r in results)

    load_before = os.getloadavg()[0]
    run(1)
    benchmark.pedantic(run, args=(2,), rounds=1, iterations=1)  # the benchmarked figure: --jobs 2
    assert scores[1] == scores[2]  # the same grades, whatever the parallelism
    benchmark.extra_info.update(
        kernel="grade a class", variant="ours", device="cpu", size=f"{CLASS_SIZE} submissions",
        cores=len(os.sched_getaffinity(0)), load_average_before=round(load_before, 2),
        load_average_after=round(os.getloadavg()[0], 2),  # other work on the machine slows both runs
        jobs1_s=round(seconds[1], 1), jobs2_s=round(seconds[2], 1),
        jobs1_per_min=round(60 * CLASS_SIZE / seconds[1], 2), jobs2_per_min=round(60 * CLASS_SIZE / seconds[2], 2),
        speedup=round(seconds[1] / seconds[2], 3),
    )


@pytest.mark.heavy
def test_grading_cost_zygotes_vs_fresh_processes(benchmark):
    """The example class side by side, in one run (benchmarks/throughput.py): per submission, the
    class with --jobs 1 and 2, a one-check regrade; the zygotes and today's fresh processes."""
    results = benchmark.pedantic(measure, rounds=1, iterations=1)
    print("\n" + render(results))
    ours, fresh = results["zygotes"], results["fresh processes (--no-zygote)"]
    for jobs in (1, 2):  # the same grades, whatever the path and the parallelism
        assert ours["class"][jobs]["scores"] == fresh["class"][jobs]["scores"] == fresh["class"][1]["scores"]
    benchmark.extra_info.update(
        kernel="grade the example class", variant="zygotes vs fresh processes", device="cpu",
        size=f"{len(STUDENTS)} submissions alone, {ours['class'][1]['size']} as a class", cores=len(os.sched_getaffinity(0)), load_average=os.getloadavg()[0],
        **{f"{tag}_{key}": round(value, 3) for tag, r in (("zygotes", ours), ("fresh", fresh)) for key, value in (
            ("per_submission_cpu_s", r["per_submission_cpu_median"]),
            ("per_submission_wall_s", r["per_submission_wall_median"]),
            ("class_jobs1_wall_s", r["class"][1]["wall"]), ("class_jobs2_wall_s", r["class"][2]["wall"]),
            ("class_jobs1_cpu_per_submission_s", r["class"][1]["cpu_per_submission"]),
            ("class_jobs1_checks_cpu_median_s", r["class"][1]["checks_cpu_median"] or 0.0),
            ("class_jobs1_per_min", r["class"][1]["per_minute"]), ("class_jobs2_per_min", r["class"][2]["per_minute"]),
            ("speedup_jobs2", r["speedup_jobs2"]), ("regrade_wall_s", r["regrade"]["wall"]),
            ("regrade_cpu_s", r["regrade"]["cpu"]))})
