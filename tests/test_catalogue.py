"""Every planted bug fails ``pytest verify/ --submission`` through a check that names its target."""
import pytest

from conftest import run_suite
from grader.catalogue import BUGS, plant

FLOW_TARGETS = {"AffineCoupling", "affine_flow_log_prob"}


def test_catalogue_is_large_enough():
    flows = [b for b in BUGS.values() if b.target in FLOW_TARGETS]
    assert len(BUGS) - len(flows) >= 40 and len(flows) >= 12, (len(BUGS), len(flows))
    from verify.loader import CONTRACT_NAMES

    assert {b.target for b in BUGS.values()} == set(CONTRACT_NAMES)  # every contract name has bugs


@pytest.mark.parametrize("name", sorted(BUGS))
def test_planted_bug_is_caught(name, tmp_path):
    b = BUGS[name]
    run = run_suite(plant(name, tmp_path), "-k", b.target)
    assert not run.errors, f"{name}: the suite errored instead of failing a check: {list(run.errors)}"
    assert run.failed_ids_naming(b.target), (
        f"planted bug {name} ({b.teaches}) passed every check of {b.target}: "
        f"{len(run.passed)} passed, failures elsewhere: {list(run.failed)}"
    )
