"""SymPy derivations and float64 oracles for the VAE verification suite.

Each derivation is a :class:`Derivation` built lazily (SymPy integration is
slow-ish) and cached.  Get one by calling its function (``kl()``), reading
its upper-case name (``derivations.KL``), or through the registry::

    derivations.get("gaussian.kl")

``ALL`` maps a name to a :class:`Derivation` or to a zero-argument function
returning one.  To add a derivation, write a module with a cached factory and
call :func:`register` (or add a line to ``ALL`` below).

Numerical helpers live in their modules: ``derivations.gaussian.kl_gaussians``
and ``derivations.elbo.{log_marginal, posterior, elbo}``.
"""
from __future__ import annotations

from typing import Callable, Union

from . import affine_flow, bernoulli, categorical, coupling, elbo, gaussian
from ._base import Derivation, lazy_attributes
from .affine_flow import affine_flow_density
from .bernoulli import log_likelihood
from .coupling import coupling_log_det
from .elbo import identity as elbo_identity
from .gaussian import kl, kl_standard, log_density

__all__ = [
    "Derivation", "ALL", "register", "get",
    "gaussian", "bernoulli", "elbo", "affine_flow", "coupling", "categorical",
    "log_density", "kl", "kl_standard", "log_likelihood", "elbo_identity", "affine_flow_density",
    "coupling_log_det",
    "LOG_DENSITY", "KL", "KL_STANDARD", "LOG_LIKELIHOOD", "IDENTITY", "AFFINE_FLOW", "COUPLING_LOG_DET",
]

ALL: dict[str, Union[Derivation, Callable[[], Derivation]]] = {
    "gaussian.log_density": log_density,
    "gaussian.kl": kl,
    "gaussian.kl_standard": kl_standard,
    "bernoulli.log_likelihood": log_likelihood,
    "elbo.identity": elbo_identity,
    "affine_flow.density": affine_flow_density,
    "coupling.log_det": coupling_log_det,
    "categorical.kl_uniform": categorical.kl_uniform,
    "categorical.enumerated_elbo": categorical.enumerated_elbo,
    "categorical.mixture_log_density": categorical.mixture_log_density,
}


def register(name: str, derivation: Union[Derivation, Callable[[], Derivation]]):
    """Add ``derivation`` (or a zero-argument factory) to ``ALL``; returns it."""
    if name in ALL:
        raise KeyError(f"derivation {name!r} is already registered")
    ALL[name] = derivation
    return derivation


def get(name: str) -> Derivation:
    """The registered derivation ``name``, building it if needed."""
    entry = ALL[name]
    return entry if isinstance(entry, Derivation) else entry()


_LAZY = {
    "LOG_DENSITY": log_density,
    "KL": kl,
    "KL_STANDARD": kl_standard,
    "LOG_LIKELIHOOD": log_likelihood,
    "IDENTITY": elbo_identity,
    "AFFINE_FLOW": affine_flow_density,
    "COUPLING_LOG_DET": coupling_log_det,
}

__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
