"""The channel to one worker: what a call says, requests and their answers with deadlines, and the
checks' networks served to the worker while it computes an answer.

Every message is ``wire`` format (a JSON header and raw tensor bytes; never pickle), and every
answer is validated as it is read (``wire.decode``: allowed dtypes, shapes that match their
bytes, size limits; nothing unpickled). While the worker runs student code it may ask for the
checks' networks (``callback``, ``callback_vjp``): those run here, on the trusted side, and their
graphs stay here for the worker's later vector-Jacobian requests.

A :class:`Channel` belongs to one worker process and dies with it (``process.Sandbox`` makes a new
one for each worker); it reports a deadline passed, the worker gone or a malformed message as
:class:`SandboxError` and leaves what to do about it (condemn, restart) to the sandbox.
"""
from __future__ import annotations

import contextlib
import functools
import signal
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from sandbox import wire
from sandbox.errors import SandboxError

LOG_TAIL = 600  # characters of the worker's log quoted when it ends
RETAINED_CALLBACKS = 256  # callback graphs kept for the worker's ``callback_vjp`` requests
CALLBACK_ELEMENTS = 1 << 23  # elements of all the tensors one callback may send the checks' networks (honest: 3M at most)
RETAINED_ELEMENTS = 1 << 26  # elements of the inputs and outputs of the callback graphs kept, together
WATCH_SECONDS = 0.25  # while it waits for the worker, the channel calls ``watch`` this often


@dataclass(frozen=True, eq=False)
class CallSpec:
    """One call in the worker: what runs, with which arguments, and how.

    ``op`` is ``"call"`` (a contract function), ``"new"`` (construct a contract class: the answer
    is an object reference) or ``"method"`` (``method`` of the object ``obj`` in the worker).
    """

    op: str
    name: str  # the contract name (for "method": the object's type)
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    target: str | None = None  # the name the call is reported and condemned under (None: ``name``)
    obj: int | None = None  # "method": the object's id in the worker
    method: str | None = None  # "method": forward, inverse or __call__
    rng: torch.Tensor | None = None  # the torch RNG state to run with (None: this process's, when sent)
    apply_rng: bool = True  # afterwards this process takes on the worker's RNG state (as if it ran here)
    grad: bool = False  # the worker keeps the call's graph for a vector-Jacobian product

    @property
    def label(self) -> str:
        """The contract name the call is reported and condemned under."""
        return self.target or self.name

    @property
    def what(self) -> str:
        """The call as messages name it: ``kl_normal(...)``, ``AffineCoupling.inverse(...)``."""
        method = self.method
        return f"{self.label}{'.' + method if method and method != '__call__' else ''}(...)"

    def header(self, rng_state: torch.Tensor) -> dict:
        """The request the worker reads (see ``worker.py``), run with ``rng_state``."""
        return {"op": self.op, "name": self.name, "obj": self.obj, "method": self.method,
                "payload": {"args": tuple(self.args), "kwargs": dict(self.kwargs), "rng": rng_state,
                            "grad": self.grad}}


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Channel:
    """The socket to one worker process, and the checks' networks that worker may call back.

    ``ids`` numbers the networks sent and the callback graphs kept (shared by the sandbox's
    successive channels); ``make_ref(wire.Ref)`` turns an object reference in an answer into its
    stand-in, or raises ``wire.ProtocolError``.
    """

    def __init__(self, sock, proc: subprocess.Popen, output, ids, make_ref):
        self.sock, self.proc, self.output = sock, proc, output  # output: the worker's (sandbox.output.CappedOutput)
        self._ids, self._make_ref = ids, make_ref
        self._fns: dict[int, object] = {}
        self._fn_ids: dict[int, int] = {}
        self._cb_calls: OrderedDict = OrderedDict()
        self._retained = 0  # elements of the callback graphs kept
        self.watch = None  # called while waiting (see WATCH_SECONDS); raises SandboxError to stop the worker

    def close(self):
        """Ask the worker to exit and close the socket (it may be gone already)."""
        with contextlib.suppress(OSError):
            self.sock.sendall(wire.encode({"op": "exit"}))
        with contextlib.suppress(OSError):
            self.sock.close()

    # ----------------------------------------------------------------------- messages
    def _recv_exact(self, deadline: float, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(min(remaining, WATCH_SECONDS))
            try:
                b = self.sock.recv(min(n - got, 1 << 20))
            except TimeoutError:
                if self.watch is not None:
                    self.watch()
                continue
            if not b:
                raise EOFError
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def read(self, deadline: float, what: str, budget: str):
        """The next message, ``(header, buffers)``, by ``deadline`` (``monotonic`` time; ``budget``
        names the limit in the message if it passes), or :class:`SandboxError`."""
        if self.watch is not None:
            self.watch()
        try:
            return wire.read_message(functools.partial(self._recv_exact, deadline))
        except TimeoutError:
            raise SandboxError(f"{what} did not finish within the time limit "
                               f"({budget}); the worker was stopped") from None
        except (EOFError, ConnectionError, OSError):
            code = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=2)
            raise SandboxError(f"the worker running the submission ended ({_describe_exit(code)}) during {what}"
                               f"{self._log_tail()}") from None
        except wire.ProtocolError as exc:
            raise SandboxError(f"the worker broke the protocol during {what}: {exc}") from None

    def _log_tail(self) -> str:
        try:
            text = self.output.last(LOG_TAIL).strip()
        except (AttributeError, OSError):
            return ""
        return f"; its last output: {text}" if text else ""

    def _send(self, header):
        self.sock.sendall(wire.encode(header))

    # ----------------------------------------------------------------------- requests
    def exchange(self, header: dict, what: str, deadline: float, budget: str, device=None):
        """Send one request; serve the worker's callbacks until its answer comes. Returns
        ``(op, value, call, answer)``: ``ok`` or ``raised``, the decoded payload, the call id
        (for ``vjp``) or None, and the answer's header. Raises :class:`SandboxError`, or
        ``OSError`` and ``wire.ProtocolError`` from sending and decoding."""
        __tracebackhide__ = True
        self.sock.sendall(wire.encode(header, self._ref_of))
        while True:
            msg, bufs = self.read(deadline, what, budget)
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

    def _ref_of(self, value):
        """A network in a request goes as a reference the worker calls back."""
        if callable(value):
            key = id(value)
            if key not in self._fn_ids:
                fid = next(self._ids)
                self._fns[fid] = value
                self._fn_ids[key] = fid
            attrs = {}
            for attr in ("z_dim", "y_dim"):  # the sizes a starter's class reads off its networks
                size = getattr(value, attr, None)
                if type(size) is int:
                    attrs[attr] = size
            return wire.Ref("fn", self._fn_ids[key], attrs)
        raise TypeError(f"a {type(value).__name__} cannot be sent to the sandbox")

    # ----------------------------------------------------------------------- callbacks
    def _serve_callback(self, msg, bufs, device):
        payload = wire.decode(msg.get("payload"), bufs, honor_grad=True, device=device)
        fn = self._fns.get(msg.get("fn"))
        try:
            if fn is None or not isinstance(payload, dict) or not isinstance(payload.get("args"), (tuple, list)):
                raise ValueError("unknown network or malformed arguments")
            ins, _ = wire.flatten(payload["args"])
            size = sum(t.numel() for t in ins)
            if size > CALLBACK_ELEMENTS:
                raise ValueError(f"refused: the checks' networks take at most {CALLBACK_ELEMENTS} input elements "
                                 f"in one call; this call sent {size}")
            grad = payload.get("grad") is True
            with torch.set_grad_enabled(grad):
                out = fn(*payload["args"])
            reply = {"op": "ok", "payload": out}
            outs, _ = wire.flatten(out)
            if grad and any(t.requires_grad for t in outs):
                reply["call"] = self._retain(ins, outs)
            self._send(reply)
        except Exception as exc:  # the student passed our network something it cannot take
            self._send({"op": "raised", "payload": f"{type(exc).__name__}: {exc}"})

    def _retain(self, ins, outs) -> int:
        """Keep a callback's graph for the worker's ``callback_vjp``: the latest ones, within
        RETAINED_CALLBACKS graphs and RETAINED_ELEMENTS elements."""
        cid = next(self._ids)
        size = sum(t.numel() for t in (*ins, *outs))
        self._cb_calls[cid] = (ins, outs, size)
        self._retained += size
        while len(self._cb_calls) > 1 and (len(self._cb_calls) > RETAINED_CALLBACKS
                                           or self._retained > RETAINED_ELEMENTS):
            self._retained -= self._cb_calls.popitem(last=False)[1][2]
        return cid

    def _serve_callback_vjp(self, msg, bufs, device):
        grads = wire.decode(msg.get("payload"), bufs, device=device)
        try:
            ins, outs, _ = self._cb_calls[msg.get("call")]
            if not isinstance(grads, list) or len(grads) != len(outs):
                raise ValueError("malformed gradients")
            for g, o in zip(grads, outs):
                if g is not None and (not isinstance(g, torch.Tensor) or g.shape != o.shape):
                    raise ValueError("gradient of the wrong shape")
            reply = {"op": "ok", "payload": wire.vector_jacobian(ins, outs, grads)}
            _accumulate_parameter_gradients(ins, outs, grads)
            self._send(reply)
        except Exception as exc:
            self._send({"op": "raised", "payload": f"{type(exc).__name__}: {exc}"})


def _graph_leaves(outs, exclude) -> list:
    """The leaf tensors that require grad in the graph of ``outs`` (a network's parameters), but ``exclude``."""
    skip, seen, leaves = {id(t) for t in exclude}, set(), []
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # an AccumulateGrad node
        if isinstance(leaf, torch.Tensor) and id(leaf) not in skip:
            leaves.append(leaf)
        stack.extend(n for n, _ in node.next_functions)
    return leaves


def _accumulate_parameter_gradients(ins, outs, grads):
    """Add the worker's backward pass through a callback to the ``.grad`` of the network's own
    parameters, as ``backward()`` does in process: the checks read the gradients of the networks
    they plug in (the bounds' encoder and decoder, the coupling's nets) whatever side ran the code."""
    pairs = [(o, g) for o, g in zip(outs, grads or []) if isinstance(g, torch.Tensor) and o.requires_grad]
    params = _graph_leaves([o for o, _ in pairs], ins)
    if not pairs or not params:
        return
    got = torch.autograd.grad([o for o, _ in pairs], params, [g.to(o.dtype) for o, g in pairs],
                              retain_graph=True, allow_unused=True)
    for p, g in zip(params, got):
        if g is not None:
            p.grad = g if p.grad is None else p.grad + g
