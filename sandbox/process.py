"""The worker process on the trusted side: its limits, what it may read, starting, restarting and
stopping it, and killing whatever it leaves behind.

:class:`Sandbox` owns one worker process at a time (``worker.py``) and is what the suite holds:
``verify.loader`` builds the submission's stand-ins (``remote.py``) on it, and they make their
calls through :meth:`Sandbox.invoke` and :meth:`Sandbox.vjp`. It starts the worker in a fresh
session, with a private copy of the submission and a scrubbed environment, waits until the
submission is imported, and talks to it over a :class:`~sandbox.channel.Channel`. When
:data:`ZYGOTE` is set (the grader's zygote sets it once per job, grader/zygote.py), the worker is
forked from a clean pre-imported process (:class:`WorkerZygote`) instead of started anew: the same
configuration, confinement and protocol, without the interpreter's and torch's start-up.

Containment: each check has a wall-clock budget (``Limits.check_seconds``). A worker that overruns
it, dies, or breaks the protocol is killed with its whole process group (and, when it ran under a
uid of its own, every process of that uid); the next check gets a fresh worker. The contract name
whose call did it is *condemned*: its later checks fail at once with the reason, so one hostile
function costs one time limit, not one per check.
"""
from __future__ import annotations

import array
import contextlib
import ctypes
import functools
import itertools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import RemoteError, SandboxError
from sandbox.output import CappedOutput

# torch, and the modules that use it (wire, channel, remote), are imported where first used: a
# checks' process launches its worker before it imports torch itself, so both imports overlap

WORKER = Path(__file__).resolve().with_name("worker.py")
GRADER_ROOT = Path(__file__).resolve().parents[1]
UID_BASE = 2_000_000  # the worker's uid is UID_BASE + the trusted process's pid (unique among live graders)
SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/sys", "/dev",
                     "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/filesystems",  # + the worker's own /proc/<pid>
                     "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
                     "/etc/group", "/etc/nsswitch.conf", "/etc/os-release")
WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_LIVE_WORKERS: set[int] = set()  # pids of the workers of every Sandbox in this process (never swept)
TITLE_ROOM = 4096  # the workers' zygote's padded last argument: each fork writes its submission's path there
ZYGOTE: "WorkerZygote | None" = None  # when set (grader/zygote.py, once per job), workers are forked from it


@dataclass
class Limits:
    check_seconds: float = 120.0  # wall clock per check (every call a check makes, together)
    start_seconds: float = 120.0  # start the interpreter, import torch and the submission
    cpu_seconds: int = 1800  # CPU time over the worker's life
    memory_bytes: int = 4 << 30  # address space (importing torch reserves some 0.7 GiB)
    file_bytes: int = 64 << 20  # largest file the worker may write (its output is a pipe: not limited)
    threads: int = 1  # the checks' inputs are small; more threads spin and steal the trusted side's core
    cuda: bool = False  # the checks run on the GPU: the worker initializes CUDA and has no address-space limit
    tmp_bytes: int = 256 << 20  # the worker's temporary folder, every file together
    tmp_files: int = 4096  # files and folders in it


COPY_FILES = 2000  # a submission's files copied into its worker's private folder, at most
COPY_BYTES = 256 << 20  # and their total size


# ------------------------------------------------------------------------------- what the worker may read
def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _interpreter_roots() -> set[str]:
    """The Python installation, from the interpreter itself: its prefixes, its library folders, the
    folder of its executable, and the site-packages that hold the libraries the worker imports."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    paths = sysconfig.get_paths()
    roots |= {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    for name in ("torch", "numpy"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:  # .../site-packages/torch/__init__.py -> .../site-packages
            roots.add(os.path.dirname(os.path.dirname(os.path.realpath(spec.origin))))
    return {os.path.realpath(r) for r in roots if r and os.path.isdir(r)}


def read_roots() -> tuple[list[str], list[str]]:
    """(directories the worker may read, warnings): the Python installation and system libraries,
    computed from the interpreter; never this process's import path or working folder, nor the
    grader's own tree."""
    warnings, kept = [], []
    for r in sorted(_interpreter_roots()):
        if r == os.sep or _inside(r, str(GRADER_ROOT)):
            continue  # the whole disk; the repository itself (a virtual environment inside it)
        if _inside(str(GRADER_ROOT), r):
            warnings.append(f"the grader's files ({GRADER_ROOT}) lie inside {r}, which the worker must be able to "
                            "read: install the grader outside the Python installation (editable, or run from source)")
        kept.append(r)
    kept += [p for p in SYSTEM_READ_ROOTS if os.path.exists(p)]
    return kept, warnings


# ------------------------------------------------------------------------------- its private copy
def _copy_file(src: str, dst: Path) -> int:
    """Copy the regular file ``src`` (never through a link: O_NOFOLLOW, and a FIFO does not block);
    returns its size, or raises OSError saying why it was not copied."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{os.path.basename(src)} is not a regular file")
        if st.st_nlink > 1:
            raise OSError(f"{os.path.basename(src)} is a hard link to another file")
        with open(fd, "rb", closefd=False) as f, open(dst, "xb") as out:
            shutil.copyfileobj(f, out)
        return st.st_size
    finally:
        os.close(fd)


def copy_own_files(src: Path, dst: Path) -> list[str]:
    """Copy the folder ``src`` into ``dst``: its regular files and folders only. A link (to a file or a
    folder, inside the submission or out of it) is never followed: it is skipped with a note, as are
    files past :data:`COPY_FILES` or :data:`COPY_BYTES`. Returns the notes."""
    notes, budget = [], {"files": COPY_FILES, "bytes": COPY_BYTES}
    stack = [(str(src), dst)]
    while stack:
        folder, into = stack.pop()
        into.mkdir()
        with os.scandir(folder) as entries:
            for e in sorted(entries, key=lambda e: e.name):
                rel = os.path.relpath(e.path, src)
                if e.name in ("__pycache__", ".git"):
                    continue
                if e.is_symlink():
                    notes.append(f"{rel}: a symbolic link, not followed (only the submission's own files are copied)")
                elif e.is_dir(follow_symlinks=False):
                    stack.append((e.path, into / e.name))
                else:
                    notes += _copy_within(e.path, into / e.name, rel, budget)
    return notes


def _copy_within(src: str, dst: Path, rel: str, budget: dict) -> list[str]:
    """Copy one file if the copy's budget allows; returns a note when it is not copied."""
    try:
        if budget["files"] <= 0 or budget["bytes"] < os.lstat(src).st_size:
            return [f"{rel}: not copied (at most {COPY_FILES} files, {COPY_BYTES >> 20} MiB in all)"]
        budget["bytes"] -= _copy_file(src, dst)
        budget["files"] -= 1
        return []
    except OSError as exc:
        return [f"{rel}: not copied ({exc.strerror or exc})"]


def folder_usage(path: Path, limit_files: int) -> tuple[int, int]:
    """(bytes on disk, files) under ``path``, counting stopped past ``limit_files``; never follows links."""
    used, files, stack = 0, 0, [str(path)]
    while stack and files <= limit_files:
        try:
            with os.scandir(stack.pop()) as entries:
                for e in entries:
                    files += 1
                    st = e.stat(follow_symlinks=False)
                    used += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
        except OSError:
            continue
    return used, files


# ------------------------------------------------------------------------------- what it leaves behind
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


# ------------------------------------------------------------------------------- workers forked from a zygote
def _origin(module: str) -> str:
    """The file a module is imported from, without importing it (torch's ``__init__.py``)."""
    return importlib.util.find_spec(module).origin


def worker_environment(workdir: Path | None, threads: int) -> dict:
    """The worker's whole environment: nothing of the grader's."""
    tmp = str(workdir / "tmp") if workdir is not None else "/nonexistent"
    return {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8", "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}


class WorkerZygote:
    """A clean process (``worker.py --zygote``: torch and numpy imported, one fixed gradient computed
    to pay torch's lazy imports, nothing else, no student code ever) that forks each worker: a
    worker then starts in milliseconds instead of an interpreter and torch. Started once per grading job (grader/zygote.py), before the checks'
    processes are forked, so they share it; each fork is a fresh worker that confines itself
    exactly as a freshly started one (``worker.py``). ``threads``: the workers' torch threads."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(WORKER), "--zygote", str(theirs.fileno()), " " * TITLE_ROOM],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd="/", env=worker_environment(None, threads), start_new_session=True)
        finally:
            theirs.close()
        _LIVE_WORKERS.add(self.proc.pid)  # never swept as an orphan of this process
        self.requests = mine

    def fork(self, channel: socket.socket) -> "ForkedWorker":
        """A worker forked on the worker's end of ``channel``; it reads its configuration from there."""
        out_r, out_w = os.pipe()
        control, control_theirs = socket.socketpair()
        try:
            self.requests.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                            array.array("i", [channel.fileno(), out_w, control_theirs.fileno()]))])
        except OSError:
            os.close(out_r)
            control.close()
            raise
        finally:
            os.close(out_w)
            control_theirs.close()
        return ForkedWorker(control, os.fdopen(out_r, "rb"))

    def close(self):
        with contextlib.suppress(OSError):
            self.requests.close()  # the zygote kills its workers and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


class ForkedWorker:
    """What :class:`Sandbox` needs of ``subprocess.Popen``, for a worker forked by the zygote: its pid
    and exit code come over the control socket (the zygote is its parent and reaps it); closing
    the control socket makes the zygote kill it."""

    def __init__(self, control: socket.socket, stdout):
        self.control, self.stdout = control, stdout
        self._pid = self.returncode = self.cpu = None  # cpu: its CPU seconds, once it ended
        self._buffer = b""

    def _line(self, timeout: float | None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                raise subprocess.TimeoutExpired("worker", timeout)
            self.control.settimeout(remaining)
            try:
                chunk = self.control.recv(256)
            except TimeoutError:
                raise subprocess.TimeoutExpired("worker", timeout) from None
            except OSError:
                chunk = b""
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    @property
    def pid(self) -> int | None:
        if self._pid is None and self.returncode is None:
            line = self._line(None)
            if line is not None and line.startswith("pid "):
                self._pid = int(line.split()[1])
            else:
                self.returncode = -signal.SIGKILL  # the zygote is gone: so is the worker (it dies with it)
        return self._pid

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self.pid is not None:
            line = self._line(timeout)
            words = line.split() if line and line.startswith("exit ") else []
            self.returncode = int(words[1]) if len(words) > 1 else -signal.SIGKILL
            self.cpu = float(words[2]) if len(words) > 2 else None
        return self.returncode

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.wait(0.0)
        return None

    def kill(self):
        if self.returncode is None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)


def _remote_error(msg: dict, value) -> RemoteError:
    """The student's exception, from a ``raised`` answer."""
    return RemoteError(str(msg.get("type", "Exception"))[:100], value if isinstance(value, str) else "")


class Sandbox:
    """One submission's worker, restarted after a check that killed or hung it."""

    def __init__(self, path, function_names, class_names, limits: Limits | None = None):
        given = Path(path).expanduser()
        self.linked = given.is_symlink()  # a submission that is a link is not followed (see _copy_submission)
        self.path = given.absolute()
        self.function_names, self.class_names = tuple(function_names), tuple(class_names)
        self.limits = limits or Limits()
        self.proc = self.channel = self.workdir = self.output = None
        self.generation = 0
        self.deadline = None
        self.condemned: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.callable: set[str] = set()
        self.load_error = None
        self.confinement: list[str] = []
        self.notes: list[str] = []
        self.restarts = 0
        self._ids = itertools.count(1)  # the networks and callback graphs of every channel, numbered
        self.uid = UID_BASE + os.getpid() if os.geteuid() == 0 else None
        _set_subreaper()

    # ----------------------------------------------------------------------- lifecycle
    def launch(self):
        """Start the worker without waiting for it (it imports torch while the caller does other work)."""
        if self.channel is None and self.load_error is None:
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
            if self.channel is None:
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
        self.notes = [str(x) for x in ready.get("notes") or []]  # the load report: the form graded, stand-ins given
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
        sub_dir, target = self._copy_submission(self.workdir / "submission")
        (self.workdir / "tmp").mkdir()
        if self.uid is not None:
            for p in [self.workdir, *self.workdir.rglob("*")]:
                with contextlib.suppress(OSError):
                    os.lchown(p, self.uid, self.uid)
        self.workdir.chmod(0o700)
        roots, warnings = read_roots()
        config = self._config(sub_dir, target, roots)
        parent, child = socket.socketpair()
        try:
            self.proc = self._forked(parent, child, config)
            if self.proc is None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-B", str(WORKER), json.dumps(config), str(child.fileno())],
                    pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, cwd=self.workdir, env=self._environment(), start_new_session=True)
                _LIVE_WORKERS.add(self.proc.pid)
        finally:
            child.close()
        # its output goes through a pipe to us (capped in memory), not to a file: no file-size limit on prints
        self.output = CappedOutput(self.proc.stdout)
        from sandbox.channel import Channel  # torch: imported now that the worker is on its way
        from sandbox.remote import object_stand_in

        self.channel = Channel(parent, self.proc, self.output, self._ids,
                               functools.partial(object_stand_in, self))
        self.channel.watch = None if self.uid is not None else self._watch_tmp  # root: a private tmpfs bounds it
        self.deadline_for_start = time.monotonic() + self.limits.start_seconds
        self._warnings = warnings + self._copy_notes

    def _forked(self, parent: socket.socket, child: socket.socket, config: dict):
        """The worker forked from :data:`ZYGOTE` (its configuration sent first on its channel), or
        None when there is no zygote for these limits (then it is started fresh)."""
        zygote = ZYGOTE
        if zygote is None or self.limits.cuda or self.limits.threads != zygote.threads:
            return None
        try:
            proc = zygote.fork(child)
        except OSError:
            return None
        data = json.dumps(config | {"environment": self._environment()}).encode()
        parent.sendall(len(data).to_bytes(8, "big") + data)
        return proc

    def _copy_submission(self, sub_dir: Path) -> tuple[Path, Path]:
        """Copy the submission's own files (never a classmate's, never through a link) into ``sub_dir``;
        returns (``sub_dir``, what the worker imports)."""
        self._copy_notes = []
        if self.linked:
            raise SandboxError(f"{self.path.name} is a symbolic link: a submission's own files are graded, "
                               "never what a link points to")
        if self.path.is_dir():
            self._copy_notes = copy_own_files(self.path, sub_dir)
            return sub_dir, sub_dir
        if self.path.is_file():  # only this file: the .py files beside it are classmates' (or the grader's)
            sub_dir.mkdir()
            target = sub_dir / self.path.name
            try:
                _copy_file(str(self.path), target)
            except OSError as exc:
                raise SandboxError(f"{self.path.name} could not be copied: {exc.strerror or exc}") from None
            return sub_dir, target
        raise SandboxError(f"no file or directory at {self.path}")

    def _watch_tmp(self):
        """Without a private tmpfs: the worker's temporary folder must stay within its limits."""
        if self.workdir is None:
            return
        used, files = folder_usage(self.workdir / "tmp", self.limits.tmp_files)
        if used > self.limits.tmp_bytes or files > self.limits.tmp_files:
            raise SandboxError(f"the submission wrote more than {self.limits.tmp_bytes >> 20} MiB or "
                               f"{self.limits.tmp_files} files to its temporary folder; the worker was stopped")

    def _config(self, sub_dir: Path, target: Path, roots: list[str]) -> dict:
        """The worker's command-line configuration (see ``worker.py``)."""
        return {
            "origin": str(self.path),  # informational: names the worker in process listings
            "workdir": str(self.workdir), "submission": str(target), "submission_dir": str(sub_dir),
            "functions": list(self.function_names), "classes": list(self.class_names),
            "read_roots": roots + [str(sub_dir)], "tmp": str(self.workdir / "tmp"),
            "tmp_bytes": int(self.limits.tmp_bytes), "tmp_files": int(self.limits.tmp_files), "write_files": [d for d in WRITABLE_DEVICES if os.path.exists(d)]
            + [str(p) for p in Path("/dev").glob("nvidia*")],
            "hidden": [str(GRADER_ROOT)], "cpu_seconds": int(self.limits.cpu_seconds),
            "address_space": int(self.limits.memory_bytes), "file_size": int(self.limits.file_bytes),
            "processes": 64 if self.uid is not None else None, "uid": self.uid, "gid": self.uid,
            "python_files": [os.path.realpath(sys.executable), os.__file__, _origin("torch")],
            "threads": self.limits.threads, "cuda": self.limits.cuda, "parent": os.getpid(),
        }

    def _environment(self) -> dict:
        return worker_environment(self.workdir, self.limits.threads)

    def _wait_ready(self) -> dict:
        try:
            msg, bufs = self.channel.read(self.deadline_for_start, "starting the worker and importing the submission",
                                          budget=f"{self.limits.start_seconds:g} s to start")
        except SandboxError as exc:
            raise SandboxError(f"the submission could not be loaded: {exc}") from None
        from sandbox import wire

        value = wire.decode(msg.get("payload"), bufs)
        if msg.get("op") == "failed":
            raise SandboxError(str(value))
        if msg.get("op") != "ready" or not isinstance(value, dict):
            raise SandboxError("the worker did not report the submission's names")
        value["confinement"] = list(value.get("confinement") or []) + self._warnings
        if isinstance(self.proc, ForkedWorker) and self.proc.pid is not None:
            _LIVE_WORKERS.add(self.proc.pid)  # known by now: the zygote said it before the worker could answer
        return value

    def stop(self):
        """End the worker: ask, then kill its process group and sweep; remove its directory."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.5)
            with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):  # TypeError: a fork never made
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
            _LIVE_WORKERS.discard(self.proc.pid)
            if isinstance(self.proc, ForkedWorker):
                self.proc.control.close()
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

    # ----------------------------------------------------------------------- calls
    def request(self, header: dict, what: str, name: str, device=None):
        """Send one request to a live worker (started again if an earlier check stopped it) within
        the check's time; returns what :meth:`Channel.exchange` does. A failure condemns ``name``."""
        __tracebackhide__ = True
        from sandbox import wire

        if name in self.condemned:
            raise SandboxError(f"{name}: not run again: {self.condemned[name]}")
        if self.channel is None:
            if self.load_error:
                raise SandboxError(f"the submission could not be loaded: {self.load_error}")
            try:
                self._spawn()
            except SandboxError as exc:
                self.stop()
                raise SandboxError(f"{what}: the worker could not be restarted: {exc}") from None
        deadline = self.deadline if self.deadline is not None else time.monotonic() + self.limits.check_seconds
        try:
            return self.channel.exchange(header, what, deadline, f"{self.limits.check_seconds:g} s per check", device)
        except SandboxError as exc:
            self._condemn(name, f"in an earlier check, {exc}")
            raise
        except (OSError, wire.ProtocolError) as exc:
            self._condemn(name, f"in an earlier check, the worker broke the protocol during {what}: {exc}")
            raise SandboxError(f"the worker broke the protocol during {what}: {exc}") from None

    def invoke(self, spec: CallSpec):
        """One black-box call in the worker (``spec.grad``: it keeps the graph for :meth:`vjp`).
        Returns (value, call id or None)."""
        __tracebackhide__ = True
        import torch
        from sandbox import wire

        leaves, _ = wire.flatten((spec.args, spec.kwargs))
        device = next((t.device for t in leaves if t.device.type != "cpu"), None)
        state = torch.get_rng_state() if spec.rng is None else spec.rng
        what = spec.what
        op_back, value, call, msg = self.request(spec.header(state), what, spec.label, device)
        if op_back == "raised":
            raise _remote_error(msg, value)
        if not isinstance(value, dict) or "value" not in value:
            raise SandboxError(f"the worker broke the protocol during {what}: malformed answer")
        new_state = value.get("rng")
        if spec.apply_rng:
            if not (isinstance(new_state, torch.Tensor) and new_state.dtype == torch.uint8
                    and new_state.shape == state.shape):
                raise SandboxError(f"the worker broke the protocol during {what}: bad RNG state")
            torch.set_rng_state(new_state)
        return value["value"], call

    def vjp(self, call, grads, target, generation):
        """The gradients w.r.t. each input of ``call`` (made by worker ``generation``) given ``grads``, one per output."""
        __tracebackhide__ = True
        if generation != self.generation or self.channel is None:
            raise SandboxError(f"{target}: the worker that computed this output was restarted; "
                               "its gradients are gone")
        op, value, _, msg = self.request({"op": "vjp", "call": call, "payload": list(grads)},
                                         f"the gradient of {target}(...)", target)
        if op == "raised":
            raise _remote_error(msg, value)
        if not isinstance(value, dict):
            raise SandboxError(f"the worker broke the protocol during the gradient of {target}(...)")
        return value.get("value")

    def function(self, name):
        from sandbox.remote import RemoteFunction

        return RemoteFunction(self, name)
