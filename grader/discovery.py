"""What ``python -m verify grade PATH ...`` grades: one submission, or a class of them.

A PATH that is itself one submission (a ``.py``, ``.ipynb`` or ``.zip`` file, or a folder with a
form of submission at its top: ``sandbox/forms.py``) is graded as one; a folder whose entries are
submissions is a class, one student per entry. ``mode`` forces either ("single" / "class").

In a class folder every entry is graded or listed with the reason it is not: folders, ``.py``,
``.ipynb`` and ``.zip`` files are students (a folder with no code is graded too, and fails to load
saying what it holds); hidden entries, caches and folders of grading reports are skipped and listed.
Paths are resolved against the current folder here, before any child process sees them.
"""
from __future__ import annotations

from pathlib import Path

from grader.labels import unique_labels
from grader.outdir import is_report_folder
from sandbox import forms

MODES = ("auto", "single", "class")


def _label(p: Path) -> str:
    return p.stem if p.is_file() else (p.name or str(p))


def _skip_reason(entry: Path) -> str | None:
    """Why a class folder's entry is not a student, or None when it is one."""
    if forms.skipped(entry):
        return "hidden, a cache or a virtual environment"
    if entry.is_dir():
        if is_report_folder(entry):
            return "a folder of grading reports"
        return None
    if entry.suffix in forms.CODE_SUFFIXES:
        return None
    return f"not a submission (students are folders, .py, .ipynb and .zip files)"


def is_class(p: Path) -> bool:
    """A folder that is not itself one submission and has at least two students in it."""
    if not p.is_dir() or forms.is_one_submission(p):
        return False
    students = [e for e in p.iterdir() if _skip_reason(e) is None]
    return len(students) >= 2


def discover(paths: list[str], mode: str = "auto") -> tuple[list[tuple[str, Path]], list[str]]:
    """((label, absolute path) per submission, what was decided and what was skipped, in words)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    found, said = [], []
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        as_class = mode == "class" or (mode == "auto" and is_class(p))
        if not as_class or not p.is_dir():
            why = "as asked (--single)" if mode == "single" else (
                "it is one submission" if p.exists() else "no such file or folder")
            said.append(f"{raw}: graded as one submission ({why})")
            found.append((_label(p), p))
            continue
        students, skipped = [], []
        for entry in sorted(p.iterdir()):
            reason = _skip_reason(entry)
            (students.append((_label(entry), entry)) if reason is None else skipped.append(f"{entry.name}: {reason}"))
        why = "as asked (--class)" if mode == "class" else "each entry is a submission"
        said.append(f"{raw}: graded as a class of {len(students)} submissions ({why}; --single grades it as one)")
        said += [f"  not graded: {s}" for s in skipped]
        found += students
    return _unique(found), said


def _unique(found: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Each submission under its own label (:func:`grader.labels.unique_labels`)."""
    return list(zip(unique_labels([label for label, _ in found]), [p for _, p in found]))
