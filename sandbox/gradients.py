"""Gradients through the worker: calls that autograd differentiates, and the cross-check that the
gradients the worker reports belong to its outputs.

When a check differentiates through a call (the reparameterization check, the coupling layer's
Jacobian), the call is an ``autograd.Function`` whose backward asks the worker for a
vector-Jacobian product. Every product is cross-checked against central finite differences of two
more black-box calls with the same RNG state, along a direction drawn from the operating system's
randomness for that product alone, so a worker can neither predict the direction nor report gradients
its own outputs do not have; a NaN or infinite gradient of finite outputs fails.

The calls go through the sandbox the stand-ins were made for (``process.Sandbox``: its ``invoke``
and ``vjp``); this module imports neither the sandbox nor the stand-ins.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import torch

from sandbox import wire
from sandbox.channel import CallSpec
from sandbox.errors import RemoteError, SandboxError

FD_STEP = 1e-6
FD_RTOL = 1e-5
# a second try for outputs rounded at float32 precision (float32 arithmetic inside, float64 out): a step of
# 1e-3 keeps the rounding (1e-7 of the outputs) under 1e-4 of the differences; a lie (a gradient 1.5 times
# its outputs') still shows
FD_COARSE_STEP = 1e-3
FD_COARSE_RTOL = 1e-2


def call(sandbox, spec: CallSpec):
    """Run ``spec`` in the worker and return its value; inside autograd when an input needs a gradient."""
    __tracebackhide__ = True
    leaves, tree = wire.flatten((tuple(spec.args), dict(spec.kwargs)))
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in leaves)):
        value, _ = sandbox.invoke(spec)
        return value
    tape = _Tape(sandbox, spec, tree, generation=sandbox.generation, rng=torch.get_rng_state())
    out = _Differentiable.apply(tape, *leaves)
    return wire.unflatten(tape.out_tree, list(out))


@dataclass(eq=False)
class _Tape:
    """One differentiable call: what its backward and the cross-check need from its forward."""

    sandbox: object
    spec: CallSpec  # the call as the check made it
    tree: object  # the structure of (args, kwargs) around their tensors (``wire.flatten``)
    generation: int  # the worker that ran it: its graph is lost when that worker is
    rng: torch.Tensor  # the RNG state before the call: the cross-check's calls run with it
    out_tree: object = None  # set by forward: the structure of the value around its tensors
    inputs: list = field(default_factory=list)  # the input tensors, detached
    needs: list = field(default_factory=list)  # which of them require grad
    outputs: list = field(default_factory=list)  # the output tensors, detached

    @property
    def target(self) -> str:
        return self.spec.label


class _Differentiable(torch.autograd.Function):
    """A worker call inside autograd: forward is the call, backward asks the worker for a VJP."""

    @staticmethod
    def forward(ctx, tape, *leaves):
        sent = [t.detach().requires_grad_(t.requires_grad) if t.is_floating_point() else t for t in leaves]
        args, kwargs = wire.unflatten(tape.tree, sent)
        value, call_id = tape.sandbox.invoke(
            replace(tape.spec, args=args, kwargs=kwargs, rng=None, apply_rng=True, grad=True))
        out, tape.out_tree = wire.flatten(value)
        ctx.tape, ctx.call, ctx.n_in = tape, call_id, len(leaves)
        tape.inputs = [t.detach() for t in leaves]
        tape.needs = [t.requires_grad for t in leaves]
        tape.outputs = [o.detach() for o in out]
        ctx.mark_non_differentiable(*[o for o in out if not o.is_floating_point()])
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        tape = ctx.tape
        __tracebackhide__ = True
        if ctx.call is None:
            return (None,) * (1 + ctx.n_in)
        got = tape.sandbox.vjp(ctx.call, grads, tape.target, tape.generation)
        checked = _checked_gradients(tape, got)
        _finite_difference_check(tape, grads, checked)  # every product, not only the first
        return (None, *checked)


def _checked_gradients(tape: _Tape, got) -> list:
    """The worker's gradients, one per input (None or a tensor of its shape), in its dtype and device."""
    __tracebackhide__ = True
    target, n_in = tape.target, len(tape.inputs)
    if not isinstance(got, list) or len(got) != n_in:
        raise SandboxError(f"{target}: the worker returned {type(got).__name__} for the gradients, "
                           f"expected one per input ({n_in})")
    checked = []
    for g, x in zip(got, tape.inputs):
        if g is not None and (not isinstance(g, torch.Tensor) or g.shape != x.shape):
            raise SandboxError(f"{target}: the worker returned a gradient of shape "
                               f"{tuple(getattr(g, 'shape', ()))} for an input of shape {tuple(x.shape)}")
        checked.append(None if g is None else g.to(dtype=x.dtype, device=x.device))
    return checked


# ----------------------------------------------------------------------------- the cross-check
def _finite_difference_check(tape: _Tape, grads_out, grads_in):
    """v^T J u from the worker's gradients vs (v . (f(x + h u) - f(x - h u))) / 2h from two more calls
    with the same RNG state. Only in float64 (in float32, differences are too coarse to judge)."""
    if not _judgeable(tape):
        return
    _finite_gradients(tape, grads_out, grads_in)
    dirs = _directions(tape)
    predicted, scale = _predicted(grads_in, dirs)
    try:
        plus, minus = _evaluate(tape, dirs, sign=1.0), _evaluate(tape, dirs, sign=-1.0)
    except RemoteError:  # it refuses inputs h away (a validated distribution refuses x off {0, 1}): not judgeable
        return  # here; the checks compare its gradients with the oracle's
    if len(plus) != len(tape.outputs) or len(minus) != len(tape.outputs):
        raise SandboxError(f"{tape.target}: repeated calls with the same inputs and RNG state returned different "
                           "structures")
    observed = _observed(grads_out, plus, minus)
    if not math.isfinite(observed) and _reproduces(tape):
        raise SandboxError(f"{tape.target}: its outputs are finite, but not at inputs {FD_STEP:g} away along a "
                           "random direction (repeated calls with the same RNG state): the gradients cannot be checked")
    if _agree(predicted=predicted, scale=scale, observed=observed) or not _reproduces(tape):
        return
    aligned = _aligned(dirs, grads_in)
    coarse_predicted, coarse_scale = _predicted(grads_in, aligned)
    coarse = _observed(grads_out, _evaluate(tape, aligned, sign=1.0, step=FD_COARSE_STEP),
                       _evaluate(tape, aligned, sign=-1.0, step=FD_COARSE_STEP), step=FD_COARSE_STEP)
    if not _agree(predicted=coarse_predicted, scale=coarse_scale, observed=coarse, rtol=FD_COARSE_RTOL):
        _compare(tape.target, predicted=predicted, scale=scale, observed=observed)


def _aligned(dirs, grads_in) -> list:
    """The coarse retry's direction: |u| with the sign of the returned gradient, entry by entry, so that
    every term of v^T J u is positive and a lie about one input cannot cancel against another's terms
    (along a random direction the terms' signed sum may by chance be small beside the tolerance)."""
    return [None if u is None else u.abs() * torch.where(g >= 0, 1.0, -1.0).to(u.dtype) if g is not None else u
            for u, g in zip(dirs, grads_in)]


def _finite_gradients(tape: _Tape, grads_out, grads_in):
    """Finite outputs and a finite ``grads_out`` must have finite input gradients: a NaN is a failure,
    not a way past the cross-check."""
    if any(v is not None and not torch.isfinite(v).all() for v in grads_out):
        return
    bad = [i for i, g in enumerate(grads_in) if g is not None and g.is_floating_point() and not torch.isfinite(g).all()]
    if bad:
        raise SandboxError(f"{tape.target}: the worker returned a NaN or infinite gradient for input {bad[0] + 1} "
                           "of a call whose outputs are finite")


def _judgeable(tape: _Tape) -> bool:
    """Every input that needs a gradient and every output is float64, and the outputs are finite."""
    if not all(x.dtype == torch.float64 for x, n in zip(tape.inputs, tape.needs) if n):
        return False
    outs = tape.outputs
    return all(o.dtype == torch.float64 for o in outs) and all(torch.isfinite(o).all() for o in outs)


def _directions(tape: _Tape) -> list:
    """The perturbation u: a random direction per input that needs a gradient (None for the others),
    scaled by the input's magnitude, drawn afresh from the operating system's randomness."""
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
    return [torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device) * _magnitude(x) if n else None
            for x, n in zip(tape.inputs, tape.needs)]


def _magnitude(x):
    """|x| where x is not 0 (a variance of 1e-6 is moved by a millionth of itself, not by 1e-8), else 1: an
    input at 0 (a mean of zeros) is moved as much as one of size 1, so that its terms weigh in the comparison
    as much as the others' (with 1e-2 a lie about its gradient hid under the coarse retry's 1e-2)."""
    return torch.where(x == 0, torch.ones_like(x), x.abs())


def _predicted(grads_in, dirs) -> tuple[float, float]:
    """(v^T J u from the worker's input gradients, the sum of its terms' magnitudes: the tolerance's scale)."""
    pairs = [(gi, u) for gi, u in zip(grads_in, dirs) if gi is not None and u is not None]
    predicted = sum(float((gi * u).sum()) for gi, u in pairs)
    scale = sum(float((gi.abs() * u.abs()).sum()) for gi, u in pairs)
    return predicted, scale


def _evaluate(tape: _Tape, dirs, *, sign: float, step: float = FD_STEP) -> list:
    """The output tensors of one more call at x + sign h u, with the RNG state the call had."""
    moved = [x + sign * step * u if u is not None else x for x, u in zip(tape.inputs, dirs)]
    args, kwargs = wire.unflatten(tape.tree, moved)
    with torch.no_grad():
        value, _ = tape.sandbox.invoke(
            replace(tape.spec, args=args, kwargs=kwargs, rng=tape.rng, apply_rng=False, grad=False))
    leaves, _ = wire.flatten(value)
    return leaves


def _observed(grads_out, plus, minus, step: float = FD_STEP) -> float:
    """v . (f(x + h u) - f(x - h u)) / 2h."""
    observed = 0.0
    for v, p, m in zip(grads_out, plus, minus):
        if v is not None:
            observed += float((v.to(p.dtype) * (p - m)).sum()) / (2 * step)
    return observed


def _reproduces(tape: _Tape) -> bool:
    """Does one more call at the very inputs, with the RNG state the call had, give its outputs again?
    A call that draws its noise from a generator of its own (CLARIFICATIONS.md) does not: finite
    differences of it mean nothing, and the checks judge its gradients by another route (the replayed
    samples against the oracle), so it is not failed for that alone."""
    again = _evaluate(tape, [None] * len(tape.inputs), sign=0.0)
    return len(again) == len(tape.outputs) and all(
        isinstance(a, torch.Tensor) and a.shape == o.shape and torch.equal(a.to(o.dtype), o)
        for a, o in zip(again, tape.outputs))


def _agree(*, predicted: float, scale: float, observed: float, rtol: float = FD_RTOL) -> bool:
    return abs(predicted - observed) <= rtol * (scale + abs(observed)) + 1e-9


def _compare(target: str, *, predicted: float, scale: float, observed: float):
    """Raise unless the two agree within ``FD_RTOL`` of the scale."""
    if not _agree(predicted=predicted, scale=scale, observed=observed):
        raise SandboxError(
            f"{target}: the gradients the worker returned do not match its outputs: along a random direction "
            f"u, v^T J u = {predicted:.10g} from the returned gradients but {observed:.10g} from central differences "
            f"(step {FD_STEP:g}) of repeated calls with the same RNG state")
