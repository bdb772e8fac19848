"""The trusted side of the sandbox: start the worker, talk to it, and stand in for the submission.

:class:`Sandbox` owns one worker process at a time (``worker.py``). The checks never see it: the
``impl`` fixture's contract names are :class:`RemoteFunction` and :class:`RemoteClass` objects
that send their arguments to the worker and return what comes back, validated (``wire.decode``:
allowed dtypes, shapes that match their bytes, size limits; nothing unpickled). While the worker
runs student code it may ask for the checks' networks (``callback``, ``callback_vjp``): those run
here, on the trusted side.

Gradients: when a check differentiates through a call (the reparameterization check, the
coupling layer's Jacobian), the call is an ``autograd.Function`` whose backward asks the worker
for a vector-Jacobian product. The first product of every call is cross-checked against central
finite differences of two more black-box calls with the same RNG state, so a worker cannot report
gradients its own outputs do not have.

Containment: each check has a wall-clock budget (``Limits.check_seconds``). A worker that overruns
it, dies, or breaks the protocol is killed with its whole process group (and, when it ran under a
uid of its own, every process of that uid); the next check gets a fresh worker. The contract name
whose call did it is *condemned*: its later checks fail at once with the reason, so one hostile
function costs one time limit, not one per check.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from sandbox.errors import SubmissionError
from sandbox import wire

WORKER = Path(__file__).resolve().with_name("worker.py")
GRADER_ROOT = Path(__file__).resolve().parents[1]
UID_BASE = 2_000_000  # the worker's uid is UID_BASE + the trusted process's pid (unique among live graders)
SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/sys", "/dev",
                     "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/filesystems",  # + the worker's own /proc/<pid>
                     "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
                     "/etc/group", "/etc/nsswitch.conf", "/etc/os-release")
WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
LOG_TAIL = 600
_LIVE_WORKERS: set[int] = set()  # pids of the workers of every Sandbox in this process (never swept)


class SandboxError(SubmissionError):
    """A check could not get an answer from the worker (it died, hung, or broke the protocol)."""


class RemoteError(Exception):
    """The student's code raised in the worker; ``type_name`` is its exception's class name."""

    def __init__(self, type_name: str, message: str):
        super().__init__(message)
        self.type_name = type_name


@dataclass
class Limits:
    check_seconds: float = 120.0  # wall clock per check (every call a check makes, together)
    start_seconds: float = 120.0  # start the interpreter, import torch and the submission
    cpu_seconds: int = 1800  # CPU time over the worker's life
    memory_bytes: int = 4 << 30  # address space (importing torch reserves some 0.7 GiB)
    file_bytes: int = 64 << 20  # largest file, the worker's log included
    threads: int = 1  # the checks' inputs are small; more threads spin and steal the trusted side's core
    cuda: bool = False  # the checks run on the GPU: the worker initializes CUDA and has no address-space limit


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_roots() -> tuple[list[str], list[str]]:
    """(directories the worker may read, warnings): the Python installation and system libraries,
    never the grader's own tree."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    user_site = site.getusersitepackages()
    if user_site and os.path.isdir(user_site):
        roots.add(user_site)
    roots |= {p for p in sys.path if p and os.path.isdir(p)}
    roots |= {os.path.dirname(os.path.realpath(sys.executable))}
    warnings = []
    kept = []
    for r in sorted(roots):
        if _inside(r, str(GRADER_ROOT)):
            continue  # the repository itself (pytest puts it on sys.path)
        if _inside(str(GRADER_ROOT), r):
            warnings.append(f"the grader's files ({GRADER_ROOT}) lie inside {r}, which the worker must be able to "
                            "read: install the grader outside the Python installation (editable, or run from source)")
        kept.append(r)
    kept += [p for p in SYSTEM_READ_ROOTS if os.path.exists(p)]
    return kept, warnings


def _set_subreaper():
    """Orphans of the worker become our children (not init's), so the sweep can find them."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
                yield int(entry), int(status["PPid"]), int(status["Uid"].split()[0])
            except (OSError, ValueError, KeyError):
                continue


def sweep(uid: int | None, keep: set[int]) -> int:
    """Kill every process of ``uid`` (when the worker ran as its own user) and every orphan adopted by
    this process; returns how many were killed."""
    me, killed = os.getpid(), 0
    keep = set(keep) | _LIVE_WORKERS
    for _ in range(20):
        found = [pid for pid, ppid, puid in _processes()
                 if pid != me and pid not in keep and ((uid is not None and puid == uid) or ppid == me)]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        for pid in found:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    return killed


class Sandbox:
    """One submission's worker, restarted after a check that killed or hung it."""

    def __init__(self, path, function_names, class_names, limits: Limits | None = None):
        self.path = Path(path).expanduser().resolve()
        self.function_names, self.class_names = tuple(function_names), tuple(class_names)
        self.limits = limits or Limits()
        self.proc = self.sock = self.workdir = None
        self.generation = 0
        self.deadline = None
        self.condemned: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.callable: set[str] = set()
        self.load_error = None
        self.confinement: list[str] = []
        self.restarts = 0
        self._fns: dict[int, object] = {}
        self._fn_ids: dict[int, int] = {}
        self._cb_calls: OrderedDict = OrderedDict()
        self._next = 1
        self.uid = UID_BASE + os.getpid() if os.geteuid() == 0 else None
        _set_subreaper()

    # ----------------------------------------------------------------------- lifecycle
    def launch(self):
        """Start the worker without waiting for it (it imports torch while the caller does other work)."""
        if self.sock is None and self.load_error is None:
            try:
                self._launch()
            except SandboxError as exc:
                self.load_error = str(exc)
        return self

    def start(self):
        """Start a worker (unless :meth:`launch` did) and wait until the submission is imported; a
        failure is recorded in ``load_error``."""
        if self.load_error is not None:
            return self
        try:
            if self.sock is None:
                self._launch()
            ready = self._wait_ready()
        except SandboxError as exc:
            self.load_error = str(exc)
            self.stop()
            return self
        self.names = {n: str(t) for n, t in (ready.get("names") or {}).items()}
        self.callable = set(ready.get("callable") or [])
        self.load_error = ready.get("error")
        self.confinement = [str(x) for x in ready.get("confinement") or []]
        if self.load_error:
            self.stop()
        return self

    def _spawn(self) -> dict:
        self._launch()
        return self._wait_ready()

    def _launch(self):
        if self.uid is not None:
            sweep(self.uid, set())  # leftovers of an earlier grader with our pid
        self.generation += 1
        self.workdir = Path(tempfile.mkdtemp(prefix="dgm-sandbox-"))
        sub_dir = self.workdir / "submission"
        if self.path.is_dir():
            shutil.copytree(self.path, sub_dir, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            target = sub_dir
        elif self.path.is_file():  # with the .py files beside it, which it may import (as in process)
            sub_dir.mkdir()
            for sibling in sorted(self.path.parent.glob("*.py"))[:200]:
                if sibling.is_file() and not sibling.is_symlink():
                    shutil.copy2(sibling, sub_dir / sibling.name)
            target = sub_dir / self.path.name
            shutil.copy2(self.path, target)
        else:
            raise SandboxError(f"no file or directory at {self.path}")
        (self.workdir / "tmp").mkdir()
        log = open(self.workdir / "worker.log", "wb")
        if self.uid is not None:
            for p in [self.workdir, *self.workdir.rglob("*")]:
                with contextlib.suppress(OSError):
                    os.lchown(p, self.uid, self.uid)
        self.workdir.chmod(0o700)
        roots, warnings = read_roots()
        config = {
            "origin": str(self.path),  # informational: names the worker in process listings
            "workdir": str(self.workdir), "submission": str(target), "submission_dir": str(sub_dir),
            "functions": list(self.function_names), "classes": list(self.class_names),
            "read_roots": roots, "write_files": [d for d in WRITABLE_DEVICES if os.path.exists(d)]
            + [str(p) for p in Path("/dev").glob("nvidia*")],
            "hidden": [str(GRADER_ROOT)], "cpu_seconds": int(self.limits.cpu_seconds),
            "address_space": int(self.limits.memory_bytes), "file_size": int(self.limits.file_bytes),
            "processes": 64 if self.uid is not None else None, "uid": self.uid, "gid": self.uid,
            "python_files": [os.path.realpath(sys.executable), os.__file__, torch.__file__],
            "threads": self.limits.threads, "cuda": self.limits.cuda, "parent": os.getpid(),
        }
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), "TMPDIR": str(self.workdir / "tmp"),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": str(self.limits.threads),
               "MKL_NUM_THREADS": str(self.limits.threads), "OMP_WAIT_POLICY": "PASSIVE"}
        parent, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(WORKER), json.dumps(config), str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=env, start_new_session=True)
        finally:
            child.close()
            log.close()
        _LIVE_WORKERS.add(self.proc.pid)
        self.sock = parent
        self._fns.clear()
        self._fn_ids.clear()
        self._cb_calls.clear()
        self.deadline_for_start = time.monotonic() + self.limits.start_seconds
        self._warnings = warnings

    def _wait_ready(self) -> dict:
        try:
            msg, bufs = self._read(self.deadline_for_start, "starting the worker and importing the submission")
        except SandboxError as exc:
            raise SandboxError(f"the submission could not be loaded: {exc}") from None
        value = wire.decode(msg.get("payload"), bufs)
        if msg.get("op") == "failed":
            raise SandboxError(str(value))
        if msg.get("op") != "ready" or not isinstance(value, dict):
            raise SandboxError("the worker did not report the submission's names")
        value["confinement"] = list(value.get("confinement") or []) + self._warnings
        return value

    def stop(self):
        """End the worker: ask, then kill its process group and sweep; remove its directory."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(wire.encode({"op": "exit"}))
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.5)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
            _LIVE_WORKERS.discard(self.proc.pid)
            sweep(self.uid, set())
            self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    close = stop

    def _condemn(self, name: str, reason: str):
        self.condemned[name] = reason
        self.stop()
        self.restarts += 1

    # ----------------------------------------------------------------------- transport
    def _read(self, deadline: float, what: str):
        def recv_exact(n):
            chunks, got = [], 0
            while got < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.sock.settimeout(remaining)
                b = self.sock.recv(min(n - got, 1 << 20))
                if not b:
                    raise EOFError
                chunks.append(b)
                got += len(b)
            return b"".join(chunks)

        try:
            return wire.read_message(recv_exact)
        except TimeoutError:
            raise SandboxError(f"{what} did not finish within the time limit "
                               f"({self._budget_text(deadline)}); the worker was stopped") from None
        except (EOFError, ConnectionError, OSError):
            code = None
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self.proc.wait(timeout=2)
            raise SandboxError(f"the worker running the submission ended ({_describe_exit(code)}) during {what}"
                               f"{self._log_tail()}") from None
        except wire.ProtocolError as exc:
            raise SandboxError(f"the worker broke the protocol during {what}: {exc}") from None

    def _budget_text(self, deadline):
        return f"{self.limits.check_seconds:g} s per check" if deadline != getattr(self, "deadline_for_start", None) \
            else f"{self.limits.start_seconds:g} s to start"

    def _log_tail(self) -> str:
        try:
            with open(self.workdir / "worker.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - LOG_TAIL))
                text = f.read().decode("utf-8", errors="replace").strip()
        except (OSError, TypeError):
            return ""
        return f"; its last output: {text[-LOG_TAIL:]}" if text else ""

    def _ref_of(self, value):
        if callable(value):
            key = id(value)
            if key not in self._fn_ids:
                fid = self._next
                self._next += 1
                self._fns[fid] = value
                self._fn_ids[key] = fid
            attrs = {}
            z_dim = getattr(value, "z_dim", None)
            if type(z_dim) is int:
                attrs["z_dim"] = z_dim
            return wire.Ref("fn", self._fn_ids[key], attrs)
        if isinstance(value, RemoteObject):
            return wire.Ref("obj", value._oid)
        raise TypeError(f"a {type(value).__name__} cannot be sent to the sandbox")

    def request(self, header: dict, what: str, name: str, device=None):
        """Send one request; serve the worker's callbacks until its answer comes. Returns (op, value, call)."""
        __tracebackhide__ = True
        if name in self.condemned:
            raise SandboxError(f"{name}: not run again: {self.condemned[name]}")
        if self.sock is None:
            if self.load_error:
                raise SandboxError(f"the submission could not be loaded: {self.load_error}")
            try:
                self._spawn()
            except SandboxError as exc:
                self.stop()
                raise SandboxError(f"{what}: the worker could not be restarted: {exc}") from None
        deadline = self.deadline if self.deadline is not None else time.monotonic() + self.limits.check_seconds
        try:
            self.sock.sendall(wire.encode(header, self._ref_of))
            while True:
                msg, bufs = self._read(deadline, what)
                op = msg.get("op")
                if op in ("ok", "raised"):
                    value = wire.decode(msg.get("payload"), bufs, make_ref=self._make_ref, device=device)
                    call = msg.get("call")
                    if call is not None and type(call) is not int:
                        raise SandboxError(f"the worker broke the protocol during {what}: bad call id")
                    return op, value, call, msg
                if op == "callback":
                    self._serve_callback(msg, bufs, device)
                elif op == "callback_vjp":
                    self._serve_callback_vjp(msg, bufs, device)
                else:
                    raise SandboxError(f"the worker broke the protocol during {what}: unexpected message {op!r}")
        except SandboxError as exc:
            self._condemn(name, f"in an earlier check, {exc}")
            raise
        except (OSError, wire.ProtocolError) as exc:
            self._condemn(name, f"in an earlier check, the worker broke the protocol during {what}: {exc}")
            raise SandboxError(f"the worker broke the protocol during {what}: {exc}") from None

    def _make_ref(self, ref):
        if ref.kind == "obj" and type(ref.attrs.get("type", "")) is str:
            return RemoteObject(self, ref.id, ref.attrs.get("type", "object"))
        raise wire.ProtocolError("the worker sent a reference it may not send")

    def _send(self, header):
        self.sock.sendall(wire.encode(header))

    def _serve_callback(self, msg, bufs, device):
        payload = wire.decode(msg.get("payload"), bufs, honor_grad=True, device=device)
        fn = self._fns.get(msg.get("fn"))
        try:
            if fn is None or not isinstance(payload, dict) or not isinstance(payload.get("args"), (tuple, list)):
                raise ValueError("unknown network or malformed arguments")
            grad = payload.get("grad") is True
            with torch.set_grad_enabled(grad):
                out = fn(*payload["args"])
            reply = {"op": "ok", "payload": out}
            ins, _ = wire.flatten(payload["args"])
            outs, _ = wire.flatten(out)
            if grad and any(t.requires_grad for t in outs):
                cid = self._next
                self._next += 1
                self._cb_calls[cid] = (ins, outs)
                while len(self._cb_calls) > 256:
                    self._cb_calls.popitem(last=False)
                reply["call"] = cid
            self._send(reply)
        except Exception as exc:  # the student passed our network something it cannot take
            self._send({"op": "raised", "payload": f"{type(exc).__name__}: {exc}"})

    def _serve_callback_vjp(self, msg, bufs, device):
        grads = wire.decode(msg.get("payload"), bufs, device=device)
        try:
            ins, outs = self._cb_calls[msg.get("call")]
            if not isinstance(grads, list) or len(grads) != len(outs):
                raise ValueError("malformed gradients")
            for g, o in zip(grads, outs):
                if g is not None and (not isinstance(g, torch.Tensor) or g.shape != o.shape):
                    raise ValueError("gradient of the wrong shape")
            self._send({"op": "ok", "payload": wire.vector_jacobian(ins, outs, grads)})
        except Exception as exc:
            self._send({"op": "raised", "payload": f"{type(exc).__name__}: {exc}"})

    # ----------------------------------------------------------------------- calls
    def invoke(self, op, name, args, kwargs, *, target=None, obj=None, method=None, rng=None, apply_rng=True,
               grad=False):
        """One black-box call in the worker (``grad``: it keeps the graph for :meth:`vjp`).
        Returns (value, call id or None)."""
        __tracebackhide__ = True
        leaves, _ = wire.flatten((args, kwargs))
        device = next((t.device for t in leaves if t.device.type != "cpu"), None)
        state = torch.get_rng_state() if rng is None else rng
        header = {"op": op, "name": name, "obj": obj, "method": method,
                  "payload": {"args": tuple(args), "kwargs": dict(kwargs), "rng": state, "grad": grad}}
        what = f"{target or name}{'.' + method if method and method != '__call__' else ''}(...)"
        op_back, value, call, msg = self.request(header, what, target or name, device)
        if op_back == "raised":
            raise RemoteError(str(msg.get("type", "Exception"))[:100], value if isinstance(value, str) else "")
        if not isinstance(value, dict) or "value" not in value:
            raise SandboxError(f"the worker broke the protocol during {what}: malformed answer")
        new_state = value.get("rng")
        if apply_rng:
            if not (isinstance(new_state, torch.Tensor) and new_state.dtype == torch.uint8
                    and new_state.shape == state.shape):
                raise SandboxError(f"the worker broke the protocol during {what}: bad RNG state")
            torch.set_rng_state(new_state)
        return value["value"], call

    def vjp(self, call, grads, target, generation):
        __tracebackhide__ = True
        if generation != self.generation or self.sock is None:
            raise SandboxError(f"{target}: the worker that computed this output was restarted; "
                               "its gradients are gone")
        op, value, _, msg = self.request({"op": "vjp", "call": call, "payload": list(grads)},
                                         f"the gradient of {target}(...)", target)
        if op == "raised":
            raise RemoteError(str(msg.get("type", "Exception"))[:100], value if isinstance(value, str) else "")
        if not isinstance(value, dict):
            raise SandboxError(f"the worker broke the protocol during the gradient of {target}(...)")
        return value.get("value")

    def function(self, name):
        return RemoteFunction(self, name)


# ------------------------------------------------------------------------------- gradients
FD_STEP = 1e-6
FD_RTOL = 1e-5


class _Differentiable(torch.autograd.Function):
    """A worker call inside autograd: forward is the call, backward asks the worker for a VJP."""

    @staticmethod
    def forward(ctx, box, *leaves):
        sent = [t.detach().requires_grad_(t.requires_grad) if t.is_floating_point() else t for t in leaves]
        args, kwargs = wire.unflatten(box["spec"], sent)
        value, call = box["run"](args, kwargs, None, True, True)
        out, box["out_spec"] = wire.flatten(value)
        ctx.box, ctx.call, ctx.n_in = box, call, len(leaves)
        box["inputs"] = [t.detach() for t in leaves]
        box["needs"] = [t.requires_grad for t in leaves]
        box["outputs"] = [o.detach() for o in out]
        ctx.mark_non_differentiable(*[o for o in out if not o.is_floating_point()])
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        box = ctx.box
        __tracebackhide__ = True
        sandbox, target = box["sandbox"], box["target"]
        if ctx.call is None:
            return (None,) * (1 + ctx.n_in)
        got = sandbox.vjp(ctx.call, grads, target, box["generation"])
        if not isinstance(got, list) or len(got) != ctx.n_in:
            raise SandboxError(f"{target}: the worker returned {type(got).__name__} for the gradients, "
                               f"expected one per input ({ctx.n_in})")
        checked = []
        for g, x in zip(got, box["inputs"]):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != x.shape):
                raise SandboxError(f"{target}: the worker returned a gradient of shape "
                                   f"{tuple(getattr(g, 'shape', ()))} for an input of shape {tuple(x.shape)}")
            checked.append(None if g is None else g.to(dtype=x.dtype, device=x.device))
        if not box.get("fd_checked"):
            box["fd_checked"] = True
            _finite_difference_check(box, grads, checked)
        return (None, *checked)


def _finite_difference_check(box, grads_out, grads_in):
    """v^T J u from the worker's gradients vs (v . (f(x + h u) - f(x - h u))) / 2h from two more calls
    with the same RNG state. Only in float64 (in float32, differences are too coarse to judge)."""
    xs, needs, outs = box["inputs"], box["needs"], box["outputs"]
    if not all(x.dtype == torch.float64 for x, n in zip(xs, needs) if n):
        return
    if not all(o.dtype == torch.float64 for o in outs) or not all(torch.isfinite(o).all() for o in outs):
        return
    g = torch.Generator().manual_seed(0)
    dirs = [torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device) * x.abs().clamp(min=1e-2) if n else None
            for x, n in zip(xs, needs)]
    predicted = sum(float((gi * u).sum()) for gi, u in zip(grads_in, dirs) if gi is not None and u is not None)
    scale = sum(float((gi.abs() * u.abs()).sum()) for gi, u in zip(grads_in, dirs) if gi is not None and u is not None)

    def at(sign):
        moved = [x + sign * FD_STEP * u if u is not None else x for x, u in zip(xs, dirs)]
        args, kwargs = wire.unflatten(box["spec"], moved)
        with torch.no_grad():
            value, _ = box["run"](args, kwargs, box["rng"], False, False)
        leaves, _ = wire.flatten(value)
        return leaves

    plus, minus = at(1.0), at(-1.0)
    if len(plus) != len(outs) or len(minus) != len(outs):
        raise SandboxError(f"{box['target']}: repeated calls with the same inputs and RNG state returned different "
                           "structures")
    observed = 0.0
    for v, p, m in zip(grads_out, plus, minus):
        if v is not None:
            observed += float((v.to(p.dtype) * (p - m)).sum()) / (2 * FD_STEP)
    if not math.isfinite(observed):
        return
    if abs(predicted - observed) > FD_RTOL * (scale + abs(observed)) + 1e-9:
        raise SandboxError(
            f"{box['target']}: the gradients the worker returned do not match its outputs: along a random direction "
            f"u, v^T J u = {predicted:.10g} from the returned gradients but {observed:.10g} from central differences "
            f"(step {FD_STEP:g}) of repeated calls with the same RNG state")


def _call_maybe_differentiable(sandbox, target, run, args, kwargs):
    """``run(args, kwargs, rng, apply_rng, grad) -> (value, call)``, inside autograd when an input needs grad."""
    __tracebackhide__ = True
    leaves, spec = wire.flatten((tuple(args), dict(kwargs)))
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in leaves)):
        value, _ = run(args, kwargs, None, True, False)
        return value
    box = {"spec": spec, "run": run, "sandbox": sandbox, "target": target, "generation": sandbox.generation,
           "rng": torch.get_rng_state()}
    out = _Differentiable.apply(box, *leaves)
    return wire.unflatten(box["out_spec"], list(out))


# ------------------------------------------------------------------------------- stand-ins
class RemoteFunction:
    """A contract function that runs in the worker."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args, **kwargs):
        sb = self._sandbox
        __tracebackhide__ = True

        def run(a, k, rng, apply_rng, grad):
            __tracebackhide__ = True
            return sb.invoke("call", self.__name__, a, k, rng=rng, apply_rng=apply_rng, grad=grad)

        return _call_maybe_differentiable(sb, self.__name__, run, args, kwargs)

    def __repr__(self):
        return f"<{self.__name__} in the sandbox>"


class RemoteClass:
    """A contract class that lives in the worker: calling it constructs an instance there."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        try:
            value, _ = self._sandbox.invoke("new", self.__name__, args, kwargs)
        except RemoteError as exc:
            raise SandboxError(f"{self.__name__}(...) raised {exc.type_name}: {exc}") from None
        if not isinstance(value, RemoteObject):
            raise SandboxError(f"{self.__name__}(...) did not construct an object")
        value._type = self.__name__
        return value

    def __repr__(self):
        return f"<class {self.__name__} in the sandbox>"


class RemoteObject:
    """An instance in the worker; ``obj(x)``, ``obj.forward(x)`` and ``obj.inverse(y)`` run there."""

    def __init__(self, sandbox: Sandbox, oid: int, type_name: str):
        self._sandbox, self._oid, self._type = sandbox, oid, type_name
        self._generation = sandbox.generation

    def _method(self, method, args, kwargs):
        __tracebackhide__ = True
        sb = self._sandbox
        target = self._type
        if self._generation != sb.generation:
            raise SandboxError(f"{target}: this object was lost when the worker was restarted after an earlier "
                               "failure")

        def run(a, k, rng, apply_rng, grad):
            __tracebackhide__ = True
            return sb.invoke("method", self._type, a, k, target=target, obj=self._oid, method=method, rng=rng,
                             apply_rng=apply_rng, grad=grad)

        try:
            return _call_maybe_differentiable(sb, target, run, args, kwargs)
        except RemoteError as exc:
            raise SandboxError(f"{target}.{method}(...) raised {exc.type_name}: {exc}") from None

    def __call__(self, *args, **kwargs):
        return self._method("__call__", args, kwargs)
        __tracebackhide__ = True

    def forward(self, *args, **kwargs):
        return self._method("forward", args, kwargs)
        __tracebackhide__ = True

    def inverse(self, *args, **kwargs):
        return self._method("inverse", args, kwargs)
        __tracebackhide__ = True

    def __repr__(self):
        return f"<{self._type} object in the sandbox>"
