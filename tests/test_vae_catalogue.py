"""Every planted VAE-side bug fails the suite through a check that names the buggy contract name."""
import pytest

from conftest import run_suite
from verify.catalogue import BUGS, plant

VAE_TARGETS = {
    "sample_gaussian", "log_normal", "log_normal_mixture", "kl_normal", "log_bernoulli_with_logits",
    "log_mean_exp", "negative_elbo_bound", "negative_iwae_bound",
}
VAE_BUGS = sorted(name for name, b in BUGS.items() if b.target in VAE_TARGETS)


def test_catalogue_is_large_enough():
    assert len(VAE_BUGS) >= 40, f"only {len(VAE_BUGS)} VAE-side bugs in the catalogue"


@pytest.mark.parametrize("name", VAE_BUGS)
def test_planted_bug_is_caught(name, tmp_path):
    b = BUGS[name]
    run = run_suite(plant(name, tmp_path), "-k", b.target)
    assert not run.errors, f"{name}: the suite errored instead of failing a check: {list(run.errors)}"
    caught = run.failed_ids_naming(b.target)
    assert caught, (
        f"planted bug {name} ({b.teaches}) passed every check of {b.target}: "
        f"{len(run.passed)} passed, failures elsewhere: {list(run.failed)}"
    )
