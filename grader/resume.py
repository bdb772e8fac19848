"""Grading a class over several runs: ``--resume`` and regrades.

* :func:`fingerprint` / :func:`reuser`: ``--resume`` keeps a student's earlier result when the
  files of the submission, the rubric, the seed and the selection are all unchanged (a hash of each).
* :func:`merged`: a regrade of some students keeps the other students' earlier results (their
  ``report.json``), so that ``gradebook.csv`` and the summary still cover the class.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grader.options import GradeOptions
from grader.runner import Check, Result

MAX_HASHED_FILES = 2000


def _files_hash(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()
                                                 and "__pycache__" not in f.parts and ".git" not in f.parts)
    for f in files[:MAX_HASHED_FILES]:
        h.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def grading_key(rubric_source: str, options: GradeOptions) -> str:
    """A hash of what the grades depend on besides the submission: the rubric's text, seed, selection."""
    text = Path(rubric_source).read_text(encoding="utf-8")
    return hashlib.sha256(json.dumps([text, options.seed, options.select]).encode()).hexdigest()


def fingerprint(path: Path, key: str) -> dict:
    return {"files": _files_hash(Path(path)), "grading": key}


def load_result(folder: Path) -> Result | None:
    """The Result saved in ``folder/report.json``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        checks = [Check(**c) for c in data["checks"]]
        return Result(data["label"], data["path"], checks, data["groups"], data["score"], data["max_score"],
                      data["execution_time"], data.get("problems", []), data.get("sandbox", []),
                      data.get("incomplete"), data.get("fingerprint", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reuser(out: Path, key: str):
    """``reuse(label, path)`` for :func:`grader.runner.grade`: the earlier result in ``out`` when the
    submission's files and the grading are unchanged and it was graded completely; else None."""
    def reuse(label: str, path: Path) -> Result | None:
        old = load_result(out / label)
        if old is None or old.incomplete or old.fingerprint != fingerprint(path, key):
            return None
        return old
    return reuse


def merged(results: list[Result], out: Path, key: str) -> tuple[list[Result], list[str]]:
    """``results`` and, from ``out``, every other student graded earlier with the same rubric, seed
    and selection (by label); and a note per earlier student left out (graded otherwise)."""
    labels = {r.label for r in results}
    kept, notes = [], []
    for folder in sorted(d for d in out.iterdir() if d.is_dir() and d.name not in labels):
        old = load_result(folder)
        if old is None:
            continue
        if old.fingerprint.get("grading") != key:
            notes.append(f"{old.label}: graded earlier with another rubric, seed or -k; not in the gradebook "
                         "(grade it again to include it)")
            continue
        kept.append(old)
    return sorted(results + kept, key=lambda r: r.label), notes
