"""Verdicts a careful reader agrees with, on patterns of real student code (issue 16).

Each entry of tests/corpus/ is a CS236 checkout written in a style students use; it is graded here
(in process: the corpus is trusted) with the CS236 HW2 rubric, and its verdict, points and diagnosis
are pinned to what a careful reading of the code gives.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, run_suite
from grader import rubric
from grader.runner import _read_lines, score
from tests.corpus import ENTRIES, materialize

RUBRIC = REPO / "grader" / "cs236_hw2_vae_rubric.toml"
VAE_SIDE = "not affine_flow and not AffineCoupling and not written_answer"
IWAE_POINTS = 22.0  # the rubric's negative_iwae_bound groups (35 before the GMVAE and SSVAE had points)

# entry: (score out of 100, the failed checks' names (without parameters), {(output, bug)} named)
EXPECTED = {
    "float32_constants": (100.0, set(), set()),
    "per_example_loop": (100.0, set(), set()),
    "rec_extra_sample": (100.0, set(), set()),
    "stub_iwae": (100.0 - IWAE_POINTS, None, set()),
    "rec_sign_flipped": (97.0, {"negative_elbo_bound_rec_by_replay"},
                         {("rec", "elbo_rec_reported_negated")}),
    "two_bugs": (None, None, {("kl", "elbo_kl_summed_over_batch"), ("rec", "elbo_bce_averaged_over_pixels")}),
    "grouping_bug": (85.0, {"negative_iwae_bound_exact_when_q_is_posterior", "negative_iwae_bound_chunked_batch_by_replay"},
                     {("niwae", "iwae_grouping_bug")}),
    "scalar_rec_in_weights": (None, None, {("niwae", "iwae_scalar_rec_in_weights")}),
    "log_normal_bug": (None, None, {("log_normal", "log_normal_log_variance_sign_flipped")}),
}


class Graded:
    def __init__(self, result, lines, run):
        self.result, self.lines, self.run = result, lines, run
        self.failed = {c.name.split("[")[0] for c in result.checks if c.outcome == "failed"}
        self.findings = {(f["output"], f["bug"]) for d in lines for f in d.get("findings") or []}

    def group(self, prefix):
        return sum(v["score"] for k, v in self.result.groups.items() if k.startswith(prefix))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    rules, cache = rubric.load(RUBRIC), {}

    def grade(entry):
        if entry not in cache:
            folder = tmp_path_factory.mktemp(entry)
            out = folder / "checks.jsonl"
            run = run_suite(materialize(entry, folder / "checkout"), "-p", "grader.plugin", "--grading-out", str(out),
                            "-k", VAE_SIDE)
            lines = _read_lines(out)
            cache[entry] = Graded(score(entry, str(folder), lines, rules, None, 0.0), lines, run)
        return cache[entry]

    return grade


def test_every_entry_has_an_expectation():
    assert set(ENTRIES) == set(EXPECTED)


@pytest.mark.parametrize("entry", sorted(EXPECTED))
def test_verdict_points_and_diagnosis(graded, entry):
    points, failed, findings = EXPECTED[entry]
    g = graded(entry)
    assert not g.run.errors, g.run.errors
    if points is not None:
        assert g.result.score == points, (g.result.score, g.failed, g.result.groups)
    if failed is not None:
        assert g.failed == failed, g.failed
    assert g.findings == findings, g.findings


def test_float32_constants_are_notes_not_failures(graded):
    notes = [n for d in graded("float32_constants").lines for n in d.get("notes") or []]
    assert notes and all("not penalized" in n for n in notes)


def test_a_stub_fails_every_check_of_its_name_and_nothing_else(graded):
    g = graded("stub_iwae")
    iwae = [c for c in g.result.checks if c.targets[:1] == ["negative_iwae_bound"]]
    assert iwae and all(c.outcome == "failed" for c in iwae)
    assert all(c.outcome == "passed" for c in g.result.checks if c.targets[:1] != ["negative_iwae_bound"]
               and c.group and not c.group.startswith("not part"))
    assert g.group("negative_iwae_bound") == 0


def test_the_grouping_bug_loses_most_iwae_points(graded):
    # it keeps kl, rec, shape, stability and the gradients (judged on the outputs whose value is right): 7 of 22
    assert graded("grouping_bug").group("negative_iwae_bound") <= IWAE_POINTS / 3


def test_two_bugs_in_one_bound_leave_the_other_name_whole(graded):
    g = graded("two_bugs")
    assert g.group("negative_iwae_bound") == IWAE_POINTS
    assert g.failed <= {c for c in g.failed if c.startswith("negative_elbo_bound")}


def test_hints_match_the_observation(graded):
    """The Jensen hint ("grouped across examples give a larger value") only where the value was larger."""
    for entry, expect_jensen in (("grouping_bug", True), ("log_normal_bug", False)):
        messages = [c.message for c in graded(entry).result.checks if "exact_when_q_is_posterior" in c.name
                    and c.outcome == "failed"]
        assert messages, entry
        assert all(("grouped across examples" in m) == expect_jensen for m in messages), (entry, messages)


def test_the_student_sees_each_diagnosis_once_with_its_fix(tmp_path):
    """``python -m verify --submission`` ends with each named bug once (not once per check), with the fix."""
    sub = materialize("two_bugs", tmp_path / "checkout")
    proc = subprocess.run([sys.executable, "-m", "verify", "--submission", str(sub), "--in-process", "-q",
                           "-k", "negative_elbo_bound and not decodes"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout
    assert "dgm-verify: diagnosis" in out, out[-3000:]
    for name in ("elbo_kl_summed_over_batch", "elbo_bce_averaged_over_pixels"):
        from grader.catalogue import BUGS

        assert out.count(BUGS[name].teaches) == 1, out[-3000:]
        assert BUGS[name].fix in out


def test_too_slow_is_not_wrong():
    from grader.plugin import too_slow

    text = too_slow("negative_iwae_bound did not finish within the time limit (120 s per check); the worker was stopped")
    assert text.startswith("did not finish within 120 s: too slow, not wrong")
    assert too_slow("a wrong value") == "a wrong value"
