"""Load an implementation under test: the reference, or a submission in one of the contract's layouts.

Layouts (../shared/CONTRACT.md):

1. module layout: a ``.py`` file, or a directory holding ``submission.py``;
2. CS236 layout: ``codebase/utils.py`` + ``codebase/models/vae.py`` (2018-2021 starter), or
   ``src/submission/utils.py`` + ``src/submission/models/vae.py`` (XCS236 starter), or the same
   ``submission/`` package at the top of the directory. The VAE's methods are adapted to the
   contract's ``negative_elbo_bound(x, encoder, decoder)`` form: the object is built without its
   ``__init__`` and our networks and prior are plugged in.

Loading never raises: a missing path, a syntax error or an import error is recorded, and every
check that asks for a name then fails with that message. A missing name fails only its own checks.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

FUNCTION_NAMES = (
    "sample_gaussian",
    "log_normal",
    "log_normal_mixture",
    "kl_normal",
    "log_bernoulli_with_logits",
    "log_mean_exp",
    "negative_elbo_bound",
    "negative_iwae_bound",
    "affine_flow_log_prob",
)
CLASS_NAMES = ("AffineCoupling",)
CONTRACT_NAMES = FUNCTION_NAMES + CLASS_NAMES
ANSWER_NAMES = ("KL_GAUSSIAN", "AFFINE_FLOW_DENSITY", "COUPLING_LOG_DET")  # strings in answers.py (verify/answers)

_counter = itertools.count()


def targets_of(test_name: str) -> list[str]:
    """The contract names (or written answers) a check targets, as its test function's name spells them."""
    found = [n for n in CONTRACT_NAMES + ANSWER_NAMES if n in test_name]
    found = [n for n in found if not any(n != o and n in o for o in found)]  # log_normal in log_normal_mixture
    return sorted(found, key=test_name.index)


def target_of(test_name: str) -> str | None:
    """The first contract name in the check's name (a check is about one name; some compare two)."""
    names = targets_of(test_name)
    return names[0] if names else None


class SubmissionError(AssertionError):
    """A check could not run the implementation under test; pytest reports it as a failed check."""


class Implementation:
    """The implementation under test, reached by contract name: ``impl.kl_normal(...)``.

    Attribute access for a contract name returns the submitted object (functions wrapped so that
    an exception they raise is reported with the contract name), or raises
    :class:`SubmissionError` saying why it is not available.
    """

    def __init__(self, label: str, namespace: dict | None = None, error: str | None = None):
        self.label = label
        self._namespace = namespace or {}
        self.error = error
        self.calls = None  # a list while recording (see record())

    def record(self, on: bool = True):
        """Keep the inputs, RNG state and outputs of the next calls (the grader's diagnosis replays them)."""
        self.calls = [] if on else None

    def has(self, name: str) -> bool:
        return self.error is None and name in self._namespace

    def raw(self, name: str):
        """The submitted object itself, unwrapped (for the loader's tests and diagnosis)."""
        return self._namespace.get(name)

    def require(self, name: str):
        """Raise :class:`SubmissionError` unless ``name`` is submitted and callable."""
        __tracebackhide__ = True
        getattr(self, name)

    def __getattr__(self, name: str):
        __tracebackhide__ = True
        if name.startswith("_") or name not in CONTRACT_NAMES:
            raise AttributeError(name)
        if self.error is not None:
            raise SubmissionError(f"{name}: the submission {self.label} could not be loaded: {self.error}")
        if name not in self._namespace:
            raise SubmissionError(f"{name}: not submitted ({self.label} defines no `{name}`)")
        obj = self._namespace[name]
        if not callable(obj):
            raise SubmissionError(f"{name}: `{name}` in {self.label} is a {type(obj).__name__}, not callable")
        if name in CLASS_NAMES:
            return obj
        return _reporting(name, obj, self)

    def __repr__(self):
        return f"Implementation({self.label!r})"


MAX_RECORDED_CALLS = 8


@dataclass
class RecordedCall:
    """One call of a contract function: its inputs (tensors cloned), the torch RNG state before it, its output."""

    name: str
    args: tuple
    kwargs: dict
    rng_state: torch.Tensor
    output: object


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        snap = value.detach().clone()
        snap.requires_grad_(value.requires_grad)
        return snap
    if isinstance(value, (tuple, list)):
        return type(value)(_snapshot(v) for v in value)
    return value


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)}:{str(value.dtype).replace('torch.', '')}"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def _reporting(name, fn, impl):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        __tracebackhide__ = True
        calls = impl.calls
        record = calls is not None and len(calls) < MAX_RECORDED_CALLS
        state = torch.random.get_rng_state() if record else None
        try:
            out = fn(*args, **kwargs)
            if record:
                calls.append(RecordedCall(name, _snapshot(args), dict(kwargs), state, _snapshot(out)))
            return out
        except SubmissionError:
            raise
        except Exception as exc:  # the submission's own error becomes a failed check
            shown = ", ".join(_describe(a) for a in args)
            raise SubmissionError(f"{name}({shown}) raised {type(exc).__name__}: {exc}") from exc

    return call


def load(path: str | Path | None) -> Implementation:
    """The implementation at ``path`` (``None``: the reference in ``impls``)."""
    if path is None or str(path) == "reference":
        import impls
        import impls.flows

        found = {n: getattr(impls, n, None) or getattr(impls.flows, n, None) for n in CONTRACT_NAMES}
        reference = {n: obj for n, obj in found.items() if obj is not None}
        return Implementation("the reference (impls)", reference)
    p = Path(path).expanduser()
    label = str(p)
    if not p.exists():
        return Implementation(label, error=f"no file or directory at {p.resolve()}")
    try:
        if p.is_file():
            if p.suffix != ".py":
                return Implementation(label, error=f"{p.name} is not a .py file")
            return Implementation(label, _load_module_file(p))
        if (p / "submission.py").is_file():
            return Implementation(label, _load_module_file(p / "submission.py"))
        cs236 = _find_cs236_package(p)
        if cs236 is not None:
            return Implementation(label, _load_cs236(*cs236))
        return Implementation(
            label,
            error=(
                f"{p} holds neither submission.py nor a CS236 layout "
                "(codebase/utils.py, src/submission/utils.py or submission/utils.py)"
            ),
        )
    except SubmissionError as exc:
        return Implementation(label, error=str(exc))


def _student_error(exc: BaseException, where: Path) -> str:
    """One line naming the error and the student's line that raised it (no frames of ours)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(where) in f.filename]
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    if isinstance(exc, SyntaxError):
        at = f" at {Path(exc.filename or '?').name}:{exc.lineno}"
        return f"SyntaxError{at}: {exc.msg}"
    return f"{type(exc).__name__}{at} while importing: {exc}"


def _guarded_import(root: Path, do_import):
    sys.path.insert(0, str(root))
    try:
        return do_import()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit at import time included
        raise SubmissionError(_student_error(exc, root)) from None
    finally:
        try:
            sys.path.remove(str(root))
        except ValueError:
            pass


def _load_module_file(file: Path) -> dict:
    name = f"_dgm_submission_{next(_counter)}"

    def do_import():
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    module = _guarded_import(file.parent.resolve(), do_import)
    return {n: getattr(module, n) for n in CONTRACT_NAMES if hasattr(module, n)}


def _find_cs236_package(p: Path):
    for root, package in ((p, "codebase"), (p / "src", "submission"), (p, "submission")):
        if (root / package / "utils.py").is_file():
            return root.resolve(), package
    return None


def _purge(package: str):
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[mod]


def _load_cs236(root: Path, package: str) -> dict:
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
    namespace = {n: getattr(utils, n) for n in FUNCTION_NAMES if hasattr(utils, n)}
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
