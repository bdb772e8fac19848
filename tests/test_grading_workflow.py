"""Grading a class the way instructors and students work (issue 19): what students may see,
rubric mistakes, interrupts and resumes, the reports folder, exact scores, output floods, the
student's report and the command line. One test (or a few) per numbered item of the issue."""
import csv
import json
import os
import shutil
import signal
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from grader import reports, rubric
from grader.runner import Result, score

EXAMPLES = REPO / "examples" / "class"
ONE_CHECK = "kl_normal_matches_closed_form"  # -k: the workflow, not the checks, is under test
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _grade(*args, cwd=REPO, timeout=600):
    return subprocess.run([sys.executable, "-m", "verify", "grade", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _toml(tmp_path, text, name="r.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _line(name, target, outcome, message="", doc="", diagnosis=None):
    return {"nodeid": f"verify/test_{target}.py::test_{name}", "name": name, "targets": [target],
            "outcome": outcome, "message": message, "doc": doc, "diagnosis": diagnosis}


def _score(lines, rub) -> Result:
    return score("s", "s", [{"collected": [d["nodeid"] for d in lines]}, *lines], rub, None, 1.0)


# ------------------------------------------------------------------------------- 1. visibility
SECRET = "observed 3.1, expected 0.7. Inputs: qm = [[0.5]]"
DIAG = {"bug": "kl_reversed", "teaches": "computing KL(p || q), the reverse direction"}


@pytest.mark.parametrize("visibility", ["visible", "hidden", "after_due_date", "after_published"])
def test_visibility_follows_gradescope(tmp_path, visibility):
    rub = rubric.load(_toml(tmp_path, '[[group]]\nname = "Shown"\npoints = 60\nchecks = ["log_mean_exp"]\n'
                                      f'[[group]]\nname = "Secret group"\npoints = 40\nchecks = ["kl_normal"]\n'
                                      f'visibility = "{visibility}"\n'))
    lines = [_line("log_mean_exp_x", "log_mean_exp", "passed"),
             _line("kl_normal_x", "kl_normal", "failed", SECRET, "KL of two Gaussians, closed form", DIAG)]
    result = _score(lines, rub)
    data = reports.gradescope(result)
    feedback = reports.feedback_md(result)
    secret = next(t for t in data["tests"] if t["tags"] == ["kl_normal"])
    assert secret["visibility"] == visibility and data["visibility"] == "visible"
    if visibility == "visible":
        assert "Score: 60 / 100" in data["output"] and "Secret group" in data["output"]
        assert "0.7" in secret["output"] and "reverse direction" in feedback
        return
    for student_text in (data["output"], feedback):  # what students read now
        assert "Secret group" not in student_text and "/ 100" not in student_text and "0.7" not in student_text
        assert "reverse direction" not in student_text and "KL of two Gaussians" not in student_text
        assert "Checks shown now: 60 / 60" in student_text
    if visibility == "hidden":
        assert secret["output"] == "Failed."  # no inputs, hint, docstring or likely cause
    else:  # shown later, on purpose: in full
        assert "0.7" in secret["output"] and "reverse direction" in secret["output"]


# ------------------------------------------------------------------------------- 2. rubric validation
def test_rubric_names_and_patterns_are_checked_with_suggestions(tmp_path):
    bad = _toml(tmp_path, '[[group]]\nname = "S"\npoints = 100\nchecks = ["sample_gausian"]\n')
    with pytest.raises(rubric.RubricError, match="did you mean 'sample_gaussian'"):
        rubric.load(bad)
    pattern = _toml(tmp_path, '[[group]]\nname = "S"\npoints = 100\nchecks = ["kl_normal_matches_closed_fom*"]\n')
    with pytest.raises(rubric.RubricError, match="matches no check.*kl_normal_matches_closed_form"):
        rubric.load(pattern)
    good = _toml(tmp_path, '[[group]]\nname = "S"\npoints = 100\nchecks = ["kl_normal_*", "written_answer_*"]\n')
    assert rubric.load(good).max_score == 100


def test_rubric_points_must_add_up_unless_it_says_so(tmp_path):
    body = '[[group]]\nname = "S"\npoints = 95\nchecks = ["kl_normal"]\n'
    with pytest.raises(rubric.RubricError, match="add up to 95, not the default total"):
        rubric.load(_toml(tmp_path, body))
    assert rubric.load(_toml(tmp_path, "[rubric]\ntotal = 95\n" + body)).max_score == 95
    assert rubric.load(_toml(tmp_path, "[rubric]\nallow_partial_total = true\n" + body)).max_score == 95
    with pytest.raises(rubric.RubricError, match="not the total stated in \\[rubric\\]: 90"):
        rubric.load(_toml(tmp_path, "[rubric]\ntotal = 90\n" + body))


def test_bundle_refuses_a_bad_rubric(tmp_path, capsys):
    from verify.__main__ import main

    bad = _toml(tmp_path, '[[group]]\nname = "S"\npoints = 100\nchecks = ["sample_gausian"]\n')
    assert main(["gradescope-bundle", "--rubric", str(bad), "-o", str(tmp_path / "a.zip")]) == 2
    assert "did you mean 'sample_gaussian'" in capsys.readouterr().err and not (tmp_path / "a.zip").exists()


# ------------------------------------------------------------------------------- 3. interrupt, resume, regrade
def _class(tmp_path, names=("alice", "bob", "dave")) -> Path:
    cls = tmp_path / "class"
    for n in names:
        shutil.copytree(EXAMPLES / n, cls / n)
    return cls


def _ours_left(marker: str) -> list[str]:
    left = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                left.append(d.name)
        except OSError:
            continue
    return left


def test_interrupt_resume_and_regrade(tmp_path):
    cls, out = _class(tmp_path), tmp_path / "out"
    cmd = [sys.executable, "-m", "verify", "grade", str(cls), "--out", str(out), "-k", ONE_CHECK, "--in-process"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    err = []
    for line in proc.stderr:  # a plain line per student: stderr is no terminal
        err.append(line)
        if line.startswith("graded 1/3"):
            break
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # grading stops (the checks' processes killed) before the reports are written
        err.append(line)
        if line.startswith("interrupted"):
            break
    stopped = time.monotonic() - start
    rest, _ = proc.communicate(timeout=60)
    err.append(_)
    assert proc.returncode == 130 and stopped < 5, (proc.returncode, stopped, "".join(err)[-2000:])
    assert "Traceback" not in "".join(err) and "\r" not in "".join(err)
    time.sleep(0.5)
    assert not _ours_left(str(cls)), "the processes running checks were not killed"
    with open(out / "gradebook.csv", newline="") as f:
        first = [r["student"] for r in csv.DictReader(f)]
    assert first == ["alice"]  # the student finished before the interrupt, reports and all

    proc = _grade(cls, "--out", out, "-k", ONE_CHECK, "--in-process", "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "alice" in proc.stderr and "kept from an earlier run" in proc.stderr
    assert proc.stderr.count("kept from an earlier run") == 1

    (cls / "bob" / "submission.py").write_text((EXAMPLES / "alice" / "submission.py").read_text())
    proc = _grade(cls / "bob", "--out", out, "-k", ONE_CHECK, "--in-process")  # a regrade of one student
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "gradebook.csv", newline="") as f:
        rows = {r["student"]: float(r["total"]) for r in csv.DictReader(f)}
    assert set(rows) == {"alice", "bob", "dave"} and rows["bob"] == rows["alice"] > 0
    assert json.loads((out / "summary.json").read_text())["submissions"] == 3


# ------------------------------------------------------------------------------- 4. the reports folder
def test_out_is_checked_before_grading(tmp_path):
    afile = tmp_path / "taken"
    afile.write_text("x")
    start = time.monotonic()
    proc = _grade(EXAMPLES / "alice", "--out", afile)
    assert proc.returncode == 2 and "a file is there" in proc.stderr and time.monotonic() - start < 20
    assert afile.read_text() == "x"


def test_default_out_lies_outside_the_graded_folder_and_report_folders_are_skipped(tmp_path):
    from grader.outdir import is_report_folder, output_folder

    cls = _class(tmp_path, ("alice", "bob"))
    old = cls / "old-reports"
    old.mkdir()
    (old / "gradebook.csv").write_text("student,total\nx,1\n")
    assert is_report_folder(old) and not is_report_folder(cls / "alice")
    proc = _grade(".", "-k", ONE_CHECK, "--in-process", "--format", "csv", cwd=cls)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "old-reports: a folder of grading reports" in proc.stderr  # listed, not graded
    out = tmp_path / "class-grading-out"
    assert not (cls / "grading-out").exists() and is_report_folder(out)
    with open(out / "gradebook.csv", newline="") as f:
        assert [r["student"] for r in csv.DictReader(f)] == ["alice", "bob"]
    assert output_folder(None, [str(cls)])[0] == Path("grading-out")  # elsewhere: ./grading-out


# ------------------------------------------------------------------------------- 5. exact arithmetic
def test_scores_are_summed_exactly_and_rounded_once(tmp_path):
    groups = "".join(f'[[group]]\nname = "g{i}"\npoints = 10\nchecks = ["{n}"]\n'
                     for i, n in enumerate(["kl_normal", "log_normal", "log_mean_exp", "sample_gaussian",
                                            "log_normal_mixture", "negative_elbo_bound", "negative_iwae_bound",
                                            "affine_flow_log_prob", "log_bernoulli_with_logits", "AffineCoupling"]))
    rub = rubric.load(_toml(tmp_path, groups))
    lines = [_line(f"{t}_{k}", t, "passed" if k < 2 else "failed", "x")
             for t in ["kl_normal", "log_normal", "log_mean_exp", "sample_gaussian", "log_normal_mixture",
                       "negative_elbo_bound", "negative_iwae_bound", "affine_flow_log_prob",
                       "log_bernoulli_with_logits"] for k in range(3)]
    lines += [_line("AffineCoupling_x", "AffineCoupling", "passed")]
    result = _score(lines, rub)
    assert result.score == 70.0  # 9 x 20/3 + 10, exactly (rounded per group: 70.0003)
    assert "Score: 70 / 100" in reports.feedback_md(result)


def test_all_or_nothing_groups_show_truthful_points(tmp_path):
    rub = rubric.load(_toml(tmp_path, '[[group]]\nname = "KL"\npoints = 60\nchecks = ["kl_normal"]\n'
                                      'partial_credit = false\n'
                                      '[[group]]\nname = "LME"\npoints = 40\nchecks = ["log_mean_exp"]\n'
                                      'partial_credit = false\n'))
    lines = [_line("kl_normal_a", "kl_normal", "passed"), _line("kl_normal_b", "kl_normal", "failed", "off"),
             _line("log_mean_exp_a", "log_mean_exp", "passed"), _line("log_mean_exp_b", "log_mean_exp", "passed")]
    data = reports.gradescope(_score(lines, rub))
    assert all(t["score"] == t["max_score"] for t in data["tests"] if t["status"] == "passed")
    kl = next(t for t in data["tests"] if t["tags"] == ["kl_normal"])
    assert (kl["score"], kl["max_score"], kl["status"]) == (0, 60, "failed") and "1 of 2 checks passed" in kl["output"]
    assert data["score"] == sum(t["score"] for t in data["tests"]) == 40


# ------------------------------------------------------------------------------- 6. output flood
def test_output_flood_is_capped_not_failed(tmp_path):
    from sandbox.output import KEEP, CappedOutput

    r, w = os.pipe()
    cap = CappedOutput(os.fdopen(r, "rb"))
    with os.fdopen(w, "wb") as f:
        f.write(b"HEAD" + b"x" * (5 << 20) + b"TAIL")
    cap.wait(10)
    text = cap.text()
    assert text.startswith("HEAD") and text.endswith("TAIL") and "bytes of output left out" in text
    assert len(text) < 3 * KEEP

    loud = tmp_path / "loud"
    shutil.copytree(EXAMPLES / "alice", loud)
    source = loud / "submission.py"
    source.write_text('print("x" * (85 << 20))\n' + source.read_text())
    proc = _grade(loud, "--out", tmp_path / "out", "-k", ONE_CHECK, "--format", "json")  # in the sandbox
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "loud" / "report.json").read_text())
    assert report["groups"]["kl_normal: value"]["score"] == 3, [c["message"] for c in report["checks"]]  # full marks


# ------------------------------------------------------------------------------- 7. the student's report
def test_student_report_one_block_per_problem(tmp_path):
    from verify.problems import problems, scrub

    proc = subprocess.run([sys.executable, "-m", "verify", "--submission", str(EXAMPLES / "dave"), "-k", "kl_normal"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    out = proc.stdout
    # the first failure and the summary, not once per check (pytest's own short summary after them
    # repeats each message in full where CI is set)
    assert out.split("short test summary info")[0].count("expected ':'") == 2
    assert "def sample_gaussian(m, v)" in out and re.search(r"what to fix \(1 distinct problems, (\d+) failed checks\)", out)
    assert re.search(r"(\d+) failed checks\)", out).group(1) == re.search(r"= (\d+) failed", out).group(1)  # all of them
    assert str(REPO) not in out.split("short test summary")[0].split("FAILURES")[-1]

    teaches = {"bug": "kl_reversed", "teaches": "computing KL(p || q)"}
    failures = [(f"kl_normal_extreme_variances[{d}]", f"off by 2 in {REPO}/verify/test_kl_normal.py", teaches)
                for d in ("float32", "float64")] + [("kl_normal_matches_closed_form", "also off", teaches)]
    (found,) = problems(failures)
    assert len(found.checks) == 3 and "computing KL(p || q)" in found.title and found.fix
    assert str(REPO) not in scrub(failures[0][1]) and "verify/test_kl_normal.py" in scrub(failures[0][1])
    rub = rubric.load()
    lines = [_line(n.replace("[", "_").rstrip("]"), "kl_normal", "failed", m, diagnosis=d) for n, m, d in failures]
    feedback = reports.feedback_md(_score(lines, rub))
    assert feedback.count("computing KL(p || q)") == 1 and "Fix:" in feedback


# ------------------------------------------------------------------------------- 8. the command line
def test_help_lists_the_options_and_subcommands(capsys):
    from verify.__main__ import main

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--submission", "--device", "--verify-seed", "--in-process", "--check-timeout", "--worker-memory",
                 "grade", "grade-metrics", "gradescope-bundle"):
        assert flag in text
    assert main(["--submission"]) == 2


def test_console_script_is_not_shadowed_by_a_local_verify_py(tmp_path):
    (tmp_path / "verify.py").write_text("raise SystemExit('shadowed: the student verify.py ran')\n")
    script = tmp_path / "bin" / "dgm-verify"  # what pip writes for [project.scripts]
    script.parent.mkdir()
    script.write_text("import sys\nfrom verify.__main__ import main\nsys.exit(main())\n")
    run = [sys.executable, str(script)]
    proc = subprocess.run(run + ["--help"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--worker-memory" in proc.stdout, proc.stderr
    proc = subprocess.run(run + ["--submission", str(EXAMPLES / "alice"), "--in-process", "-q", "-k", ONE_CHECK],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "shadowed" not in proc.stdout + proc.stderr, proc.stdout[-2000:]
    assert "dgm-verify" in (REPO / "README.md").read_text()


def test_exit_codes_text_only_and_refused_paths(tmp_path):
    proc = _grade(EXAMPLES / "alice", "-k", ONE_CHECK, "--in-process", "--format", "text", cwd=tmp_path)
    assert proc.returncode == 0 and "alice: 3 / 100" in proc.stdout, proc.stderr[-2000:]  # kl_normal: value, 3 points
    assert list(tmp_path.iterdir()) == []  # --format text alone: no files
    proc = _grade(EXAMPLES / "alice", "--out", tmp_path / "o", "--timeout", "0.5", "--format", "json")
    assert proc.returncode == 3 and "could not be graded completely: alice" in proc.stderr
    (tmp_path / "empty").mkdir()
    for path, why in ((tmp_path / "nope", "no such file or folder"), (tmp_path / "empty", "an empty folder")):
        proc = _grade(path, "--out", tmp_path / "o2")
        assert proc.returncode == 2 and why in proc.stderr and not (tmp_path / "o2").exists()


def test_histogram_counts_are_whole_numbers():
    rub = rubric.load()
    results = [Result(n, n, [], {}, s, 100, 1.0) for n, s in (("a", 10), ("b", 55), ("c", 90))]
    fig = reports.histogram_figure(results, rub)
    ticks = fig.axes[0].get_yticks()
    assert all(float(t).is_integer() for t in ticks)
