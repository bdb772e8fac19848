"""The sandbox: student code runs only in a confined worker; verdicts and reports stay trusted.

* a class of hostile submissions (tests/hostile.py) graded together with honest ones: every act
  is contained (its checks fail, the others pass, honest students are unaffected, nothing is
  written outside the sandbox, nothing is left running);
* the worker's confinement seen from inside (user, files, processes, network);
* the wire format refuses malformed messages; gradients are cross-checked by finite differences;
* sandboxed and in-process runs agree, check by check, on correct, buggy and CS236-layout code.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch

from tests import hostile
from tests.conftest import run_suite
from verify import loader
from verify.contract import CLASS_NAMES, CONTRACT_NAMES, FUNCTION_NAMES
from grader.catalogue import plant
from grader import rubric
from grader.runner import grade
from sandbox import wire
from sandbox.errors import SandboxError
from sandbox.process import UID_BASE, Sandbox
from sandbox.remote import RemoteFunction
from grader.catalogue.reference import write_reference_submission

REPO = Path(__file__).resolve().parents[1]
ALICE = REPO / "examples" / "class" / "alice"
BOB = REPO / "examples" / "class" / "bob"
CHECK_SECONDS = 10.0  # per check in the hostile runs: a hung function costs this once
# The checks graded in the hostile runs: every check of affine_flow_log_prob (where the acts aim),
# and some of other names, among them a class living in the worker, callbacks to the checks'
# networks, gradients, and a written answer (the whole suite for 26 submissions would take minutes).
CHECKS = ("affine_flow or kl_normal_matches or sample_gaussian_reparameterized or AffineCoupling_shapes "
          "or AffineCoupling_invertible or elbo_bound_rec_by_replay or iwae_bound_exact or written_answer_KL")
WRITTEN_NAMES = ("results.json", "junit.xml", "gradebook.csv", "report.json", "dgm_pwned.txt")


def _marked_files(roots) -> list[str]:
    """Files the hostile acts would have written (their names, holding hostile.MARK) under ``roots``."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__", "node_modules")]
            if dirpath.count(os.sep) - str(root).count(os.sep) > 4:
                dirnames[:] = []
            for name in set(filenames) & set(WRITTEN_NAMES):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, errors="replace") as f:
                        if hostile.MARK in f.read(4096):
                            found.append(path)
                except OSError:
                    continue
    return found


def _processes_mentioning(text: str) -> list[str]:
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                left.append(f"{entry}: {cmd[:200]}")
    return left


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """Every hostile submission, alice (correct) and bob (buggy), graded in one class with 2 jobs."""
    root = tmp_path_factory.mktemp("hostile-class")
    folder = root / "class"
    for h in hostile.HOSTILE:
        hostile.write(h, folder / h.name)
    for honest in (ALICE, BOB):
        (folder / honest.name).mkdir()
        for f in honest.iterdir():
            (folder / honest.name / f.name).write_bytes(f.read_bytes())
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    start = time.monotonic()
    results = grade([str(folder)], rubric.load(), jobs=2, timeout=300, progress=False,
                    check_timeout=CHECK_SECONDS, memory_mb=1536, select=CHECKS)
    seconds = time.monotonic() - start
    time.sleep(3.5)  # the detached writer's thread would write after 2-3 s
    alone = grade([str(BOB)], rubric.load(), progress=False, in_process=True, select=CHECKS)[0]
    return {"results": {r.label: r for r in results}, "folder": folder, "root": root, "before": before,
            "seconds": seconds, "bob_alone": alone}


@pytest.mark.parametrize("h", hostile.HOSTILE, ids=lambda h: h.name)
def test_hostile_act_is_contained(hostile_class, h):
    """The act's checks fail (with a message naming what happened); every other check passes."""
    result = hostile_class["results"][h.name]
    wrong = []
    for c in result.checks:
        # ALL: every check of the code (the written answers are read from answers.py as text, not run)
        touched = bool(set(c.targets) & set(CONTRACT_NAMES)) if h.fails == hostile.ALL else \
            bool(set(c.targets) & h.fails)
        expected = "failed" if touched else "passed"
        if c.outcome != expected:
            wrong.append(f"{c.name}: {c.outcome}, expected {expected} ({c.message[:300]})")
    assert not wrong, f"{h.name} ({h.act}):\n" + "\n".join(wrong)
    if h.message:
        failing = [c.message for c in result.checks if c.outcome == "failed"]
        assert any(any(phrase in m for phrase in h.message.split("|")) for m in failing), (
            f"{h.name}: no failure message mentions {h.message!r}; first: {failing[:1]}")
    # bounded: a hung function costs one check time limit, then its other checks fail at once
    assert result.execution_time < 120, f"{h.name} took {result.execution_time:.0f} s"


def test_honest_students_are_unaffected(hostile_class):
    """alice passes everything; bob's check-by-check outcomes equal his graded alone (in process)."""
    results = hostile_class["results"]
    assert len(results["alice"].checks) >= 15 and not results["alice"].failed(), \
        [c.message for c in results["alice"].failed()]
    graded_with_class = {c.nodeid: c.outcome for c in results["bob"].checks}
    graded_alone = {c.nodeid: c.outcome for c in hostile_class["bob_alone"].checks}
    assert graded_with_class == graded_alone
    assert any(o == "failed" for o in graded_alone.values())  # bob's bugs are among the checks graded


def test_nothing_written_outside_the_sandbox(hostile_class):
    roots = [REPO, hostile_class["root"], Path("/tmp"), Path.home()]
    assert _marked_files(roots) == []
    changed = [str(p) for p, t in hostile_class["before"].items() if not p.exists() or p.stat().st_mtime_ns != t]
    assert changed == [], "the submissions' own folders changed"


def test_nothing_left_running(hostile_class):
    assert _processes_mentioning(str(hostile_class["folder"])) == []


def test_time_bound(hostile_class):
    """Two infinite loops cost one check time limit each, not one per check."""
    assert hostile_class["seconds"] < 400


# --------------------------------------------------------------------------- confinement
PROBE = '''
import os, socket, torch

def log_mean_exp(x, dim):
    """Returns what the worker could do: [uid, read repo, write /tmp, fork, connect, read the parent's cmdline]."""
    def attempt(fn):
        try:
            fn()
            return 1.0
        except Exception:
            return 0.0
    def read_repo():
        open(os.environ.get("DGM_PROBE_REPO", "REPO/verify/__init__.py")).read()
    def write_tmp():
        open("/tmp/dgm_probe_write.txt", "w").write("x")
    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    def connect():
        s = socket.create_connection(("127.0.0.1", 22), timeout=1)
        s.close()
    def parent_cmdline():
        open("/proc/%d/cmdline" % os.getppid()).read()
    return torch.tensor([float(os.getuid()), attempt(read_repo), attempt(write_tmp), attempt(fork),
                         attempt(connect), attempt(parent_cmdline)], dtype=torch.float64)
'''


def test_worker_confinement_seen_from_inside(tmp_path):
    sub = tmp_path / "probe.py"
    sub.write_text(PROBE.replace("REPO", str(REPO)))
    sandbox = Sandbox(sub, FUNCTION_NAMES, CLASS_NAMES).start()
    try:
        assert sandbox.load_error is None, sandbox.load_error
        uid, read_repo, write_tmp, fork, connect, parent_cmdline = RemoteFunction(sandbox, "log_mean_exp")(
            torch.zeros(1), 0).tolist()
        report = "\n".join(sandbox.confinement)
    finally:
        sandbox.stop()
    if os.geteuid() == 0:
        assert uid == UID_BASE + os.getpid(), report
    assert fork == 0.0, f"the worker could fork\n{report}"
    if "landlock ABI" in report:
        assert read_repo == 0.0, f"the worker could read the grader's files\n{report}"
        assert write_tmp == 0.0 and not Path("/tmp/dgm_probe_write.txt").exists(), report
        assert parent_cmdline == 0.0, f"the worker could read the grader's command line (output paths)\n{report}"
        if "no TCP" in report:
            assert connect == 0.0, report
    else:
        pytest.skip(f"Landlock is not available here: file confinement not tested\n{report}")


def test_answer_key_import_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "submission.py").write_text("import impls\n")
    impl = loader.load(tmp_path)
    try:
        assert "may not import `impls`" in (impl.error or ""), impl.error
    finally:
        impl.close()


# --------------------------------------------------------------------------- wire format
def _decode(message: bytes):
    pos = [0]

    def recv(n):
        chunk = message[pos[0]:pos[0] + n]
        if len(chunk) < n:
            raise EOFError
        pos[0] += n
        return chunk

    header, buffers = wire.read_message(recv)
    return wire.decode(header["payload"], buffers)


def _raw(header_json: str, *buffers: bytes) -> bytes:
    body = header_json.encode()
    return len(body).to_bytes(4, "big") + body + b"".join(buffers)


@pytest.mark.parametrize("header, buffers, why", [
    ('{"payload": {"t": "tensor", "dtype": "object", "shape": [1], "nbytes": 8}}', [b"\0" * 8], "dtype"),
    ('{"payload": {"t": "tensor", "dtype": "float64", "shape": [2], "nbytes": 8}}', [b"\0" * 8], "does not match"),
    ('{"payload": {"t": "tensor", "dtype": "float64", "shape": [-1], "nbytes": 8}}', [b"\0" * 8], "shape"),
    ('{"payload": {"t": "pickle", "data": "gASV"}}', [], "unknown value tag"),
    ('{"payload": {"t": "ref", "kind": "module", "id": 1}}', [], "bad reference"),
    ('{"payload": NaN}', [], "not allowed"),
    ('{"payload": ' + '{"t": "list", "items": [' * 40 + ']}' * 40 + '}', [], "deeply"),
], ids=["dtype", "size-mismatch", "negative-shape", "pickle", "ref-kind", "nan-constant", "nesting"])
def test_wire_refuses_malformed_messages(header, buffers, why):
    with pytest.raises(wire.ProtocolError, match=why):
        _decode(_raw(header, *buffers))


def test_wire_refuses_oversized_headers():
    with pytest.raises(wire.ProtocolError, match="header of"):
        _decode((wire.MAX_HEADER_BYTES + 1).to_bytes(4, "big"))


def test_wire_round_trips_values():
    value = {"a": (torch.arange(6.0).reshape(2, 3).T, [1, 2.5, float("nan"), None, "s"]),
             "b": torch.tensor(True), "c": torch.zeros(0, 3, dtype=torch.float16)}
    back = _decode(wire.encode({"payload": value}))
    assert torch.equal(back["a"][0], value["a"][0]) and back["a"][0].dtype == torch.float32
    assert back["a"][1][:2] == [1, 2.5] and back["a"][1][2] != back["a"][1][2] and back["a"][1][3:] == [None, "s"]
    assert back["b"].item() is True and back["c"].shape == (0, 3) and back["c"].dtype == torch.float16


def test_wire_never_sends_arbitrary_objects():
    with pytest.raises(TypeError, match="cannot be sent"):
        wire.encode({"payload": socket.socket})


# --------------------------------------------------------------------------- gradients
LYING_GRADIENT = '''
import torch

class _Sample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, m, v):
        eps = torch.randn_like(m)
        ctx.save_for_backward(v, eps)
        return m + v.sqrt() * eps

    @staticmethod
    def backward(ctx, g):
        v, eps = ctx.saved_tensors
        return 2 * g, g * eps / (2 * v.sqrt())   # d/dm is 1, not 2

def sample_gaussian(m, v):
    return _Sample.apply(m, v)
'''


def test_gradients_are_cross_checked_by_finite_differences(tmp_path):
    (tmp_path / "submission.py").write_text(LYING_GRADIENT)
    impl = loader.load(tmp_path)
    try:
        m = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
        v = torch.full((4, 3), 0.5, dtype=torch.float64, requires_grad=True)
        z = impl.sample_gaussian(m, v)
        with pytest.raises(SandboxError, match="do not match its outputs"):
            torch.autograd.grad(z.sum(), (m, v))
    finally:
        impl.close()


def test_true_gradients_pass_the_cross_check(tmp_path):
    impl = loader.load(write_reference_submission(tmp_path / "ref"))
    try:
        m = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
        v = torch.full((4, 3), 0.5, dtype=torch.float64, requires_grad=True)
        z = impl.sample_gaussian(m, v)
        gm, gv = torch.autograd.grad((z * z).sum(), (m, v))
        eps = (z.detach() - m.detach()) / v.detach().sqrt()
        assert torch.allclose(gm, 2 * z.detach()) and torch.allclose(gv, z.detach() * eps / v.detach().sqrt())
    finally:
        impl.close()


# --------------------------------------------------------------------------- agreement
def _agreement_cases(tmp_path):
    yield "reference", write_reference_submission(tmp_path / "reference")
    yield "bob", BOB
    yield "cs236", REPO / "tests" / "variants" / "cs236"
    yield "iwae_grouping_bug", plant("iwae_grouping_bug", tmp_path / "iwae")
    yield "coupling_bug", plant("coupling_log_det_not_masked", tmp_path / "coupling")


def test_sandboxed_and_in_process_runs_agree(tmp_path):
    """The stand-ins are faithful: the same checks pass and fail either way (networks called back,
    RNG state carried across, the CS236 VAE adapter, a class living in the worker)."""
    for name, sub in _agreement_cases(tmp_path):
        fenced = run_suite(sub, in_process=False)
        direct = run_suite(sub, in_process=True)
        assert not fenced.errors and not direct.errors, (name, fenced.errors, direct.errors)
        assert sorted(fenced.passed) == sorted(direct.passed), (
            name, set(fenced.passed) ^ set(direct.passed), {k: v[-300:] for k, v in fenced.failed.items()})
        if name == "reference":
            assert not fenced.failed, list(fenced.failed)
