"""Mutation testing of the answer key: mutate the contract's formulas in impls/ and run their checks.

    nice python tools/mutate.py                      # every mutant; a table of survivors at the end
    nice python tools/mutate.py --only log_normal    # the mutants of one function (a qualified name)
    nice python tools/mutate.py --list               # the mutants, without running anything
    nice python tools/mutate.py --json out.json      # the outcome of every mutant as JSON

Each mutant changes one AST node of one function on the contract's call path (docs/mutation.md lists
the operators): an arithmetic operator swapped (+/-, */÷, ** -> *), a sign dropped, a constant
changed, a reduction dropped or swapped (.sum/.mean), a .detach() inserted on an operand, a
comparison or min/max swapped. It runs in this one process, one torch thread: the mutated module's
source is executed into the live ``impls`` modules (and the modules that import from it re-executed
in dependency order), and ``pytest verify/<the files of the names that call it> -x`` runs in process
against the reference (now the mutant). A mutant is killed when a check fails or errors, or when it
runs past --timeout seconds; otherwise it survived. docs/mutation.md explains every survivor.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# dependency order: a module is re-executed after those it imports from
MODULES = ("reductions", "bernoulli", "gaussian", "bounds", "flows", "gmvae", "ssvae")
FILES = {
    "sample_gaussian": "test_sample_gaussian.py", "log_normal": "test_log_normal.py", "kl_normal": "test_kl_normal.py",
    "log_bernoulli_with_logits": "test_log_bernoulli_with_logits.py", "log_mean_exp": "test_log_mean_exp.py",
    "negative_elbo_bound": "test_negative_elbo_bound.py", "negative_iwae_bound": "test_negative_iwae_bound.py",
    "affine_flow_log_prob": "test_affine_flow.py", "AffineCoupling": "test_coupling.py",
    "gmvae_negative_elbo_bound": "test_gmvae_negative_elbo_bound.py",
    "gmvae_negative_iwae_bound": "test_gmvae_negative_iwae_bound.py",
    "ssvae_negative_elbo_bound": "test_ssvae_negative_elbo_bound.py",
}
GMVAE = ("gmvae_negative_elbo_bound", "gmvae_negative_iwae_bound")
SSVAE = ("ssvae_negative_elbo_bound",)
# each mutated function (module.qualname) -> the contract names whose reference calls it
TARGETS = {
    "gaussian.reparameterize": ("sample_gaussian", "negative_elbo_bound", "negative_iwae_bound", *GMVAE, *SSVAE),
    "gaussian.sample_gaussian": ("sample_gaussian", "negative_elbo_bound", "negative_iwae_bound", *GMVAE, *SSVAE),
    "gaussian.log_normal": ("log_normal", "negative_iwae_bound", *GMVAE),
    "gaussian.log_standard_normal": ("negative_iwae_bound", "affine_flow_log_prob"),
    "gaussian.log_normal_mixture": ("log_normal", *GMVAE),
    "gaussian.kl_normal": ("kl_normal", "negative_elbo_bound", "negative_iwae_bound", *SSVAE),
    "bernoulli.log_bernoulli_with_logits": ("log_bernoulli_with_logits", "negative_elbo_bound", "negative_iwae_bound", *GMVAE,
                                             *SSVAE),
    "reductions.log_mean_exp": ("log_mean_exp", "log_normal", *GMVAE),
    "bounds.kl_per_dimension": ("negative_elbo_bound", "negative_iwae_bound", *SSVAE),
    "bounds.elbo_terms": ("negative_elbo_bound",),
    "bounds.negative_elbo_bound": ("negative_elbo_bound",),
    "bounds.iwae_log_weights": ("negative_iwae_bound", "gmvae_negative_iwae_bound"),
    "bounds.iwae_sums": ("negative_iwae_bound", "gmvae_negative_iwae_bound"),
    "bounds.negative_iwae_bound": ("negative_iwae_bound",),
    "flows.affine_flow_log_prob": ("affine_flow_log_prob",),
    "flows.AffineCoupling._mask": ("AffineCoupling",),
    "flows.AffineCoupling.scale_shift": ("AffineCoupling",),
    "flows.AffineCoupling.log_det": ("AffineCoupling",),
    "flows.AffineCoupling.forward": ("AffineCoupling",),
    "flows.AffineCoupling.inverse": ("AffineCoupling",),
    "gmvae.gmvae_negative_elbo_bound": ("gmvae_negative_elbo_bound",),
    "gmvae._log_mixture_prior": ("gmvae_negative_iwae_bound",),
    "gmvae.gmvae_negative_iwae_bound": ("gmvae_negative_iwae_bound",),
    "ssvae.kl_categorical_uniform": SSVAE,
    "ssvae.ssvae_negative_elbo_bound": SSVAE,
}
SWAP_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
              ast.FloorDiv: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
SWAP_METHOD = {"sum": "mean", "mean": "sum", "min": "max", "max": "min", "logsumexp": "sum", "exp": "log",
               "log": "exp", "sqrt": "abs", "expand": "repeat"}
SWAP_NAME = {"min": "max", "max": "min"}


@dataclass
class Mutant:
    ident: int
    function: str  # module.qualname
    line: int
    operator: str
    before: str
    after: str
    outcome: str = ""  # killed | survived | timeout
    by: str = ""  # the first check that failed
    seconds: float = 0.0


# ------------------------------------------------------------------------------------ mutants
def _functions(tree: ast.Module, module: str):
    """(qualified name, node) of the functions of ``module`` that TARGETS lists."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and f"{module}.{node.name}" in TARGETS:
            yield f"{module}.{node.name}", node
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                name = f"{module}.{node.name}.{item.name}" if isinstance(item, ast.FunctionDef) else ""
                if name in TARGETS:
                    yield name, item


def _is_docstring(node, parents) -> bool:
    parent = parents.get(node)
    return isinstance(parent, ast.Expr) and isinstance(node, ast.Constant) and isinstance(node.value, str)


def _edits(node):
    """(operator, replacement node) for each mutation of this one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
        yield f"{type(node.op).__name__}->{SWAP_BINOP[type(node.op)].__name__}", ast.BinOp(
            node.left, SWAP_BINOP[type(node.op)](), node.right)
        for side in ("left", "right"):
            operand = getattr(node, side)
            if isinstance(operand, (ast.Name, ast.Call, ast.Attribute, ast.BinOp, ast.Subscript)):
                detached = ast.Call(ast.Attribute(operand, "detach", ast.Load()), [], [])
                yield f"detach {side} operand", ast.BinOp(*(
                    (detached, node.op, node.right) if side == "left" else (node.left, node.op, detached)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "drop unary minus", node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        value = node.value
        yield "constant", ast.Constant(value + 1 if value in (0, 1) or isinstance(value, int) else value * 2)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAP_CMP:
        yield "comparison", ast.Compare(node.left, [SWAP_CMP[type(node.ops[0])]()], node.comparators)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        attr = node.func.attr
        if attr in SWAP_METHOD:
            yield f".{attr}->.{SWAP_METHOD[attr]}", ast.Call(
                ast.Attribute(node.func.value, SWAP_METHOD[attr], ast.Load()), node.args, node.keywords)
        if attr in ("sum", "mean") and not isinstance(node.func.value, ast.Name) or attr == "sum":
            yield f"drop .{attr}", node.func.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SWAP_NAME:
        yield f"{node.func.id}->{SWAP_NAME[node.func.id]}", ast.Call(
            ast.Name(SWAP_NAME[node.func.id], ast.Load()), node.args, node.keywords)


def mutants_of(module: str, source: str):
    """(Mutant, mutated source) for every mutation of every targeted function of ``module``."""
    tree = ast.parse(source)
    found = []
    for qualname, fn in _functions(tree, module):
        parents = {child: parent for parent in ast.walk(fn) for child in ast.iter_child_nodes(parent)}
        nodes = [n for stmt in fn.body for n in ast.walk(stmt)]
        nodes = [n for n in nodes if not _is_docstring(n, parents)]
        for node in nodes:
            for operator, replacement in _edits(node):
                mutated = _replace(tree, node, replacement)
                if mutated is None:
                    continue
                found.append((Mutant(0, qualname, node.lineno, operator, ast.unparse(node),
                                     ast.unparse(replacement)), mutated))
    return found


def _replace(tree, target, replacement) -> str | None:
    """The source of ``tree`` with ``target`` replaced (None when the result does not compile); ``tree``
    is left as it was."""
    _swap_in_place(tree, target, replacement)
    try:
        text = ast.unparse(tree)
        compile(text, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    finally:
        _swap_in_place(tree, replacement, target)
    return text


def _swap_in_place(tree, old, new):
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return tree
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return tree
    return tree


# ------------------------------------------------------------------------------------ running
class Timeout(Exception):
    pass


def _install(sources: dict):
    """Execute each module's source (mutated or not) into the live ``impls`` modules, in dependency
    order, then refresh the names ``impls`` re-exports."""
    import impls

    for name in MODULES:
        module = sys.modules[f"impls.{name}"]
        exec(compile(sources[name], str(REPO / "impls" / f"{name}.py"), "exec"), module.__dict__)
    for name in ("log_bernoulli_with_logits", "negative_elbo_bound", "negative_iwae_bound", "kl_normal", "log_normal",
                 "log_normal_mixture", "sample_gaussian", "log_mean_exp", *GMVAE, *SSVAE):
        for module in MODULES:
            if hasattr(sys.modules[f"impls.{module}"], name):
                setattr(impls, name, getattr(sys.modules[f"impls.{module}"], name))
                break


class _FirstFailure:
    def __init__(self):
        self.failed = ""

    def pytest_runtest_logreport(self, report):
        if report.failed and not self.failed:
            self.failed = report.nodeid.split("::")[-1]

    def pytest_collectreport(self, report):
        if report.failed and not self.failed:
            self.failed = f"collection of {report.nodeid}"


def _run_checks(files, timeout: float) -> tuple[str, str]:
    import pytest

    plugin = _FirstFailure()
    args = [str(REPO / "verify" / f) for f in files] + [
        "-x", "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "--no-header", "-o", "addopts=",
        "-W", "ignore"]
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = pytest.main(args, plugins=[plugin])
    except Timeout:
        return "timeout", "ran past the time limit"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if code == 0:
        return "survived", ""
    return "killed", plugin.failed or f"pytest exit code {int(code)}"


def _alarm(signum, frame):
    raise Timeout


def collect(only: str | None = None):
    sources = {m: (REPO / "impls" / f"{m}.py").read_text(encoding="utf-8") for m in MODULES}
    found = []
    for module in MODULES:
        for mutant, text in mutants_of(module, sources[module]):
            if only is None or mutant.function.endswith(only):
                found.append((mutant, module, text))
    for i, (mutant, _, _) in enumerate(found, 1):
        mutant.ident = i
    return sources, found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="mutate only the functions whose qualified name ends with this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a mutant's checks may take")
    parser.add_argument("--json", help="write every mutant's outcome to this file")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    sources, found = collect(args.only)
    if args.list:
        for mutant, _, _ in found:
            print(f"{mutant.ident:4d} {mutant.function}:{mutant.line} {mutant.operator}: {mutant.before} -> {mutant.after}")
        return 0
    import impls  # noqa: F401
    import impls.flows  # noqa: F401

    start = time.monotonic()
    for mutant, module, text in found:
        files = sorted({FILES[name] for name in TARGETS[mutant.function]})
        _install({**sources, module: text})
        t0 = time.monotonic()
        try:
            mutant.outcome, mutant.by = _run_checks(files, args.timeout)
        finally:
            _install(sources)
        mutant.seconds = round(time.monotonic() - t0, 2)
        print(f"{mutant.ident:4d}/{len(found)} {mutant.outcome:8s} {mutant.function}:{mutant.line} {mutant.operator}: "
              f"{mutant.before} -> {mutant.after}  [{mutant.by}] {mutant.seconds}s", flush=True)
    survivors = [m for m, _, _ in found if m.outcome == "survived"]
    print(f"\n{len(found)} mutants, {len(found) - len(survivors)} killed, {len(survivors)} survived "
          f"({time.monotonic() - start:.0f} s)")
    for m in survivors:
        print(f"SURVIVED {m.ident} {m.function}:{m.line} {m.operator}: {m.before} -> {m.after}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(m) for m, _, _ in found], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
