"""The checks' processes, forked from one pre-imported process per grading job.

Grading a submission runs the suite (``pytest verify/ --submission PATH -p grader.plugin``) in a
process of its own. Started fresh (``python -m pytest``, the ``--no-zygote`` path), each such
process pays the interpreter and the imports of torch, scipy, sympy, hypothesis and pytest again,
some 3-4 CPU-seconds per student, and as much again to tear them down. Here one trusted process,
the *zygote*, imports them once per job and forks a child per submission, which runs
``pytest.main`` on that submission's command line and exits with pytest's exit code. Each child
is a fresh fork of the zygote, which never runs a check itself: nothing of one student's grading
(memory, files, RNG state) reaches the next. The children are the same trusted processes as
before: each starts the submission's sandboxed worker (``sandbox/process.py``) exactly as a fresh
``python -m pytest`` does, so the sandbox is unchanged.

What the zygote imports (:data:`PRELOAD`) is third-party libraries and the project's non-check
modules; never a check module, the conftest or a pytest plugin, which pytest imports itself in
the child (rewriting their ``assert`` statements as it always does). It runs no torch operation
and starts no thread, so forking it is safe.

Protocol (JSON lines): the zygote reads ``{"id", "args", "log", "cwd"}`` on stdin and answers
``{"id", "pid"}`` once the child runs (in a session of its own: the grader kills its group on a
time limit), then ``{"id", "exit"}`` when it ended (``waitstatus_to_exitcode``). End of input:
the zygote kills its children's groups and exits.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRELOAD = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch.distributions", "torch.autograd.functional",
           "scipy.special", "scipy.stats", "scipy.integrate", "scipy.optimize", "sympy", "hypothesis",
           "hypothesis.strategies", "hypothesis.extra.numpy", "pytest", "_pytest.python_api", "pdb",
           "xml.etree.ElementTree", "statistics", "sympy.physics.units", "torch.fx.experimental.symbolic_shapes",
           "impls", "impls.flows", "derivations", "derivations.affine_flow", "derivations.coupling",
           "derivations.elbo", "derivations.gaussian", "derivations.bernoulli",
           "sandbox.process", "sandbox.remote", "sandbox.gradients",
           "verify", "verify.contract", "verify.loader", "verify.assertions", "verify.stats", "verify.strategies",
           "verify.oracles", "verify.models", "verify.problems", "verify.answers", "verify.answers.catalogue",
           "verify.answers.equivalence", "verify.answers.parser", "verify.answers.questions",
           "verify.answers.source", "grader.diagnosis", "grader.rubric")
CHECKS_PROCESS = "DGM_CHECKS_PROCESS"  # in a checks' process's environment: it may end without a shutdown


def checks_environment() -> dict:
    """The environment of the checks' processes (and of the zygote that forks them): the grader's,
    marked as a checks' process (:data:`CHECKS_PROCESS`: grader/plugin.py ends it with ``os._exit``),
    with compiled bytecode cached under the user's cache folder (``PYTHONPYCACHEPREFIX``, never beside
    the sources) even where ``PYTHONDONTWRITEBYTECODE`` is set, so that each process does not compile
    the suite's modules and rewrite its checks' asserts again (0.1-0.5 s a process)."""
    env = dict(os.environ, **{CHECKS_PROCESS: "1"})
    if env.get("PYTHONPYCACHEPREFIX"):
        return env
    try:
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dgm-verify" / "pycache"
        cache.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # no home or no writable cache folder: compile every time, as before
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


POLL_SECONDS = 0.02  # how often the zygote looks for children that ended
# pytest cannot rewrite the asserts of a plugin's package imported before it starts (hypothesis'
# own library code; never a check's): said once per child, only in its log, so silenced
QUIET = ("-W", "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning")


# ------------------------------------------------------------------------------- the zygote
def preload() -> list[str]:
    """Import :data:`PRELOAD`; returns the modules that could not be imported (their checks pay them later)."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # e.g. an optional module renamed: the child imports what it needs itself
            missing.append(name)
    return missing


def _child(request: dict, control: tuple[int, int]) -> None:
    """In the forked child: a session of its own, output to the request's log, then the suite."""
    code = 3
    try:
        os.setsid()
        for fd in control:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request.get("cwd") or ROOT)
        import pytest

        args = [*QUIET, *[str(a) for a in request["args"]]]
        sys.argv = ["pytest", *args]
        code = int(pytest.main(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # no interpreter shutdown: nothing to tear down (a second or more with torch, sympy)


def _reap(children: dict[int, object], out) -> None:
    """Report every child that ended; kill what it left in its session."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        rid = children.pop(pid, None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if rid is not None:
            _answer(out, {"id": rid, "exit": os.waitstatus_to_exitcode(status)})


def _answer(out, message: dict) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _end(children: dict, workers) -> None:
    """Kill the children's sessions, reap them and the workers' zygote (their CPU time then counts
    in the grader's children's), and exit without an interpreter shutdown (a second or more with
    torch and sympy imported)."""
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if workers is not None:
        workers.close()
    os._exit(0)


def serve() -> None:
    """The zygote's loop: preload, say ready, fork a child per request, report each child's end."""
    control_in, control_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # nothing printed by an import reaches the protocol
    out = os.fdopen(control_out, "w")
    from sandbox import process

    try:
        process.ZYGOTE = process.WorkerZygote()  # the clean workers' zygote imports torch meanwhile
    except OSError:  # e.g. no SOCK_SEQPACKET: each worker is started anew, as with --no-zygote
        process.ZYGOTE = None
    missing = preload()
    gc.freeze()  # what the imports made is never collected: each child's collections skip it (and its pages stay shared)
    _answer(out, {"ready": True, "pid": os.getpid(), "missing": missing})
    children: dict[int, object] = {}
    buffer = b""
    while True:
        readable, _, _ = select.select([control_in], [], [], POLL_SECONDS)
        _reap(children, out)
        if not readable:
            continue
        chunk = os.read(control_in, 1 << 16)
        if not chunk:  # the grader is gone or done: so are its checks
            _end(children, process.ZYGOTE)  # no interpreter shutdown (a second or more with torch and sympy imported)
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(request, (control_in, control_out))
            children[pid] = request["id"]
            _answer(out, {"id": request["id"], "pid": pid})


# ------------------------------------------------------------------------------- the grader's side
class Zygote:
    """The grader's handle on its zygote: :meth:`run` forks a checks' process and waits for it."""

    def __init__(self, start_seconds: float = 300.0):
        self.proc = subprocess.Popen([sys.executable, "-m", "grader.zygote"], cwd=ROOT, env=checks_environment(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._waiting: dict[int, queue.Queue] = {}
        self._ready: queue.Queue = queue.Queue()
        self.running: set[int] = set()  # pids of the children running checks now
        threading.Thread(target=self._read, daemon=True).start()
        try:
            ready = self._ready.get(timeout=start_seconds).get("ready")
        except queue.Empty:
            ready = False
        if not ready:  # it died or hung before it could fork anything
            self.close()
            raise RuntimeError("the checks' zygote did not start")

    def _read(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("ready"):
                self._ready.put(msg)
            elif msg.get("id") in self._waiting:
                self._waiting[msg["id"]].put(msg)
        self._ready.put({})
        for q in list(self._waiting.values()):  # the zygote died: every child with it
            q.put({"exit": None})

    def run(self, args: list[str], log: Path, timeout: float) -> tuple[int | None, bool]:
        """Run the suite with ``args`` in a forked child writing to ``log``, for at most ``timeout``
        seconds (then its session is killed); returns (exit code or None if the zygote died, timed out)."""
        rid, answers = next(self._ids), queue.Queue()
        self._waiting[rid] = answers
        try:
            with self._lock:
                self.proc.stdin.write((json.dumps({"id": rid, "args": list(args), "log": str(log),
                                                   "cwd": str(ROOT)}) + "\n").encode())
                self.proc.stdin.flush()
            deadline = time.monotonic() + timeout
            first = answers.get()
            pid = first.get("pid")
            if pid is None:
                return None, False
            self.running.add(pid)
            try:
                code = answers.get(timeout=max(0.0, deadline - time.monotonic())).get("exit")
                if code is None:  # the zygote died: its child must not outlive it unwatched
                    kill_group(pid)
                return code, False
            except queue.Empty:
                kill_group(pid)
                return answers.get().get("exit"), True
            finally:
                self.running.discard(pid)
        except (OSError, ValueError):  # the zygote is gone
            return None, False
        finally:
            self._waiting.pop(rid, None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill_all(self):
        for pid in list(self.running):
            kill_group(pid)

    def close(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # the zygote kills its children and exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait()


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    serve()
