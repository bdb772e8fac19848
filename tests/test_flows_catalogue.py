"""Every planted flow bug fails ``pytest verify/`` through a flow check; every correct variant passes.

Each case writes a submission (verify.catalogue.plant / write_submission) and runs the suite on it
in this process, ``pytest.main([verify/, --submission DIR, -k TARGET])``, with a small plugin that
collects the reports. The verify modules are imported once and reused by the inner runs (pytest
finds them in sys.modules); each inner run has its own session, so the session-scoped ``impl``
fixture loads the new submission every time (under a fresh module name, see verify/loader.py).
The inner runs block the ``unraisableexception`` plugin, whose session cleanup runs gc.collect()
five times (about 0.7 s per run with torch and SymPy loaded), and use one torch thread: the
checks' tensors are tiny, and several threads contending on a busy 2-core machine make them
ten times slower.
"""
from pathlib import Path

import pytest
import torch

from tests.flow_variants import AFFINE_FLOW_VARIANTS, COUPLING_VARIANTS
from verify.catalogue import BUGS, plant, write_submission

ROOT = Path(__file__).resolve().parents[1]
FLOW_TARGETS = ("AffineCoupling", "affine_flow_log_prob")
FLOW_BUGS = sorted(name for name, b in BUGS.items() if b.target in FLOW_TARGETS)
VARIANTS = [("AffineCoupling", name) for name in COUPLING_VARIANTS] + [
    ("affine_flow_log_prob", name) for name in AFFINE_FLOW_VARIANTS
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Collector:
    """Keeps the test reports and the failed collection reports of one inner pytest run."""

    def __init__(self):
        self.failed, self.passed, self.collect_errors = [], [], []

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report)
        elif report.passed and report.when == "call":
            self.passed.append(report.nodeid)


def run_verify(submission_dir, target, stop_at_first_failure=False):
    collector = Collector()
    args = [str(ROOT / "verify"), "--submission", str(submission_dir), "-k", target,
            "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-q", "--no-header"]
    if stop_at_first_failure:
        args.append("-x")
    code = pytest.main(args, plugins=[collector])
    return code, collector


def test_there_are_enough_flow_bugs():
    assert len(FLOW_BUGS) >= 12
    for target in FLOW_TARGETS:
        assert any(BUGS[name].target == target for name in FLOW_BUGS), target


@pytest.mark.parametrize("name", FLOW_BUGS)
def test_planted_flow_bug_is_caught(name, tmp_path):
    target = BUGS[name].target
    plant(name, tmp_path)
    code, found = run_verify(tmp_path, target, stop_at_first_failure=True)
    assert not found.collect_errors, "\n".join(found.collect_errors)
    caught = [r for r in found.failed if target in r.nodeid]
    assert caught, f"planted bug {name} ({target}) passed every check (exit code {code})"
    assert code == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("target, variant", VARIANTS, ids=[v for _, v in VARIANTS])
def test_correct_flow_variant_passes(target, variant, tmp_path):
    expr = f'__import__("tests.flow_variants", fromlist=["{variant}"]).{variant}'
    write_submission(tmp_path, {target: expr}, f"Correct variant {variant} of {target}")
    code, found = run_verify(tmp_path, target)
    assert not found.collect_errors, "\n".join(found.collect_errors)
    failures = "\n\n".join(f"{r.nodeid}:\n{r.longreprtext[-3000:]}" for r in found.failed)
    assert not found.failed, f"the correct variant {variant} failed flow checks:\n{failures}"
    assert found.passed and code == pytest.ExitCode.OK
