"""The layout's rules, checked on the source: imports run one way, no cycle, short functions, and
every check says which contract name it grades.

The import graph is read from the source (``ast``), lazy imports inside functions included, so a
cycle cannot hide behind an import placed in a function body.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from collections import defaultdict
from pathlib import Path

import pytest

from verify.contract import ANSWER_NAMES, CONTRACT_NAMES, MARKER

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("impls", "derivations", "verify", "sandbox", "grader", "training", "benchmarks")
# What each package may import of the others. Entry points (``__main__`` modules) are the top of
# the graph: they may import any package, and nothing may import them.
ALLOWED = {
    "impls": set(),                      # the answer key: formulas only
    "derivations": set(),                # SymPy ground truth
    "sandbox": set(),                    # runs untrusted code; knows nothing of the checks
    "verify": {"derivations", "sandbox", "impls"},  # impls: only as the default implementation under test
    "grader": {"verify", "sandbox", "derivations", "impls"},  # impls: the catalogue's bugs are variants of it
    "training": {"impls"},
    "benchmarks": {"impls", "training", "verify", "sandbox", "grader"},
}
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest project module that ``name`` (a module or a name in one) refers to."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from pkg import mod` imports the module pkg.mod; `from pkg import name`, pkg itself
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        targets |= {t for t in map(_resolve, names) if t is not None and t != module}
    return targets


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _is_entry_point(module: str) -> bool:
    return module.rpartition(".")[2] == "__main__"


def test_packages_import_only_what_the_layering_allows():
    wrong = []
    for module, targets in GRAPH.items():
        top = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if _is_entry_point(target):
                wrong.append(f"{module} imports the entry point {target}")
            elif other != top and not _is_entry_point(module) and other not in ALLOWED[top]:
                wrong.append(f"{module} imports {target}: {top} may import only {sorted(ALLOWED[top]) or 'nothing'}")
    assert not wrong, "\n".join(sorted(wrong))


def test_package_graph_has_no_cycle():
    """The allowed dependencies themselves run one way."""
    assert _cycles(ALLOWED) == []


def test_only_the_suites_loader_reaches_the_answer_key():
    """The reference is the default implementation under test; no other check module imports it."""
    users = sorted(m for m, targets in GRAPH.items() if m.startswith("verify") and any(t.startswith("impls") for t in targets))
    assert users == ["verify.loader"]


def test_no_function_is_longer_than_80_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)


CHECK_MODULES = sorted(m for m in MODULES if m.startswith("verify.test_"))


def _grades_marks(obj) -> list:
    """The ``@grades`` marks on a function or module (pytestmark: one mark, or a list)."""
    marks = getattr(obj, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [getattr(m, "mark", m) for m in marks if getattr(m, "name", None) == MARKER]


@pytest.mark.parametrize("module", CHECK_MODULES)
def test_every_check_states_the_name_it_grades(module):
    checks = importlib.import_module(module)
    missing, unknown = [], []
    for name, fn in inspect.getmembers(checks, inspect.isfunction):
        if not name.startswith("test_") or fn.__module__ != module:
            continue
        marks = _grades_marks(fn) or _grades_marks(checks)
        if not marks:
            missing.append(name)
        unknown += [n for m in marks for n in m.args if n not in CONTRACT_NAMES + ANSWER_NAMES]
    assert not missing, f"checks without @grades: {missing}"
    assert not unknown, f"@grades names outside the contract: {unknown}"


def test_every_contract_name_is_graded_by_some_check():
    graded = defaultdict(int)
    for module in CHECK_MODULES:
        checks = importlib.import_module(module)
        for name, fn in inspect.getmembers(checks, inspect.isfunction):
            if name.startswith("test_"):
                for m in _grades_marks(fn) or _grades_marks(checks):
                    graded[m.args[0]] += 1
    assert set(CONTRACT_NAMES + ANSWER_NAMES) <= set(graded)


def test_the_answer_key_provides_every_contract_name():
    """The loader finds the reference's names in ``impls`` and ``impls.flows`` (no list kept there)."""
    import impls
    import impls.flows

    assert all(hasattr(impls, n) or hasattr(impls.flows, n) for n in CONTRACT_NAMES)
