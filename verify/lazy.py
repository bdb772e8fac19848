"""Modules imported on first use, so a check run pays only for what its checks touch.

SciPy's ``stats``, ``integrate`` and ``optimize`` and SymPy (through ``derivations``) cost one to
two seconds of imports; a one-check regrade needs none of them for most checks. The grader's
zygote (grader/zygote.py) imports them all once per job anyway, so a class pays them once.
"""
from __future__ import annotations

import importlib


class OnFirstUse:
    """Stands for the module ``name``: imports it at the first attribute access (``integrate.quad``)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("_"):  # pytest's collection probes every module-level name (__test__, fixture
            raise AttributeError(attr)  # markers...): that must not import; the checks use public names only
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<module {self._name!r}, imported on first use>"
