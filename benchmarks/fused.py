"""Fused fast paths of the reference kernels: the same signatures, the same results, fewer passes.

Eager PyTorch runs a formula such as the Gaussian KL as a chain of elementwise kernels, each of
which reads and writes a whole tensor: about ten passes over memory for one pass worth of data.
Here each formula is handed to ``torch.compile`` (TorchInductor), which fuses the chain into one
loop that reads every input once and writes only the (reduced) output.

What is fused and what is not:

- ``log_normal``, ``kl_normal``, ``log_bernoulli_with_logits``, ``log_mean_exp``: the whole formula.
- ``sample_gaussian``: :func:`impls.sample_gaussian` itself, which draws the noise eagerly with
  ``torch.randn`` (so both give identical samples under the same seed), given the compiled
  ``m + sqrt(v) * eps``.
- ``negative_elbo_bound`` and ``negative_iwae_bound``: the functions of :mod:`impls.bounds`
  themselves (the IWAE bound chunked over the samples, drawing the same noise in the same order),
  given the fused sampler and likelihood, and for the IWAE bound a per-chunk kernel computing
  log p(x|z) and the log-weights in one pass; the encoder and decoder are called as given, and the
  KL of q (batch x latent dims, small) is the reference's, eager.

Every function agrees with its reference in :mod:`impls` to float64 rounding (tests/test_fused.py
checks rtol 1e-10). Where the formula is the reference's as written, the reference function is what
is compiled (``log_normal``, ``kl_normal``, the reparameterization, the IWAE log-weights); two are
written here in the forms that Inductor vectorizes (``softplus`` and ``logsumexp`` spelled out:
their float64 lowerings are not vectorized).

Where ``torch.compile`` is unavailable (no C++ compiler, an unsupported platform, or
``TORCHDYNAMO_DISABLE=1``), each function falls back to the same formula run eagerly, with one
warning; :func:`backend` says which is in use. Compilation (seconds) happens on the first call
for each dtype, device and rank of the arguments; the batch dims are symbolic, so other batch
sizes reuse the compiled kernel. Call once to warm up before timing.
"""
import functools
import math
import os
import types
import warnings

import torch

from impls import bounds, gaussian
from impls.bounds import IWAE_CHUNK_ELEMENTS

__all__ = [
    "sample_gaussian",
    "log_normal",
    "kl_normal",
    "log_bernoulli_with_logits",
    "log_mean_exp",
    "negative_elbo_bound",
    "negative_iwae_bound",
    "backend",
]

_status = {}  # fused function name -> "inductor" or "eager (<reason>)", once it has run


def backend():
    """How the fused functions ran so far: ``"inductor"``, ``"not compiled yet"``, or the
    functions that fell back to eager with the reasons."""
    eager = {name: st for name, st in _status.items() if st != "inductor"}
    if eager:
        return "; ".join(f"{name}: {st}" for name, st in sorted(eager.items()))
    return "inductor" if _status else "not compiled yet"


def _compile_disabled():
    return os.environ.get("TORCHDYNAMO_DISABLE", "") not in ("", "0")


def _fresh_copy(fn):
    """``fn`` with a code object of its own: torch.compile keeps its graphs (and counts them
    against its recompile limit) per code object, so each copy gets its own budget."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def _is_recompile_limit(exc):
    return "recompile" in type(exc).__name__.lower() or "recompile_limit" in str(exc)


def _leading_dims_dynamic(a):
    """A view of ``a`` whose leading (batch, sample) dims the compiler treats as symbolic, so one
    graph serves every batch size, while the last dim, the one reduced over, stays static: the
    kernel keeps a fixed-length vectorized inner loop (fully dynamic graphs run float64 at about
    half the speed on CPU)."""
    if not isinstance(a, torch.Tensor) or a.dim() < 2:
        return a
    view = a.view(a.shape)  # mark the view, not the caller's tensor
    for d in range(a.dim() - 1):
        if a.shape[d] > 1:
            torch._dynamo.maybe_mark_dynamic(view, d)
    return view


def _fused(fn):
    """``fn`` compiled with torch.compile: one graph for the whole formula, batch dims symbolic.

    One compiled copy per dtypes, device types, ranks and grad mode of the tensor arguments, so
    the shapes a program meets never exhaust the compiler's recompile limit. If compiling fails,
    the call runs ``fn`` eagerly instead: a failing call is re-run eagerly, and if that raises too
    the error is the caller's (a bad argument) and propagates; otherwise the compiler is given up
    for ``fn`` (one warning). The fused formulas are pure (no random draws inside), so re-running
    is harmless.
    """
    name = fn.__name__.lstrip("_")
    compiled = {}
    state = {"broken": _compile_disabled()}
    if state["broken"]:
        _status[name] = "eager (TORCHDYNAMO_DISABLE is set)"

    def key(args):
        return torch.is_grad_enabled(), tuple(
            (a.dtype, a.device.type, a.dim(), a.requires_grad) if isinstance(a, torch.Tensor) else a for a in args)

    @functools.wraps(fn)
    def run(*args):
        if state["broken"]:
            return fn(*args)
        k = key(args)
        try:
            if k not in compiled:
                compiled[k] = torch.compile(_fresh_copy(fn), dynamic=False, fullgraph=True)
            out = compiled[k](*[_leading_dims_dynamic(a) for a in args])
        except Exception as exc:
            out = fn(*args)  # raises here if the arguments themselves are bad
            if _is_recompile_limit(exc):  # a rare shape pattern: eager for this call only
                return out
            state["broken"] = True
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            _status[name] = f"eager ({reason})"
            warnings.warn(f"benchmarks.fused: torch.compile failed, running {fn.__name__} eagerly ({reason})",
                          RuntimeWarning, stacklevel=2)
            return out
        _status.setdefault(name, "inductor")
        return out

    return run


# ------------------------------------------------------------------------- fused formulas
_reparameterize = _fused(gaussian.reparameterize)
_log_normal = _fused(gaussian.log_normal)
_kl_normal = _fused(gaussian.kl_normal)


def _softplus(l):
    """log(1 + exp(l)) = max(l, 0) + log1p(exp(-|l|)), exact for every finite l."""
    return torch.clamp(l, min=0) + torch.log1p(torch.exp(-torch.abs(l)))


def _bernoulli(x, logits):
    """:func:`impls.log_bernoulli_with_logits` as sum_d x_d l_d - softplus(l_d), softplus spelled out."""
    return (x * logits - _softplus(logits)).sum(-1)


@_fused
def _log_bernoulli_with_logits(x, logits):
    return _bernoulli(x, logits)


def _logsumexp(x, dim):
    """torch.logsumexp spelled out: shift by the maximum (0 where it is infinite).

    Inductor (CPU) runs this as a loop over all rows for the max, then one for the shifted
    exp-sum: ``x`` is read from memory twice. Returning only the two reductions (the log and
    the shift done eagerly) gets them into one loop per row, but measured single-threaded it is
    no faster at 10240 x 784 (float32; 10% in float64: the exp, not memory, bounds the kernel)
    and 40 us slower at 100 x 784 (three more eager calls), so the whole formula stays here.
    """
    top = x.amax(dim, keepdim=True)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    return torch.log(torch.exp(x - top).sum(dim)) + top.squeeze(dim)


@_fused
def _log_mean_exp(x, dim: int):
    return _logsumexp(x, dim) - math.log(x.size(dim))


@_fused
def _iwae_log_weights(x, logits, z, m, v):
    """:func:`impls.bounds.iwae_log_weights` with the likelihood of :func:`_bernoulli`: one kernel per chunk."""
    return bounds.iwae_log_weights(x, logits, z, m, v, log_likelihood=_bernoulli)


# ------------------------------------------------------------------- the contract's names
def sample_gaussian(m, v):
    """As :func:`impls.sample_gaussian` (same noise under the same seed), with the affine map fused."""
    return gaussian.sample_gaussian(m, v, reparameterize=_reparameterize)


def log_normal(x, m, v):
    """As :func:`impls.log_normal`, one fused pass."""
    return _log_normal(x, m, v)


def kl_normal(qm, qv, pm, pv):
    """As :func:`impls.kl_normal`, one fused pass."""
    return _kl_normal(qm, qv, pm, pv)


def log_bernoulli_with_logits(x, logits):
    """As :func:`impls.log_bernoulli_with_logits`, one fused pass."""
    return _log_bernoulli_with_logits(x, logits)


def log_mean_exp(x, dim):
    """As :func:`impls.log_mean_exp`, fused (the max and the exp-sum in one kernel per row)."""
    return _log_mean_exp(x, dim % x.dim())


def negative_elbo_bound(x, encoder, decoder):
    """:func:`impls.negative_elbo_bound` (same noise under the same seed) with the fused sampler and likelihood."""
    return bounds.negative_elbo_bound(x, encoder, decoder, log_likelihood=log_bernoulli_with_logits,
                                      sample=sample_gaussian)


def negative_iwae_bound(x, encoder, decoder, iw, chunk_elements=IWAE_CHUNK_ELEMENTS):
    """:func:`impls.negative_iwae_bound`: the same chunks, the same noise in the same order; per chunk
    the fused sampler and one fused kernel computing log p(x|z) and the log-weights from the logits."""
    return bounds.negative_iwae_bound(x, encoder, decoder, iw, chunk_elements, log_weights=_iwae_log_weights,
                                      sample=sample_gaussian)
