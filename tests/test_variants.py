"""Correct-but-different implementations pass every check of what they implement."""
from pathlib import Path

import pytest

from conftest import run_suite
from tests.variants.flows import AFFINE_FLOW_VARIANTS, COUPLING_VARIANTS
from grader.catalogue import write_submission

VARIANTS = Path(__file__).parent / "variants"
# the code's checks: a single-file variant among others in tests/variants/ has no written answers of
# its own (a file's answers.py is read only when it is alone in its folder; the answers have tests/test_answers.py)
NOT_FLOWS = "not affine_flow and not AffineCoupling and not written_answer"
FLOW_VARIANTS = [("AffineCoupling", n) for n in COUPLING_VARIANTS] + [
    ("affine_flow_log_prob", n) for n in AFFINE_FLOW_VARIANTS
]


def _assert_all_pass(run, what, at_least):
    assert not run.errors, f"{what}: errors: {run.errors}"
    assert not run.failed, f"{what}: a correct variant failed checks:\n" + "\n\n".join(
        f"{k}:\n{v[-1500:]}" for k, v in run.failed.items()
    )
    assert len(run.passed) >= at_least, f"{what}: only {len(run.passed)} checks ran"


NOT_GMVAE = "not gmvae and not ssvae"  # the single-file variants implement the VAE's names only


@pytest.mark.parametrize("variant", ["torch_distributions.py", "float64_internals.py", "loops_float32.py"])
def test_correct_vae_variant_passes(variant):
    _assert_all_pass(run_suite(VARIANTS / variant, "-k", f"{NOT_FLOWS} and {NOT_GMVAE}"), variant, 50)


@pytest.mark.parametrize("variant", ["cs236", "xcs236"])
def test_correct_checkout_variant_passes(variant):
    """The starters' layouts with every model: VAE, GMVAE (models/gmvae.py) and SSVAE (models/ssvae.py)."""
    _assert_all_pass(run_suite(VARIANTS / variant, "-k", NOT_FLOWS), variant, 80)


@pytest.mark.parametrize("variant", ["cs236", "xcs236"])
def test_correct_gmvae_ssvae_variant_passes_sandboxed(variant):
    """The GMVAE's and SSVAE's checks through the sandbox (the gradient checks' cross-check calls included)."""
    _assert_all_pass(run_suite(VARIANTS / variant, "-k", "gmvae or ssvae", in_process=False), variant, 30)


@pytest.mark.parametrize("target, variant", FLOW_VARIANTS, ids=[v for _, v in FLOW_VARIANTS])
def test_correct_flow_variant_passes(target, variant, tmp_path):
    expr = f'__import__("tests.variants.flows", fromlist=["{variant}"]).{variant}'
    sub = write_submission(tmp_path, {target: expr}, f"Correct variant {variant} of {target}")
    _assert_all_pass(run_suite(sub, "-k", target), variant, 5)


@pytest.mark.parametrize("variant", ["loops_float32.py", "torch_distributions.py"])
def test_correct_vae_variant_passes_sandboxed(variant):
    """Sandboxed too: a private generator (the finite-difference cross-check cannot replay it), a validated
    Bernoulli (it refuses the cross-check's perturbed x) and per-example loops through the sandbox's callbacks."""
    _assert_all_pass(run_suite(VARIANTS / variant, "-k", f"{NOT_FLOWS} and {NOT_GMVAE}", in_process=False), variant, 50)
