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
