"""Known bugs, as data: each is a small variant of the reference with one bug.

A :class:`Bug` names the contract name it breaks (``target``), says in one sentence what it
teaches, and carries the buggy implementation (``fn``). The catalogue is used twice:

* ``tests/`` plant every bug in a submission (:func:`write_submission`) and prove that
  ``pytest verify/ --submission`` fails it through a check whose id names ``target``;
* the grader runs the bugs of a failed check's target on the same inputs and names the one whose
  outputs match the submission's.

Bugs register themselves with the :func:`bug` decorator (``registry.py``) in the modules of this package.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from grader.catalogue import flows, gmvae, ssvae, vae  # noqa: F401  (the bug modules register on import)
from grader.catalogue.registry import BUGS, Bug, bug, bugs_for  # noqa: F401


def write_submission(directory: Path, overrides: dict[str, str], comment: str = "") -> Path:
    """Write a self-contained submission in ``directory``: the reference, with some contract names replaced.

    ``overrides`` maps a contract name to a Python expression for its replacement, evaluated in
    the submission (e.g. ``'_BUGS["kl_reversed"].fn'``). The reference and this catalogue are
    copied next to ``submission.py`` under other names (``dgm_reference``, ``dgm_bugs``): a
    sandboxed submission may not import ``impls`` or ``verify``. Returns ``directory``.
    """
    from grader.catalogue.reference import PACKAGE, copy_renamed, write_reference_submission

    directory = Path(directory)
    write_reference_submission(directory)
    copy_renamed(Path(__file__).resolve().parent, directory / "dgm_bugs", {"grader.catalogue": "dgm_bugs", "impls": PACKAGE})
    reference = (directory / "submission.py").read_text(encoding="utf-8")
    lines = [
        f'"""{comment}"""' if comment else '"""Generated submission."""',
        reference.rstrip(),
        "from dgm_bugs import BUGS as _BUGS  # noqa: F401,E402",
    ]
    lines += [f"{name} = {expr}" for name, expr in overrides.items()]
    (directory / "submission.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert PACKAGE in reference
    return directory


def plant(bug_name: str, directory: Path) -> Path:
    """A submission that is the reference with the one bug ``bug_name`` planted."""
    b = BUGS[bug_name]
    teaches = textwrap.shorten(b.teaches, 200)
    return write_submission(directory, {b.target: f'_BUGS["{b.name}"].fn'}, f"Planted bug {b.name}: {teaches}")

