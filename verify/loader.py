"""The implementation under test, as the checks see it: the reference, or a submission.

A submission (any layout of ../shared/CONTRACT.md; see ``sandbox/submission.py``) runs in a
sandboxed worker process and is reached through stand-ins (``sandbox/remote.py``); with
``in_process=True`` it is imported here instead (trusted code only). Either way the checks get an
:class:`Implementation` and ask it for contract names.

Loading never raises: a missing path, a syntax error or an import error is recorded, and every
check that asks for a name then fails with that message. A missing name fails only its own checks.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import SubmissionError
from verify.contract import CLASS_NAMES, CONTRACT_NAMES, FUNCTION_NAMES
from verify.lazy import OnFirstUse

# torch on first use: the suite's conftest launches the worker (:func:`launch`) before this process
# imports torch, so that both imports run at once
torch = OnFirstUse("torch")


class Implementation:
    """The implementation under test, reached by contract name: ``impl.kl_normal(...)``.

    Attribute access for a contract name returns the submitted object (functions wrapped so that
    an exception they raise is reported with the contract name), or raises
    :class:`SubmissionError` saying why it is not available.
    """

    def __init__(self, label: str, namespace: dict | None = None, error: str | None = None, sandbox=None,
                 notes: list | None = None):
        self.label = label
        self.notes = list(notes or [])  # the load report: which form was graded and why, stand-ins given
        self._namespace = namespace or {}
        self.error = error
        self.sandbox = sandbox  # the worker behind the names (None: loaded in this process)
        self.calls = None  # a list while recording (see record())

    def close(self):
        """Stop the sandbox's worker, if there is one."""
        if self.sandbox is not None:
            self.sandbox.stop()

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
            kind = getattr(obj, "type_name", type(obj).__name__)
            raise SubmissionError(f"{name}: `{name}` in {self.label} is a {kind}, not callable")
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


def _tensor_leaves(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensor_leaves(v)]
    return []


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and values, NaN where NaN was."""
    a = a.detach()
    return a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else \
        a.shape == b.shape and torch.equal(a, b)


def _require_unchanged(name, before, after):
    """A contract function leaves its inputs as they were (the sandbox's worker makes the same comparison)."""
    for i, (b, a) in enumerate(zip(before, after), 1):
        if not _same(a, b):
            raise SubmissionError(f"{name} modified its input tensor {i} (shape {tuple(b.shape)}) in place: a contract "
                                  "function must leave its inputs unchanged (compute on a copy: x = x - c, not x -= c "
                                  "or x.sub_(c))")


def _reporting(name, fn, impl):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        __tracebackhide__ = True
        calls = impl.calls
        record = calls is not None and len(calls) < MAX_RECORDED_CALLS
        state = torch.random.get_rng_state() if record else None
        try:
            before = [t.detach().clone() for t in _tensor_leaves((args, kwargs))]
            out = fn(*args, **kwargs)
            _require_unchanged(name, before, _tensor_leaves((args, kwargs)))
            if record:
                calls.append(RecordedCall(name, _snapshot(args), dict(kwargs), state, _snapshot(out)))
            return out
        except SubmissionError:
            raise
        except Exception as exc:  # the submission's own error becomes a failed check
            shown = ", ".join(_describe(a) for a in args)
            kind = getattr(exc, "type_name", type(exc).__name__)  # the worker's exception, by name
            raise SubmissionError(f"{name}({shown}) raised {kind}: {exc}") from exc

    return call


def load(path: str | Path | None, in_process: bool = False, limits=None, sandbox=None) -> Implementation:
    """The implementation at ``path`` (``None``: the reference in ``impls``, always in process).

    A submission runs in a sandboxed worker process (:mod:`sandbox`) unless ``in_process``,
    which imports it here: only for trusted code (it is faster, and the catalogue's tests use it).
    ``sandbox``: one already launched (:func:`launch`), whose worker started while pytest collected.
    """
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
    if in_process:
        from sandbox.submission import LoadError, load_namespace

        notes = []
        try:
            return Implementation(label, load_namespace(p, FUNCTION_NAMES, CLASS_NAMES, notes), notes=notes)
        except LoadError as exc:
            return Implementation(label, error=str(exc), notes=notes)
    from sandbox.process import Sandbox
    from sandbox.remote import RemoteClass, RemoteFunction, Uncallable

    sandbox = (sandbox or Sandbox(p, FUNCTION_NAMES, CLASS_NAMES, limits)).start()
    if sandbox.load_error:
        return Implementation(label, error=sandbox.load_error, sandbox=sandbox, notes=sandbox.notes)
    namespace = {}
    for name, type_name in sandbox.names.items():
        if name not in sandbox.callable:
            namespace[name] = Uncallable(type_name)
        elif name in CLASS_NAMES:
            namespace[name] = RemoteClass(sandbox, name)
        else:
            namespace[name] = RemoteFunction(sandbox, name)
    return Implementation(label, namespace, sandbox=sandbox, notes=sandbox.notes)


def launch(path: str | Path, limits=None):
    """Start the sandbox's worker for ``path`` now; pass it to :func:`load` later."""
    from sandbox.process import Sandbox

    return Sandbox(Path(path).expanduser(), FUNCTION_NAMES, CLASS_NAMES, limits).launch()
