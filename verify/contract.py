"""The submission contract's names, and which check grades which name.

``docs/CONTRACT.md`` says what each name must compute; this module is the one place the code lists
them. A check states what it grades with a marker, never through its function's name::

    @grades("negative_iwae_bound", "negative_elbo_bound")
    def test_negative_iwae_bound_iw1_matches_negative_elbo_bound_in_mean(impl): ...

The first name is the one the check grades (its rubric group, its diagnosis, its row in the
summary); any further names are also called by the check, and a submission without them fails it.
"""
from __future__ import annotations

import pytest

FUNCTION_NAMES = (
    "sample_gaussian",
    "log_normal",
    "log_normal_mixture",
    "kl_normal",
    "log_bernoulli_with_logits",
    "log_mean_exp",
    "negative_elbo_bound",
    "negative_iwae_bound",
    "affine_flow_log_prob",
    "gmvae_negative_elbo_bound",
    "gmvae_negative_iwae_bound",
    "ssvae_negative_elbo_bound",
)
CLASS_NAMES = ("AffineCoupling",)
CONTRACT_NAMES = FUNCTION_NAMES + CLASS_NAMES
ANSWER_NAMES = ("KL_GAUSSIAN", "AFFINE_FLOW_DENSITY", "COUPLING_LOG_DET")  # strings in answers.py (verify/answers)
MARKER = "grades"


def grades(*names: str):
    """The marker of a check that grades ``names[0]`` (and calls ``names[1:]`` too)."""
    unknown = [n for n in names if n not in CONTRACT_NAMES + ANSWER_NAMES]
    if not names or unknown:
        raise ValueError(f"@grades needs contract or answer names, not {unknown or 'nothing'}")
    return getattr(pytest.mark, MARKER)(*names)


def graded_names(item) -> tuple[str, ...]:
    """The names a collected check states with :func:`grades` (empty if it states none)."""
    marker = item.get_closest_marker(MARKER)
    return tuple(marker.args) if marker is not None else ()
