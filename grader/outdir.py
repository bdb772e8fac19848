"""The reports folder, and what is no submission (checked before any grading).

* :func:`output_folder`: ``--out`` checked before grading (an existing file is refused at once);
  the default, ``./grading-out``, moves beside the graded folder when it would lie inside it.
* :func:`is_report_folder`: a folder of our reports (the marker file, or the ``gradebook.csv`` /
  ``summary.json`` we write) is never graded as a student.
* :func:`refusal`: a path that does not exist, or a folder with nothing in it, is refused with a
  message instead of being graded as a student with 0.
"""
from __future__ import annotations

import json
from pathlib import Path

DEFAULT_OUT = Path("grading-out")
MARKER = ".dgm-verify-reports"  # written at the top of every reports folder
SUMMARY_KEYS = {"rubric", "submissions", "max_score", "scores"}  # what our summary.json holds


# ------------------------------------------------------------------------------- the reports folder
def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def output_folder(out: Path | None, paths: list[str]) -> tuple[Path | None, str | None]:
    """(the reports folder, None), or (None, the error) when it cannot be used; checked before grading.

    No ``--out``: ``./grading-out``, unless that lies inside a graded folder: then
    ``<folder>-grading-out`` beside it.
    """
    if out is None:
        out = DEFAULT_OUT
        folder = next((Path(p) for p in paths if Path(p).is_dir() and _inside(DEFAULT_OUT, Path(p))), None)
        if folder is not None:
            folder = folder.resolve()
            out = folder.parent / f"{folder.name}-grading-out"
    if out.exists() and not out.is_dir():
        return None, f"--out {out}: a file is there, not a folder; give a folder for the reports"
    if out.exists() and any(out.iterdir()) and not is_report_folder(out):
        return None, (f"--out {out}: a folder that holds other files than our reports; "
                      "give a new or empty folder, or an earlier reports folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("reports of python -m verify grade: never graded as a submission\n",
                                  encoding="utf-8")
    except OSError as exc:
        return None, f"--out {out}: cannot write there: {exc.strerror or exc}"
    return out, None


def is_report_folder(p: Path) -> bool:
    """Is ``p`` a folder of reports written by ``python -m verify grade`` (never a submission)?"""
    if not p.is_dir():
        return False
    if (p / MARKER).is_file():
        return True
    try:
        summary = json.loads((p / "summary.json").read_text(encoding="utf-8"))
        if isinstance(summary, dict) and SUMMARY_KEYS <= set(summary):
            return True
    except (OSError, ValueError):
        pass
    try:
        with open(p / "gradebook.csv", encoding="utf-8") as f:
            return f.readline().startswith("student,")
    except OSError:
        return False


def refusal(paths: list[str]) -> str | None:
    """Why these paths cannot be graded (one missing, or a folder with nothing to grade), or None."""
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            return f"{raw}: no such file or folder"
        if p.is_dir() and not any(c for c in p.iterdir() if not c.name.startswith((".", "__"))):
            return f"{raw}: an empty folder: nothing to grade"
    return None
