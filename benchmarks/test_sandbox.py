"""The sandbox's cost: grading the reference sandboxed vs in process, measured in the same run.

Both figures are ``python -m verify grade REFERENCE`` wall times (the reference written out as a
submission by grader/catalogue/reference.py), alternating sandboxed and in-process
rounds so that a change in machine load hits both; ``extra_info`` has both series and the ratio of
their medians (the target is at most 1.5). Seconds
per call, so ``heavy``: it runs under ``pytest benchmarks/test_sandbox.py --benchmark-only``.
"""
import statistics
import subprocess
import sys
import time

import pytest

from grader.runner import ROOT
from grader.catalogue.reference import write_reference_submission

ROUNDS = 3


def _grade_seconds(sub, out, *flags) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "verify", "grade", str(sub), "--out", str(out), "--format", "json", *flags],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


@pytest.mark.heavy
def test_sandboxed_grading_vs_in_process(benchmark, tmp_path):
    sub = write_reference_submission(tmp_path / "reference")
    sandboxed, direct = [], []

    def one_round():
        direct.append(_grade_seconds(sub, tmp_path / "direct", "--in-process"))
        sandboxed.append(_grade_seconds(sub, tmp_path / "sandboxed"))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = statistics.median(sandboxed) / statistics.median(direct)
    benchmark.extra_info.update(kernel="grade the reference", variant="sandboxed vs in-process", device="cpu",
                                size="84 checks", sandboxed_s=[round(s, 2) for s in sandboxed],
                                in_process_s=[round(s, 2) for s in direct], ratio=round(ratio, 3))
    print(f"\nsandboxed grading of the reference: {ratio:.2f}x in-process "
          f"(medians {statistics.median(sandboxed):.1f} s vs {statistics.median(direct):.1f} s)")
