"""Bad submissions give clear messages in the failing checks, never a crash of the whole run."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_suite
from verify import loader

VARIANTS = Path(__file__).parent / "variants"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "no file or directory"),
        (lambda d: _write(d / "s.py", "def kl_normal(:\n"), "SyntaxError at s.py:1"),
        (lambda d: _write(d / "s.py", "import not_a_module_xyz\n"), "ModuleNotFoundError at s.py:1"),
        (lambda d: _write(d / "s.py", "raise SystemExit(0)\n"), "SystemExit at s.py:1"),
        (lambda d: _write(d / "notes.txt", "hi"), "notes.txt is not a submission"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "neither submission.py nor a CS236 layout"),
    ],
    ids=["missing-path", "syntax-error", "import-error", "exit-at-import", "not-python", "empty-dir"],
)
def test_unloadable_submission_fails_every_check_with_the_reason(tmp_path, make, message):
    impl = loader.load(make(tmp_path))
    assert impl.error is not None and message in impl.error, impl.error
    with pytest.raises(loader.SubmissionError, match="could not be loaded"):
        impl.kl_normal


def test_missing_and_non_callable_names_fail_only_their_own_checks(tmp_path):
    sub = _write(tmp_path / "submission.py", "from impls import *\nfrom impls.flows import *\n"
                 "del kl_normal\nlog_mean_exp = 3\n")
    run = run_suite(sub, "-k", "kl_normal or log_mean_exp or log_bernoulli")
    assert not run.errors
    assert run.failed and all(("kl_normal" in n or "log_mean_exp" in n) for n in run.failed), list(run.failed)
    assert any("log_bernoulli" in n for n in run.passed)
    texts = "\n".join(run.failed.values())
    assert "kl_normal: not submitted" in texts and "is a int, not callable" in texts


def test_exception_inside_submission_names_the_function(tmp_path):
    sub = _write(tmp_path / "submission.py", "from impls import *\ndef log_normal(x, m, v):\n    raise ValueError('boom')\n")
    run = run_suite(sub, "-k", "test_log_normal_broadcasting")
    assert run.failed and not run.errors
    assert all("log_normal(Tensor" in t and "raised ValueError: boom" in t for t in run.failed.values())


def test_whole_suite_on_a_broken_submission_reports_instead_of_crashing(tmp_path):
    """``python -m verify --submission`` on a syntax error: exit code 1 (checks failed), a summary table."""
    sub = _write(tmp_path / "submission.py", "def f(:\n")
    proc = subprocess.run([sys.executable, "-m", "verify", "--submission", str(sub), "-q", "-k", "kl_normal"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SyntaxError at submission.py:1" in proc.stdout
    assert "kl_normal                    FAIL" in proc.stdout


def test_cs236_layout_is_found_and_adapted():
    impl = loader.load(VARIANTS / "cs236")
    assert impl.error is None
    assert impl.has("negative_iwae_bound") and impl.has("kl_normal")
    impl2 = loader.load(VARIANTS / "xcs236")
    assert impl2.error is None and impl2.has("negative_elbo_bound")
