"""The reference (``impls``) written out as an ordinary submission, to run it through the sandbox.

The worker may not import ``impls``, so the reference's modules are copied under another package
name (``dgm_reference``) with their imports renamed, next to a ``submission.py`` that re-exports
the contract's names and an ``answers.py`` with the derived closed forms. Used by the sandbox's tests (the answer key passes every check sandboxed too)
and by the benchmark comparing sandboxed and in-process grading.
"""
from __future__ import annotations

import re
from pathlib import Path

IMPLS = Path(__file__).resolve().parents[2] / "impls"
MODULES = ("gaussian", "bernoulli", "reductions", "bounds", "flows", "vae", "gmvae", "ssvae")
PACKAGE = "dgm_reference"


def write_reference_submission(folder: Path) -> Path:
    """``folder`` with ``submission.py`` and ``dgm_reference/``; returns ``folder``."""
    from verify.contract import CONTRACT_NAMES

    package = Path(folder) / PACKAGE
    copy_renamed(IMPLS, package, {"impls": PACKAGE}, ("__init__",) + MODULES)
    found = {}
    for module in MODULES:
        text = (package / f"{module}.py").read_text(encoding="utf-8")
        for name in CONTRACT_NAMES:
            if re.search(rf"^(def|class) {name}\b", text, flags=re.M):
                found[name] = module
    lines = [f"from {PACKAGE}.{module} import {name}  # noqa: F401" for name, module in sorted(found.items())]
    (Path(folder) / "submission.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from verify.answers.questions import QUESTIONS

    answers = [f"{name} = {q.reference_text!r}" for name, q in QUESTIONS.items()]
    (Path(folder) / "answers.py").write_text("\n".join(answers) + "\n", encoding="utf-8")
    return Path(folder)


def copy_renamed(source: Path, target: Path, renames: dict[str, str], modules=None) -> Path:
    """Copy the package ``source`` (its ``modules``, default every .py file) to ``target``,
    replacing each dotted name in ``renames`` wherever it occurs as a whole name."""
    target.mkdir(parents=True, exist_ok=True)
    files = [source / f"{m}.py" for m in modules] if modules else sorted(source.glob("*.py"))
    if not (target / "__init__.py").exists() and not any(f.name == "__init__.py" for f in files):
        (target / "__init__.py").write_text(f'"""A renamed copy of {source.name}."""\n')
    for f in files:
        text = f.read_text(encoding="utf-8")
        for old, new in renames.items():
            text = re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text)
        (target / f.name).write_text(text, encoding="utf-8")
    return target
