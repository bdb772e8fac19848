"""The sandbox's wire format: a length-prefixed JSON header, then the raw bytes of its tensors.

    message = u32 big-endian header length | header (UTF-8 JSON) | buffer 0 | buffer 1 | ...

Values in a header are JSON scalars (``null``, booleans, integers, strings, finite floats) or
tagged objects::

    {"t": "tensor", "dtype": "float64", "shape": [3, 2], "nbytes": 48, "grad": false}   # next buffer
    {"t": "ndarray", ...}                 # the same, decoded as a numpy array
    {"t": "float", "v": "nan"|"inf"|"-inf"}
    {"t": "tuple"|"list", "items": [...]}
    {"t": "dict", "items": {"key": ...}}  # string keys only
    {"t": "ref", "kind": "fn"|"obj", "id": 3, "attrs": {...}}   # a callable or object on the other side

Nothing is pickled, in either direction. :func:`decode` is written for hostile input: it checks the
header's size and nesting, every dtype against a short allow-list, that each shape's size times the
item size equals the buffer's length, and the total size against a limit, before building anything.
This module imports only the standard library, numpy and torch: the worker runs it without access
to the rest of ``verify``.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np
import torch

MAX_HEADER_BYTES = 4 << 20
MAX_MESSAGE_BYTES = 1 << 30
MAX_DEPTH = 12
MAX_ITEMS = 100_000

DTYPES = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
    "uint8": torch.uint8, "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
ITEMSIZE = {k: torch.empty((), dtype=v).element_size() for k, v in DTYPES.items()}


class ProtocolError(Exception):
    """A message that does not follow the wire format (or exceeds its limits)."""


class Ref:
    """A reference to a callable or object that lives on the other side of the pipe."""

    def __init__(self, kind: str, id: int, attrs: dict | None = None):
        self.kind, self.id, self.attrs = kind, id, attrs or {}


# ----------------------------------------------------------------------------------- encode
def encode(header: dict, ref_of=None) -> bytes:
    """One message: ``header`` (a dict of str keys; its values encoded as above) with every tensor
    leaf replaced by a descriptor plus a buffer.

    ``ref_of(value)`` turns a value the format cannot carry into a :class:`Ref` (or raises
    ``TypeError``); without it such a value raises ``TypeError``.
    """
    buffers: list[bytes] = []

    def enc(v, depth):
        if depth > MAX_DEPTH:
            raise TypeError("value nested too deeply to send")
        if v is None or isinstance(v, (bool, str)) or type(v) is int:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"t": "float", "v": repr(v)}
        if isinstance(v, torch.Tensor):
            return _enc_tensor(v, buffers, "tensor")
        if isinstance(v, np.ndarray):
            return _enc_tensor(torch.from_numpy(np.ascontiguousarray(v)), buffers, "ndarray")
        if isinstance(v, (np.floating, np.integer, np.bool_)):
            return enc(v.item(), depth)
        if type(v) in (tuple, list):
            return {"t": type(v).__name__, "items": [enc(x, depth + 1) for x in v]}
        if type(v) is dict and all(type(k) is str for k in v):
            return {"t": "dict", "items": {k: enc(x, depth + 1) for k, x in v.items()}}
        if isinstance(v, Ref):
            return {"t": "ref", "kind": v.kind, "id": v.id, "attrs": enc(v.attrs, depth + 1)}
        if ref_of is not None:
            return enc(ref_of(v), depth)
        raise TypeError(f"a {type(v).__name__} cannot be sent (only tensors, numbers, strings, tuples, lists, dicts)")

    top = {k: enc(v, 1) for k, v in header.items()}  # the header itself stays a plain JSON object
    body = json.dumps(top, allow_nan=False, separators=(",", ":")).encode()
    return b"".join([struct.pack(">I", len(body)), body, *buffers])


def _enc_tensor(t: torch.Tensor, buffers: list, tag: str) -> dict:
    base = torch.Tensor.as_subclass(t, torch.Tensor) if type(t) is not torch.Tensor else t
    if base.dtype not in DTYPE_NAMES:
        raise TypeError(f"tensors of dtype {base.dtype} cannot be sent")
    if base.is_complex() or base.is_sparse or base.is_quantized:
        raise TypeError("only dense real tensors can be sent")
    data = base.detach().cpu().contiguous()
    if data.dtype == torch.bfloat16:  # numpy has no bfloat16
        data = data.reshape(-1).view(torch.int16)
    raw = data.numpy().tobytes() if data.numel() else b""
    buffers.append(raw)
    return {"t": tag, "dtype": DTYPE_NAMES[base.dtype], "shape": list(base.shape), "nbytes": len(raw),
            "grad": bool(t.requires_grad), "device": base.device.type}


# ----------------------------------------------------------------------------------- decode
def read_message(recv_exact) -> tuple[dict, list[bytes]]:
    """Read one message with ``recv_exact(n) -> bytes``; returns (header JSON, buffers), unvalidated tree."""
    (length,) = struct.unpack(">I", recv_exact(4))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {length} bytes (limit {MAX_HEADER_BYTES})")
    try:
        header = json.loads(recv_exact(length).decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"header is not valid JSON: {exc}") from None
    sizes = []
    _collect_buffer_sizes(header, sizes, 0)
    total = sum(sizes)
    if total > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {total} bytes (limit {MAX_MESSAGE_BYTES})")
    return header, [recv_exact(n) for n in sizes]


def _no_constants(name):
    raise ProtocolError(f"JSON constant {name} is not allowed")


def _collect_buffer_sizes(v, sizes, depth):
    if depth > MAX_DEPTH * 2 + 4:
        raise ProtocolError("header nested too deeply")
    if isinstance(v, dict):
        if v.get("t") in ("tensor", "ndarray"):
            n = v.get("nbytes")
            if type(n) is not int or n < 0:
                raise ProtocolError("tensor descriptor without a valid nbytes")
            sizes.append(n)
            if len(sizes) > MAX_ITEMS:
                raise ProtocolError("too many tensors in one message")
            return
        for x in v.values():
            _collect_buffer_sizes(x, sizes, depth + 1)
    elif isinstance(v, list):
        if len(v) > MAX_ITEMS:
            raise ProtocolError("list too long")
        for x in v:
            _collect_buffer_sizes(x, sizes, depth + 1)


def decode(tree, buffers: list[bytes], make_ref=None, device=None, honor_grad=False):
    """Build the value a header tree describes, validating every node.

    ``make_ref(Ref) -> object`` turns references into local stand-ins (without it they stay
    :class:`Ref`). Tensors come back as plain ``torch.Tensor`` on ``device`` (default cpu);
    ``honor_grad`` makes floating tensors sent with ``"grad": true`` require grad (worker side).
    """
    it = iter(buffers)

    def dec(v, depth):
        if depth > MAX_DEPTH + 2:
            raise ProtocolError("value nested too deeply")
        if v is None or isinstance(v, (bool, str)) or type(v) is int:
            return v
        if type(v) is float:
            return v
        if type(v) is not dict:
            raise ProtocolError(f"unexpected {type(v).__name__} in a value")
        tag = v.get("t")
        if tag in ("tensor", "ndarray"):
            t = _dec_tensor(v, next(it), tag, device)
            if honor_grad and tag == "tensor" and v.get("grad") is True and t.is_floating_point():
                t.requires_grad_(True)
            return t
        if tag == "float":
            if v.get("v") not in ("nan", "inf", "-inf"):
                raise ProtocolError("bad non-finite float")
            return float(v["v"])
        if tag in ("tuple", "list"):
            items = v.get("items")
            if type(items) is not list:
                raise ProtocolError(f"{tag} without items")
            out = [dec(x, depth + 1) for x in items]
            return tuple(out) if tag == "tuple" else out
        if tag == "dict":
            items = v.get("items")
            if type(items) is not dict:
                raise ProtocolError("dict without items")
            return {str(k): dec(x, depth + 1) for k, x in items.items()}
        if tag == "ref":
            if v.get("kind") not in ("fn", "obj") or type(v.get("id")) is not int:
                raise ProtocolError("bad reference")
            attrs = dec(v.get("attrs") or {"t": "dict", "items": {}}, depth + 1)
            if not isinstance(attrs, dict):
                raise ProtocolError("bad reference attributes")
            ref = Ref(v["kind"], v["id"], attrs)
            return make_ref(ref) if make_ref is not None else ref
        raise ProtocolError(f"unknown value tag {tag!r}")

    return dec(tree, 0)


def _dec_tensor(v, raw: bytes, tag, device):
    dtype = DTYPES.get(v.get("dtype"))
    shape = v.get("shape")
    if dtype is None:
        raise ProtocolError(f"dtype {v.get('dtype')!r} is not allowed")
    if type(shape) is not list or len(shape) > 16 or not all(type(s) is int and s >= 0 for s in shape):
        raise ProtocolError(f"bad tensor shape {shape!r}")
    if math.prod(shape) * ITEMSIZE[v["dtype"]] != len(raw):
        raise ProtocolError(f"tensor of shape {shape} and dtype {v['dtype']} does not match its {len(raw)} bytes")
    t = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape) if raw else torch.empty(shape, dtype=dtype)
    if tag == "ndarray":
        return t.numpy()
    if device == "auto":  # the sender's device, where this process has it
        device = "cuda" if v.get("device") == "cuda" and torch.cuda.is_available() else None
    if device is not None and torch.device(device).type != "cpu":
        t = t.to(device)
    return t


# ------------------------------------------------------------------------- tensor leaves
def flatten(value):
    """(tensor leaves in order, spec): ``unflatten(spec, leaves)`` rebuilds ``value``."""
    leaves: list[torch.Tensor] = []

    def walk(v):
        if isinstance(v, torch.Tensor):
            leaves.append(v)
            return _LEAF
        if type(v) in (tuple, list):
            return (type(v), [walk(x) for x in v])
        if type(v) is dict:
            return (dict, {k: walk(x) for k, x in v.items()})
        return v

    return leaves, walk(value)


class _Leaf:
    pass


_LEAF = _Leaf()


def unflatten(spec, leaves: list):
    it = iter(leaves)

    def build(s):
        if s is _LEAF:
            return next(it)
        if type(s) is tuple and len(s) == 2 and s[0] in (tuple, list, dict):
            kind, items = s
            if kind is dict:
                return {k: build(x) for k, x in items.items()}
            return kind(build(x) for x in items)
        return s

    return build(spec)


def vector_jacobian(ins, outs, grads):
    """Gradients of sum(outs * grads) w.r.t. each of ``ins`` (None where an input needs none)."""
    wanted = [t for t in ins if t.requires_grad]
    pairs = [(o, g) for o, g in zip(outs, grads or []) if isinstance(g, torch.Tensor) and o.requires_grad]
    if not pairs or not wanted:
        return [None] * len(ins)
    got = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g.to(o.dtype) for o, g in pairs],
                                   retain_graph=True, allow_unused=True))
    return [next(got) if t.requires_grad else None for t in ins]
