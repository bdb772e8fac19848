"""Stand-ins that let a real student checkout import where only the grading dependencies exist.

Installed by ``submission.py`` around the import of a submission (in the sandbox's worker, or in
process with ``--in-process``); they give student code nothing it could not already do:

* :class:`OptionalPackages`: a meta-path finder placed *last*, so it is asked only for modules
  nothing installed provides. For a fixed allow-list of packages the checks never use
  (``torchvision``, ``tqdm``, ``matplotlib``, ...) it returns an inert module whose attributes are
  inert classes: ``from torchvision import datasets, transforms`` and ``from tqdm import tqdm`` at
  module level work, and calling or subclassing what they name does nothing. What it stood in for
  is recorded for the load report.
* :class:`StarterPackage`: the submission's package under the names the starter's modules import
  it by (``codebase``, ``submission``), wherever its folder is and whatever it is called, with or
  without ``__init__.py``; a flat folder is its own ``models`` package too.
* :class:`StarterPieces`: placed last, the starter modules a student is not allowed to hand in:
  ``<package>.models.nns`` (and ``.nns.v1``, ``.v2``, ...) with ``Encoder``, ``Decoder`` and
  ``Classifier`` classes. The checks plug in their own networks, so these are never called.

Standard library and torch only; loaded by file path (see ``submission.py``).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import torch

OPTIONAL_PACKAGES = ("torchvision", "tqdm", "matplotlib", "seaborn", "PIL", "pandas", "sklearn", "tensorboardX",
                     "tensorboard", "torch.utils.tensorboard", "wandb", "IPython", "ipywidgets", "imageio", "cv2",
                     "skimage", "h5py", "google.colab", "torchsummary", "torchinfo")
PACKAGE_NAMES = ("codebase", "submission")
NETWORKS = ("Encoder", "Decoder", "Classifier")


class _InertMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return inert_class(name)


class Inert(metaclass=_InertMeta):
    """Anything from a package the grader does not have: callable, subclassable, iterable (over the
    iterable it wraps, as ``tqdm(xs)`` does; a string or nothing: empty), a context manager; does nothing."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_wrapped"] = args[0] if args and not isinstance(args[0], (str, bytes)) else ()

    def __call__(self, *args, **kwargs):
        return Inert(*args)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return inert_class(name)

    def __iter__(self):
        try:
            return iter(self.__dict__.get("_wrapped", ()))
        except TypeError:
            return iter(())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def inert_class(name: str) -> type:
    return _InertMeta(str(name), (Inert,), {"__module__": "grader-stand-in"})


class InertModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = inert_class(name)
        setattr(self, name, value)
        return value


class _Make(importlib.abc.Loader):
    """A loader whose module is made by a function (nothing is read or run)."""

    def __init__(self, make):
        self.make = make

    def create_module(self, spec):
        return self.make(spec.name)

    def exec_module(self, module):
        module.__dict__.setdefault("__version__", "0 (a stand-in of the grader)")


def _package_spec(name: str, make) -> importlib.machinery.ModuleSpec:
    return importlib.machinery.ModuleSpec(name, _Make(make), is_package=True)


class OptionalPackages(importlib.abc.MetaPathFinder):
    """Inert modules for the allow-listed packages that are not installed (see the module's docstring)."""

    def __init__(self):
        self.provided: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        prefix = next((p for p in OPTIONAL_PACKAGES if fullname == p or fullname.startswith(p + ".")), None)
        if prefix is None:
            return None
        parent = fullname.rpartition(".")[0]
        if fullname != prefix and not isinstance(sys.modules.get(parent), InertModule):
            return None  # a missing module of an installed package: its own error stands
        if fullname == prefix:
            self.provided.append(prefix)
        return _package_spec(fullname, InertModule)

    def note(self) -> str | None:
        if not self.provided:
            return None
        names = ", ".join(dict.fromkeys(self.provided))
        return (f"the submission imports {names}, not installed here (the checks never use them): "
                "it was given inert stand-ins")


def _network(kind: str) -> type:
    def forward(self, *args, **kwargs):
        raise RuntimeError(f"{kind} is the grader's stand-in for the starter's nns module, which is not part "
                           "of a hand-in: the checks plug in their own networks")

    def init(self, *args, **kwargs):
        torch.nn.Module.__init__(self)

    methods = {"__init__": init, "forward": forward, "encode": forward, "decode": forward, "classify": forward}
    return type(kind, (torch.nn.Module,), methods)


class NetworksModule(types.ModuleType):
    """The starter's ``nns`` package: ``Encoder``, ``Decoder``, ``Classifier``, and any ``nns.vN`` like it."""

    def __init__(self, name):
        super().__init__(name)
        for kind in NETWORKS:
            setattr(self, kind, _network(kind))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = NetworksModule(f"{self.__name__}.{name}")
        setattr(self, name, sub)
        return sub


class StarterPieces(importlib.abc.MetaPathFinder):
    """``<package>[.models].nns[.*]``, when the submission has none (placed last)."""

    def __init__(self, names=PACKAGE_NAMES):
        self.names = tuple(names)
        self.provided: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if parts[0] not in self.names or "nns" not in parts[1:3]:
            return None
        self.provided.append(fullname)
        return _package_spec(fullname, NetworksModule)

    def note(self) -> str | None:
        if not self.provided:
            return None
        return (f"{self.provided[0]} is not part of the submission (a hand-in leaves out the starter's networks): "
                "the grader supplied a stand-in; the checks plug in their own networks")


class StarterPackage(importlib.abc.MetaPathFinder):
    """The submission's package folder, importable as ``codebase`` and ``submission`` (placed first)."""

    def __init__(self, folder: Path, names=PACKAGE_NAMES):
        self.folder = Path(folder)
        self.names = tuple(names)
        self.flat = not (self.folder / "models").is_dir()

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        if top not in self.names or rest not in ("", "models"):
            return None
        if rest == "models" and not self.flat:
            return None  # the real models/ folder, found through the package's path
        init = self.folder / "__init__.py"
        if rest == "" and init.is_file():
            return importlib.util.spec_from_file_location(fullname, init,
                                                          submodule_search_locations=[str(self.folder)])
        spec = _package_spec(fullname, types.ModuleType)
        spec.submodule_search_locations = [str(self.folder)]
        return spec

    def module_name(self, file: Path) -> str | None:
        """The dotted name a module file of the package is imported by (``codebase.models.vae``)."""
        rel = Path(file).relative_to(self.folder).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            return None
        if self.flat and parts[-1] in ("vae", "gmvae", "ssvae", "fsvae") and len(parts) == 1:
            parts = ["models", *parts]
        if not all(p.isidentifier() for p in parts):
            return None
        return ".".join([self.names[0], *parts])
