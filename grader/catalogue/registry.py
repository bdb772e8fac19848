"""The catalogue's registry: a :class:`Bug` per planted bug, registered by the :func:`bug` decorator."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Bug:
    name: str
    target: str
    teaches: str
    fn: Callable
    fix: str = ""  # what the code should do instead (shown with the diagnosis); empty: the contract says it


BUGS: dict[str, Bug] = {}


def bug(target: str, teaches: str, fix: str = ""):
    """Register the decorated function (or class) as a planted bug in ``target`` (``fix``: what to do instead)."""

    def register(fn):
        name = fn.__name__
        if name in BUGS:
            raise ValueError(f"duplicate bug name {name}")
        BUGS[name] = Bug(name=name, target=target, teaches=teaches, fn=fn, fix=fix)
        return fn

    return register


def bugs_for(target: str) -> list[Bug]:
    return [b for b in BUGS.values() if b.target == target]
