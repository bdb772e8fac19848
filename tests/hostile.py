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
