"""A hidden check's inputs never reach another check's message (issue 18): a submission that keeps
what it was called with and shows it in a later, visible check's error sees a fresh worker instead."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SELECT = "kl_normal_matches_closed_form or log_mean_exp_matches_closed_form"
KEEPER = textwrap.dedent("""\
    import torch
    _SEEN = None

    def kl_normal(qm, qv, pm, pv):
        global _SEEN
        _SEEN = [round(float(x), 6) for x in qm.flatten()[:3]]  # what a hidden check asked
        return 0.5 * (torch.log(pv / qv) + qv / pv + (qm - pm) ** 2 / pv - 1).sum(-1)

    def log_mean_exp(x, dim):
        raise ValueError(f"LEAK {_SEEN}")  # shown in a visible check's message
""")


def _rubric(tmp_path: Path, visibility: str) -> Path:
    path = tmp_path / f"{visibility}.toml"
    path.write_text(f'[[group]]\nname = "KL"\npoints = 50\nchecks = ["kl_normal"]\nvisibility = "{visibility}"\n\n'
                    '[[group]]\nname = "LME"\npoints = 50\nchecks = ["log_mean_exp"]\n', encoding="utf-8")
    return path


def _lme_message(tmp_path: Path, visibility: str) -> str:
    sub = tmp_path / "keeper.py"
    sub.write_text(KEEPER, encoding="utf-8")
    out = tmp_path / f"out-{visibility}"
    proc = subprocess.run([sys.executable, "-m", "verify", "grade", str(sub), "--rubric", str(_rubric(tmp_path, visibility)),
                           "-k", SELECT, "--format", "json", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "keeper" / "report.json").read_text(encoding="utf-8"))
    return next(c["message"] for c in report["checks"] if c["name"].startswith("log_mean_exp"))


@pytest.mark.parametrize("visibility", ["hidden", "after_due_date"])
def test_a_hidden_checks_inputs_never_reach_a_later_message(tmp_path, visibility):
    assert "LEAK None" in _lme_message(tmp_path, visibility)


def test_the_keeper_does_leak_when_nothing_is_hidden(tmp_path):
    """The control: with every group visible the worker is kept, and the attack would work."""
    assert "LEAK [" in _lme_message(tmp_path, "visible")
