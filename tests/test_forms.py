"""Every form students hand the homework in loads and grades as one submission (issue 15).

The corpus is ``tests/handin_forms.py`` (our own code, written in the styles of real checkouts).
Each row of the README's table "What you can hand in" is a test here (``README_ROWS``).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from handin_forms import FLOW_NAMES, FORMS, UTILS_NAMES, VAE_NAMES, official_handin, write
from grader import discovery
from sandbox import forms
from verify import loader

# the README's rows -> the corpus entries that test them
README_ROWS = {
    "submission.py or a lone .py file": ["module"],
    "a CS236 checkout (codebase/), imports of torchvision/tqdm/matplotlib": ["starter-imports"],
    "the course's hand-in (no nns/, no __init__.py)": ["official-handin"],
    "the package folder given directly": ["package-given", "xcs236-package-given"],
    "an XCS236 checkout (src/submission/), at any depth": ["xcs236-deep"],
    "a flat folder": ["flat"],
    "a .zip": ["zip"],
    "a notebook": ["notebook"],
    "flows in any module of the package": ["flows-beside-checkout", "flows-in-models"],
}
MODULE = "from torchvision import transforms\nfrom tqdm import tqdm\n" + (
    REPO / "tests" / "variants" / "cs236" / "codebase" / "utils.py").read_text()
FORMS["module"] = (lambda d: write(d, {"hw2.py": MODULE}) / "hw2.py", UTILS_NAMES)
EXPECTED_ERRORS = {"conflicted": "unresolved merge-conflict markers at codebase/utils.py:13"}


def test_readme_lists_every_tested_row():
    readme = (REPO / "README.md").read_text()
    assert "## What you can hand in" in readme
    for row, cases in README_ROWS.items():
        assert all(c in FORMS for c in cases)
        assert f"`{cases[0]}`" in readme, row  # each row names the test case that checks it


@pytest.mark.parametrize("name", sorted(FORMS))
def test_each_form_loads_in_process_with_its_names(tmp_path, name):
    build, names = FORMS[name]
    impl = loader.load(build(tmp_path), in_process=True)
    if name in EXPECTED_ERRORS:
        assert impl.error is not None and EXPECTED_ERRORS[name] in impl.error, impl.error
        return
    assert impl.error is None, impl.error
    assert set(impl._namespace) == names
    assert "torchvision" not in sys.modules  # the stand-ins do not outlive an in-process load


def test_notes_say_what_was_supplied(tmp_path):
    impl = loader.load(FORMS["official-handin"][0](tmp_path), in_process=True)
    notes = "\n".join(impl.notes)
    assert "codebase.models.nns is not part of the submission" in notes
    assert "torchvision, not installed here" in notes
    nb = loader.load(FORMS["notebook"][0](tmp_path / "nb"), in_process=True)
    notes = "\n".join(nb.notes)
    assert "3 IPython magic or shell line(s)" in notes and "cell 5: NameError" in notes


def test_flows_in_a_checkout_say_where_they_came_from(tmp_path):
    impl = loader.load(FORMS["flows-in-models"][0](tmp_path), in_process=True)
    assert any("AffineCoupling (codebase.models.flow)" in n for n in impl.notes), impl.notes


def test_two_forms_the_note_says_which_was_graded_and_why(tmp_path):
    root = official_handin(tmp_path / "hw2")
    write(root, {"submission.py": MODULE, "scratch.ipynb": "{}"})
    form = forms.find(root)
    assert form.kind == "module" and form.where == "submission.py"
    assert "also present, not graded: codebase (a CS236 checkout)" in form.notes[0]
    assert "the shallowest form wins" in form.notes[0]


def test_inert_stand_ins_can_be_called_subclassed_and_iterated(tmp_path):
    sub = write(tmp_path, {"s.py": "import torchvision\nfrom torchvision import datasets, transforms\n"
                                   "T = transforms.Compose([transforms.ToTensor()])\n"
                                   "class D(datasets.MNIST):\n    pass\n"
                                   "ITEMS = list(D('data', download=True))\nwith torchvision.x() as y:\n    pass\n"
                                   "def kl_normal(qm, qv, pm, pv):\n    return ITEMS\n"}) / "s.py"
    impl = loader.load(sub, in_process=True)
    assert impl.error is None and impl.raw("kl_normal")(0, 0, 0, 0) == []


def test_an_installed_package_is_never_replaced(tmp_path):
    sub = write(tmp_path, {"s.py": "import tqdm.not_a_module\n"}) / "s.py"
    impl = loader.load(sub, in_process=True)
    assert "ModuleNotFoundError" in impl.error  # tqdm is installed: its own error stands


@pytest.mark.parametrize("member, refused", [("../evil.py", True), ("/abs/evil.py", True), ("a/../../evil.py", True),
                                             ("C:/evil.py", True), ("codebase/utils.py", False)])
def test_zip_members_outside_the_folder_are_not_extracted(tmp_path, member, refused):
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, "x = 1\n")
    dest = tmp_path / "out"
    dest.mkdir()
    notes = forms.extract_zip(archive, dest)
    assert bool(notes) == refused
    assert not (tmp_path / "evil.py").exists() and [p.name for p in dest.rglob("*.py")] == ([] if refused else ["utils.py"])


def test_zip_links_and_bombs_are_refused(tmp_path, monkeypatch):
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("link.py")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("big.py", "#" * 5000, compress_type=zipfile.ZIP_DEFLATED)
    (tmp_path / "a").mkdir()
    assert "link.py" in forms.extract_zip(archive, tmp_path / "a")[0]
    assert not (tmp_path / "a" / "link.py").exists()
    monkeypatch.setattr(forms, "ZIP_MAX_BYTES", 1000)
    (tmp_path / "b").mkdir()
    with pytest.raises(forms.NotASubmission, match="unpacks to more than"):
        forms.extract_zip(archive, tmp_path / "b")
    monkeypatch.setattr(forms, "ZIP_MAX_MEMBERS", 1)
    with pytest.raises(forms.NotASubmission, match="holds 2 files"):
        forms.extract_zip(archive, tmp_path / "b")


def test_discovery_decides_class_or_single_and_lists_every_entry(tmp_path):
    subs, said = discovery.discover([str(REPO / "examples" / "class")])
    assert [label for label, _ in subs] == ["alice", "bob", "carol", "dave", "erin"] and "class of 5" in said[0]
    course = tmp_path / "students"
    official_handin(course / "ann")
    write(course, {"bo.py": MODULE, "cy.ipynb": "{}", "notes.txt": "x", ".DS_Store": "",
                   "grading-out/gradebook.csv": "student,total,max_score\nann,1,100\n", "empty/README.md": ""})
    (course / "dee.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    subs, said = discovery.discover([str(course)])
    assert [label for label, _ in subs] == ["ann", "bo", "cy", "dee", "empty"]
    text = "\n".join(said)
    assert "not graded: .DS_Store: hidden" in text and "not graded: grading-out: a folder of grading reports" in text
    assert "not graded: notes.txt: not a submission" in text
    subs, said = discovery.discover([str(course / "ann")])  # a checkout is one submission...
    assert len(subs) == 1 and "one submission" in said[0]
    assert len(discovery.discover([str(course / "ann")], "class")[0]) == 1  # ...its one entry (hw2 layout)
    assert len(discovery.discover([str(course)], "single")[0]) == 1


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """Every form as one student of a class, graded by the CLI from another folder with a relative path."""
    course = tmp_path_factory.mktemp("course")
    for name, (build, _) in FORMS.items():
        (course / "students" / name).mkdir(parents=True)
        build(course / "students" / name)
    (course / "students" / ".DS_Store").write_text("")
    select = ("kl_normal_matches or log_mean_exp_matches or nelbo_by_replay or iwae_bound_exact or "
              "affine_flow_log_prob_matches or AffineCoupling_invertible")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "verify", "grade", "students", "--jobs", "2", "-k", select,
                           "--format", "csv", "--format", "json", "--out", "out"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(course / "out" / "gradebook.csv") as f:
        return proc, {row["student"]: row for row in csv.DictReader(f)}, course


GROUPS = {"kl_normal: value": UTILS_NAMES, "log_mean_exp: value": UTILS_NAMES,
          "negative_elbo_bound: the bound (nelbo)": VAE_NAMES, "negative_iwae_bound: the bound (niwae)": VAE_NAMES,
          "affine flow": FLOW_NAMES, "coupling layer": FLOW_NAMES}


def test_every_form_graded_as_one_student_from_another_folder(class_run):
    proc, rows, course = class_run
    assert "graded as a class of" in proc.stderr and "not graded: .DS_Store" in proc.stderr
    assert set(rows) == set(FORMS)  # one row per form: none split into several students, none lost
    for name, (_, names) in FORMS.items():
        row = rows[name]
        for group, needs in GROUPS.items():
            full = float(row[group]) > 0
            assert full == bool(needs & names), (name, group, row)


def test_the_report_says_what_was_graded(class_run):
    _, _, course = class_run
    report = (course / "out" / "zip" / "feedback.md")
    text = report.read_text() if report.exists() else (course / "out" / "zip" / "report.json").read_text()
    assert "graded hw2.zip -> codebase" in text and "nns is not part of the submission" in text
    conflicted = (course / "out" / "conflicted" / "report.json").read_text()
    assert "unresolved merge-conflict markers at codebase/utils.py:13" in conflicted
