"""Issue 18: a class run that no submission can tilt.

The round-2 attacks (tests/hostile.py: ROUND2) graded as one class folder next to honest students,
among them single-file students and students whose names collide (``alice/``, ``alice-2/``,
``alice.py``, a folder named ``gradebook.csv``):

* every act is contained: its checks fail, its other checks pass;
* every honest submission keeps exactly the score (and the check-by-check outcomes) it gets alone;
* every report of the class is written, each under its own label;
* afterwards no worker process, shared-memory segment, memfd or file of a worker is left.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import reports, rubric
from grader.options import FORMATS
from grader.runner import grade
from sandbox.process import UID_BASE, copy_own_files, read_roots
from tests import hostile
from tests.test_sandbox import _processes_mentioning
from verify.contract import CONTRACT_NAMES

REPO = Path(__file__).resolve().parents[1]
ALICE, BOB = REPO / "examples" / "class" / "alice", REPO / "examples" / "class" / "bob"
CHECKS = ("affine_flow_log_prob_matches or kl_normal_matches or sample_gaussian_reparameterized "
          "or AffineCoupling_log_det_matches_autograd_jacobian or elbo_bound_rec_by_replay or written_answer")
# carol imports a library module a classmate's file is named after (fractions.py)
CAROL = hostile.BASE.read_text(encoding="utf-8") + "\nimport fractions as _fractions\nassert _fractions.Fraction(1, 2) == 0.5\n"
HONEST = {  # label in the class -> how to build it alone (in a folder of its own)
    "alice": lambda d: shutil.copytree(ALICE, d / "alice"),
    "bob": lambda d: shutil.copytree(BOB, d / "bob"),
    "carol": lambda d: (d / "carol.py").write_text(CAROL, encoding="utf-8"),
    "alice-2": lambda d: shutil.copytree(BOB, d / "alice-2"),  # bob's work, in a folder named alice-2
    "alice-3": lambda d: (d / "alice.py").write_text(hostile.BASE.read_text(encoding="utf-8"), encoding="utf-8"),
    "gradebook.csv-2": lambda d: shutil.copytree(ALICE, d / "gradebook.csv"),
}


def _label(entry: hostile.Entry) -> str:
    return entry.name[:-3] if entry.name.endswith(".py") else entry.name


def _workers_ipc() -> list[str]:
    """SysV segments, semaphores and queues created by a worker's uid, and POSIX shm files a worker named."""
    left = [f for f in (os.listdir("/dev/shm") if os.path.isdir("/dev/shm") else []) if "dgm-hostile" in f]
    for kind in ("-m", "-s", "-q"):
        out = subprocess.run(["ipcs", kind, "-c"], capture_output=True, text=True).stdout if shutil.which("ipcs") else ""
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[0].isdigit() and fields[2].isdigit() and int(fields[2]) >= UID_BASE:
                left.append(f"ipcs {kind}: {line}")
    return left


def _worker_processes(folder: Path) -> list[str]:
    """Workers of this class still running (their command line names the submission)."""
    return _processes_mentioning(str(folder))


@pytest.fixture(scope="module")
def round2(tmp_path_factory):
    root = tmp_path_factory.mktemp("round2")
    folder = root / "class"
    folder.mkdir()
    for label, build in HONEST.items():
        build(folder)
    for entry in hostile.ROUND2:
        entry.build(folder, entry.name)
    ipc_before = _workers_ipc()
    results = grade([str(folder)], rubric.load(), jobs=2, timeout=400, progress=False, check_timeout=10.0,
                    memory_mb=1536, select=CHECKS)
    alone = {}
    for label, build in HONEST.items():
        d = root / "alone" / label
        d.mkdir(parents=True)
        build(d)
        (entry,) = list(d.iterdir())
        alone[label] = grade([str(entry)], rubric.load(), progress=False, in_process=True, select=CHECKS)[0]
    return {"results": {r.label: r for r in results}, "list": results, "alone": alone, "root": root,
            "folder": folder, "ipc_before": ipc_before}


def _expected(entry: hostile.Entry, check) -> str:
    if entry.fails == hostile.EVERYTHING:
        return "failed"
    if entry.fails == hostile.CODE:
        return "failed" if set(check.targets) & set(CONTRACT_NAMES) else "passed"
    return "failed" if any(part in check.name for part in entry.fails) else "passed"


@pytest.mark.parametrize("entry", hostile.ROUND2, ids=lambda e: e.name)
def test_round2_act_is_contained(round2, entry):
    result = round2["results"][_label(entry)]
    wrong = [f"{c.name}: {c.outcome}, expected {_expected(entry, c)} ({c.message[:300]})"
             for c in result.checks if c.outcome != _expected(entry, c)]
    assert not wrong, f"{entry.name} ({entry.act}):\n" + "\n".join(wrong)


def test_honest_students_keep_the_score_they_get_alone(round2):
    for label, alone in round2["alone"].items():
        in_class = round2["results"][label]
        assert {c.nodeid: c.outcome for c in in_class.checks} == {c.nodeid: c.outcome for c in alone.checks}, label
        assert in_class.score == alone.score, (label, in_class.score, alone.score)
    assert not round2["alone"]["alice"].failed() and round2["alone"]["bob"].failed()


def test_every_report_of_the_class_is_written(round2, tmp_path):
    results = round2["list"]
    labels = [r.label for r in results]
    assert len(set(labels)) == len(labels) and {"alice", "alice-2", "alice-3", "gradebook.csv-2"} <= set(labels)
    out = tmp_path / "out"
    written = reports.write_all(results, rubric.load(), out, FORMATS)
    for path in written:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".xml":
            ET.parse(path)
        elif path.suffix in (".md", ".csv"):
            path.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(labels)
    with open(out / "gradebook.csv", encoding="utf-8") as f:
        assert [row[0] for row in csv.reader(f)][1:] == labels
    feedback = (out / "surrogate" / "feedback.md").read_text(encoding="utf-8")
    assert "\\ud800" in feedback and "\x1b" not in feedback


def test_nothing_of_a_worker_is_left(round2):
    assert _worker_processes(round2["folder"]) == []
    assert _workers_ipc() == round2["ipc_before"] == []
    assert not (round2["folder"] / "disk_filler" / "own_folder_fill.txt").exists()


# --------------------------------------------------------------------------- the pieces, alone
def test_read_roots_come_from_the_interpreter(monkeypatch, tmp_path):
    """Not from the trusted process's import path or working folder (run from the folder above the
    project, or with PYTHONPATH set, they once exposed the answer key)."""
    monkeypatch.setattr(sys, "path", [str(REPO.parent), str(tmp_path), *sys.path])
    monkeypatch.chdir(REPO.parent)
    roots, _ = read_roots()
    assert not any(os.path.realpath(r) in (str(REPO.parent), str(tmp_path), str(REPO)) for r in roots), roots
    assert sys.base_prefix in roots or os.path.realpath(sys.base_prefix) in roots


def test_a_copy_never_follows_a_link(tmp_path):
    src = tmp_path / "mallory"
    (src / "pkg").mkdir(parents=True)
    (src / "submission.py").write_text("x = 1\n")
    (src / "pkg" / "flows.py").symlink_to(REPO / "impls" / "flows.py")
    (src / "other").symlink_to(ALICE)
    os.mkfifo(src / "pipe")
    notes = copy_own_files(src, tmp_path / "copy")
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert copied == ["pkg", "submission.py"], copied
    assert len(notes) == 3 and all("not" in n for n in notes), notes
