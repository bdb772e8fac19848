"""Hostile submissions: a correct submission (examples/class/alice) plus one hostile act each.

Each entry is Python appended to the correct code (so it can run at import, or redefine one
contract name) and the contract names whose checks the act must fail (``ALL``: every check of
the code, because the submission cannot be loaded; the written answers, read from answers.py as
text, still count; an empty set: the act achieves nothing and every check passes). Acts aimed at one function use ``affine_flow_log_prob``, which nothing else calls, so
"the checks touched by the act" is exactly its checks. Every file the acts try to write holds
:data:`MARK`, so a test can search the disk for a breach.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "examples" / "class" / "alice" / "submission.py"
MARK = "DGM-HOSTILE-7f3a"
ALL = frozenset({"*"})
AFFINE = frozenset({"affine_flow_log_prob"})
NONE = frozenset()

# Directories an attacker would try: everywhere up from here, the usual roots, every /tmp folder.
_WRITE_EVERYWHERE = f'''
import glob as _glob, os as _os
def _targets():
    seen = set()
    here = _os.path.abspath(_os.getcwd())
    while True:
        seen.add(here)
        up = _os.path.dirname(here)
        if up == here:
            break
        here = up
    for pattern in ("/tmp", "/tmp/*", "/tmp/*/*", "/tmp/*/*/*", "/work", "/work/*", "/work/*/*", "/check/*",
                    "/autograder", "/autograder/*", "/root", _os.path.expanduser("~"), "/proc/self/cwd",
                    "/proc/%d/cwd" % _os.getppid(), "/proc/%d/cwd/grading-out" % _os.getppid()):
        seen.update(p for p in _glob.glob(pattern) if _os.path.isdir(p))
    return sorted(seen)
def _write_everywhere(tag):
    for d in _targets():
        for name in ("results.json", "junit.xml", "gradebook.csv", "report.json", "dgm_pwned.txt"):
            try:
                with open(_os.path.join(d, name), "w") as f:
                    f.write('{{"score": 100, "note": "{MARK} ' + tag + '"}}')
            except Exception:
                pass
'''


@dataclass(frozen=True)
class Hostile:
    name: str
    act: str  # what the submission does
    code: str  # appended to the correct submission
    fails: frozenset  # contract names whose checks must fail (ALL, AFFINE or NONE)
    message: str = ""  # a phrase one failing check's message contains (alternatives separated by |)


HOSTILE = [
    Hostile("exit_at_import", "sys.exit(0) at import", "import sys\nsys.exit(0)\n", ALL, "SystemExit"),
    Hostile("exit_in_function", "sys.exit(0) inside affine_flow_log_prob", """
import sys
def affine_flow_log_prob(x, scale, shift):
    sys.exit(0)
""", AFFINE, "SystemExit"),
    Hostile("os_exit_at_import", "os._exit(0) at import", "import os\nos._exit(0)\n", ALL, "exit code 0"),
    Hostile("os_exit_in_function", "os._exit(0) inside a function: the worker dies; the others still run", """
import os
def affine_flow_log_prob(x, scale, shift):
    os._exit(0)
""", AFFINE, "ended"),
    Hostile("raise_system_exit", "raise SystemExit", """
def affine_flow_log_prob(x, scale, shift):
    raise SystemExit(3)
""", AFFINE, "SystemExit"),
    Hostile("raise_keyboard_interrupt", "raise KeyboardInterrupt", """
def affine_flow_log_prob(x, scale, shift):
    raise KeyboardInterrupt
""", AFFINE, "KeyboardInterrupt"),
    Hostile("raise_base_exception", "raise a BaseException subclass", """
class Escape(BaseException):
    pass
def affine_flow_log_prob(x, scale, shift):
    raise Escape("past every `except Exception`")
""", AFFINE, "Escape"),
    Hostile("infinite_loop", "an infinite loop", """
def affine_flow_log_prob(x, scale, shift):
    while True:
        pass
""", AFFINE, "time limit"),
    Hostile("ignore_sigterm", "a loop that ignores SIGTERM and SIGINT", """
import signal
def affine_flow_log_prob(x, scale, shift):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
""", AFFINE, "time limit"),
    Hostile("memory_bomb", "allocate memory until something gives", """
def affine_flow_log_prob(x, scale, shift):
    hog = []
    while True:
        hog.append(bytearray(1 << 26))
""", AFFINE, "MemoryError|time limit"),
    Hostile("process_bomb", "fork (bounded: 30 children) and start processes at import", """
import os, subprocess, time
for _ in range(30):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    except OSError:
        break
try:
    subprocess.Popen(["sleep", "60"], start_new_session=True)
except Exception:
    pass
""", NONE),
    Hostile("write_reports_everywhere", "write results.json and other reports into every directory it can find",
            _WRITE_EVERYWHERE + "_write_everywhere('import')\n", NONE),
    Hostile("read_reference_from_disk", "find the answer key on disk and use it", """
import os
def affine_flow_log_prob(x, scale, shift):
    roots = ["/proc/%d/cwd" % os.getppid(), "/work/main", "/check/work/main", "/autograder/source", os.getcwd()]
    d = os.getcwd()
    while d != "/":
        roots.append(d)
        d = os.path.dirname(d)
    for r in roots:
        try:
            with open(os.path.join(r, "impls", "flows.py")) as f:
                source = f.read()
        except Exception:
            continue
        space = {}
        exec(compile(source, "reference", "exec"), space)
        return space["affine_flow_log_prob"](x, scale, shift)
    return x.sum(-1) * 0  # nothing found: a wrong answer
""", AFFINE),
    Hostile("import_reference", "import the answer key (past the import blocker, through the editable finder)", """
import sys, importlib, importlib.util
def affine_flow_log_prob(x, scale, shift):
    sys.meta_path[:] = [f for f in sys.meta_path if "Blocker" not in type(f).__name__]
    for attempt in (lambda: importlib.import_module("impls.flows"),
                    lambda: importlib.import_module("impls")):
        try:
            return attempt().affine_flow_log_prob(x, scale, shift)
        except Exception:
            pass
    for name in list(sys.modules):
        mapping = getattr(sys.modules[name], "MAPPING", None)
        if isinstance(mapping, dict) and "impls" in mapping:
            try:
                spec = importlib.util.spec_from_file_location("stolen", mapping["impls"] + "/flows.py")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module.affine_flow_log_prob(x, scale, shift)
            except Exception:
                pass
    return x.sum(-1) * 0
""", AFFINE),
    Hostile("monkeypatch_checkers", "patch torch.allclose, torch.testing, numpy and pytest at import; wrong answer",
            """
import numpy, torch, torch.testing
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *x, **k: torch.ones_like(a, dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
try:
    import pytest
    pytest.approx = lambda expected, *a, **k: type("Any", (), {"__eq__": lambda s, o: True})()
except Exception:
    pass
def affine_flow_log_prob(x, scale, shift):
    return x.sum(-1) * 0  # wrong
""", AFFINE),
    Hostile("lying_tensor", "return a tensor subclass whose __torch_function__ says every comparison holds", """
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("allclose", "equal", "__eq__", "eq", "isclose", "all", "any"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
def affine_flow_log_prob(x, scale, shift):
    return (x.sum(-1) * 0).as_subclass(Liar)
""", AFFINE),
    Hostile("always_equal", "return an object whose __eq__ is always True", """
class Anything:
    def __eq__(self, other):
        return True
    def __float__(self):
        return 0.0
    shape = property(lambda self: (5,))
def affine_flow_log_prob(x, scale, shift):
    return Anything()
""", AFFINE, "cannot leave the sandbox"),
    Hostile("fake_passed_output", "print megabytes of fake PASSED lines, at import and on every call", """
import os, sys
_spam = "verify/test_affine_flow.py::test_all PASSED\\n" * 40000
print(_spam)
os.write(1, _spam.encode())
sys.stderr.write(_spam)
_honest_kl = kl_normal
def kl_normal(qm, qv, pm, pv):
    print(_spam)
    return _honest_kl(qm, qv, pm, pv)
""", NONE),
    Hostile("detached_writer", "leave a process or thread behind that writes reports later",
            _WRITE_EVERYWHERE + """
import os, threading, time
try:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(3)
            _write_everywhere("detached")
        os._exit(0)
except OSError:
    pass
def _later():
    time.sleep(2)
    _write_everywhere("thread")
threading.Thread(target=_later, daemon=True).start()
""", NONE),
    Hostile("nan_output", "return NaN", """
def affine_flow_log_prob(x, scale, shift):
    return torch.full(x.shape[:-1], float("nan"), dtype=x.dtype)
""", AFFINE),
    Hostile("inf_output", "return +inf", """
def affine_flow_log_prob(x, scale, shift):
    return torch.full(x.shape[:-1], float("inf"), dtype=x.dtype)
""", AFFINE),
    Hostile("wrong_shape", "return the right numbers in the wrong shape", """
_honest_flow = affine_flow_log_prob
def affine_flow_log_prob(x, scale, shift):
    return _honest_flow(x, scale, shift).reshape(-1, 1)
""", AFFINE),
    Hostile("wrong_dtype", "return float16", """
_honest_flow = affine_flow_log_prob
def affine_flow_log_prob(x, scale, shift):
    return _honest_flow(x, scale, shift).to(torch.float16)
""", AFFINE),
    Hostile("python_list", "return a Python list instead of a tensor", """
_honest_flow = affine_flow_log_prob
def affine_flow_log_prob(x, scale, shift):
    return _honest_flow(x, scale, shift).tolist()
""", AFFINE),
]


def write(hostile: Hostile, folder: Path) -> Path:
    """The hostile submission as ``folder/submission.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = BASE.read_text(encoding="utf-8") + f"\n\n# ---- hostile act: {hostile.act}\n" + hostile.code
    (folder / "submission.py").write_text(text, encoding="utf-8")
    (folder / "answers.py").write_bytes((BASE.parent / "answers.py").read_bytes())
    return folder


# ============================================================================ round 2 (issue 18)
# Attacks by someone who read the sandbox's code, graded as one class next to honest students (see
# tests/test_hostile_class.py). Each builds its own entry of the class folder. ``fails``: CODE (every
# check of the code fails: it cannot be loaded, or is not its own), EVERYTHING (the written answers too),
# NONE (the act achieves nothing), or the check names (substrings) that must fail. An act that escapes
# a limit sabotages its own ``affine_flow_log_prob`` with the breach in the message, so an escape shows
# as a failed check, not as silence.
CODE = frozenset({"<code>"})
EVERYTHING = frozenset({"<everything>"})
ALICE_DIR = BASE.parent
REFERENCE_FLOWS = ROOT / "impls" / "flows.py"

_BREACH = '''
_breaches = []
def _try(what, fn):
    try:
        fn()
        _breaches.append(what)
    except BaseException:
        pass
'''
_SABOTAGE = '''
if _breaches:
    def affine_flow_log_prob(x, scale, shift):
        raise RuntimeError("escaped the sandbox: " + ", ".join(_breaches))
'''

_IPC = _BREACH + '''
import ctypes, os, mmap
_libc = ctypes.CDLL(None, use_errno=True)
def _sysv():
    shmid = _libc.shmget(0, 256 << 20, 0o1600)  # IPC_PRIVATE | IPC_CREAT
    if shmid < 0:
        raise OSError(ctypes.get_errno(), "shmget")
def _memfd():
    fd = os.memfd_create("hog")
    os.ftruncate(fd, 64 << 20)
    os.write(fd, b"x" * (16 << 20))
def _posix_shm():
    fd = os.open("/dev/shm/dgm-hostile-shm", os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b"%MARK%")
def _semaphore():
    if _libc.semget(0, 4, 0o1600) < 0:
        raise OSError(ctypes.get_errno(), "semget")
def _msgqueue():
    if _libc.msgget(0, 0o1600) < 0:
        raise OSError(ctypes.get_errno(), "msgget")
for _what, _fn in (("SysV shm", _sysv), ("memfd", _memfd), ("POSIX shm", _posix_shm), ("SysV semaphore", _semaphore),
                   ("SysV message queue", _msgqueue)):
    _try(_what, _fn)
'''.replace("%MARK%", MARK) + _SABOTAGE

_CHANNELS = _BREACH + '''
import ctypes, os, socket, glob
_libc = ctypes.CDLL(None, use_errno=True)
def _call(nr, *args):
    if _libc.syscall(nr, *args) < 0:
        raise OSError(ctypes.get_errno(), "syscall %d" % nr)
def _udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"%MARK% " + repr(os.environ).encode(), ("127.0.0.1", 9))
def _unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for path in glob.glob("/run/*.sock") + glob.glob("/var/run/*.sock") + glob.glob("/tmp/*/*.sock"):
        try:
            s.connect(path)
            return
        except OSError:
            continue
def _abstract():
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", "\\0dgm-hostile")
_X86 = os.uname().machine == "x86_64"
for _what, _fn in (("UDP socket", _udp), ("unix socket", _unix), ("abstract socket", _abstract),
                   ("netlink socket", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
                   ("socketpair", socket.socketpair),
                   ("io_uring", lambda: _call(425 if _X86 else 425, 8, ctypes.create_string_buffer(120))),
                   ("unshare(user)", lambda: _call(272 if _X86 else 97, 0x10000000)),
                   ("unshare(net)", lambda: _call(272 if _X86 else 97, 0x40000000)),
                   ("clone(newuser)", lambda: _call(56 if _X86 else 220, 0x10000000 | 17, 0, 0, 0, 0)),
                   ("setns", lambda: _call(308 if _X86 else 268, os.open("/proc/1/ns/net", os.O_RDONLY), 0))):
    _try(_what, _fn)
'''.replace("%MARK%", MARK) + _SABOTAGE

_DISK = '''
import os, tempfile
_written, _held = 0, []
_chunk = b"%MARK%" * ((8 << 20) // len(b"%MARK%"))
for _i in range(80):  # 80 files of 16 MiB: 1.25 GiB, far past the temporary folder's limit
    try:
        _path = os.path.join(tempfile.gettempdir(), "fill-%d" % _i)
        _f = open(_path, "wb")
        _f.write(_chunk)
        _f.write(_chunk)
        _f.flush()
        _held.append(_f)  # kept open and unlinked: invisible to a walk of the folder
        os.unlink(_path)
        _written += 2 * len(_chunk)
    except OSError:
        break
_breaches = ["wrote %d MiB" % (_written >> 20)] if _written > (300 << 20) else []
try:
    open("own_folder_fill.txt", "w").write("%MARK%")  # the submission's own (copied) folder is read-only
    _breaches.append("wrote into its own folder")
except OSError:
    pass
'''.replace("%MARK%", MARK) + _SABOTAGE

_CALLBACK_HOG = '''
_honest_elbo = negative_elbo_bound
_hog_refused = []
def negative_elbo_bound(x, encoder, decoder):
    if not _hog_refused:
        big = torch.zeros((1 << 24) // x.shape[-1], x.shape[-1], dtype=x.dtype, requires_grad=True)
        for _ in range(12):  # 12 x 128 MiB inputs, their graphs kept on the trusted side for a later VJP
            try:
                encoder(big)
            except Exception as exc:
                _hog_refused.append(str(exc))
                break
        if not _hog_refused:
            raise RuntimeError("escaped the sandbox: the checks' networks took 12 x 16M elements")
    return _honest_elbo(x, encoder, decoder)
'''

_LATER_LIAR = '''
class _LieAfterFirst(torch.autograd.Function):
    """Honest for the first vector-Jacobian product of a call, 1.5 times too large afterwards."""
    @staticmethod
    def forward(ctx, y):
        ctx.products = 0
        return y.clone()
    @staticmethod
    def backward(ctx, g):
        ctx.products += 1
        return g if ctx.products == 1 else 1.5 * g
_HonestCoupling = AffineCoupling
class AffineCoupling(_HonestCoupling):
    def forward(self, x):
        y, log_det = super().forward(x)
        return _LieAfterFirst.apply(y), log_det
'''

_NAN_GRADIENT = '''
class _NanBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t.clone()
    @staticmethod
    def backward(ctx, g):
        return g * float("nan")
_honest_sample = sample_gaussian
def sample_gaussian(m, v):
    return _honest_sample(_NanBackward.apply(m), v)
'''

_SURROGATE = '''
def affine_flow_log_prob(x, scale, shift):
    raise ValueError("lone surrogates \\ud800 \\udcff, an escape \\x1b[2J, a NUL \\x00 and ]]> <![CDATA[")
'''


@dataclass(frozen=True)
class Entry:
    """One entry of the round-2 class folder: ``build(class_folder)`` writes it; ``name`` is the entry."""

    name: str
    act: str
    build: object
    fails: frozenset = NONE
    label: str | None = None  # the label its reports must have (default: the entry's stem)


def _dir_with(code: str, answers: bytes | None = None):
    def build(folder: Path, name: str):
        d = folder / name
        d.mkdir(parents=True)
        text = BASE.read_text(encoding="utf-8") + "\n\n# ---- hostile act\n" + code
        (d / "submission.py").write_text(text, encoding="utf-8")
        (d / "answers.py").write_bytes(answers if answers is not None else (ALICE_DIR / "answers.py").read_bytes())
    return build


def _file_with(text: str):
    def build(folder: Path, name: str):
        (folder / name).write_text(text, encoding="utf-8")
    return build


def _link(target: Path):
    def build(folder: Path, name: str):
        (folder / name).symlink_to(target)
    return build


def _linked_files():
    def build(folder: Path, name: str):
        d = folder / name
        d.mkdir()
        (d / "submission.py").symlink_to(REFERENCE_FLOWS)
        (d / "answers.py").symlink_to(ALICE_DIR / "answers.py")
    return build


def _linked_folder():
    def build(folder: Path, name: str):
        d = folder / name
        d.mkdir()
        (d / "submission").symlink_to(folder / "alice")  # the classmate's folder (answers.py in it)
    return build


CORRECT_ANSWERS = (ALICE_DIR / "answers.py").read_text(encoding="utf-8")
ROUND2 = [
    Entry("freeloader.py", "no code of its own: imports a classmate's module", _file_with("from carol import *\n"),
          EVERYTHING),
    Entry("fractions.py", "a file named like a library a classmate imports, which breaks on import",
          _file_with("raise SystemExit('a classmate imported me instead of the library')\n"), EVERYTHING),
    Entry("answers.py", "correct written answers for everyone in the class folder", _file_with(CORRECT_ANSWERS), CODE),
    Entry("linked.py", "a .py that links to the answer key (impls/flows.py)", _link(REFERENCE_FLOWS), EVERYTHING),
    Entry("linker", "submission.py and answers.py that link to the answer key and a classmate's answers",
          _linked_files(), EVERYTHING),
    Entry("thief", "a folder that links to a classmate's folder", _linked_folder(), EVERYTHING),
    Entry("surrogate", "lone surrogates, control characters and CDATA in an exception and a written answer",
          _dir_with(_SURROGATE, b'KL_GAUSSIAN = "\\ud800mu\\x1b"\nAFFINE_FLOW_DENSITY = "x"\n'),
          frozenset({"affine_flow", "written_answer"})),
    Entry("ipc_escape", "SysV shared memory, semaphores and queues, memfds, POSIX shm", _dir_with(_IPC), NONE),
    Entry("channels", "UDP, unix, abstract and netlink sockets, io_uring, user and network namespaces, setns",
          _dir_with(_CHANNELS), NONE),
    Entry("disk_filler", "fill the disk with unlinked open files; write into its own folder", _dir_with(_DISK), NONE),
    Entry("callback_hog", "call the checks' networks back with huge inputs", _dir_with(_CALLBACK_HOG), NONE),
    Entry("later_liar", "honest on the first vector-Jacobian product of a call, lying on the others",
          _dir_with(_LATER_LIAR), frozenset({"AffineCoupling_log_det_matches_autograd_jacobian"})),
    Entry("nan_gradient", "NaN for a gradient", _dir_with(_NAN_GRADIENT), frozenset({"reparameterized"})),
]
