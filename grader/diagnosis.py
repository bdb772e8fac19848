"""Name the known bug a failing submission reproduces.

When a check fails, the calls it made to the submission were recorded (inputs, torch RNG state,
output; :meth:`verify.loader.Implementation.record`). Each catalogued bug of the check's target is
run on the same inputs from the same RNG state; a bug whose outputs equal the submission's on every
recorded call, where the reference's do not, names the mistake. Classes (``AffineCoupling``) are
compared on a fixed probe instead: the same mask, networks and inputs for the submission and for
each bug.
"""
from __future__ import annotations

import torch

from grader.catalogue import Bug, bugs_for

MAX_CALLS_COMPARED = 3


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.requires_grad != b.requires_grad:
            return False
        a, b = a.detach().double().cpu(), b.detach().double().cpu()
        return bool(torch.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return False


def _replay(fn, call):
    torch.random.set_rng_state(call.rng_state)
    args = tuple(a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
                 for a in call.args)
    try:
        return fn(*args, **call.kwargs)
    except Exception:  # a bug variant may not accept these inputs: it does not explain them
        return None


def explain_calls(target: str, calls, reference) -> Bug | None:
    """The catalogued bug of ``target`` whose outputs match the recorded ones (and the reference's do not)."""
    calls = [c for c in calls if c.name == target][:MAX_CALLS_COMPARED]
    if not calls:
        return None
    state = torch.random.get_rng_state()
    try:
        if all(_same(_replay(reference, c), c.output) for c in calls):
            return None  # the outputs are right on these inputs; the failure is about something else
        for bug in bugs_for(target):
            if all(_same(_replay(bug.fn, c), c.output) for c in calls):
                return bug
        return None
    finally:
        torch.random.set_rng_state(state)


def _probe_coupling(cls):
    """(y, log_det, inverse(y)) of ``cls`` on a fixed float64 probe, or None if it fails to run."""
    g = torch.Generator().manual_seed(5)
    dim = 6
    mask = torch.tensor([1.0, 0.0] * (dim // 2), dtype=torch.float64)
    w_s = torch.randn(dim, dim, generator=g, dtype=torch.float64) * 0.5
    w_t = torch.randn(dim, dim, generator=g, dtype=torch.float64) * 0.5
    x = torch.randn(5, dim, generator=g, dtype=torch.float64)

    def scale_net(h):
        return torch.tanh(h @ w_s)

    def shift_net(h):
        return h @ w_t

    try:
        layer = cls(mask, scale_net, shift_net)
        y, log_det = layer(x)
        return y.detach(), log_det.detach(), layer.inverse(y).detach()
    except Exception:
        return None


def explain_class(target: str, cls, reference) -> Bug | None:
    """The catalogued bug class of ``target`` that behaves like ``cls`` on the probe."""
    if target != "AffineCoupling":
        return None
    seen = _probe_coupling(cls)
    if seen is None or _same(_probe_coupling(reference), seen):
        return None
    for bug in bugs_for(target):
        out = _probe_coupling(bug.fn)
        if out is not None and _same(out, seen):
            return bug
    return None
