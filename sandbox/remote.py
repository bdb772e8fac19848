"""Stand-ins for the submission: its contract functions, classes and objects as the checks see them.

The checks never see the worker: the ``impl`` fixture's contract names are :class:`RemoteFunction`
and :class:`RemoteClass` objects that send their arguments to the worker and return what comes
back (validated by the channel). Constructing a :class:`RemoteClass` gives a :class:`RemoteObject`,
an instance that lives in the worker; a name the submission defines as something not callable
is an :class:`Uncallable`. Each call is a :class:`~sandbox.channel.CallSpec` run by
``gradients.call`` (inside autograd when an input needs a gradient) on the stand-in's sandbox
(``process.Sandbox``, which builds object stand-ins itself through :func:`object_stand_in`; this
module does not import it).
"""
from __future__ import annotations

from sandbox import gradients, wire
from sandbox.channel import CallSpec
from sandbox.errors import RemoteError, SandboxError


class RemoteFunction:
    """A contract function that runs in the worker."""

    def __init__(self, sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return gradients.call(self._sandbox, CallSpec("call", self.__name__, args, kwargs))

    def __repr__(self):
        return f"<{self.__name__} in the sandbox>"


class RemoteClass:
    """A contract class that lives in the worker: calling it constructs an instance there."""

    def __init__(self, sandbox, name: str):
        self._sandbox, self.__name__ = sandbox, name

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        try:
            value, _ = self._sandbox.invoke(CallSpec("new", self.__name__, args, kwargs))
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

    def __init__(self, sandbox, oid: int, type_name: str):
        self._sandbox, self._oid, self._type = sandbox, oid, type_name
        self._generation = sandbox.generation

    def _method(self, method, args, kwargs):
        __tracebackhide__ = True
        sb = self._sandbox
        target = self._type
        if self._generation != sb.generation:
            raise SandboxError(f"{target}: this object was lost when the worker was restarted after an earlier "
                               "failure")
        spec = CallSpec("method", self._type, args, kwargs, target=target, obj=self._oid, method=method)
        try:
            return gradients.call(sb, spec)
        except RemoteError as exc:
            raise SandboxError(f"{target}.{method}(...) raised {exc.type_name}: {exc}") from None

    def __call__(self, *args, **kwargs):
        return self._method("__call__", args, kwargs)

    def forward(self, *args, **kwargs):
        return self._method("forward", args, kwargs)

    def inverse(self, *args, **kwargs):
        return self._method("inverse", args, kwargs)

    def __repr__(self):
        return f"<{self._type} object in the sandbox>"


def object_stand_in(sandbox, ref: wire.Ref) -> RemoteObject:
    """The stand-in for an object reference in the worker's answer (the only reference it may send)."""
    if ref.kind == "obj" and type(ref.attrs.get("type", "")) is str:
        return RemoteObject(sandbox, ref.id, ref.attrs.get("type", "object"))
    raise wire.ProtocolError("the worker sent a reference it may not send")


class Uncallable:
    """A contract name the submission defines as something not callable (as the worker reported it)."""

    def __init__(self, type_name: str):
        self.type_name = type_name
