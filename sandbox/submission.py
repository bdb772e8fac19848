"""Import a submission in one of the contract's layouts and collect its contract names.

Layouts (../shared/CONTRACT.md):

1. module layout: a ``.py`` file, or a directory holding ``submission.py``;
2. CS236 layout: ``codebase/utils.py`` + ``codebase/models/vae.py`` (2018-2021 starter), or
   ``src/submission/utils.py`` + ``src/submission/models/vae.py`` (XCS236 starter), or the same
   ``submission/`` package at the top of the directory. The VAE's methods are adapted to the
   contract's ``negative_elbo_bound(x, encoder, decoder)`` form: the object is built without its
   ``__init__`` and the checks' networks and prior are plugged in.

This runs where the student code runs: in the sandbox's worker (``sandbox/worker.py``), or
in the checks' own process with ``--in-process``. It imports only the standard library and torch,
since the worker cannot import the rest of ``verify``.
"""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
import traceback
from pathlib import Path

import torch
from torch import nn

_counter = itertools.count()


class LoadError(Exception):
    """The submission could not be loaded; the message says why, in the student's terms."""


def load_namespace(path: Path, function_names, class_names) -> dict:
    """The contract names ``path`` defines (functions, and classes in ``class_names``)."""
    names = tuple(function_names) + tuple(class_names)
    p = Path(path)
    if not p.exists():
        raise LoadError(f"no file or directory at {p}")
    if p.is_file():
        if p.suffix != ".py":
            raise LoadError(f"{p.name} is not a .py file")
        return _load_module_file(p, names)
    if (p / "submission.py").is_file():
        return _load_module_file(p / "submission.py", names)
    cs236 = _find_cs236_package(p)
    if cs236 is not None:
        return _load_cs236(*cs236, function_names)
    raise LoadError(f"{p.name} holds neither submission.py nor a CS236 layout "
                    "(codebase/utils.py, src/submission/utils.py or submission/utils.py)")


def _student_error(exc: BaseException, where: Path) -> str:
    """One line naming the error and the student's line that raised it (no frames of ours)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(where) in f.filename]
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    if isinstance(exc, SyntaxError):
        at = f" at {Path(exc.filename or '?').name}:{exc.lineno}"
        return f"SyntaxError{at}: {exc.msg}" + _source_line(exc.text)
    return f"{type(exc).__name__}{at} while importing: {exc}" + _source_line(frames[-1].line if frames else None)


def _source_line(text: str | None) -> str:
    """The offending line of the student's source, quoted on a line of its own (nothing if unknown)."""
    text = (text or "").strip()
    return f"\n    {text[:200]}" if text else ""


def _guarded_import(root: Path, do_import):
    sys.path.insert(0, str(root))
    try:
        return do_import()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit at import time included
        raise LoadError(_student_error(exc, root)) from None
    finally:
        try:
            sys.path.remove(str(root))
        except ValueError:
            pass


def _load_module_file(file: Path, names) -> dict:
    name = f"_dgm_submission_{next(_counter)}"

    def do_import():
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    module = _guarded_import(file.parent.resolve(), do_import)
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def _find_cs236_package(p: Path):
    for root, package in ((p, "codebase"), (p / "src", "submission"), (p, "submission")):
        if (root / package / "utils.py").is_file():
            return root.resolve(), package
    return None


def _purge(package: str):
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[mod]


def _load_cs236(root: Path, package: str, function_names) -> dict:
    _purge(package)

    def do_import():
        utils = importlib.import_module(f"{package}.utils")
        vae = None
        if (root / package / "models" / "vae.py").is_file():
            vae = importlib.import_module(f"{package}.models.vae")
        return utils, vae

    try:
        utils, vae = _guarded_import(root, do_import)
    finally:
        _purge(package)  # the next submission may use the same package name
    namespace = {n: getattr(utils, n) for n in function_names if hasattr(utils, n)}
    vae_cls = getattr(vae, "VAE", None) if vae is not None else None
    if isinstance(vae_cls, type):
        for method in ("negative_elbo_bound", "negative_iwae_bound"):
            if hasattr(vae_cls, method):
                namespace[method] = _vae_method(vae_cls, method)
    return namespace


class _Net(nn.Module):
    """Wraps one of our networks so that the submission finds it under every spelling of the starters."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.z_dim = getattr(fn, "z_dim", None)

    def forward(self, *args):
        return self.fn(*args)

    def encode(self, *args):
        return self.fn(*args)

    def decode(self, *args):
        return self.fn(*args)


def _vae_method(vae_cls, method):
    def contract_form(x, encoder, decoder, *args):
        model = vae_cls.__new__(vae_cls)
        nn.Module.__init__(model)
        enc, dec = _Net(encoder), _Net(decoder)
        model.enc = model.encoder = enc
        model.dec = model.decoder = dec
        model.z_dim = enc.z_dim
        model.name = "vae"
        model.z_prior_m = nn.Parameter(torch.zeros(1, dtype=x.dtype, device=x.device), requires_grad=False)
        model.z_prior_v = nn.Parameter(torch.ones(1, dtype=x.dtype, device=x.device), requires_grad=False)
        model.z_prior = (model.z_prior_m, model.z_prior_v)
        return getattr(model, method)(x, *args)

    contract_form.__name__ = f"VAE.{method}"
    return contract_form
