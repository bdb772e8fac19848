"""python -m verify grade: scores of the shipped examples, reports against their specifications,
determinism, hidden checks, bad input."""
import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conftest import REPO
from verify.answers import NAMES as ANSWER_NAMES
from grader import reports, rubric
from grader.runner import score
from verify.loader import CONTRACT_NAMES

EXAMPLES = REPO / "examples" / "class"

# Gradescope's results.json, from its autograder specification ("Output format").
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
OUTPUT_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "required": ["score", "max_score", "execution_time", "output", "output_format", "visibility",
                 "stdout_visibility", "tests"],
    "properties": {
        "score": {"type": "number"},
        "max_score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": OUTPUT_FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "number", "score", "max_score", "status", "output", "output_format", "tags",
                             "visibility"],
                "properties": {
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "output_format": OUTPUT_FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

EXPECTED = {  # score, and the catalogued bugs the feedback must name
    "alice": (100.0, set()),
    "bob": (None, {"sample_std_as_variance", "kl_reversed"}),
    "carol": (63.0, {"iwae_grouping_bug"}),  # the grouping bug costs the whole IWAE bound group (12 points)
    "dave": (0.0, set()),
    "erin": (None, {"lme_naive", "coupling_log_det_not_masked"}),
}


def _grade(*args, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "verify", "grade", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    proc = _grade(EXAMPLES, "--out", out, "--jobs", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc


def test_example_class_scores_and_diagnoses(class_run):
    out, proc = class_run
    for name, (expected_score, bugs) in EXPECTED.items():
        report = json.loads((out / name / "report.json").read_text())
        if expected_score is not None:
            assert report["score"] == expected_score, (name, report["score"], report["groups"])
        else:
            assert 0 < report["score"] < 100, (name, report["score"])
        named = {c["diagnosis"]["bug"] for c in report["checks"] if c["diagnosis"]}
        assert bugs <= named, f"{name}: feedback should name {bugs}, named {named}"
        feedback = (out / name / "feedback.md").read_text()
        for b in bugs:
            from grader.catalogue import BUGS

            assert BUGS[b].teaches in feedback
    dave = (out / "dave" / "feedback.md").read_text()
    assert "could not be loaded" in dave and "SyntaxError at submission.py:4" in dave
    carol = json.loads((out / "carol" / "report.json").read_text())
    assert carol["groups"]["affine flow"]["score"] == 0  # the CS236 layout has no flows: "not submitted"
    assert "not submitted" in next(c["message"] for c in carol["checks"] if c["targets"] == ["affine_flow_log_prob"])
    written = {n: json.loads((out / n / "report.json").read_text())["groups"]["written answers"]["score"] for n in EXPECTED}
    assert written == {"alice": 15, "bob": 5, "carol": 10, "dave": 0, "erin": 10}  # 5 points an answer
    assert "your density integrates to 2/3, not 1" in (out / "bob" / "feedback.md").read_text()
    assert "Grading summary" in proc.stdout and "Score histogram" in proc.stdout


def test_gradescope_results_follow_the_specification(class_run):
    out, _ = class_run
    for name in EXPECTED:
        data = json.loads((out / name / "results.json").read_text())
        jsonschema.validate(data, GRADESCOPE_SCHEMA)
        assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]), abs=1e-3)
        assert data["max_score"] == pytest.approx(sum(t["max_score"] for t in data["tests"]), abs=1e-3) == 100
        assert all(set(t["tags"]) <= set(CONTRACT_NAMES) | set(ANSWER_NAMES) for t in data["tests"])
        assert len({t["number"] for t in data["tests"]}) == len(data["tests"])


def test_gradebook_and_junit(class_run):
    out, _ = class_run
    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    groups = [g.name for g in rubric.load().groups]
    assert [r["student"] for r in rows] == sorted(EXPECTED)
    assert list(rows[0]) == ["student", *groups, "total", "max_score"]
    for r in rows:
        assert float(r["total"]) == pytest.approx(sum(float(r[g]) for g in groups), abs=1e-3)
        report = json.loads((out / r["student"] / "report.json").read_text())
        assert float(r["total"]) == pytest.approx(report["score"], abs=1e-3)
        suite = ET.parse(out / r["student"] / "junit.xml").getroot().find("testsuite")
        failed = [c for c in report["checks"] if c["outcome"] == "failed"]
        assert int(suite.get("tests")) == len(report["checks"]) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(failed) == len(suite.findall("testcase/failure"))
    assert (out / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["submissions"] == 5 and sum(summary["histogram"].values()) == 5


def test_same_seed_same_reports(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert _grade(EXAMPLES / "bob", "--out", out, "--format", "gradescope", "--format", "md").returncode == 0
    ra, rb = (json.loads((d / "bob" / "results.json").read_text()) for d in (a, b))
    ra.pop("execution_time"), rb.pop("execution_time")
    assert ra == rb
    assert (a / "bob" / "feedback.md").read_text() == (b / "bob" / "feedback.md").read_text()


def test_hidden_checks_show_no_inputs(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('[rubric]\ntotal = 10\n[[group]]\nname = "KL"\npoints = 10\nchecks = ["kl_normal"]\nvisibility = "hidden"\n'
                    '[[group]]\nname = "IWAE"\npoints = 0\nchecks = ["negative_iwae_bound"]\n')
    lines = [{"nodeid": "verify/test_kl_normal.py::test_kl_normal_matches_closed_form", "name": "kl_normal_matches_closed_form",
              "targets": ["kl_normal"], "outcome": "failed", "message": "observed 3.1, expected 0.7. Inputs: qm = [[0.5]]",
              "doc": "", "diagnosis": {"bug": "kl_reversed", "teaches": "computing KL(p || q)"}},
             {"nodeid": "verify/test_x.py::test_log_mean_exp_x", "name": "log_mean_exp_x", "targets": ["log_mean_exp"],
              "outcome": "passed"}]
    lines.insert(0, {"collected": [d["nodeid"] for d in lines]})
    result = score("s", "s", lines, rubric.load(toml), None, 1.0)
    data = reports.gradescope(result)
    hidden = data["tests"][0]
    assert hidden["visibility"] == "hidden" and "0.7" not in hidden["output"] and "qm" not in hidden["output"]
    assert hidden["output"] == "Failed."  # a hidden check: no inputs, numbers or likely cause (issue 19)
    assert "0.7" not in reports.feedback_md(result)
    problems = "\n".join(result.problems)
    assert "log_mean_exp_x is in no rubric group" in problems  # reported, not dropped
    assert "'IWAE' matches no check" in problems and "'IWAE' has no points" in problems


@pytest.mark.parametrize("make", [lambda d: d / "nope", lambda d: (d / "empty").mkdir() or d / "empty"],
                         ids=["missing-path", "empty-folder"])
def test_bad_paths_are_refused(tmp_path, make):
    out = tmp_path / "out"
    proc = _grade(make(tmp_path), "--out", out)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not out.exists()  # refused before anything is graded or written


def test_time_limit_fails_unfinished_checks_and_still_reports(tmp_path):
    out = tmp_path / "out"
    proc = _grade(EXAMPLES / "alice", "--out", out, "--timeout", "0.5", "--format", "json")
    assert proc.returncode == 3, proc.stderr[-2000:]  # some checks could not be run
    report = json.loads((out / "alice" / "report.json").read_text())
    assert report["score"] < 100 and any("time limit of 0.5 s" in p for p in report["problems"])
    assert any(c["message"].startswith("not run: grading this submission hit the time limit") for c in report["checks"])


def test_bad_rubric_is_a_usage_error(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text('[[group]]\nname = "x"\npoints = -1\nchecks = ["kl_normal"]\n')
    proc = _grade(EXAMPLES / "alice", "--rubric", bad, "--out", tmp_path / "o")
    assert proc.returncode == 2 and "'points' must be a number >= 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_default_rubric_totals_100():
    r = rubric.load()
    # its one 0-point group reports CS236's GMVAE and SSVAE, which that homework does not ask for (issue 20)
    reported = [g for g in r.groups if g.points == 0]
    assert [g.checks for g in reported] == [("gmvae_negative_elbo_bound", "gmvae_negative_iwae_bound",
                                             "ssvae_negative_elbo_bound")]
    assert r.max_score == 100 and len(r.warnings) == 1 and reported[0].name in r.warnings[0]


def test_every_contract_name_has_a_group_in_the_default_rubric():
    r = rubric.load()
    assert all(r.group_of({"name": f"{n}_x", "targets": [n]}) is not None for n in CONTRACT_NAMES)
