"""The Gradescope autograder bundle in a simulated Gradescope.

The bundle is built (``python -m verify gradescope-bundle``) from a clean copy of the checkout,
unzipped like Gradescope does into a root with ``source/``, ``submission/``, ``results/``, and its
``run_autograder`` is run against correct, buggy and hostile submissions (``tests/hostile_gradescope/``)
with this interpreter (setup.sh's installs need the network, so they are not run). Every
``results.json`` is validated against Gradescope's schema (``tests/test_grading.py``) and its score
checked. The failure paths (the grader crashing, hanging past the budget, not starting at all)
use a stand-in grader (``run_autograder --grader``).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from conftest import REPO
from test_grading import GRADESCOPE_SCHEMA
from grader.catalogue import BUGS
from grader.gradescope import autograder, bundle

EXAMPLES = REPO / "examples" / "class"
HOSTILE = Path(__file__).with_name("hostile_gradescope")
HIDDEN_RUBRIC = textwrap.dedent("""\
    [rubric]
    total = 50

    [[group]]
    name = "KL"
    points = 10
    checks = ["kl_normal"]
    visibility = "hidden"

    [[group]]
    name = "everything else"
    points = 40
    checks = ["*"]
""")


def _clean_copy(dest: Path) -> Path:
    """The checkout's files as a fresh clone would have them (tracked and not ignored: no caches, no
    build outputs); the whole tree where there is no git."""
    proc = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=REPO,
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns("__pycache__", ".git", "*.egg-info"))
        return dest
    for name in filter(None, proc.stdout.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _bundle(tmp: Path, *options) -> Path:
    checkout = _clean_copy(tmp / "checkout")
    out = tmp / "autograder.zip"
    proc = subprocess.run([sys.executable, "-m", "verify", "gradescope-bundle", "-o", str(out), *map(str, options)],
                          cwd=checkout, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _unzip_like_gradescope(bundle: Path, root: Path, submission: Path) -> Path:
    """``root/source`` = the zip's contents (unix modes kept, as unzip does, then ``chmod -R go-rwx`` as
    setup.sh does), ``root/submission`` = a copy of ``submission``, an empty ``root/results``."""
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, root / "source"))
            mode = info.external_attr >> 16
            if mode:
                path.chmod(stat.S_IMODE(mode))
    for path in [root / "source", *(root / "source").rglob("*")]:  # setup.sh's last step: root's alone
        path.chmod(path.stat().st_mode & 0o700)
    shutil.copytree(submission, root / "submission")
    (root / "results").mkdir()
    return root


def _run(root: Path, *args, budget=None, python=None, timeout=600):
    env = dict(os.environ, DGM_GRADESCOPE_ROOT=str(root), DGM_GRADESCOPE_PYTHON=python or sys.executable)
    env.pop("DGM_GRADESCOPE_RESULTS", None)
    env.pop("DGM_GRADESCOPE_SUBMISSION", None)
    if budget is not None:
        env["DGM_GRADESCOPE_BUDGET"] = str(budget)
    start = time.perf_counter()
    proc = subprocess.run([str(root / "source" / "run_autograder"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    return results, proc, seconds


def _consistent(results, max_score=100):
    """The total is the sum of the per-check scores, and each passed check earned its points."""
    assert results["max_score"] == pytest.approx(max_score)
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]), abs=1e-3)
    assert results["max_score"] == pytest.approx(sum(t["max_score"] for t in results["tests"]), abs=1e-3)
    assert all((t["score"] > 0) == (t["status"] == "passed") for t in results["tests"] if t["max_score"] > 0)


# ------------------------------------------------------------------------------- the bundle
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    rubric = tmp / "hidden.toml"
    rubric.write_text(HIDDEN_RUBRIC)
    return {"default": _bundle(tmp / "default"), "hidden": _bundle(tmp / "hidden", "--rubric", rubric,
                                                                  "--gradescope-timeout", 5)}


def test_bundle_layout(bundles):
    with zipfile.ZipFile(bundles["default"]) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        config = json.loads(zf.read("gradescope.json"))
        requirements = zf.read("requirements.txt").decode().splitlines()
        setup = zf.read("setup.sh").decode()
        rubric = zf.read("rubric.toml").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "gradescope.json", "rubric.toml", "pyproject.toml",
            "verify/__main__.py", "grader/gradescope/autograder.py", "impls/__init__.py",
            "derivations/__init__.py", "grader/default_rubric.toml"} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/")) or "__pycache__" in n
                or n.endswith(".pyc")]
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert config["budget_s"] == 540 and config["gradescope_timeout_s"] == 600 and config["max_score"] == 100
    assert rubric == (REPO / "grader" / "default_rubric.toml").read_text()
    pins = [r for r in requirements if r and not r.startswith("#")]
    assert pins[0] == "torch==2.13.0" and "download.pytorch.org/whl/cpu" in setup
    assert all("==" in r for r in pins if "python_version" not in r), pins
    assert not any(r.startswith(("pytest-benchmark", "jsonschema")) for r in pins)
    # run from /autograder/source, never installed into site-packages; the source is root's alone
    assert "pip install -e" not in setup and "pip install ." not in setup and 'chmod -R go-rwx "$SOURCE"' in setup
    with zipfile.ZipFile(bundles["hidden"]) as zf:
        hidden = json.loads(zf.read("gradescope.json"))
        assert zf.read("rubric.toml").decode() == HIDDEN_RUBRIC
    assert hidden["max_score"] == 50 and hidden["gradescope_timeout_s"] == 300 and hidden["budget_s"] == 240


def test_bundle_is_reproducible(bundles, tmp_path):
    again = tmp_path / "again.zip"
    bundle.build(again)
    with zipfile.ZipFile(again) as a, zipfile.ZipFile(bundles["default"]) as b:
        source = lambda zf: {n: zf.read(n) for n in zf.namelist()  # noqa: E731  (not the commit-stamped files)
                             if n not in ("gradescope.json", "requirements.txt", "setup.sh")}
        assert source(a) == source(b)  # the checkout and a clean copy of it give the same files
    first = again.read_bytes()
    bundle.build(again)
    assert again.read_bytes() == first


@pytest.mark.parametrize("options, message", [
    (["--rubric", "{tmp}/missing.toml"], "rubric file not found"),
    (["-o", "{tmp}/no/such/folder/a.zip"], "does not exist"),
    (["-o", "{tmp}"], "is a folder"),
    (["--gradescope-timeout", "41"], "at most 40 minutes"),
    (["--gradescope-timeout", "10", "--budget", "600"], "below the Gradescope limit of 600 s"),
], ids=["missing-rubric", "missing-folder", "output-is-a-folder", "timeout-too-long", "budget-not-below-limit"])
def test_bundle_user_mistakes_are_clear_errors(tmp_path, capsys, options, message):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    if "-o" not in options:
        options += ["-o", str(tmp_path / "a.zip")]
    assert bundle.main(options) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a.zip").exists()


def test_bundle_cli_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "verify", "gradescope-bundle", "--rubric", str(tmp_path / "nope.toml"),
                           "-o", str(tmp_path / "a.zip")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: rubric file not found"), proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------- grading in it
CASES = {  # name: (submission, bundle, budget)
    "alice": (EXAMPLES / "alice", "default", None),
    "bob": (EXAMPLES / "bob", "default", None),
    "forger": (HOSTILE / "forger", "default", None),
    "exit_sys": (HOSTILE / "exit_sys", "default", None),
    "exit_os": (HOSTILE / "exit_os", "hidden", None),
    "loop": (HOSTILE / "loop", "default", 45),
}


@pytest.fixture(scope="module")
def graded(bundles, tmp_path_factory):
    """Every case graded by run_autograder in its own simulated Gradescope root, two at a time."""
    def one(name):
        submission, bundle, budget = CASES[name]
        root = _unzip_like_gradescope(bundles[bundle], tmp_path_factory.mktemp(name), submission)
        return name, (root, *_run(root, budget=budget))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, ["loop", *[n for n in CASES if n != "loop"]]))


def test_correct_submission_gets_full_marks(graded):
    root, results, proc, _ = graded["alice"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _consistent(results)
    assert results["score"] == 100 and all(t["status"] == "passed" for t in results["tests"])
    assert len(results["tests"]) > 50


def test_buggy_submission_gets_its_grade_and_the_diagnosis(graded):
    _, results, proc, _ = graded["bob"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _consistent(results)
    assert results["score"] == pytest.approx(52.5, abs=0.01)  # the example class run (README)
    outputs = "\n".join(t["output"] for t in results["tests"])
    assert BUGS["kl_reversed"].teaches in outputs and BUGS["sample_std_as_variance"].teaches in outputs


def test_forged_results_never_survive(graded):
    root, results, proc, _ = graded["forger"]
    _consistent(results)
    assert "FORGED" not in json.dumps(results)
    passed = [t for t in results["tests"] if t["status"] == "passed"]
    assert passed and all(t["tags"] == ["kl_normal"] for t in passed)
    assert 0 < results["score"] < 10  # 4 of the 12 checks of "log densities and KL" (10 points)
    time.sleep(1.0)  # the detached forger was killed: nothing rewrites the results afterwards
    assert json.loads((root / "results" / "results.json").read_text()) == results


@pytest.mark.parametrize("name", ["exit_sys", "exit_os"])
def test_exit_at_import_scores_zero(graded, name):
    root, results, proc, _ = graded[name]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _consistent(results, max_score=50 if name == "exit_os" else 100)
    assert results["score"] == 0 and results["tests"] and all(t["status"] == "failed" for t in results["tests"])
    if name == "exit_sys":
        assert any("could not be loaded: SystemExit" in t["output"] for t in results["tests"])
    else:  # graded with the hidden-group rubric: its checks show no details
        kl = [t for t in results["tests"] if t["tags"] == ["kl_normal"]]
        assert kl and all(t["visibility"] == "hidden" for t in kl)
        assert all(t["visibility"] == "visible" for t in results["tests"] if t not in kl)


def test_time_budget_keeps_the_finished_checks(graded):
    root, results, proc, seconds = graded["loop"]
    _consistent(results)
    assert seconds < 45  # the budget, well below Gradescope's limit
    passed = {tuple(t["tags"]) for t in results["tests"] if t["status"] == "passed"}
    assert passed == {("affine_flow_log_prob",), ("AffineCoupling",)}
    assert results["score"] == pytest.approx(20)  # affine flow (5) + coupling layer (15), all their checks
    not_run = [t for t in results["tests"] if "not run:" in t["output"] and "time limit" in t["output"]]
    assert not_run and "time limit" in results["output"]


# ------------------------------------------------------------------------------- failure paths
@pytest.fixture
def root(bundles, tmp_path):
    return _unzip_like_gradescope(bundles["default"], tmp_path / "gs", EXAMPLES / "alice")


STAND_IN = textwrap.dedent("""\
    # A stand-in grader: keeps the provisional results.json, leaves a worker's partial result lines,
    # starts a detached process, and hangs.
    import json, os, shutil, subprocess, sys, time
    from pathlib import Path

    root = Path(os.environ["DGM_GRADESCOPE_ROOT"])
    shutil.copy(os.environ["DGM_GRADESCOPE_RESULTS"], root / "provisional.json")
    work = Path(os.environ["TMPDIR"]) / "dgm-grade-standin"
    work.mkdir()
    ids = ["verify/test_kl_normal.py::test_kl_normal_one", "verify/test_kl_normal.py::test_kl_normal_two"]
    with open(work / "checks.jsonl", "w") as f:
        f.write(json.dumps({"collected": ids, "targets": {i: ["kl_normal"] for i in ids}}) + "\\n")
        f.write(json.dumps({"nodeid": ids[0], "name": "kl_normal_one", "targets": ["kl_normal"],
                            "outcome": "passed"}) + "\\n")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    (root / "sleeper.pid").write_text(str(sleeper.pid))
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_grader_hanging_past_the_budget_keeps_what_finished(root):
    (root / "standin.py").write_text(STAND_IN)
    results, proc, seconds = _run(root, "--grader", f"{sys.executable} {root / 'standin.py'}", budget=20)
    provisional = json.loads((root / "provisional.json").read_text())
    jsonschema.validate(provisional, GRADESCOPE_SCHEMA)  # written before grading began
    assert provisional["score"] == 0 and "did not finish" in provisional["output"]
    assert seconds < 20, proc.stdout + proc.stderr
    passed, failed = ([t for t in results["tests"] if t["status"] == s] for s in ("passed", "failed"))
    assert len(passed) == 1 and len(failed) == 1, results
    assert results["score"] == pytest.approx(1.5)  # 1 of the 2 checks of the 3-point group "kl_normal: value"
    assert "not run: grading stopped at the autograder's time budget of 20 s" in failed[0]["output"]
    assert not _alive(int((root / "sleeper.pid").read_text()))  # nothing the grader started outlives it


def test_grader_crash_fails_every_check_with_the_reason(root):
    results, proc, _ = _run(root, "--grader", f"{sys.executable} -c 'import sys; sys.exit(3)'")
    _consistent(results)
    assert results["score"] == 0 and len(results["tests"]) > 50
    assert all("not run: the grader stopped with exit code 3" in t["output"] for t in results["tests"])


def test_no_python_still_gives_a_valid_results_json(root):
    results, proc, _ = _run(root, python="/bin/false")
    assert results["score"] == 0 and results["max_score"] == 100 and "could not start" in results["output"]


# ------------------------------------------------------------------------------- the submission folder
def _tree(tmp: Path, files: list[str]) -> Path:
    for f in files:
        (tmp / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp / f).write_text("")
    return tmp


@pytest.mark.parametrize("files, graded_as, noted", [
    (["submission.py", "answers.py", "notes/x.txt"], ".", False),
    (["codebase/utils.py", "codebase/models/vae.py", "extra.py"], ".", False),
    (["hw2/submission.py", "hw2/answers.py", ".DS_Store", "__MACOSX/hw2/._submission.py"], "hw2", False),
    (["hw2.py", "answers.py"], "hw2.py", False),
    (["hw2.zip"], "hw2.zip", False),
    (["hw2.ipynb", "report.pdf"], "hw2.ipynb", False),
    (["a.py", "b.py"], ".", True),
    (["report.pdf", "code/vae.py"], ".", True),
], ids=["module", "cs236", "zipped-folder", "lone-module", "zip", "notebook", "two-modules", "no-code"])
def test_locate_grades_one_submission(tmp_path, files, graded_as, noted):
    sub = _tree(tmp_path / "submission", files)
    target, note = autograder.locate(sub)
    assert target == (sub / graded_as if graded_as != "." else sub)
    assert (note is not None) == noted
    if noted:
        assert "neither submission.py nor a CS236 layout" in note and files[0] in note


# ------------------------------------------------------------------------------- forms students hand in (issue 15)
@pytest.fixture(scope="module")
def handed_in(bundles, tmp_path_factory):
    """The course's hand-in as a zip, and a notebook, each graded by run_autograder, two at a time."""
    from handin_forms import FORMS

    def one(name):
        sub = tmp_path_factory.mktemp(f"{name}-submission")
        FORMS[name][0](sub)
        root = _unzip_like_gradescope(bundles["default"], tmp_path_factory.mktemp(name), sub)
        return name, _run(root)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, ["zip", "notebook"]))


@pytest.mark.parametrize("name, passed_groups, score", [
    ("zip", {"sample_gaussian", "log_normal", "log_normal_mixture", "kl_normal", "log_bernoulli_with_logits", "log_mean_exp",
             "negative_elbo_bound", "negative_iwae_bound"}, 65),
    ("notebook", {"sample_gaussian", "log_normal", "log_normal_mixture", "kl_normal", "log_bernoulli_with_logits", "log_mean_exp",
                  "affine flow", "coupling layer", "affine_flow_log_prob", "AffineCoupling"}, 51),
])
def test_zip_and_notebook_are_graded(handed_in, name, passed_groups, score):
    results, proc, _ = handed_in[name]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _consistent(results)
    groups = {t["name"].split(":")[0] for t in results["tests"] if t["status"] == "passed"}
    assert groups == passed_groups, results["output"]
    assert results["score"] == pytest.approx(score)
    note = "graded hw2.zip -> codebase" if name == "zip" else "IPython magic or shell line(s)"
    assert note in results["output"]
