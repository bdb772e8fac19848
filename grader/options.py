"""How to grade: every option of ``python -m verify grade`` in one frozen object.

:mod:`grader.cli` builds a :class:`GradeOptions` once from its command line; the runner and the
reports read what they need from it (:func:`grader.runner.grade`, :func:`grader.runner.run_worker`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verify import DEFAULT_SEED

FORMATS = ("text", "json", "gradescope", "junit", "csv", "md")  # the report formats (grader/reports.py)
MIN_WORKER_MEMORY_MB = 1024  # importing torch alone needs some 700 MiB


@dataclass(frozen=True)
class GradeOptions:
    """The options of one grading run; the defaults are the command line's."""

    # how each submission is graded (the runner)
    seed: int = DEFAULT_SEED  # seed of every check
    timeout: float = 600.0  # seconds allowed per submission
    check_timeout: float = 120.0  # seconds one check may spend in the submission's sandboxed code
    memory_mb: int = 4096  # address-space limit of each sandboxed submission, MiB
    in_process: bool = False  # no sandbox: the submission is imported into the checks' process
    select: str | None = None  # pytest -k expression: grade only the matching checks
    jobs: int = 1  # submissions graded at once
    zygote: bool = True  # fork each submission's checks' process from one pre-imported process (grader/zygote.py)
    layout: str = "auto"  # each PATH: "auto" (decided by content), "single" submission or "class" (grader/discovery.py)
    # what the grades are measured against and written to (the CLI)
    rubric: str | None = None  # the TOML rubric's path; None: the homework's
    formats: tuple[str, ...] = FORMATS  # report formats
    out: Path = Path("grading-out")  # folder for the reports

    def problem(self) -> str | None:
        """What is wrong with these options, or None when they can be used."""
        if self.jobs < 1 or self.timeout <= 0 or self.check_timeout <= 0 or self.memory_mb < MIN_WORKER_MEMORY_MB:
            return ("--jobs must be at least 1, --timeout and --check-timeout positive, --worker-memory at least "
                    f"{MIN_WORKER_MEMORY_MB} (MiB; importing torch alone needs some 700)")
        return None
