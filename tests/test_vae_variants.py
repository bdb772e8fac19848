"""Correct-but-different implementations pass every VAE-side check."""
from pathlib import Path

import pytest

from conftest import run_suite

VARIANTS = Path(__file__).parent / "variants"
NOT_FLOWS = "not affine_flow and not AffineCoupling"


@pytest.mark.parametrize(
    "variant",
    ["torch_distributions.py", "float64_internals.py", "cs236", "xcs236"],
)
def test_correct_variant_passes(variant):
    run = run_suite(VARIANTS / variant, "-k", NOT_FLOWS)
    assert not run.errors, f"{variant}: errors: {run.errors}"
    assert not run.failed, f"{variant}: correct variant failed checks:\n" + "\n\n".join(
        f"{k}:\n{v[-1500:]}" for k, v in run.failed.items()
    )
    assert len(run.passed) > 50, f"{variant}: only {len(run.passed)} checks ran"
