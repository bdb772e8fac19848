"""Import a submission in any form students hand in, and collect its contract names.

Which form a path holds is decided by ``forms.py`` (the rule of ``docs/CONTRACT.md``): a module
(``submission.py`` or a lone ``.py``), a notebook (``.ipynb``: its code cells, run cell by cell,
IPython magics and shell lines skipped), a zip (extracted safely into a private folder, then the
rule again), or the starter's package (CS236 ``codebase/``, XCS236 ``src/submission/``, the package
folder itself, or a flat folder of its modules). In a package every module counts: ``utils`` and
``models/vae`` first, then the others (e.g. ``flows.py`` beside a checkout); a module other than
those two that fails to import is a note, not a failure. A ``VAE``, ``GMVAE`` or ``SSVAE`` class's
methods are adapted to the contract's forms (``negative_elbo_bound(x, encoder, decoder)``,
``gmvae_negative_elbo_bound(x, encoder, decoder, prior_m, prior_v)``, ...): the object is built without
its ``__init__`` and the checks' networks and prior are plugged in (``MODEL_METHODS``).

Imports of packages the checks never use, and the starter's pieces a hand-in leaves out, get
stand-ins (``standins.py``); what happened is reported in ``notes``.

This runs where the student code runs: in the sandbox's worker (``sandbox/worker.py``), or
in the checks' own process with ``--in-process``. It imports only the standard library and torch,
since the worker cannot import the rest of ``verify``; its siblings ``forms.py`` and
``standins.py`` are loaded by file path when it is loaded (before the worker confines itself).
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import itertools
import json
import re
import shutil
import sys
import tempfile
import traceback
import types
from pathlib import Path

import torch
from torch import nn

_counter = itertools.count()
CORE_MODULES = ("utils", "models.vae")
NOT_IMPORTED = ("nns", "run_vae", "run_gmvae", "run_ssvae", "run_fsvae", "train", "main", "setup", "conftest")
CONFLICT = re.compile(r"^(<{7}|>{7})( |$)")


def _companion(name: str):
    """A sibling module of this file, loaded by path (the worker has no ``sandbox`` package)."""
    qualified = f"_dgm_sandbox_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


forms = _companion("forms")
standins = _companion("standins")


class LoadError(Exception):
    """The submission could not be loaded; the message says why, in the student's terms."""


def load_namespace(path: Path, function_names, class_names, notes: list | None = None,
                   keep_stand_ins: bool = False) -> dict:
    """The contract names ``path`` defines (functions, and classes in ``class_names``).

    ``notes`` (a list) receives what the load report should say: the form graded and why, the
    stand-ins given. ``keep_stand_ins``: leave the optional packages' stand-ins installed afterwards
    (the worker, where the submission may import them lazily); in process they are removed.
    """
    notes = [] if notes is None else notes
    names = (tuple(function_names), tuple(class_names))
    try:
        form = _resolve(Path(path), notes)
    except forms.NotASubmission as exc:
        raise LoadError(str(exc)) from None
    notes += form.notes
    optional = standins.OptionalPackages()
    sys.meta_path.append(optional)
    try:
        if form.kind == "package":
            return _load_package(form, names, notes)
        module = _load_notebook(form.path, notes) if form.kind == "notebook" else _load_module_file(form.path)
        namespace = {}
        _collect(module, names, namespace)
        return namespace
    finally:
        if optional.note():
            notes.append(optional.note())
        if not keep_stand_ins:
            sys.meta_path.remove(optional)
            _purge(*dict.fromkeys(p.split(".")[0] for p in optional.provided))


def _resolve(p: Path, notes: list, depth: int = 0):
    """The form to import at ``p``; a zip is extracted (twice nested at most) and looked into."""
    form = forms.find(p)
    if form.kind != "zip":
        return form
    if depth >= 2:
        raise forms.NotASubmission(f"{form.where}: a zip inside a zip inside a zip is not looked into")
    dest = Path(tempfile.mkdtemp(prefix="dgm-zip-"))
    atexit.register(shutil.rmtree, dest, True)
    notes += forms.extract_zip(form.path, dest)
    inner = _resolve(dest, notes, depth + 1)
    notes.append(f"graded {form.where} -> {inner.where} ({inner.what})")
    return inner


def _student_error(exc: BaseException, where: Path) -> str:
    """One line naming the error and the student's line that raised it (no frames of ours)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(where) in f.filename]
    at = f" at {_shown(frames[-1].filename, where)}:{frames[-1].lineno}" if frames else ""
    if isinstance(exc, SyntaxError):
        conflict = _conflict_marker(exc.filename)
        if conflict is not None:
            return f"unresolved merge-conflict markers at {_shown(exc.filename, where)}:{conflict}: resolve the " \
                   "conflict (keep one side, delete the <<<<<<<, ======= and >>>>>>> lines) and hand in again"
        return f"SyntaxError at {_shown(exc.filename or '?', where)}:{exc.lineno}: {exc.msg}" + _source_line(exc.text)
    return f"{type(exc).__name__}{at} while importing: {exc}" + _source_line(frames[-1].line if frames else None)


def _source_line(text: str | None) -> str:
    """The offending line of the student's source, quoted on a line of its own (nothing if unknown)."""
    text = (text or "").strip()
    return f"\n    {text[:200]}" if text else ""


def _shown(filename: str, root: Path) -> str:
    try:
        return Path(filename).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return Path(filename).name


def _conflict_marker(filename) -> int | None:
    """The line of the first merge-conflict marker in ``filename``, if it has one."""
    try:
        lines = Path(filename).read_text(encoding="utf-8", errors="replace").splitlines()
    except (OSError, TypeError, ValueError):
        return None
    return next((i for i, line in enumerate(lines, 1) if CONFLICT.match(line)), None)


def _guarded_import(root: Path, do_import, paths=()):
    paths = [str(p) for p in (root, *paths)]
    sys.path[:0] = paths
    try:
        return do_import()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit at import time included
        raise LoadError(_student_error(exc, root)) from None
    finally:
        for p in paths:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


def _load_module_file(file: Path):
    name = f"_dgm_submission_{next(_counter)}"

    def do_import():
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return _guarded_import(file.parent.resolve(), do_import)


# ------------------------------------------------------------------------------- notebooks
def notebook_cells(file: Path, notes: list) -> list[str]:
    """The code cells of a notebook as Python sources; IPython magics and shell lines are skipped."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        cells = [c for c in data.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError) as exc:
        raise LoadError(f"{file.name} could not be read as a notebook: {exc}") from None
    sources, skipped = [], 0
    for cell in cells:
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        if text.lstrip().startswith("%%"):
            sources.append("")
            skipped += 1
            continue
        lines = text.splitlines()
        kept = [line[:len(line) - len(line.lstrip())] + "pass  # skipped: IPython" if line.lstrip().startswith(("%", "!"))
                else line for line in lines]
        skipped += sum(a != b for a, b in zip(kept, lines))
        sources.append("\n".join(kept))
    if skipped:
        notes.append(f"{file.name}: {skipped} IPython magic or shell line(s) (%..., %%..., !...) skipped")
    return sources


def _load_notebook(file: Path, notes: list):
    """The notebook's code cells run in order in one module; a cell that raises is skipped with a note."""
    module = types.ModuleType(f"_dgm_submission_{next(_counter)}")
    module.__file__ = str(file)
    sys.modules[module.__name__] = module
    failed = []
    for index, source in enumerate(notebook_cells(file, notes), 1):
        def run(source=source, index=index):
            exec(compile(source, f"{file}#cell{index}", "exec"), module.__dict__)

        try:
            _guarded_import(file.parent.resolve(), run)
        except LoadError as exc:
            failed.append(f"cell {index}: {exc}")
    if failed:
        notes.append(f"{file.name}: cells that raised were skipped (names they define are not graded): "
                     + "; ".join(failed[:5]))
    return module


# ------------------------------------------------------------------------------- packages
def _purge(*packages: str):
    for mod in [m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in packages)]:
        del sys.modules[mod]


def _package_names(folder: Path) -> tuple:
    """The names the package's modules import it by, the most used first."""
    text = " ".join(f.read_text(encoding="utf-8", errors="replace")[:20000] for f in sorted(folder.rglob("*.py"))[:50])
    used = {n: len(re.findall(rf"\b(?:from|import)\s+{n}\b", text)) for n in standins.PACKAGE_NAMES}
    return tuple(sorted(standins.PACKAGE_NAMES, key=lambda n: -used[n]))


def _package_modules(folder: Path, finder) -> list[str]:
    """The package's module names: ``utils`` and ``models.vae`` first, then the others (sorted)."""
    found = []
    for file in sorted(folder.rglob("*.py"))[:200]:
        rel = file.relative_to(folder)
        if any(forms.skipped(Path(part)) for part in rel.parts) or set(rel.with_suffix("").parts) & set(NOT_IMPORTED):
            continue
        name = finder.module_name(file)
        if name is not None:
            found.append(name)
    core = [f"{finder.names[0]}.{m}" for m in CORE_MODULES]
    return [n for n in core if n in found] + [n for n in found if n not in core]


def _load_package(form, names, notes) -> dict:
    folder = form.path.resolve()
    finder = standins.StarterPackage(folder, _package_names(folder))
    pieces = standins.StarterPieces(finder.names)
    _purge(*finder.names)
    sys.meta_path.insert(0, finder)
    sys.meta_path.append(pieces)
    namespace, origins = {}, {}
    shown = folder.parent if form.tier == 1 else folder  # error messages name codebase/utils.py, not utils.py
    try:
        modules = _package_modules(folder, finder)
        if not modules:
            raise LoadError(f"{form.where} holds no Python module")
        for name in modules:
            try:
                module = _guarded_import(shown, lambda name=name: importlib.import_module(name), [folder, folder.parent])
            except LoadError as exc:
                if name.partition(".")[2] in CORE_MODULES:
                    raise
                notes.append(f"{name} could not be imported (names defined there are not graded): {exc}")
                continue
            for found in _collect(module, names, namespace):
                origins[found] = name
    finally:
        sys.meta_path.remove(finder)
        sys.meta_path.remove(pieces)
        _purge(*finder.names)  # the next submission may use the same package name
        if pieces.note():
            notes.append(pieces.note())
    extra = sorted(n for n, m in origins.items() if m.partition(".")[2] not in CORE_MODULES)
    if extra:
        notes.append("from other modules of the package: " + ", ".join(f"{n} ({origins[n]})" for n in extra))
    return namespace


def _collect(module, names, namespace: dict) -> list[str]:
    """Add the contract names ``module`` defines to ``namespace`` (the first found wins); returns them.
    A ``VAE``, ``GMVAE`` or ``SSVAE`` class supplies the bounds it has as methods (``MODEL_METHODS``)."""
    function_names, class_names = names
    added = [n for n in function_names + class_names if n not in namespace and hasattr(module, n)]
    for n in added:
        namespace[n] = getattr(module, n)
    for class_name, (build, methods) in MODEL_METHODS.items():
        model_cls = getattr(module, class_name, None)
        if not isinstance(model_cls, type):
            continue
        for method, name in methods:
            if name in function_names and name not in namespace and hasattr(model_cls, method):
                namespace[name] = _model_method(model_cls, method, build)
                added.append(name)
    return added


class _Net(nn.Module):
    """Wraps one of our networks so that the submission finds it under every spelling of the starters."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.z_dim = getattr(fn, "z_dim", None)
        self.y_dim = getattr(fn, "y_dim", None)

    def forward(self, *args):
        return self.fn(*args)

    def encode(self, *args):
        return self.fn(*args)

    def decode(self, *args):
        return self.fn(*args)

    def classify(self, *args):
        return self.fn(*args)


def _bare(model_cls, name, x, encoder, decoder):
    """An instance of the submission's class built without its ``__init__``, with our networks under
    every spelling and the standard normal prior ``z_prior_m``, ``z_prior_v`` (shape (1,)) of the starters."""
    model = model_cls.__new__(model_cls)
    nn.Module.__init__(model)
    enc, dec = _Net(encoder), _Net(decoder)
    model.enc = model.encoder = enc
    model.dec = model.decoder = dec
    model.z_dim = enc.z_dim
    model.name = name
    model.z_prior_m = nn.Parameter(torch.zeros(1, dtype=x.dtype, device=x.device), requires_grad=False)
    model.z_prior_v = nn.Parameter(torch.ones(1, dtype=x.dtype, device=x.device), requires_grad=False)
    model.z_prior = (model.z_prior_m, model.z_prior_v)
    return model


def _vae(model_cls, x, encoder, decoder, *args):
    """``VAE``: the contract's ``(x, encoder, decoder, *rest)``; the method takes ``(x, *rest)``."""
    return _bare(model_cls, "vae", x, encoder, decoder), args


def _inverse_softplus(y):
    """h with softplus(h) = y (y > 0): y + log(1 - exp(-y))."""
    return y + torch.log(-torch.expm1(-y))


def _gmvae(model_cls, x, encoder, decoder, prior_m, prior_v, *args):
    """``GMVAE``: the contract's ``(x, encoder, decoder, prior_m, prior_v, *rest)``. The prior (1, k, D)
    is handed over as the starter's ``z_pre`` (1, 2k, D): ``ut.gaussian_parameters(self.z_pre, dim=1)``
    (the first k rows as means, softplus of the rest + 1e-8 as variances) gives back ``(prior_m, prior_v)``,
    and gradients flow from ``z_pre`` to them. ``pi`` holds the uniform weights."""
    model = _bare(model_cls, "gmvae", x, encoder, decoder)
    model.k = prior_m.shape[1]
    model.z_dim = prior_m.shape[-1]
    model.z_pre = torch.cat([prior_m, _inverse_softplus(prior_v - 1e-8)], dim=1)
    model.pi = torch.ones(model.k, dtype=x.dtype, device=x.device) / model.k
    return model, args


def _ssvae(model_cls, x, encoder, decoder, classifier, *args):
    """``SSVAE``: the contract's ``(x, encoder, decoder, classifier)``; ``cls`` / ``classifier`` answers
    ``classify(x)`` and ``cls(x)``, ``y_dim`` is the classifier's number of classes."""
    model = _bare(model_cls, "ssvae", x, encoder, decoder)
    model.cls = model.classifier = _Net(classifier)
    model.y_dim = model.cls.y_dim
    model.gen_weight, model.class_weight = 1, 100
    return model, args


# class name: (how its object is built from the contract's arguments, (method, contract name) pairs)
MODEL_METHODS = {
    "VAE": (_vae, (("negative_elbo_bound", "negative_elbo_bound"), ("negative_iwae_bound", "negative_iwae_bound"))),
    "GMVAE": (_gmvae, (("negative_elbo_bound", "gmvae_negative_elbo_bound"),
                       ("negative_iwae_bound", "gmvae_negative_iwae_bound"))),
    "SSVAE": (_ssvae, (("negative_elbo_bound", "ssvae_negative_elbo_bound"),)),
}


def _model_method(model_cls, method, build):
    def contract_form(x, *args):
        model, rest = build(model_cls, x, *args)
        return getattr(model, method)(x, *rest)

    contract_form.__name__ = f"{model_cls.__name__}.{method}"
    return contract_form
