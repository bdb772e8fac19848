"""The rubric: groups of checks with points, visibility and partial credit, read from TOML."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from verify.contract import CONTRACT_NAMES

DEFAULT = Path(__file__).with_name("default_rubric.toml")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class RubricError(ValueError):
    """A rubric file that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Group:
    name: str
    points: float
    checks: tuple
    visibility: str = "visible"
    partial_credit: bool = True

    def claims(self, check: dict) -> bool:
        """Does this group take the check (a result line: ``name``, ``targets``)?"""
        first = check["targets"][0] if check.get("targets") else None
        for pattern in self.checks:
            if pattern in CONTRACT_NAMES:
                if pattern == first:
                    return True
            elif fnmatch.fnmatch(check["name"], pattern):
                return True
        return False


@dataclass(frozen=True)
class Rubric:
    name: str
    groups: tuple
    source: str
    warnings: tuple = field(default=())

    @property
    def max_score(self) -> float:
        return sum(g.points for g in self.groups)

    def group_of(self, check: dict):
        return next((g for g in self.groups if g.claims(check)), None)


GROUP_KEYS = {"name", "points", "checks", "visibility", "partial_credit"}


def load(path: str | Path | None = None) -> Rubric:
    """The rubric in the TOML file at ``path`` (default: the homework's); RubricError says what is wrong."""
    path = Path(path) if path is not None else DEFAULT
    data = _read(path)
    raw_groups = data.get("group")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise RubricError(f"{path}: no [[group]] tables; each group needs name, points and checks")
    groups, seen = [], set()
    for i, table in enumerate(raw_groups, 1):
        group = _group(table, f"{path}: group {i} ({table.get('name', '?')})", seen)
        seen.add(group.name)
        groups.append(group)
    warnings = [f"group '{g.name}' has no points: its checks are reported but earn nothing"
                for g in groups if g.points == 0]
    name = (data.get("rubric") or {}).get("name", path.stem)
    return Rubric(name=name, groups=tuple(groups), source=str(path), warnings=tuple(warnings))


def _read(path: Path) -> dict:
    if not path.is_file():
        raise RubricError(f"rubric file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from None


def _group(g: dict, where: str, seen: set) -> Group:
    """One ``[[group]]`` table, checked (``where`` names it in errors; ``seen``: the names before it)."""
    unknown = set(g) - GROUP_KEYS
    if unknown:
        raise RubricError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(g.get("name"), str) or not g["name"]:
        raise RubricError(f"{where}: 'name' must be a non-empty string")
    if g["name"] in seen:
        raise RubricError(f"{where}: duplicate group name")
    points = g.get("points")
    if not isinstance(points, (int, float)) or isinstance(points, bool) or points < 0:
        raise RubricError(f"{where}: 'points' must be a number >= 0, not {points!r}")
    checks = g.get("checks")
    if not isinstance(checks, list) or not checks or not all(isinstance(c, str) for c in checks):
        raise RubricError(f"{where}: 'checks' must be a non-empty list of contract names or test-name patterns")
    visibility = g.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise RubricError(f"{where}: visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    partial = g.get("partial_credit", True)
    if not isinstance(partial, bool):
        raise RubricError(f"{where}: 'partial_credit' must be true or false")
    return Group(g["name"], float(points), tuple(checks), visibility, partial)
