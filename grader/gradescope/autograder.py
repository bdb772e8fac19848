"""What ``run_autograder`` runs for each submission: grade it, and write ``results.json`` whatever happens.

    python -m grader.gradescope.autograder [--root DIR] [--submission PATH] [--results FILE] [--budget S]

(run from the folder holding ``verify/``: ``/autograder/source`` in the bundle). Paths default to
Gradescope's (``$DGM_GRADESCOPE_ROOT``, default ``/autograder``: ``submission/``,
``results/results.json``); ``DGM_GRADESCOPE_SUBMISSION``, ``DGM_GRADESCOPE_RESULTS`` and
``DGM_GRADESCOPE_BUDGET`` override them one by one.

Failure is still a result. Gradescope kills ``run_autograder`` at the assignment's time limit and
then shows the student nothing, so:

1. a provisional ``results.json`` (score 0, "grading did not finish") is written before anything
   else, in case even this script is killed;
2. the grader runs as ``python -m verify grade`` (the same grader and sandbox as a class run) in a
   subprocess, with its own time limit inside a budget kept below Gradescope's limit
   (``gradescope.json`` in the bundle; default 90% of Gradescope's default 10 minutes);
3. when the grader wrote no results (it crashed, was killed, or ran past the budget), the checks
   the worker finished are scored by the runner's own scoring (:mod:`grader.gradescope.fallback`:
   every other check fails with the reason), and if even that fails, a minimal valid
   ``results.json`` says what happened;
4. before the final ``results.json`` is written, every process left below this one (the grader,
   its worker, anything the submission started, even detached: this process is a child subreaper)
   is killed, so nothing can overwrite it afterwards.

Standard library only: it must run even when the grading dependencies are broken.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]  # the folder holding verify/ (/autograder/source)
CONFIG_NAME = "gradescope.json"  # written by the bundle: budget, rubric, seed, max score
DEFAULT_ROOT = "/autograder"
GRADESCOPE_DEFAULT_LIMIT_S = 600.0  # Gradescope's default autograder timeout (10 minutes; at most 40)
# where a CS236-layout package is found (mirrors sandbox.submission._find_cs236_package)
CS236_PACKAGES = (("codebase",), ("src", "submission"), ("submission",))

PROVISIONAL = ("Grading did not finish: the autograder was stopped before it wrote its results "
               "(for example at Gradescope's time limit). Please resubmit; if this happens again, "
               "tell the course staff.")


def default_budget(limit_s: float) -> float:
    """The autograder's own budget for a Gradescope limit: a minute (or 10%) below it."""
    return float(limit_s - max(60.0, 0.1 * limit_s))


def _clamp(x, lo, hi):
    return max(lo, min(hi, x))


def plan(budget: float) -> dict:
    """How the budget is spent: the grader CLI must finish by ``grader_s`` (leaving time to score
    what was finished if it does not), and its worker gets ``worker_s`` (leaving the CLI time to
    start and to write its reports)."""
    fallback = _clamp(0.15 * budget, 10.0, 60.0)
    reports = _clamp(0.1 * budget, 5.0, 30.0)
    startup = _clamp(0.1 * budget, 5.0, 30.0)
    grader = budget - fallback
    return {"budget_s": budget, "grader_s": grader, "worker_s": max(1.0, grader - reports - startup)}


# ------------------------------------------------------------------------------- results.json
def minimal_results(message: str, max_score: float | None, seconds: float) -> dict:
    """A valid results.json with no per-check results (Gradescope's schema; score 0)."""
    data = {"score": 0.0, "execution_time": round(seconds, 3), "output": message, "output_format": "text",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}
    if max_score is not None:
        data["max_score"] = max_score
    return data


def write_results(path: Path, data: dict) -> None:
    """Write results.json in one step (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():  # left there by someone else
        shutil.rmtree(path, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_results(path: Path) -> dict | None:
    """results.json at ``path`` if it is a plausible one (an object with a numeric score and a test list)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (isinstance(data, dict) and isinstance(data.get("tests"), list)
          and isinstance(data.get("score"), (int, float)) and not isinstance(data.get("score"), bool))
    return data if ok else None


# ------------------------------------------------------------------------------- the submission
def _is_submission(d: Path) -> bool:
    return (d / "submission.py").is_file() or any(d.joinpath(*pkg, "utils.py").is_file() for pkg in CS236_PACKAGES)


def locate(submission: Path) -> tuple[Path, str | None]:
    """What to grade in Gradescope's submission folder, and a note for the student when it is unusual.

    The folder itself when it holds ``submission.py`` or a CS236 layout; the one folder inside it
    that does (a zip of a folder); the one ``.py``, ``.ipynb`` or ``.zip`` file in it. Anything else
    is the folder itself, which the grader (run with ``--single``: never a class of students)
    searches by the rule of ``docs/CONTRACT.md``, or fails to load saying what it holds; the note
    says so.
    """
    if not submission.is_dir() or _is_submission(submission):
        return submission, None
    entries = [e for e in sorted(submission.iterdir()) if not e.name.startswith((".", "__"))]
    inner = _the_one_submission(entries)
    if inner is not None:
        return inner, None
    found = ", ".join(e.name + ("/" if e.is_dir() else "") for e in entries) or "nothing"
    note = ("Your submission holds neither submission.py nor a CS236 layout (codebase/utils.py, "
            f"src/submission/utils.py or submission/utils.py) at its top; it holds: {found}. It was searched "
            "for the other forms the grader accepts (see the notes below).")
    return submission, note


def _the_one_submission(entries: list[Path]) -> Path | None:
    """Among a folder's entries, the one folder holding a submission or the one module; else None."""
    dirs = [e for e in entries if e.is_dir()]
    modules = [e for e in entries if e.is_file() and e.suffix in (".py", ".ipynb", ".zip") and e.name != "answers.py"]
    if len(dirs) == 1 and not modules and _is_submission(dirs[0]):
        return dirs[0]
    if len(modules) == 1 and not dirs:
        return modules[0]
    return None


# ------------------------------------------------------------------------------- processes
def _become_subreaper() -> bool:
    """Make orphans below this process its children (Linux), so that kill_tree finds detached ones."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:
        return False


def _descendants(root: int) -> list[int]:
    """Live (non-zombie) processes below ``root``, from /proc; [] where there is no /proc."""
    children: dict[int, list[int]] = {}
    state: dict[int, str] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry)
        state[pid] = fields[0]
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if state.get(p) != "Z"]


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(rounds: int = 50) -> None:
    """SIGKILL every process below this one (the grader, its worker, what the submission started)."""
    for _ in range(rounds):
        pids = _descendants(os.getpid())
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
        _reap()
    _reap()


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    kill_tree()
    try:
        proc.wait(timeout=5)
    except (subprocess.TimeoutExpired, ChildProcessError):
        pass


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (perhaps the container ran out of memory)" if -code == signal.SIGKILL else ""
        return f"the grader was killed by {name}{hint}"
    return f"the grader stopped with exit code {code}"


# ------------------------------------------------------------------------------- the run
def _config(source: Path) -> dict:
    try:
        data = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="run_autograder", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path(env("DGM_GRADESCOPE_ROOT") or DEFAULT_ROOT),
                   help="Gradescope's root folder (default $DGM_GRADESCOPE_ROOT or /autograder)")
    p.add_argument("--submission", type=Path, default=env("DGM_GRADESCOPE_SUBMISSION"),
                   help="the submission (default ROOT/submission)")
    p.add_argument("--results", type=Path, default=env("DGM_GRADESCOPE_RESULTS"),
                   help="the results file (default ROOT/results/results.json)")
    p.add_argument("--budget", type=float, default=env("DGM_GRADESCOPE_BUDGET"),
                   help="seconds this run may take in all (default: the bundle's, below Gradescope's limit)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the grader (default: this one)")
    p.add_argument("--grader", default=None,
                   help="grader command line instead of `PYTHON -m verify grade` (for testing the failure paths); "
                        "it gets the same options appended")
    return p


@dataclass(frozen=True)
class Job:
    """One run's settings: the command line's, else the bundle's (gradescope.json), else Gradescope's defaults."""

    start: float  # time.monotonic() when the run began
    submission: Path
    results: Path
    limit: float  # Gradescope's time limit, seconds
    budget: float  # this run's, below it
    steps: dict  # how the budget is spent (plan)
    max_score: float | None
    rubric: Path | None
    seed: int | None
    python: str
    grader: str | None  # a grader command line instead of PYTHON -m verify grade

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _job(args: argparse.Namespace, config: dict, start: float) -> Job:
    limit = float(config.get("gradescope_timeout_s") or GRADESCOPE_DEFAULT_LIMIT_S)
    budget = float(args.budget) if args.budget is not None else float(config.get("budget_s") or default_budget(limit))
    return Job(start=start, submission=args.submission or args.root / "submission",
               results=args.results or args.root / "results" / "results.json", limit=limit, budget=budget,
               steps=plan(budget), max_score=config.get("max_score"),
               rubric=SOURCE / config["rubric"] if config.get("rubric") else None, seed=config.get("seed"),
               python=args.python, grader=args.grader)


def run(args: argparse.Namespace) -> dict:
    job = _job(args, _config(SOURCE), start=time.monotonic())
    write_results(job.results, minimal_results(PROVISIONAL, job.max_score, 0.0))
    _become_subreaper()
    target, note = locate(job.submission)
    print(f"grading {target} (budget {job.budget:g} s: grader {job.steps['grader_s']:g} s, "
          f"worker {job.steps['worker_s']:g} s)", flush=True)
    work = _workspace()
    problem = _run_grader(_grader_cmd(job, target, work / "out"), job, work / "tmp")
    data = _results(job, target, work, problem)
    if note:
        data["output"] = f"{note}\n\n{data.get('output', '')}".rstrip()
    kill_tree()  # nothing left running can overwrite the results
    write_results(job.results, data)
    shutil.rmtree(work, ignore_errors=True)
    print(f"results: {data.get('score')} / {data.get('max_score', '?')} in {job.elapsed():.1f} s -> {job.results}",
          flush=True)
    return data


def _workspace() -> Path:
    """A private folder for the grader's reports (``out/``), with ``tmp/``: the grader's TMPDIR, where
    its worker leaves the checks it finished."""
    work = Path(tempfile.mkdtemp(prefix="dgm-gradescope-"))
    os.chmod(work, 0o711)
    (work / "tmp").mkdir()
    os.chmod(work / "tmp", 0o1777)  # like /tmp: an unprivileged worker can write there too
    return work


def _grader_cmd(job: Job, target: Path, out: Path) -> list[str]:
    """``python -m verify grade`` on ``target``, Gradescope's and the JSON report to ``out``."""
    options = ["grade", str(target), "--out", str(out), "--format", "gradescope", "--format", "json",
               "--timeout", f"{job.steps['worker_s']:.0f}", "--jobs", "1", "--single"]
    options += ["--rubric", str(job.rubric)] if job.rubric is not None else []
    options += ["--seed", str(int(job.seed))] if job.seed is not None else []
    return (shlex.split(job.grader) + options[1:]) if job.grader else [job.python, "-m", "verify", *options]


def _run_grader(cmd: list[str], job: Job, worker_tmp: Path) -> str | None:
    """Run the grader until its share of the budget is spent, then stop everything below this process;
    what went wrong, or None."""
    env = dict(os.environ, TMPDIR=str(worker_tmp))
    env.setdefault("OMP_NUM_THREADS", "1")  # small tensors; a container often shows more cores than it has
    try:
        proc = subprocess.Popen(cmd, cwd=SOURCE, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return f"the grader could not be started: {exc}"
    try:
        code = proc.wait(timeout=max(1.0, job.steps["grader_s"] - job.elapsed()))
        return _exit_reason(code) if code != 0 else None
    except subprocess.TimeoutExpired:
        return (f"grading stopped at the autograder's time budget of {job.budget:g} s "
                f"(Gradescope's limit is {job.limit:g} s) before the grader wrote its results")
    finally:
        _stop(proc)


def _results(job: Job, target: Path, work: Path, problem: str | None) -> dict:
    """The grader's results.json; when it wrote none, what the fallback scores, else a minimal one."""
    out = work / "out"
    produced = sorted(out.glob("*/results.json")) if out.is_dir() else []
    data = read_results(produced[0]) if len(produced) == 1 else None
    if data is not None:
        if problem is not None:  # results were written, then something went wrong: they stand
            print(f"note: {problem} (after writing its results)", flush=True)
        return data
    problem = problem or "the grader finished but wrote no results"
    print(f"no results from the grader: {problem}; scoring what was finished", flush=True)
    data = _fallback(job.python, job.rubric, problem, work / "tmp", target, work, job.start + job.budget - 1.0,
                     job.elapsed())
    if data is None:
        data = minimal_results(f"Grading did not finish: {problem}. Please resubmit; if this happens again, "
                               "tell the course staff.", job.max_score, job.elapsed())
    return data


def _fallback(python, rubric, problem, worker_tmp, target, work, deadline, seconds) -> dict | None:
    """Score the checks the worker finished (:mod:`grader.gradescope.fallback`) before ``deadline``."""
    dest = work / "fallback.json"
    cmd = [python, "-m", "grader.gradescope.fallback", "--reason", problem, "--search", str(worker_tmp),
           "--submission", str(target), "--seconds", f"{seconds:.3f}", "--out", str(dest)]
    cmd += ["--rubric", str(rubric)] if rubric is not None else []
    try:
        proc = subprocess.Popen(cmd, cwd=SOURCE, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        print("the fallback scoring ran out of time too", flush=True)
    finally:
        _stop(proc)
    return read_results(dest)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args)
    except Exception as exc:  # the last line of defence: still a valid results.json
        root = args.root
        path = args.results or root / "results" / "results.json"
        try:
            kill_tree()
            max_score = _config(SOURCE).get("max_score")
            write_results(path, minimal_results(
                f"Grading did not finish: the autograder failed ({type(exc).__name__}: {exc}). "
                "Please tell the course staff.", max_score, 0.0))
        finally:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
