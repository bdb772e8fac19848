"""The rubric: groups of checks with points, visibility and partial credit, read from TOML."""
from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from verify import SUITE
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
RUBRIC_KEYS = {"name", "total", "allow_partial_total"}
DEFAULT_TOTAL = 100  # what the groups' points must add up to unless [rubric] states another total


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
    head = _head(data.get("rubric", {}), path)
    _check_patterns(groups, path)
    _check_total(groups, head, path)
    name = head.get("name", path.stem)
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


def _head(head, path: Path) -> dict:
    """The ``[rubric]`` table, checked: ``name``, ``total`` (what the points add up to, default 100),
    ``allow_partial_total`` (true: the points may add up to less, or more, than the total)."""
    if not isinstance(head, dict):
        raise RubricError(f"{path}: 'rubric' must be a table ([rubric])")
    unknown = set(head) - RUBRIC_KEYS
    if unknown:
        raise RubricError(f"{path}: [rubric]: unknown keys {sorted(unknown)} (known: {', '.join(sorted(RUBRIC_KEYS))})")
    total = head.get("total", DEFAULT_TOTAL)
    if not isinstance(total, (int, float)) or isinstance(total, bool) or total <= 0:
        raise RubricError(f"{path}: [rubric] total must be a number > 0, not {total!r}")
    if not isinstance(head.get("allow_partial_total", False), bool):
        raise RubricError(f"{path}: [rubric] allow_partial_total must be true or false")
    return head


def _check_total(groups: list[Group], head: dict, path: Path) -> None:
    """The groups' points must add up to the stated total (default 100) unless the rubric allows otherwise."""
    total, points = head.get("total", DEFAULT_TOTAL), sum(g.points for g in groups)
    if head.get("allow_partial_total", False) or math.isclose(points, total, abs_tol=1e-9):
        return
    stated = "the total stated in [rubric]" if "total" in head else f"the default total ({DEFAULT_TOTAL})"
    raise RubricError(f"{path}: the groups' points add up to {points:g}, not {stated}: {total:g}. Fix the points, "
                      f"or state the total ([rubric] total = {points:g}), or set [rubric] allow_partial_total = true")


@functools.lru_cache(maxsize=1)
def check_names() -> tuple[str, ...]:
    """The names of the suite's checks (``test_`` removed, before any parametrization), read from
    the source of ``verify/test_*.py`` without importing it."""
    names = []
    for file in sorted(SUITE.glob("test_*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        names += [node.name.removeprefix("test_") for node in ast.walk(tree)
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")]
    return tuple(dict.fromkeys(names))


def _matches_a_check(pattern: str, names: tuple[str, ...]) -> bool:
    """Does ``pattern`` (a glob on check names, which may carry a parametrization ``[...]``) match a check?"""
    base = pattern.split("[", 1)[0]
    return any(fnmatch.fnmatch(n, pattern) or ("[" in pattern and fnmatch.fnmatch(n, base)) for n in names)


def _check_patterns(groups: list[Group], path: Path) -> None:
    """Every entry of ``checks`` must be a contract name or match a check; otherwise an error that
    offers the closest names."""
    names = check_names()
    known = list(CONTRACT_NAMES) + list(names)
    bad = []
    for g in groups:
        for pattern in g.checks:
            if pattern in CONTRACT_NAMES or _matches_a_check(pattern, names):
                continue
            close = difflib.get_close_matches(pattern, known, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            bad.append(f"group '{g.name}': {pattern!r} is no contract name and matches no check{hint}")
    if bad:
        raise RubricError(f"{path}: " + "; ".join(bad))
