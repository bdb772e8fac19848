"""Assertions whose messages say which property failed, on which input, observed vs expected."""
from __future__ import annotations

import numpy as np
import torch


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


def assert_close(observed, expected, *, what: str, inputs: str = "", rtol: float = 1e-10, atol: float = 1e-10):
    """|observed - expected| <= atol + rtol |expected| elementwise, else a message with the worst entry."""
    __tracebackhide__ = True
    obs, exp = as_numpy(observed), np.asarray(expected, dtype=np.float64)
    if obs.shape != exp.shape:
        raise AssertionError(f"{what}: shape {obs.shape}, expected {exp.shape}. {inputs}")
    bad = ~np.isclose(obs, exp, rtol=rtol, atol=atol, equal_nan=False) | ~np.isfinite(obs)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, np.abs(np.nan_to_num(obs - exp, nan=np.inf)), -1)), obs.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} values wrong (rtol {rtol:g}, atol {atol:g}). "
            f"Worst at index {tuple(int(j) for j in i)}: observed {obs[i]:.12g}, expected {exp[i]:.12g}. "
            f"Observed {fmt(obs)}; expected {fmt(exp)}. {inputs}"
        )


def assert_total_mass_one(mass: float, *, what: str, how: str, inputs: str = "", hint: str = "",
                          converged: bool = True, tol: float = 1e-6):
    """A density's integral ``mass`` (by ``how``, a quadrature that ``converged``) is 1 within ``tol``;
    ``hint`` (a sentence, with its leading space) says what the mass tells of the mistake."""
    __tracebackhide__ = True
    if not converged or not abs(mass - 1.0) <= tol:
        raise AssertionError(f"{what} integrates to {mass:.10g} {how}, expected 1 within {tol:g}.{hint} {inputs}")
