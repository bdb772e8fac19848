"""Patterns of real student code, written for these tests in the styles students use (tests/test_real_patterns.py).

``base/`` is a correct CS236 checkout (codebase/utils.py, codebase/models/vae.py, gmvae.py, ssvae.py). Each other folder is
one entry: its ``utils.py`` is appended to the base's utils.py (its functions replace the base's), its
``vae.py`` to the base's vae.py (a ``class VAE(VAE)`` replacing some methods). :func:`materialize`
writes the entry's checkout.
"""
from __future__ import annotations

import shutil
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
BASE = CORPUS / "base"
ENTRIES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and p.name not in ("base", "__pycache__"))


def materialize(entry: str, folder: Path) -> Path:
    """The CS236 checkout of ``entry`` in ``folder`` (returned)."""
    folder = Path(folder)
    shutil.copytree(BASE, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name, target in (("utils.py", folder / "codebase" / "utils.py"),
                         ("vae.py", folder / "codebase" / "models" / "vae.py")):
        own = CORPUS / entry / name
        if own.exists():
            target.write_text(target.read_text(encoding="utf-8") + "\n\n# ---- the entry's own code\n"
                              + own.read_text(encoding="utf-8"), encoding="utf-8")
    return folder
