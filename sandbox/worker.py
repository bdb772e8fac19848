"""The sandbox worker: the only process that runs student code.

Started by :class:`sandbox.process.Sandbox` as ``python -I -B worker.py CONFIG SOCKET_FD`` in a
fresh session, with a scrubbed environment, stdin closed and stdout/stderr going to a capped log
file, or forked in that state from the clean zygote ``worker.py --zygote`` (see ``zygote_main``
below; ``python -m verify grade`` uses one per job). It confines itself (``confine.py``), imports
the submission from its private copy, reports
the contract names it found, and then serves requests on the socket until told to exit:

    call    name;  payload {args, kwargs, rng, grad}    a contract function
    new     name;  payload {args, kwargs, rng, grad}    construct a contract class -> an object reference
    method  obj, method;  payload {args, kwargs, ...}  forward / inverse / __call__ of such an object
    vjp     call;  payload [grad per output tensor]     gradients w.r.t. each input tensor of that call
    exit

answering ``ok`` (payload {value, rng}; ``call``: an id for ``vjp`` when the call kept a graph) or
``raised`` (``type``; payload: the message). The networks the checks pass in stay in the trusted
process: here they are stand-ins whose forward (and backward) are ``callback`` (``callback_vjp``)
requests back over the same socket. Every message is ``wire`` format, never pickle. This file
imports nothing from ``verify`` (it cannot: the worker is not allowed to read it); its siblings
``wire``, ``confine`` and ``submission`` are loaded by path before the lockdown.
"""
from __future__ import annotations

import importlib.util
import os
import random
import socket
import sys
import zlib
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))


def _sibling(name):
    spec = importlib.util.spec_from_file_location(f"_dgm_sandbox_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BLOCKED_PACKAGES = ("impls", "verify", "derivations", "sandbox", "grader", "training", "benchmarks")
RETAINED_CALLS = 64
PREIMPORTS = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch.distributions", "torch.autograd",
              "torch.autograd.functional", "math", "functools", "itertools")


class AnswerKeyBlocker:
    """A meta-path finder that refuses the grader's own packages with a clear message."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(f"a submission may not import `{fullname}`: the grader's packages "
                              f"({', '.join(BLOCKED_PACKAGES)}) are not available to student code")
        return None


class Channel:
    """Requests and replies over the socket to the trusted process."""

    def __init__(self, sock, wire):
        self.sock, self.wire = sock, wire

    def recv_exact(self, n):
        chunks, got = [], 0
        while got < n:
            b = self.sock.recv(min(n - got, 1 << 20))
            if not b:
                raise EOFError("the trusted side closed the connection")
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def send(self, header, ref_of=None):
        self.sock.sendall(self.wire.encode(header, ref_of))

    def read(self):
        return self.wire.read_message(self.recv_exact)


class Worker:
    def __init__(self, channel, wire, torch, namespace, class_names):
        self.ch, self.wire, self.torch = channel, wire, torch
        self.namespace, self.class_names = namespace, set(class_names)
        self.objects: dict[int, object] = {}
        self.calls: OrderedDict = OrderedDict()  # call id -> (grad inputs, outputs)
        self.next_id = 1
        self.RemoteNet = _remote_net_class(self)

    # -- references both ways
    def make_ref(self, ref):
        if ref.kind == "fn":
            return self.RemoteNet(ref.id, ref.attrs)
        obj = self.objects.get(ref.id)
        if obj is None:
            raise LookupError(f"object {ref.id} does not exist (any more) in this worker")
        return obj

    def ref_of(self, value):
        if isinstance(value, self.torch.nn.Module) or type(value).__name__ in self.class_names:
            return self.wire.Ref("obj", self._keep(value), {"type": type(value).__name__})
        raise TypeError(f"returned a {type(value).__module__}.{type(value).__name__}, which cannot leave the sandbox "
                        "(outputs must be tensors, numbers, or tuples/lists of them)")

    # -- serving
    def serve(self):
        while True:
            try:
                header, buffers = self.ch.read()
            except EOFError:
                return
            op = header.get("op")
            if op == "exit":
                os._exit(0)  # no interpreter shutdown: nothing of the student's runs after this
            try:
                reply = self.handle(op, header, buffers)
            except BaseException as exc:  # the student's code raised (SystemExit, KeyboardInterrupt... included)
                reply = {"op": "raised", "type": type(exc).__name__, "payload": _message(exc)}
            try:
                self.ch.send(reply, self.ref_of)
            except Exception as exc:  # an output the wire format cannot carry
                self.ch.send({"op": "raised", "type": "UnsendableOutput", "payload": str(exc)})

    def handle(self, op, header, buffers):
        torch = self.torch
        value = self.wire.decode(header.get("payload"), buffers, make_ref=self.make_ref, honor_grad=True, device="auto")
        if op == "vjp":
            return self.vjp(header.get("call"), value)
        args, kwargs = value.get("args", ()), value.get("kwargs", {})
        rng = value.get("rng")
        if rng is not None:
            torch.set_rng_state(rng)
            seed = zlib.crc32(rng.numpy().tobytes())
            random.seed(seed)
            sys.modules["numpy"].random.seed(seed)
        if op in ("call", "new"):
            fn = self.namespace[header["name"]]
        elif op == "method":
            obj = self.objects.get(header.get("obj"))
            if obj is None:
                raise LookupError("this object no longer exists in the worker")
            if header.get("method") not in ("__call__", "forward", "inverse"):
                raise AttributeError(f"method {header.get('method')!r} is not part of the contract")
            fn = getattr(obj, header["method"])
        else:
            raise ValueError(f"unknown request {op!r}")
        ins, _ = self.wire.flatten((args, kwargs))
        before = [t.detach().clone() for t in ins]
        with torch.set_grad_enabled(bool(value.get("grad"))):
            out = fn(*args, **kwargs)
        _require_unchanged(ins, before)
        reply = {"op": "ok", "payload": {"value": out, "rng": torch.get_rng_state()}}
        if op == "new":
            reply["payload"]["value"] = self.wire.Ref("obj", self._keep(out), {"type": type(out).__name__})
            return reply
        outs, _ = self.wire.flatten(out)
        if any(t.requires_grad for t in outs) and any(t.requires_grad for t in ins):
            cid = self.next_id
            self.next_id += 1
            self.calls[cid] = (ins, outs)
            while len(self.calls) > RETAINED_CALLS:
                self.calls.popitem(last=False)
            reply["call"] = cid
        return reply

    def _keep(self, obj):
        oid = self.next_id
        self.next_id += 1
        self.objects[oid] = obj
        return oid

    def vjp(self, cid, grads):
        if cid not in self.calls:
            raise LookupError("the call to differentiate is no longer retained in the worker")
        return {"op": "ok", "payload": {"value": self.wire.vector_jacobian(*self.calls[cid], grads)}}


class InputModified(Exception):
    """A contract function changed a tensor it was given (the trusted side holds its own copy, so only
    the worker can see it)."""


def _require_unchanged(ins, before):
    """Compare what a call received before and after it ran (NaN where NaN was counts as unchanged)."""
    for i, (a, b) in enumerate(zip(ins, before), 1):
        a = a.detach()
        same = a.shape == b.shape and (bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point()
                                       else bool((a == b).all()))
        if not same:
            raise InputModified(f"it modified its input tensor {i} (shape {tuple(b.shape)}) in place: a contract "
                                "function must leave its inputs unchanged (compute on a copy: x = x - c, not x -= c "
                                "or x.sub_(c))")


def _message(exc) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "(its message could not be printed)"
    tb = exc.__traceback__
    where = ""
    while tb is not None:  # the innermost frame of the submission's own files
        name = tb.tb_frame.f_code.co_filename
        if not name.startswith(HERE) and "site-packages" not in name and not name.startswith(sys.base_prefix):
            where = f" (at {os.path.basename(name)}:{tb.tb_lineno})"
        tb = tb.tb_next
    return (text[:3000] + where) if text else where.strip()


def _remote_net_class(worker):
    torch = worker.torch
    wire = worker.wire

    class RemoteCall(torch.autograd.Function):
        @staticmethod
        def forward(ctx, net_id, box, *leaves):
            args = wire.unflatten(box["spec"], list(leaves))
            ctx.net_id = net_id
            reply = worker.ask({"op": "callback", "fn": net_id, "payload": {"args": args, "grad": True}})
            out_leaves, out_spec = wire.flatten(reply["value"])
            box["out_spec"] = out_spec
            ctx.call = reply.get("call")
            ctx.n_in = len(leaves)
            return tuple(out_leaves)

        @staticmethod
        def backward(ctx, *grads):
            if ctx.call is None:
                return (None, None) + (None,) * ctx.n_in
            reply = worker.ask({"op": "callback_vjp", "call": ctx.call, "payload": list(grads)})
            return (None, None, *reply["value"])

    class RemoteNet(torch.nn.Module):
        """Stands for one of the checks' networks: calling it asks the trusted process."""

        def __init__(self, net_id, attrs):
            super().__init__()
            self._net_id = net_id
            for k, v in attrs.items():
                if isinstance(k, str) and k.isidentifier() and not k.startswith("_"):
                    setattr(self, k, v)

        def forward(self, *args):
            leaves, spec = wire.flatten(args)
            if torch.is_grad_enabled() and any(t.requires_grad for t in leaves):
                box = {"spec": spec}
                out = RemoteCall.apply(self._net_id, box, *leaves)
                return wire.unflatten(box["out_spec"], list(out))
            reply = worker.ask({"op": "callback", "fn": self._net_id, "payload": {"args": args, "grad": False}})
            return reply["value"]

        def encode(self, *args):
            return self(*args)

        def decode(self, *args):
            return self(*args)

        def classify(self, *args):
            return self(*args)

    return RemoteNet


def _ask(self, header):
    """Send a callback request to the trusted process and wait for its answer."""
    self.ch.send(header)
    reply, buffers = self.ch.read()
    value = self.wire.decode(reply.get("payload"), buffers, device="auto")
    if reply.get("op") == "raised":
        raise RuntimeError(value if isinstance(value, str) else "the checks' network raised an error")
    return {"value": value, "call": reply.get("call")}


Worker.ask = _ask


def _load_modules():
    """The worker's libraries and siblings, imported before the lockdown: (wire, confine, submission, torch)."""
    wire = _sibling("wire")
    confine = _sibling("confine")
    submission = _sibling("submission")
    import importlib

    for name in PREIMPORTS:
        importlib.import_module(name)
    import torch

    _warm_autograd(torch)
    return wire, confine, submission, torch


def _warm_autograd(torch):
    """One vector-Jacobian product on fixed tensors, before any student code: the first one with
    explicit output gradients imports torch's symbolic-shape machinery (sympy, mpmath), 0.3 s that
    every forked worker would otherwise pay again on its first gradient. No randomness, no threads."""
    x = torch.linspace(0.5, 1.5, 4, dtype=torch.float64, requires_grad=True)
    y = (x ** 2 / x.exp() + x.log() + torch.tanh(x)).logsumexp(0, keepdim=True)
    torch.autograd.grad(y, x, torch.ones_like(y))


def main(argv):
    import json

    config = json.loads(argv[1])
    sock = socket.socket(fileno=int(argv[2]))
    try:
        os.close(0)  # stdin: closed
    except OSError:
        pass
    return _serve_submission(config, sock, *_load_modules())


def _serve_submission(config, sock, wire, confine, submission, torch):
    """Confine this process, import the submission, report its names and serve requests."""
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    # the gradient cross-check (gradients.py) calls again at inputs moved off the data (x + h u, no
    # longer 0/1): torch.distributions' argument validation (Bernoulli(logits).log_prob(x)) must not refuse them
    torch.distributions.Distribution.set_default_validate_args(False)
    if config.get("cuda") and torch.cuda.is_available():
        torch.cuda.init()  # before the lockdown: it opens the driver's files and maps its memory
    channel = Channel(sock, wire)
    report = []
    try:
        report += _confine(config, confine)
    except Exception as exc:
        channel.send({"op": "failed", "payload": f"the sandbox could not confine its worker: {exc}"})
        return 3
    os.chdir(config["submission_dir"])
    sys.meta_path.insert(0, AnswerKeyBlocker())
    sys.path[:] = [p for p in sys.path if p and not any(p == r or p.startswith(r + os.sep) for r in config["hidden"])]
    error, namespace, notes = None, {}, []
    try:
        namespace = submission.load_namespace(config["submission"], config["functions"], config["classes"], notes,
                                              keep_stand_ins=True)
    except submission.LoadError as exc:
        error = str(exc)
    except BaseException as exc:
        error = f"{type(exc).__name__} while importing: {exc}"
    channel.send({"op": "ready", "payload": {"names": {n: type(v).__name__ for n, v in namespace.items()},
                                             "error": error,
                                             "callable": [n for n in namespace if callable(namespace[n])],
                                             "confinement": report, "notes": notes}})
    if error is None:
        Worker(channel, wire, torch, namespace, config["classes"]).serve()
    return 0


def _confine(config, confine):
    """Limits, private tmpfs, no new privileges, Landlock, own uid, death with the parent, seccomp: the report."""
    report = confine.set_limits(config["cpu_seconds"], None if config.get("cuda") else config["address_space"],
                                config["file_size"], processes=config.get("processes"))
    report += confine.private_tmpfs(config["tmp"], config["tmp_bytes"], config["tmp_files"], config.get("uid"))
    confine.no_new_privileges()
    own = [f"/proc/{os.getpid()}"]  # of /proc, only itself: not the command lines of the grader's processes
    report += confine.landlock(config["read_roots"] + own, [config["tmp"]], config["write_files"])
    landlocked = report[-1].startswith("landlock ABI")
    if config.get("uid") is not None:
        keep = landlocked and not all(confine.readable_by_others(p) for p in config["python_files"])
        report += confine.drop_user(config["uid"], config["gid"], keep_read_search=keep)
    report += confine.die_with_parent(config["parent"])
    report += confine.forbid_processes()
    return report


# ------------------------------------------------------------------------------- the zygote
# ``worker.py --zygote FD``: a clean process (this file, its siblings, torch and numpy imported; no
# torch operation run, no thread started, no student code ever) that forks one worker per request
# on the SOCK_SEQPACKET socket FD, so that a worker's start costs a fork, not an interpreter and
# torch. A request is one byte with three descriptors (SCM_RIGHTS): the worker's end of its
# channel, its output pipe, and a control socket. The child becomes the worker: a session of its
# own, only those descriptors (stdin closed, output on 1 and 2), then it reads its configuration
# from its channel (so the zygote never sees which submission it runs) and goes on exactly as a
# freshly started worker. The zygote writes ``pid N`` on the control socket, then ``exit CODE CPU`` when
# it reaped the worker (and its CPU seconds); when the trusted side closes the control socket (it stopped the worker, or
# died), the zygote kills the worker's session. End of requests: the zygote kills its workers and exits.
ZYGOTE_POLL = 0.05


def zygote_main(fd):
    import gc

    modules = _load_modules()
    gc.freeze()  # torch's import objects: never collected, so each worker's collections skip them
    requests = socket.socket(fileno=fd)
    live = {}  # worker pid -> its control socket
    import select
    import signal

    while True:
        readable, _, _ = select.select([requests, *live.values()], [], [], ZYGOTE_POLL)
        _zygote_reap(live)
        for s in readable:
            if s is requests:
                if not _zygote_fork(requests, live, modules):
                    for pid in live:
                        _kill_session(pid)
                    for pid in live:  # reaped: their CPU time counts in this process's children's
                        try:
                            os.waitpid(pid, 0)
                        except ChildProcessError:
                            pass
                    os._exit(0)
            elif pid_of := next((p for p, c in live.items() if c is s), None):
                try:
                    gone = not s.recv(64)
                except OSError:
                    gone = True
                if gone:
                    _kill_session(pid_of)


def _kill_session(pid):
    import signal

    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _zygote_fork(requests, live, modules):
    """Fork a worker for one request; False when the trusted side closed the requests socket."""
    import array

    try:
        data, ancdata, _, _ = requests.recvmsg(16, socket.CMSG_SPACE(3 * array.array("i").itemsize))
    except OSError:
        return False
    if not data:
        return False
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return True
    chan, out, ctl = fds
    pid = os.fork()
    if pid == 0:
        _forked_worker(chan, out, modules)
    os.close(chan)
    os.close(out)
    control = socket.socket(fileno=ctl)
    live[pid] = control
    try:
        control.sendall(f"pid {pid}\n".encode())
    except OSError:
        _kill_session(pid)
    return True


def _zygote_reap(live):
    while live:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control = live.pop(pid, None)
        if control is not None:
            cpu = usage.ru_utime + usage.ru_stime  # the worker's CPU seconds (the grader's benchmarks)
            try:
                control.sendall(f"exit {os.waitstatus_to_exitcode(status)} {cpu:.3f}\n".encode())
            except OSError:
                pass
            control.close()


def _forked_worker(chan, out, modules):
    """In the forked child: the process a fresh worker would be, then the worker's life."""
    code = 3
    try:
        os.setsid()
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(chan, 3)
        os.closerange(4, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 1 << 16)
        os.close(0)  # stdin: closed, as in a fresh worker
        sock = socket.socket(fileno=3)
        config = _read_config(sock)
        os.chdir(config["workdir"])
        os.environ.clear()
        os.environ.update(config["environment"])
        config["parent"] = os.getppid()  # the zygote: it kills this worker when the trusted side goes
        _name_process(f"{sys.executable} -I -B {os.path.abspath(__file__)} {config.get('origin', '')}")
        sys.argv = [os.path.abspath(__file__), "forked"]
        code = _serve_submission(config, sock, *modules)
    except BaseException:
        code = 3
    finally:
        os._exit(code)


def _name_process(title):
    """Write ``title`` over this process's command line (the zygote's padded argument area), so that
    ``ps`` and the grader's leftover checks see which submission a worker runs, as for a fresh worker."""
    try:
        import ctypes

        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49 of proc(5))
        data = title.encode(errors="replace")[:max(0, end - start - 1)]
        ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)
    except Exception:
        pass


def _read_config(sock):
    import json

    size = int.from_bytes(_recv_all(sock, 8), "big")
    if size > 1 << 24:
        raise ValueError("configuration too large")
    return json.loads(_recv_all(sock, size))


def _recv_all(sock, n):
    chunks, got = [], 0
    while got < n:
        b = sock.recv(n - got)
        if not b:
            raise EOFError("the trusted side closed the connection")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        zygote_main(int(sys.argv[2]))
    sys.exit(main(sys.argv))
