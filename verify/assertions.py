"""Assertions whose messages say which property failed, on which input, observed vs expected.

The numerical policy (docs/statistics.md, "How the checks decide" in the README), applied by every
value comparison through :func:`assert_close`: a check fails only on a deviation that the inputs'
precision cannot explain. A homework runs in float32, so a float32 constant
(``torch.log(torch.tensor(2 * pi))``: 1.6e-8 relative) or a float32 accumulation is explained even
on float64 inputs: :func:`tolerance` allows ``ops`` operations each off by one float32 ulp.
Deviations beyond what exact float64 arithmetic reaches (the ``rtol``/``atol`` a check states) but
within that allowance are reported as a :class:`PrecisionNote`, never penalized.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

FLOAT32_ULP = float(torch.finfo(torch.float32).eps)  # 2^-23 = 1.19e-7
DEFAULT_OPS = 16  # float32-ulp-level operations a value may have passed through: constants, sums, logs
NOTES: list[str] = []  # the notes of the running check (the grader's plugin takes and clears them)


class PrecisionNote(UserWarning):
    """A deviation that the inputs' precision explains: reported, never a failure."""


def tolerance(dtype=torch.float64, *, ops: int = DEFAULT_OPS, scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) that precision explains: ``ops`` operations each off by one ulp of ``dtype``, and never
    less than one float32 ulp (float32 constants and accumulations pass on float64 inputs), on values of
    magnitude ``scale`` (the atol: terms that cancel in a sum keep their rounding errors)."""
    eps = max(float(torch.finfo(dtype).eps) if dtype is not None and dtype.is_floating_point else 0.0, FLOAT32_ULP)
    return ops * eps, ops * eps * scale


def note(text: str):
    """Report ``text`` as a note of the running check, without failing it."""
    NOTES.append(text)
    warnings.warn(PrecisionNote(text), stacklevel=3)


def as_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().double().numpy()
    return np.asarray(t, dtype=np.float64)


def fmt(a, n: int = 4) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.10g}"
    flat = a.ravel()
    shown = ", ".join(f"{v:.8g}" for v in flat[:n])
    return f"[{shown}{', ...' if flat.size > n else ''}] (shape {a.shape})"


def check_tensor(out, *, name: str, shape=None, dtype=None, device=None):
    """The output is a tensor of the contract's shape, dtype and device."""
    __tracebackhide__ = True
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"{name} returned {type(out).__name__}, expected a torch.Tensor")
    if shape is not None and tuple(out.shape) != tuple(shape):
        raise AssertionError(f"{name} returned shape {tuple(out.shape)}, expected {tuple(shape)}")
    if dtype is not None and out.dtype != dtype:
        raise AssertionError(f"{name} returned dtype {out.dtype}, expected {dtype} (the inputs' dtype)")
    if device is not None and out.device.type != torch.device(device).type:
        raise AssertionError(f"{name} returned a tensor on {out.device}, expected {device} (the inputs' device)")


def _worst(obs, exp, bad) -> str:
    i = np.unravel_index(np.argmax(np.where(bad, np.abs(np.nan_to_num(obs - exp, nan=np.inf)), -1)), obs.shape)
    return f"Worst at index {tuple(int(j) for j in i)}: observed {obs[i]:.12g}, expected {exp[i]:.12g}."


def within(observed, expected, *, ops: int = DEFAULT_OPS, scale: float | None = None) -> bool:
    """Does ``observed`` equal ``expected`` up to what precision explains (:func:`tolerance`)? A quiet
    :func:`assert_close` for checks that accept one of several values."""
    obs, exp = as_numpy(observed), np.asarray(expected, dtype=np.float64)
    dtype = observed.dtype if isinstance(observed, torch.Tensor) else None
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(exp), initial=0.0))) if np.all(np.isfinite(exp)) else 1.0
    rtol, atol = tolerance(dtype, ops=ops, scale=scale)
    return obs.shape == exp.shape and bool(np.all(np.isclose(obs, exp, rtol=rtol, atol=atol) & np.isfinite(obs)))


def assert_close(observed, expected, *, what: str, inputs: str = "", rtol: float = 1e-10, atol: float = 1e-10,
                 ops: int = DEFAULT_OPS, scale: float | None = None):
    """|observed - expected| <= atol + rtol |expected| elementwise, or else within what the inputs'
    precision explains (:func:`tolerance` with ``ops``, atol on values of magnitude ``scale``, default
    max(1, |expected|)): then a :class:`PrecisionNote`; beyond both, a failure naming the worst entry."""
    __tracebackhide__ = True
    obs, exp = as_numpy(observed), np.asarray(expected, dtype=np.float64)
    if obs.shape != exp.shape:
        raise AssertionError(f"{what}: shape {obs.shape}, expected {exp.shape}. {inputs}")
    strict = ~np.isclose(obs, exp, rtol=rtol, atol=atol, equal_nan=False) | ~np.isfinite(obs)
    if not np.any(strict):
        return
    dtype = observed.dtype if isinstance(observed, torch.Tensor) else None
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(exp), initial=0.0))) if np.all(np.isfinite(exp)) else 1.0
    p_rtol, p_atol = tolerance(dtype, ops=ops, scale=scale)
    p_rtol, p_atol = max(p_rtol, rtol), max(p_atol, atol)
    bad = ~np.isclose(obs, exp, rtol=p_rtol, atol=p_atol, equal_nan=False) | ~np.isfinite(obs)
    if not np.any(bad):
        note(f"{what}: {int(strict.sum())} of {strict.size} values differ beyond float64 arithmetic (rtol {rtol:g}, "
             f"atol {atol:g}) but within what float32 precision explains (rtol {p_rtol:.2g}, atol {p_atol:.2g}): "
             f"not penalized. {_worst(obs, exp, strict)}")
        return
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {bad.size} values wrong, beyond what the inputs' precision explains "
        f"(rtol {p_rtol:.2g}, atol {p_atol:.2g}). {_worst(obs, exp, bad)} "
        f"Observed {fmt(obs)}; expected {fmt(exp)}. {inputs}"
    )


def assert_total_mass_one(mass: float, *, what: str, how: str, inputs: str = "", hint: str = "",
                          converged: bool = True, tol: float = 1e-6):
    """A density's integral ``mass`` (by ``how``, a quadrature that ``converged``) is 1 within ``tol``;
    ``hint`` (a sentence, with its leading space) says what the mass tells of the mistake."""
    __tracebackhide__ = True
    if not converged or not abs(mass - 1.0) <= tol:
        raise AssertionError(f"{what} integrates to {mass:.10g} {how}, expected 1 within {tol:g}.{hint} {inputs}")


def trapezoid_mass(values, steps) -> tuple[float, float]:
    """The integral of a density sampled on a uniform grid (``values``: one axis per dimension, an odd
    number of points on each, spacing ``steps``) by the trapezoid rule (numpy.trapezoid, axis by axis),
    and an estimate of its error: its difference from the same rule on every other point (spacing 2h).
    For a smooth density negligible at the grid's ends the rule's error falls like exp(-c / h^2)
    (Trefethen & Weideman, SIAM Review 56, 2014: "The exponentially convergent trapezoidal rule"), so
    that difference, the coarse rule's error, is far above the fine rule's own."""

    def rule(v, hs):
        for axis in reversed(range(v.ndim)):
            v = np.trapezoid(v, dx=hs[axis], axis=axis)
        return float(v)

    values = np.asarray(values, dtype=np.float64)
    if any(n % 2 == 0 for n in values.shape):
        raise ValueError(f"trapezoid_mass needs an odd number of points on each axis, got {values.shape}")
    fine = rule(values, list(steps))
    coarse = rule(values[tuple(slice(None, None, 2) for _ in values.shape)], [2 * h for h in steps])
    return fine, abs(fine - coarse)


# ------------------------------------------------------------------------------------ gradients
def backward_gradients(output, wrt: dict, cotangent) -> dict:
    """d(sum cotangent * output)/d each tensor of ``wrt`` (name -> leaf tensor), by ``backward()``: the
    gradients are read from ``.grad`` (None where none reached the leaf), so that they are the same in
    process and through the sandbox (where the checks' networks' parameters get theirs by callback).
    An output with no graph at all gives None for every leaf."""
    for t in wrt.values():
        t.grad = None
    if not isinstance(output, torch.Tensor) or not output.requires_grad:
        return {name: None for name in wrt}
    weight = torch.as_tensor(cotangent, dtype=output.dtype, device=output.device)
    (output * weight).sum().backward(retain_graph=True)
    got = {name: None if t.grad is None else t.grad.detach().clone() for name, t in wrt.items()}
    for t in wrt.values():
        t.grad = None
    return got


def oracle_gradients(expected, wrt: dict, cotangent) -> dict:
    """d(sum cotangent * expected)/d each tensor of ``wrt`` by autograd of a float64 oracle (zeros
    where it does not depend on a leaf)."""
    leaves = list(wrt.values())
    weight = torch.as_tensor(cotangent, dtype=expected.dtype, device=expected.device)
    grads = torch.autograd.grad((expected * weight).sum(), leaves, retain_graph=True, allow_unused=True)
    return {name: torch.zeros_like(t) if g is None else g for (name, t), g in zip(wrt.items(), grads)}


def assert_gradients_close(observed: dict, expected: dict, *, what: str, inputs: str = "", causes: str = "",
                           rtol: float = 1e-8, ops: int = DEFAULT_OPS):
    """Each gradient of ``observed`` (the submission's, name -> tensor or None) equals ``expected``
    (autograd of the float64 oracle) within the numerical policy of values (:func:`assert_close`, atol on
    the scale of the largest expected entry). A check calls it once the value is known to be right, so
    a missing or zero gradient fails as "right value, no gradient" and any other difference as "right
    value, wrong gradient"; ``causes`` (a sentence) names the usual reasons (a detached tensor, ...)."""
    __tracebackhide__ = True
    for name, exp_t in expected.items():
        exp = as_numpy(exp_t)
        g = observed.get(name)
        missing = g is None or (isinstance(g, torch.Tensor) and not bool(torch.any(g != 0)))
        if missing and np.any(exp != 0):
            raise AssertionError(
                f"{what}: right value, no gradient with respect to {name}: the gradient is "
                f"{'missing (nothing reached it)' if g is None else 'zero'}, where autograd of the float64 oracle "
                f"gives {fmt(exp)}. {causes} {inputs}".rstrip())
        if g is None:
            g = torch.zeros(exp.shape, dtype=torch.float64)
        scale = float(np.max(np.abs(exp), initial=0.0)) if np.all(np.isfinite(exp)) else 1.0
        scale = scale if scale > 0 else 1.0
        assert_close(g, exp, what=f"{what}: right value, wrong gradient with respect to {name}",
                     inputs=f"{causes} {inputs}".strip(), rtol=rtol, atol=1e-10 * scale, ops=ops, scale=scale)


def assert_gradients_match_oracle(fn, oracle, args: dict, *, cotangent_rng, what: str, inputs: str = "",
                                  causes: str = "", extra: tuple = (), value_rtol: float = 1e-10, device="cpu"):
    """``fn(*args, *extra)`` (the submission) against ``oracle`` (a float64 torch oracle) on the float64
    tensors ``args`` (name -> array or tensor, each a leaf that requires grad): first the value (within
    the policy of :func:`assert_close`), then the gradient of a random projection of the output (its
    weights from ``cotangent_rng``) with respect to every argument (:func:`assert_gradients_close`)."""
    __tracebackhide__ = True
    leaves = {name: torch.as_tensor(a, dtype=torch.float64, device=device).detach().clone().requires_grad_(True)
              for name, a in args.items()}
    out = fn(*leaves.values(), *extra)
    expected = oracle(*leaves.values(), *extra)
    check_tensor(out, name=what, shape=tuple(expected.shape), dtype=torch.float64)
    weights = cotangent_rng.normal(size=tuple(expected.shape))
    if not within(out, as_numpy(expected)):  # a wrong value is its value check's to fail: priced once
        assert_gradient_matches_own_differences(fn, leaves, out, weights, extra, rng=cotangent_rng, what=what,
                                                inputs=inputs)
        return
    assert_close(out, as_numpy(expected), what=what, inputs=inputs, rtol=value_rtol, atol=value_rtol)
    assert_gradients_close(backward_gradients(out, leaves, weights), oracle_gradients(expected, leaves, weights),
                           what=what, inputs=inputs, causes=causes)


def assert_gradient_matches_own_differences(fn, leaves: dict, out, weights, extra=(), *, rng, what: str,
                                            inputs: str = "", step: float = 1e-3, rtol: float = 1e-3):
    """For a function whose VALUE is wrong (its value check fails it): its gradient is judged against
    its own value, so that a value bug is not charged twice. With a direction u (each entry scaled by
    the input's magnitude, so a variance stays positive) and f(t) = sum weights * fn(args + t u), the
    autograd directional derivative sum_a <grad_a, u_a> must equal the central difference, Richardson
    extrapolated ((4 D(h/2) - D(h)) / 3 with D(h) = (f(h) - f(-h)) / 2h, error O(h^4)), within ``rtol``; and the output must be finite and respond to its inputs (a
    placeholder such as ``return torch.zeros(...)`` still fails)."""
    __tracebackhide__ = True
    values = as_numpy(out)
    if not np.all(np.isfinite(values)):
        raise AssertionError(f"{what}: the value is not finite, so its gradient cannot be judged. {inputs}")
    grads = backward_gradients(out, leaves, weights)
    if all(g is None for g in grads.values()):
        raise AssertionError(f"{what}: wrong value (see its value check) and no gradient at all: the output is not "
                             f"connected to its inputs (computed outside torch, or detached). {inputs}")
    base = {k: t.detach() for k, t in leaves.items()}
    direction = {k: torch.as_tensor(rng.normal(size=tuple(t.shape)), dtype=t.dtype, device=t.device)
                 * torch.where(t != 0, t.abs(), torch.ones_like(t)) for k, t in base.items()}
    w = torch.as_tensor(weights, dtype=out.dtype, device=out.device)

    def f(t):
        with torch.no_grad():
            return float((w * fn(*(base[k] + t * direction[k] for k in base), *extra)).sum())

    def central(h):
        return (f(h) - f(-h)) / (2 * h)

    finite_difference = (4 * central(step / 2) - central(step)) / 3
    autograd = sum(float((g * direction[k]).sum()) for k, g in grads.items() if g is not None)
    if finite_difference == 0 and autograd == 0:
        raise AssertionError(f"{what}: wrong value (see its value check), and the output does not respond to its "
                             f"inputs. {inputs}")
    if abs(autograd - finite_difference) > rtol * (abs(autograd) + abs(finite_difference)) + 1e-8:
        raise AssertionError(
            f"{what}: wrong value (see its value check), and its gradient does not match even its own value: along a "
            f"random direction autograd gives {autograd:.10g}, the finite difference of the outputs "
            f"{finite_difference:.10g}. {inputs}")


def matching_option(observed, options):
    """The option (a torch scalar) whose value the observed output has (:func:`within`), or None: an
    output whose value is wrong has its own check, and its gradient is not judged by the bounds' gradient
    checks (each property is priced once)."""
    observed = observed.detach()
    return next((option for option in options if within(observed, float(option.detach()))), None)


def outputs_with_right_values(expected: dict, out, what: str) -> dict:
    """``expected`` (label -> the matching option or None) restricted to the outputs whose value is right;
    if none is, the gradients cannot be judged: a failure (a placeholder is not an implementation)."""
    __tracebackhide__ = True
    judged = {label: exp for label, exp in expected.items() if exp is not None}
    if not judged:
        shown = ", ".join(f"{label} = {float(o.detach()):.10g}" for label, o in zip(expected, out))
        raise AssertionError(f"{what}: no output has the value of the replayed bound ({shown}), so no gradient can be "
                             "judged; the checks of the values say what is wrong")
    return judged
