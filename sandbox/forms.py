"""What a path holds: the rule that finds a submission by its content (``docs/CONTRACT.md``).

Standard library only, and it reads only names and file types: it never opens a student's file
(zips are read by :func:`extract_zip`, as data). The trusted side uses it to tell one submission from
a class folder (``grader/discovery.py``); the sandbox's worker, to find what to import
(``submission.py`` loads this file by path, before the worker confines itself).

The rule, for a folder (a ``.py`` file, a notebook or a zip given directly is that form):

1. the forms below are looked for in the folder and its subfolders (6 levels at most; hidden
   entries, ``__MACOSX``, ``__pycache__`` and virtual environments skipped):
   * ``module``: a folder holding ``submission.py``;
   * ``package``: a starter package: ``codebase/``, ``src/submission/`` or ``submission/`` holding
     ``utils.py`` or ``models/`` (the CS236 and XCS236 layouts, the course's own hand-in);
   * ``package``: a folder of the starter's modules: ``utils.py``, ``vae.py`` or ``models/vae.py``
     (the package folder given directly, or a flat folder with ``utils.py`` beside ``vae.py``);
   * ``module``, ``notebook`` or ``zip``: a folder whose only code is one ``.py`` file (not
     ``answers.py``), one ``.ipynb`` or one ``.zip``, with no code in its subfolders;
2. the shallowest wins (a starter package counts at the depth of the folder holding it); at equal
   depth, in the order listed. The others are named in a note, with the reason.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CODE_SUFFIXES = (".py", ".ipynb", ".zip")
STARTER_MODULES = ("utils.py", "vae.py")
PACKAGE_NAMES = (("codebase",), ("src", "submission"), ("submission",))
SKIPPED_DIRS = ("__MACOSX", "__pycache__", "node_modules", "site-packages")
MAX_DEPTH = 6
MAX_DIRS = 2000
ZIP_MAX_MEMBERS = 2000
ZIP_MAX_BYTES = 64 << 20
ORDER = ("submission.py", "a starter package (codebase/ or src/submission/)",
         "a folder of the starter's modules", "a lone .py file, notebook or zip")


class NotASubmission(Exception):
    """The path holds no form of submission; the message says what it holds."""


@dataclass
class Form:
    kind: str  # module | notebook | zip | package
    path: Path  # the file (module, notebook, zip) or the package's folder
    where: str  # the path relative to what was given, for notes ("." for itself)
    what: str  # e.g. "a CS236 checkout", "a flat folder"
    depth: int = 0
    tier: int = 0
    notes: list = field(default_factory=list)

    @property
    def models(self) -> Path:
        """Where the package's ``models`` modules are: ``models/``, or the folder itself when flat."""
        return self.path / "models" if (self.path / "models").is_dir() else self.path


def skipped(entry: Path) -> bool:
    """Hidden files, macOS's zip debris, caches and virtual environments: never part of a submission."""
    return entry.name.startswith(".") or entry.name in SKIPPED_DIRS or (entry / "pyvenv.cfg").is_file()


def _entries(d: Path) -> list[Path]:
    try:
        return sorted(e for e in d.iterdir() if not skipped(e) and not e.is_symlink())
    except OSError:
        return []


def _is_code(entry: Path) -> bool:
    return entry.is_file() and entry.suffix in CODE_SUFFIXES and entry.name != "answers.py"


def _is_starter_package(d: Path) -> bool:
    return (d / "utils.py").is_file() or (d / "models").is_dir()


def _holds_starter_modules(d: Path) -> bool:
    return any((d / m).is_file() for m in STARTER_MODULES) or (d / "models" / "vae.py").is_file()


def _rel(p: Path, top: Path) -> str:
    return p.relative_to(top).as_posix() if p != top else "."


def _own(d: Path, top: Path, depth: int, claimed: set) -> list[Form]:
    """The forms folder ``d`` is (or holds directly), in the rule's order."""
    found = []
    if (d / "submission.py").is_file():
        found.append(Form("module", d / "submission.py", _rel(d / "submission.py", top), "the module layout", depth, 0))
    for parts in PACKAGE_NAMES:
        pkg = d.joinpath(*parts)
        if pkg.is_dir() and pkg not in claimed and _is_starter_package(pkg):
            what = "the XCS236 layout" if parts[-1] == "submission" else "a CS236 checkout"
            found.append(Form("package", pkg, _rel(pkg, top), what, depth, 1))
            claimed.add(pkg)
    if d not in claimed and _holds_starter_modules(d):
        flat = not (d / "models").is_dir()
        what = "a flat folder of the starter's modules" if flat else "the starter's package given directly"
        found.append(Form("package", d, _rel(d, top), what, depth, 2))
        claimed.add(d)
    return found


def _lone_file(d: Path, top: Path, depth: int, entries: list[Path]) -> list[Form]:
    code = [e for e in entries if _is_code(e)]
    if len(code) != 1 or any(e.is_dir() and _holds_code(e) for e in entries):
        return []
    kind = {".py": "module", ".ipynb": "notebook", ".zip": "zip"}[code[0].suffix]
    return [Form(kind, code[0], _rel(code[0], top), f"a lone {code[0].suffix} file", depth, 3)]


def _holds_code(d: Path, budget: list | None = None) -> bool:
    budget = [MAX_DIRS] if budget is None else budget
    for e in _entries(d):
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if _is_code(e) or (e.is_dir() and _holds_code(e, budget)):
            return True
    return False


def candidates(top: Path, max_depth: int = MAX_DEPTH) -> list[Form]:
    """Every form found under folder ``top``, best first (the rule above)."""
    found, claimed, queue, seen = [], set(), [(top, 0)], 0
    while queue and seen < MAX_DIRS:
        d, depth = queue.pop(0)
        seen += 1
        entries = _entries(d)
        own = _own(d, top, depth, claimed)
        found += own or _lone_file(d, top, depth, entries)
        if depth < max_depth and d not in claimed:
            queue += [(e, depth + 1) for e in entries if e.is_dir() and e not in claimed]
    return sorted(found, key=lambda f: (f.depth, f.tier))


def describe_entries(d: Path, limit: int = 12) -> str:
    names = [e.name + ("/" if e.is_dir() else "") for e in _entries(d)]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "") if names else "nothing"


def find(path: Path) -> Form:
    """The form to grade at ``path`` (a file or a folder); raises :class:`NotASubmission`."""
    p = Path(path)
    if p.is_file():
        kind = {".py": "module", ".ipynb": "notebook", ".zip": "zip"}.get(p.suffix)
        if kind is None:
            raise NotASubmission(f"{p.name} is not a submission: hand in a .py file, a notebook (.ipynb), "
                                 "a .zip or a folder")
        return Form(kind, p, p.name, f"a {p.suffix} file")
    if not p.is_dir():
        raise NotASubmission(f"no file or directory at {p}")
    found = candidates(p)
    if not found:
        raise NotASubmission(f"{p.name} holds neither submission.py nor a CS236 layout (codebase/utils.py, "
                             "src/submission/utils.py or submission/utils.py), the starter's modules, a notebook "
                             f"or a zip; it holds: {describe_entries(p)}")
    chosen = found[0]
    if len(found) > 1:
        others = "; ".join(f"{f.where} ({f.what})" for f in found[1:6])
        chosen.notes.append(f"graded {chosen.where} ({chosen.what}); also present, not graded: {others}. The rule: "
                            f"the shallowest form wins, and at equal depth {', then '.join(ORDER)}")
    return chosen


def is_one_submission(p: Path) -> bool:
    """Whether ``p`` is itself one submission (a file, or a folder with a form at its top level)."""
    return p.is_file() or any(f.depth == 0 for f in candidates(p, max_depth=0))


# ------------------------------------------------------------------------------- zips, as data
def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or None when it must not be extracted (absolute, ``..``, a link)."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ":" in parts[0] or ".." in parts:
        return None
    if stat.S_ISLNK(info.external_attr >> 16):
        return None
    return PurePosixPath(*parts)


def extract_zip(archive: Path, dest: Path) -> list[str]:
    """Extract ``archive`` into the empty folder ``dest`` within the limits; returns notes.

    Refused members (absolute paths, ``..``, symbolic links) are skipped and named; more than
    ``ZIP_MAX_MEMBERS`` members or ``ZIP_MAX_BYTES`` bytes (counted as they are written, not as the
    archive claims) stops with :class:`NotASubmission`.
    """
    notes, refused, total = [], [], 0
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > ZIP_MAX_MEMBERS:
                raise NotASubmission(f"{archive.name} holds {len(infos)} files, more than {ZIP_MAX_MEMBERS}")
            for info in infos:
                rel = _member_path(info)
                if rel is None:
                    refused.append(info.filename)
                    continue
                target = dest.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    total = _copy_member(zf, info, target, total, archive.name)
                except OSError:  # a name given twice, or a file where a folder is
                    refused.append(info.filename)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise NotASubmission(f"{archive.name} could not be read as a zip: {exc}") from None
    if refused:
        notes.append(f"{archive.name}: not extracted (absolute paths, '..', links or repeated names): {', '.join(refused[:5])}")
    return notes


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, total: int, name: str) -> int:
    with zf.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(1 << 16):
            total += len(chunk)
            if total > ZIP_MAX_BYTES:
                raise NotASubmission(f"{name} unpacks to more than {ZIP_MAX_BYTES >> 20} MiB")
            out.write(chunk)
    os.chmod(target, 0o600)
    return total
