"""Read a metrics pickle without unpickling it: the opcodes are interpreted here, never by ``pickle``.

The course's metric files (XCS236 PS2, ``submission/utils.write_to_file``) are
``pickle.dump({'NELBO': t, 'KL': t, 'Rec': t})``, ``{'NIWAE': t}`` and ``{'accuracy': t}``, where
``t`` is a 0-d torch tensor; students also write plain floats or numpy scalars. :func:`loads`
walks the opcode stream (:func:`pickletools.genops`, which only decodes) with a small stack
machine that builds plain values: dict, list, tuple, set, str, bytes, int, float, bool, None.
Nothing is imported, no callable is looked up, nothing the file names is ever called. The few
references the course's files need are recognised by name and rebuilt here from their bytes:

* ``torch._utils._rebuild_tensor_v2`` of a ``torch.storage._load_from_bytes`` storage (torch's
  legacy serialization of a CPU storage: magic number, protocol 1001, system info, the storage's
  persistent id, its key list, then ``numel`` as int64 and the raw little-endian elements) and
  ``collections.OrderedDict()`` (its empty hooks): the tensor's values, a number when it holds one;
* ``numpy.dtype`` + ``numpy.core.multiarray.scalar`` (or ``numpy._core``): a numpy scalar;
* ``_codecs.encode(s, 'latin1')``: how protocols 0-2 write bytes.

Anything else (another GLOBAL / STACK_GLOBAL, INST, OBJ, NEWOBJ, EXT codes, persistent ids outside
a storage, out-of-band buffers, BUILD of anything but a numpy dtype) is refused with
:class:`UnsafePickle` naming it and its byte offset; a truncated or malformed stream, or one past
the size limits, with :class:`PickleError`.
"""
from __future__ import annotations

import io
import math
import pickletools
import struct
from dataclasses import dataclass

MAX_OPS = 200_000
MAX_DEPTH = 32
MAX_ELEMENTS = 100_000
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001

# storage class -> (struct format, bytes per element)
STORAGES = {
    "FloatStorage": ("f", 4), "DoubleStorage": ("d", 8), "HalfStorage": ("e", 2), "BFloat16Storage": ("bf16", 2),
    "LongStorage": ("q", 8), "IntStorage": ("i", 4), "ShortStorage": ("h", 2), "CharStorage": ("b", 1),
    "ByteStorage": ("B", 1), "BoolStorage": ("?", 1),
}
NUMPY_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
BUILTINS = ("builtins", "__builtin__")  # protocols 0-3 write set, frozenset and bytearray as calls
ALLOWED_GLOBALS = ({("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
                    ("torch.storage", "_load_from_bytes"), ("collections", "OrderedDict"), ("_codecs", "encode"),
                    ("numpy", "dtype")}
                   | {(m, "scalar") for m in NUMPY_MULTIARRAY} | {("torch", s) for s in STORAGES}
                   | {(b, c) for b in BUILTINS for c in ("set", "frozenset", "bytearray")})
NUMPY_FORMATS = {"f2": "e", "f4": "f", "f8": "d", "i1": "b", "i2": "h", "i4": "i", "i8": "q",
                 "u1": "B", "u2": "H", "u4": "I", "u8": "Q", "b1": "?"}


class PickleError(ValueError):
    """The bytes are not a readable pickle (truncated, malformed, too large or too deep)."""


class UnsafePickle(PickleError):
    """The pickle asks for something other than plain data: the message names it."""


@dataclass(frozen=True)
class _Global:
    module: str
    name: str

    def __str__(self):
        return f"{self.module}.{self.name}"


@dataclass
class _DType:
    code: str
    order: str = "<"


@dataclass(frozen=True)
class _Storage:
    values: tuple


class _Mark:
    """The MARK on the stack."""


_MARK = _Mark()
_IGNORED = {"PROTO", "FRAME", "STOP"}
_PUSH_ARG = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING",
             "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE",
             "SHORT_BINUNICODE", "BINUNICODE8"}
_PUSH_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_REFUSED = {"INST": "an instance of a class (INST)", "OBJ": "an instance of a class (OBJ)",
            "NEWOBJ": "an instance of a class (NEWOBJ)", "NEWOBJ_EX": "an instance of a class (NEWOBJ_EX)",
            "EXT1": "an extension-registry object (EXT1)", "EXT2": "an extension-registry object (EXT2)",
            "EXT4": "an extension-registry object (EXT4)", "PERSID": "a persistent id (PERSID)",
            "BINPERSID": "a persistent id (BINPERSID)", "NEXT_BUFFER": "an out-of-band buffer (NEXT_BUFFER)",
            "READONLY_BUFFER": "an out-of-band buffer (READONLY_BUFFER)"}


def loads(data: bytes, max_bytes: int = 1 << 20):
    """The plain value pickled in ``data`` (trailing bytes after STOP ignored, as ``pickle.loads``)."""
    if len(data) > max_bytes:
        raise PickleError(f"{len(data)} bytes: larger than the {max_bytes // 1024} KiB a metrics pickle may be")
    if not data:
        raise PickleError("empty file: not a pickle")
    value = _Machine(io.BytesIO(data)).run()
    _check_plain(value)
    return value


class _Machine:
    """The stack machine over one pickle of ``stream``; ``storage_ids`` allows the one persistent
    id torch's legacy storage format uses (inside :func:`_load_from_bytes` only)."""

    def __init__(self, stream, storage_ids=False):
        self.stream, self.storage_ids = stream, storage_ids
        self.stack, self.marks, self.memo = [], [], {}

    def run(self):
        ops = 0
        try:
            for op, arg, pos in pickletools.genops(self.stream):
                ops += 1
                if ops > MAX_OPS:
                    raise PickleError(f"more than {MAX_OPS} opcodes: not a metrics file")
                if op.name == "STOP":
                    break
                self.step(op.name, arg, pos)
        except PickleError:
            raise
        except Exception as exc:  # genops on truncated or malformed bytes; a stack out of order
            raise PickleError(f"not a readable pickle: {type(exc).__name__}: {exc}") from None
        if len(self.stack) != 1 or self.marks:
            raise PickleError("not a readable pickle: the stream ends with an unbalanced stack")
        return self.stack[0]

    def pop_mark(self):
        at = self.marks.pop()
        items, self.stack[at:] = self.stack[at:], []
        return items

    def step(self, name, arg, pos):
        st = self.stack
        if name in _IGNORED:
            return
        if name in _PUSH_ARG:
            st.append(arg)
        elif name in _PUSH_CONST:
            st.append(_PUSH_CONST[name])
        elif name == "BYTEARRAY8":
            st.append(bytes(arg))
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            module, qual = arg.split(" ", 1) if name == "GLOBAL" else _two(st.pop(), st.pop())
            if (module, qual) not in ALLOWED_GLOBALS:
                raise UnsafePickle(f"refused: the pickle references {module}.{qual} ({name} at byte {pos}); "
                                   "only plain numbers, strings, lists and dicts, torch tensors and numpy scalars "
                                   "are read")
            st.append(_Global(module, qual))
        elif name == "REDUCE":
            args = st.pop()
            st.append(_call(st.pop(), args, pos))
        elif name == "BUILD":
            state, target = st.pop(), st[-1]
            if not isinstance(target, _DType) or not isinstance(state, tuple) or len(state) < 2:
                raise UnsafePickle(f"refused: BUILD (setting an object's state) at byte {pos} on {_kind(target)}")
            target.order = state[1] if state[1] in ("<", ">", "|", "=") else target.order
        elif name == "BINPERSID" and self.storage_ids:
            st.append(_storage_id(st.pop(), pos))
        elif name in _REFUSED:
            raise UnsafePickle(f"refused: the pickle asks for {_REFUSED[name]} at byte {pos}")
        else:
            self.containers(name, arg, pos)

    def containers(self, name, arg, pos):
        st = self.stack
        if name == "MARK":
            self.marks.append(len(st))
        elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_SET"):
            st.append({"EMPTY_DICT": dict, "EMPTY_LIST": list, "EMPTY_TUPLE": tuple, "EMPTY_SET": set}[name]())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items, st[-n:] = tuple(st[-n:]), []
            if len(items) != n:
                raise PickleError(f"not a readable pickle: {name} at byte {pos} on a short stack")
            st.append(items)
        elif name in ("TUPLE", "LIST", "FROZENSET", "DICT"):
            items = self.pop_mark()
            st.append({"TUPLE": tuple, "LIST": list, "FROZENSET": frozenset}[name](items) if name != "DICT"
                      else dict(zip(items[::2], items[1::2])))
        elif name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"):
            self.fill(name, pos)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            self.memo[len(self.memo) if name == "MEMOIZE" else arg] = st[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise PickleError(f"not a readable pickle: memo {arg} read before it is written (byte {pos})")
            st.append(self.memo[arg])
        elif name == "POP":
            st.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            st.append(st[-1])
        else:
            raise UnsafePickle(f"refused: opcode {name} at byte {pos}")

    def fill(self, name, pos):
        st = self.stack
        items = [st.pop()] if name == "APPEND" else (st[-2:] if name == "SETITEM" else self.pop_mark())
        if name == "SETITEM":
            del st[-2:]
        target = st[-1]
        want = {"APPEND": list, "APPENDS": list, "SETITEM": dict, "SETITEMS": dict, "ADDITEMS": set}[name]
        if not isinstance(target, want):
            raise UnsafePickle(f"refused: {name} at byte {pos} on {_kind(target)} (only on a {want.__name__})")
        if want is list:
            target.extend(items)
        elif want is set:
            target.update(items)
        else:
            for k, v in zip(items[::2], items[1::2]):
                target[k] = v


def _two(name, module):
    if not isinstance(module, str) or not isinstance(name, str):
        raise PickleError("not a readable pickle: STACK_GLOBAL on non-strings")
    return module, name


def _kind(obj):
    return f"a {type(obj).__name__}" if not isinstance(obj, (_Global, _DType, _Storage)) else str(obj)


# ------------------------------------------------------------------ the whitelisted calls
def _call(fn, args, pos):
    """The value of the whitelisted ``fn(*args)``, computed here from the arguments' data."""
    if not isinstance(fn, _Global) or not isinstance(args, tuple):
        raise UnsafePickle(f"refused: REDUCE at byte {pos} calls {_kind(fn)}, not a whitelisted reference")
    key = (fn.module, fn.name)
    if key == ("collections", "OrderedDict") and args in ((), ([],)):
        return {}
    if fn.module in BUILTINS:
        return _builtin(fn.name, args, pos)
    if key == ("_codecs", "encode") and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return args[0].encode("latin-1")
    if key == ("numpy", "dtype") and len(args) == 3 and isinstance(args[0], str) and args[0] in NUMPY_FORMATS:
        return _DType(args[0])
    if fn.name == "scalar" and fn.module in NUMPY_MULTIARRAY and len(args) == 2 and isinstance(args[0], _DType):
        return _numpy_scalar(*args, pos)
    if key == ("torch.storage", "_load_from_bytes") and len(args) == 1 and isinstance(args[0], bytes):
        return _legacy_storage(args[0], pos)
    if fn.module == "torch._utils" and fn.name.startswith("_rebuild_tensor") and args and isinstance(args[0], _Storage):
        return _tensor(args, pos)
    raise UnsafePickle(f"refused: REDUCE at byte {pos}: {fn} with arguments other than the course's metric files use")


def _builtin(name, args, pos):
    """set([...]), frozenset([...]) and bytearray(b'...') / bytearray('...', 'latin-1') as protocols 0-3 write them."""
    if name in ("set", "frozenset") and (args == () or (len(args) == 1 and isinstance(args[0], list))):
        return (set if name == "set" else frozenset)(args[0] if args else ())
    if name == "bytearray":
        if args == ():
            return b""
        if len(args) == 1 and isinstance(args[0], bytes):
            return args[0]
        if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
            return args[0].encode("latin-1")
    raise UnsafePickle(f"refused: REDUCE at byte {pos}: {name} with arguments other than plain data")


def _numpy_scalar(dtype, raw, pos):
    fmt = NUMPY_FORMATS[dtype.code]
    if not isinstance(raw, bytes) or len(raw) != struct.calcsize(fmt):
        raise PickleError(f"not a readable pickle: numpy {dtype.code} scalar of {len(raw)} bytes (byte {pos})")
    return struct.unpack(("<" if dtype.order in "<|=" else ">") + fmt, raw)[0]


def _storage_id(pid, pos):
    """torch's legacy persistent id of a storage: ('storage', torch.<T>Storage, key, location, numel, view)."""
    if (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
            and pid[1].module == "torch" and pid[1].name in STORAGES and isinstance(pid[4], int)):
        return ("storage", pid[1].name, str(pid[2]), int(pid[4]))
    raise UnsafePickle(f"refused: persistent id {pid!r} at byte {pos}")


def _legacy_storage(blob, pos):
    """The elements of one storage in torch's legacy format (see the module docstring)."""
    stream = io.BytesIO(blob)
    header = [_Machine(stream).run() for _ in range(3)]
    if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise UnsafePickle(f"refused: the storage at byte {pos} is not in torch's legacy format")
    if not isinstance(header[2], dict) or header[2].get("little_endian") is not True:
        raise UnsafePickle(f"refused: the storage at byte {pos} is not little-endian")
    ref = _Machine(stream, storage_ids=True).run()
    keys = _Machine(stream).run()
    if not (isinstance(ref, tuple) and len(ref) == 4 and ref[0] == "storage" and keys == [ref[2]]):
        raise UnsafePickle(f"refused: the storage at byte {pos} holds something other than one storage")
    fmt, size = STORAGES[ref[1]]
    count = struct.unpack("<q", stream.read(8).ljust(8, b"\xff"))[0]
    if not 0 <= count <= MAX_ELEMENTS or count != ref[3]:
        raise PickleError(f"not a readable pickle: a storage of {count} elements (byte {pos})")
    raw = stream.read(count * size)
    if len(raw) != count * size:
        raise PickleError(f"not a readable pickle: the storage at byte {pos} is truncated")
    if fmt == "bf16":
        return _Storage(tuple(struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)))
    return _Storage(struct.unpack(f"<{count}{fmt}", raw))


def _tensor(args, pos):
    """_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): the
    elements in row-major order, nested as the size; a 0-d or one-element tensor is its number."""
    storage, offset, size, stride = (list(args) + [None] * 4)[:4]
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(isinstance(n, int) and n >= 0 for n in size + stride)):
        raise PickleError(f"not a readable pickle: a tensor's offset, size or stride (byte {pos})")
    if math.prod(size) > MAX_ELEMENTS or len(size) > 8 or any(n > MAX_ELEMENTS for n in size):
        raise PickleError(f"not a readable pickle: a tensor of size {size[:8]} (byte {pos})")

    def element(index):
        i = offset + sum(a * b for a, b in zip(index, stride))
        if not 0 <= i < len(storage.values):
            raise PickleError(f"not a readable pickle: a tensor reads past its storage (byte {pos})")
        return storage.values[i]

    def nest(prefix):
        d = len(prefix)
        return element(prefix) if d == len(size) else [nest(prefix + (j,)) for j in range(size[d])]

    if math.prod(size) == 1:
        return element((0,) * len(size))
    return nest(())


def _check_plain(value, depth=0, path=()):
    """Refuse a value that is not plain data (a leftover reference, a numpy dtype) or nests too deep
    (or into itself)."""
    if depth > MAX_DEPTH or any(value is p for p in path):
        raise PickleError(f"not a metrics pickle: containers nested more than {MAX_DEPTH} deep or in themselves")
    if isinstance(value, (_Global, _DType, _Storage)):
        raise UnsafePickle(f"refused: a bare {value} is not a metric value")
    if isinstance(value, dict):
        items = [x for kv in value.items() for x in kv]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        return
    for item in items:
        _check_plain(item, depth + 1, path + (value,))
