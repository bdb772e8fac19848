"""Labels of graded submissions: the names their reports are filed under.

Whatever the students' files are called, every label is a safe folder name (printable, no path
separator, not hidden), distinct from every other label of the class (ignoring case, for file
systems that do), and never the name of a class report (``gradebook.csv``, ``summary.md``, ...).
"""
from __future__ import annotations

REPORT_NAMES = ("gradebook.csv", "summary.md", "summary.json", "histogram.png")
MAX_LENGTH = 100


def safe_label(name: str) -> str:
    """``name`` with every character that is not a letter, a digit or one of ``._-+@`` replaced by ``_``
    (path separators, spaces, control characters, undecodable bytes), never empty nor hidden."""
    text = "".join(c if (c.isalnum() or c in "._-+@") and c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                   else "_" for c in str(name)[:MAX_LENGTH])
    return "_" + text if text.startswith(".") or not text else text


def unique_labels(names: list[str]) -> list[str]:
    """One label per name, in order: :func:`safe_label`, the first of equal labels kept, the others
    given the first free ``-2``, ``-3``, ... (``alice/``, ``alice-2/``, ``alice.py``: alice, alice-2,
    alice-3); never a class report's name."""
    wanted = [safe_label(n) for n in names]
    taken = {r.casefold() for r in REPORT_NAMES}
    labels: list[str | None] = []
    for w in wanted:  # first come, first served: a name that is free keeps its label
        labels.append(None if w.casefold() in taken else w)
        taken.add(w.casefold())
    for i, w in enumerate(wanted):
        n = 2
        while labels[i] is None:
            candidate = f"{w}-{n}"
            if candidate.casefold() not in taken:
                labels[i] = candidate
                taken.add(candidate.casefold())
            n += 1
    return labels
