"""SymPy derivations and float64 oracles for the VAE verification suite.

Each derivation is a :class:`Derivation` built lazily (SymPy integration is
slow-ish) and cached.  Get one by calling its function (``kl()``), reading
its upper-case name (``derivations.KL``), or through the registry::

    derivations.get("gaussian.kl")

``ALL`` maps a name to a :class:`Derivation` or to a zero-argument function
returning one.  To add a derivation, write a module with a cached factory and
call :func:`register` (or add a line to ``_REGISTRY`` below).
The numpy closed forms the checks use, without SymPy, are in ``derivations.numeric``.

Numerical helpers live in their modules: ``derivations.gaussian.kl_gaussians``
and ``derivations.elbo.{log_marginal, posterior, elbo}``.
"""
from __future__ import annotations

import importlib

# Nothing is imported here: ``derivations.numeric`` (numpy only) must not pull in SymPy. The
# submodules, the factories and the derivations' upper-case names resolve on first use (PEP 562).
_SUBMODULES = ("affine_flow", "bernoulli", "categorical", "coupling", "elbo", "gaussian", "numeric")
_FUNCTIONS = {  # exported name -> (submodule, attribute)
    "Derivation": ("_base", "Derivation"),
    "log_density": ("gaussian", "log_density"), "kl": ("gaussian", "kl"), "kl_standard": ("gaussian", "kl_standard"),
    "log_likelihood": ("bernoulli", "log_likelihood"), "elbo_identity": ("elbo", "identity"),
    "affine_flow_density": ("affine_flow", "affine_flow_density"), "coupling_log_det": ("coupling", "coupling_log_det"),
}
_LAZY = {  # upper-case name -> the factory building it
    "LOG_DENSITY": "log_density",
    "KL": "kl",
    "KL_STANDARD": "kl_standard",
    "LOG_LIKELIHOOD": "log_likelihood",
    "IDENTITY": "elbo_identity",
    "AFFINE_FLOW": "affine_flow_density",
    "COUPLING_LOG_DET": "coupling_log_det",
}
_REGISTRY = {  # registered name -> (submodule, factory)
    "gaussian.log_density": ("gaussian", "log_density"),
    "gaussian.kl": ("gaussian", "kl"),
    "gaussian.kl_standard": ("gaussian", "kl_standard"),
    "bernoulli.log_likelihood": ("bernoulli", "log_likelihood"),
    "elbo.identity": ("elbo", "identity"),
    "affine_flow.density": ("affine_flow", "affine_flow_density"),
    "coupling.log_det": ("coupling", "coupling_log_det"),
    "categorical.kl_uniform": ("categorical", "kl_uniform"),
    "categorical.enumerated_elbo": ("categorical", "enumerated_elbo"),
    "categorical.mixture_log_density": ("categorical", "mixture_log_density"),
}

__all__ = [
    "Derivation", "ALL", "register", "get",
    "gaussian", "bernoulli", "elbo", "affine_flow", "coupling", "categorical",
    "log_density", "kl", "kl_standard", "log_likelihood", "elbo_identity", "affine_flow_density",
    "coupling_log_det",
    "LOG_DENSITY", "KL", "KL_STANDARD", "LOG_LIKELIHOOD", "IDENTITY", "AFFINE_FLOW", "COUPLING_LOG_DET",
]

_ALL: dict | None = None


def _registry() -> dict:
    """``ALL``, built on first use: name -> a Derivation or a zero-argument function returning one."""
    global _ALL
    if _ALL is None:
        _ALL = {name: getattr(importlib.import_module(f".{module}", __name__), attr)
                for name, (module, attr) in _REGISTRY.items()}
    return _ALL


def register(name: str, derivation):
    """Add ``derivation`` (or a zero-argument factory) to ``ALL``; returns it."""
    registry = _registry()
    if name in registry:
        raise KeyError(f"derivation {name!r} is already registered")
    registry[name] = derivation
    return derivation


def get(name: str):
    """The registered derivation ``name``, building it if needed."""
    from ._base import Derivation

    entry = _registry()[name]
    return entry if isinstance(entry, Derivation) else entry()


def __getattr__(name):
    if name == "ALL":
        return _registry()
    if name in _SUBMODULES or name == "_base":
        return importlib.import_module(f".{name}", __name__)
    if name in _FUNCTIONS:
        module, attr = _FUNCTIONS[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    if name in _LAZY:
        return __getattr__(_LAZY[name])()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_FUNCTIONS) | set(_LAZY) | {"ALL"})
