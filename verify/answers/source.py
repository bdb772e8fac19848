"""Find a submission's ``answers.py`` and read its string constants **without running it**.

The file is untrusted: it is never imported or executed, in any process. It is read as text and
parsed with ``ast.parse``; only top-level assignments of a string literal to one of the answer names
are taken (``KL_GAUSSIAN = "..."``, also ``NAME: str = "..."``, ``A = B = "..."`` and parenthesized
implicit concatenation ``("..." "...")``, which Python's parser folds into one literal). Anything
else assigned to an answer name (a call, an f-string, ``"a" + "b"``, a name, an assignment inside
``if``/``def``/``try``) is ignored with a note saying why.

Where it is looked for (the first that exists):

* a directory submission ``DIR``: ``DIR/answers.py``, ``DIR/src/submission/answers.py``,
  ``DIR/submission/answers.py``, ``DIR/codebase/answers.py``;
* a file submission ``PATH`` alone in its folder (no other ``.py`` file there but ``answers.py``):
  ``PATH.parent/answers.py``; a file among others (a class folder of single files): ``PATH``
  itself (its own string constants), never a classmate's ``answers.py``;

Never through a link: a submission that is a symbolic link, or an ``answers.py`` whose real path
lies outside the submission (a linked folder), is not read, with the reason.
* no submission (``--submission`` not given, or ``reference``): the reference answers, the
  derived closed forms (:data:`verify.answers.questions.QUESTIONS`).
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path

from .questions import NAMES, QUESTIONS

MAX_FILE_BYTES = 100_000
REFERENCE_LABEL = "the reference answers (the derived closed forms)"


@dataclass
class Answers:
    """The written answers of one submission: ``values[name]`` is the submitted text."""

    label: str
    path: Path | None
    values: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)  # name -> why an assignment to it was not read
    error: str | None = None  # why answers.py could not be read at all
    where: str = ""  # where answers.py was looked for, in words

    def missing_reason(self, name: str) -> str:
        """Why ``name`` has no value (for the "not submitted" message)."""
        if self.error is not None:
            return self.error
        if self.path is None:
            return f"no answers.py {self.where}" if self.where else "no answers.py next to the submission"
        note = self.notes.get(name)
        if note:
            return f"{self.path.name} defines no string literal `{name}`: {note}"
        return f"{self.path.name} defines no `{name}`"


def candidates(submission) -> list[Path]:
    p = Path(submission).expanduser()
    if p.is_dir():
        return [p / "answers.py", p / "src" / "submission" / "answers.py", p / "submission" / "answers.py",
                p / "codebase" / "answers.py"]
    return [p.parent / "answers.py"] if _alone(p) else [p]


def _alone(file: Path) -> bool:
    """Is ``file`` the only ``.py`` file of its folder (``answers.py`` aside)?"""
    try:
        return not any(c.name not in (file.name, "answers.py") for c in file.parent.glob("*.py"))
    except OSError:
        return False


def _outside(path: Path, root: Path) -> bool:
    """Does ``path`` (the real one, links resolved) lie outside ``root``?"""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real != top and not real.startswith(top.rstrip(os.sep) + os.sep)


def find(submission) -> tuple[Path | None, list[Path]]:
    looked = candidates(submission)
    return next((c for c in looked if c.is_file()), None), looked


def reference() -> Answers:
    return Answers(REFERENCE_LABEL, None, {n: QUESTIONS[n].reference_text for n in NAMES})


def for_submission(submission) -> Answers:
    """The answers of ``submission`` (a path, or None / "reference" for the reference answers)."""
    if submission is None or str(submission) == "reference":
        return reference()
    p = Path(submission).expanduser()
    if not p.exists():
        return Answers(str(submission), None, error=f"no file or directory at {p}")
    if p.is_symlink():
        return Answers(str(submission), None, error=f"{p.name} is a symbolic link; a submission's own files are read")
    path, _ = find(p)
    if path is None:
        where = (f"in {p} (nor in its src/submission/, submission/ or codebase/)" if p.is_dir()
                 else f"next to {p.name} (in {p.parent})")
        return Answers(str(submission), None, where=where)
    if _outside(path, p if p.is_dir() else p.parent):
        return Answers(str(submission), None, error=f"{path.relative_to(p) if p.is_dir() else path.name} is reached "
                                                    "through a symbolic link out of the submission; it is not read")
    return read(path)


def read(path) -> Answers:
    """Read the answer strings of the file at ``path`` (never executing it)."""
    path = Path(path)
    answers = Answers(str(path), path)
    if path.is_symlink():  # a link could point anywhere on the grading machine
        answers.error = f"{path.name} is a symbolic link; only a regular file is read"
        return answers
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            answers.error = f"{path.name} is {size} bytes; at most {MAX_FILE_BYTES} are read"
            return answers
        raw = path.read_bytes()
    except OSError as exc:
        answers.error = f"{path.name} could not be read: {exc.strerror or exc}"
        return answers
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        answers.error = f"{path.name} is not UTF-8 text (byte {exc.start})"
        return answers
    try:
        tree = ast.parse(text, filename=path.name)
    except SyntaxError as exc:
        answers.error = f"{path.name} could not be read: SyntaxError at line {exc.lineno}: {exc.msg}"
        return answers
    except (RecursionError, MemoryError, ValueError) as exc:
        answers.error = f"{path.name} could not be read: {type(exc).__name__} (nested too deeply?)"
        return answers
    _collect(tree, answers)
    return answers


def _describe(node) -> str:
    if isinstance(node, ast.JoinedStr):
        return "an f-string"
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} literal, not a string"
    if isinstance(node, ast.Call):
        return "a function call"
    if isinstance(node, ast.BinOp):
        return "an operation (such as \"a\" + \"b\")"
    if isinstance(node, ast.Name):
        return f"the name `{node.id}`"
    return f"a {type(node).__name__} expression"


def _collect(tree: ast.Module, answers: Answers) -> None:
    """The answer names' top-level string assignments into ``answers``; a note for each other assignment to them."""
    top = set()
    for stmt in tree.body:
        targets, value = _assignment(stmt)
        for target in targets:
            if isinstance(target, ast.Name) and target.id in NAMES:
                top.add(id(target))
                _take(answers, target.id, value, stmt.lineno)
    _note_other_assignments(tree, answers, top)


def _assignment(stmt) -> tuple[list, ast.expr | None]:
    """(targets, value) of a top-level ``A = B = value`` or ``A: T = value``; ([], None) for anything else."""
    if isinstance(stmt, ast.Assign):
        return stmt.targets, stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return [stmt.target], stmt.value
    return [], None


def _take(answers: Answers, name: str, value, lineno: int) -> None:
    """``name`` assigned ``value`` at the top level: its text if a string literal, else a note why not."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        answers.values[name] = value.value
        answers.notes.pop(name, None)
    else:
        answers.values.pop(name, None)
        answers.notes[name] = (f"line {lineno} assigns it {_describe(value)}; only a string literal is read "
                               "(answers.py is never run)")


def _note_other_assignments(tree: ast.Module, answers: Answers, top: set) -> None:
    """A note for each answer name assigned anywhere but a plain top-level assignment (unless it has a value)."""
    for node in ast.walk(tree):  # inside if/def/try/for, augmented, unpacking
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in NAMES and id(node) not in top:
            if node.id not in answers.values:
                answers.notes.setdefault(
                    node.id, f"line {node.lineno} assigns it outside a plain top-level `NAME = \"...\"`; only those "
                             "are read (answers.py is never run)")
