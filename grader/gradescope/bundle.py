"""``python -m verify gradescope-bundle``: build a Gradescope autograder (``autograder.zip``).

The zip's root (Gradescope unpacks it into ``/autograder/source``) holds:

* ``setup.sh``: run once when Gradescope builds the image; makes a virtual environment in
  ``/autograder/venv`` with the CPU build of torch and the grading dependencies pinned to the
  versions of the machine that built the bundle (``requirements.txt``), checks that the suite
  collects, and makes ``/autograder/source`` readable by root only;
* ``run_autograder``: run for each submission; ``grader.gradescope.autograder`` grades
  ``/autograder/submission`` with ``python -m verify grade`` (so the sandbox confines the
  student's code) and always writes ``/autograder/results/results.json``;
* ``impls/``, ``derivations/``, ``verify/``, ``sandbox/``, ``grader/``, ``pyproject.toml``: this
  package as source. It is run from ``/autograder/source`` and never installed into site-packages,
  which the sandboxed worker can read: the reference implementations and the checks stay out of
  its reach;
* ``rubric.toml`` (the rubric given), ``gradescope.json`` (time budget, seed, maximum score,
  version and commit of this package).

The zip is reproducible: the same files give the same bytes (fixed dates, sorted entries).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import verify
from verify import DEFAULT_SEED, suite_args
from grader.gradescope.autograder import CONFIG_NAME, GRADESCOPE_DEFAULT_LIMIT_S, default_budget
from grader import rubric as rubric_mod

ROOT = Path(verify.__file__).resolve().parent.parent
PACKAGES = ("impls", "derivations", "verify", "sandbox", "grader")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"}
SKIP_SUFFIXES = (".pyc", ".pyo")
NOT_FOR_GRADING = {"pytest-benchmark", "jsonschema"}  # the benchmarks and the library's own tests
GRADESCOPE_MAX_LIMIT_MIN = 40  # Gradescope allows at most 40 minutes
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# Built by `python -m verify gradescope-bundle` from dgm-verify @VERSION@ (@COMMIT@).
set -euo pipefail
ROOT="${DGM_GRADESCOPE_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
cd "$SOURCE"

if command -v apt-get >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv python3-pip
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "dgm-verify needs Python >= 3.10, this image has " + sys.version.split()[0] + ": choose a newer base image (Ubuntu 24.04)")'
python3 -m venv "$VENV"
PY="$VENV/bin/python"

# torch: the CPU build (the default build pulls gigabytes of CUDA libraries), pinned.
"$PY" -m pip install --no-cache-dir --index-url @TORCH_INDEX@ "torch==@TORCH@" \
    || "$PY" -m pip install --no-cache-dir "torch==@TORCH@"
# The grading dependencies, pinned to the versions of the machine that built this bundle.
"$PY" -m pip install --no-cache-dir -r requirements.txt

# The grader is run from this folder, never installed into site-packages (the sandboxed worker
# may read the Python installation, not this folder). Check that the suite collects, compile it.
"$PY" -m pytest @SUITE_ARGS@ -q --collect-only > /dev/null \
    || { echo "setup.sh: the checks do not collect with these packages (see above)" >&2; exit 1; }
"$PY" -m compileall -q impls derivations verify sandbox grader
# Defence in depth: the reference implementations, the checks and the rubric are root's alone.
chmod -R go-rwx "$SOURCE"
echo "dgm-verify @VERSION@ autograder ready: Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), torch $("$PY" -c 'import torch; print(torch.__version__)')"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission, as root, in /autograder. It always leaves a valid
# results/results.json (grader/gradescope/autograder.py says how), within a time budget of
# @BUDGET@ s, below the @LIMIT@ s Gradescope allows. For testing elsewhere: DGM_GRADESCOPE_ROOT
# (default /autograder), DGM_GRADESCOPE_SOURCE (ROOT/source), DGM_GRADESCOPE_SUBMISSION
# (ROOT/submission), DGM_GRADESCOPE_RESULTS (ROOT/results/results.json), DGM_GRADESCOPE_PYTHON
# (ROOT/venv/bin/python), DGM_GRADESCOPE_BUDGET (seconds).
ROOT="${DGM_GRADESCOPE_ROOT:-/autograder}"
SOURCE="${DGM_GRADESCOPE_SOURCE:-$ROOT/source}"
RESULTS="${DGM_GRADESCOPE_RESULTS:-$ROOT/results/results.json}"
PYTHON="${DGM_GRADESCOPE_PYTHON:-$ROOT/venv/bin/python}"
command -v "$PYTHON" > /dev/null 2>&1 || PYTHON=python3
export DGM_GRADESCOPE_ROOT="$ROOT" DGM_GRADESCOPE_RESULTS="$RESULTS"
cd "$SOURCE" && "$PYTHON" -m grader.gradescope.autograder --python "$PYTHON" "$@"
status=$?
if [ ! -s "$RESULTS" ]; then  # the Python side could not even start
    mkdir -p "$(dirname "$RESULTS")"
    printf '%s\n' '{"score": 0, "max_score": @MAX_SCORE@, "execution_time": 0, "output": "Grading did not finish: the autograder could not start. Please tell the course staff.", "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}' > "$RESULTS"
fi
exit "$status"
"""


class BundleError(Exception):
    """A user mistake (bad rubric, unwritable output, bad time limit); the message says what to fix."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> list[str]:
    """The package's dependencies as declared (pyproject.toml beside the source, else the installed metadata)."""
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])
    return [r for r in importlib.metadata.requires("dgm-verify") or [] if "extra ==" not in r]


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name).split("+")[0]  # 2.13.0+cpu -> 2.13.0
    except importlib.metadata.PackageNotFoundError:
        return None


def requirements() -> list[str]:
    """requirements.txt lines: each grading dependency pinned to the version installed here
    (as declared when it is not installed here, e.g. tomli on Python >= 3.11), markers kept."""
    lines = []
    for spec in declared_dependencies():
        req, _, marker = spec.partition(";")
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)
        if _canonical(name) in NOT_FOR_GRADING:
            continue
        version = _installed(name)
        line = f"{name}=={version}" if version else req.strip()
        lines.append(f"{line}; {marker.strip()}" if marker.strip() else line)
    return lines


def _version() -> str:
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    return _installed("dgm-verify") or "unknown"


def _commit() -> str:
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT,
                              capture_output=True, text=True, timeout=20)
        return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "no git commit"
    except (OSError, subprocess.SubprocessError):
        return "no git commit"


def source_files() -> list[tuple[str, Path]]:
    """(name in the zip, file) for the package's source: the PACKAGES folders and pyproject.toml."""
    files = []
    for package in PACKAGES:
        base = ROOT / package
        if not (base / "__init__.py").is_file():
            raise BundleError(f"{base} is not a package: build the bundle from a checkout of dgm-verify")
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            for f in sorted(filenames):
                if not f.endswith(SKIP_SUFFIXES):
                    path = Path(dirpath) / f
                    files.append((path.relative_to(ROOT).as_posix(), path))
    if (ROOT / "pyproject.toml").is_file():
        files.append(("pyproject.toml", ROOT / "pyproject.toml"))
    return files


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False):
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.create_system = 3  # unix, so that unzip applies the modes
    zf.writestr(info, data)


def build(output: Path, rubric_path: str | Path | None = None, gradescope_timeout_min: float = GRADESCOPE_DEFAULT_LIMIT_S / 60,
          budget_s: float | None = None, seed: int = DEFAULT_SEED) -> dict:
    """Write the autograder zip to ``output``; returns its configuration (gradescope.json)."""
    limit, budget = _time_limits(gradescope_timeout_min, budget_s)
    try:
        rub = rubric_mod.load(rubric_path)
    except rubric_mod.RubricError as exc:
        raise BundleError(str(exc)) from None
    output = _output_path(output)
    torch_version = _installed("torch") or "2.13.0"
    version, commit = _version(), _commit()
    config = {
        "package": "dgm-verify", "version": version, "commit": commit,
        "rubric": "rubric.toml", "rubric_name": rub.name, "max_score": rub.max_score, "seed": seed,
        "gradescope_timeout_s": limit, "budget_s": budget,
        "built_with": {"python": sys.version.split()[0], "torch": torch_version},
    }
    subst = {"@VERSION@": version, "@COMMIT@": commit, "@TORCH@": torch_version, "@TORCH_INDEX@": TORCH_CPU_INDEX,
             "@SUITE_ARGS@": shlex.join(suite_args(relative=True)), "@BUDGET@": f"{budget:g}", "@LIMIT@": f"{limit:g}",
             "@MAX_SCORE@": f"{rub.max_score:g}"}
    files = [("setup.sh", _fill(SETUP_SH, subst), True), ("run_autograder", _fill(RUN_AUTOGRADER, subst), True),
             ("requirements.txt", _requirements_txt(version, commit), False),
             (CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode(), False),
             ("rubric.toml", Path(rub.source).read_bytes(), False)]
    files += [(name, path.read_bytes(), False) for name, path in source_files()]
    _write_zip(output, files)
    return config


def _time_limits(gradescope_timeout_min: float, budget_s: float | None) -> tuple[float, float]:
    """(Gradescope's limit, the autograder's budget), in seconds, checked."""
    if not 0 < gradescope_timeout_min <= GRADESCOPE_MAX_LIMIT_MIN:
        raise BundleError(f"--gradescope-timeout must be more than 0 and at most {GRADESCOPE_MAX_LIMIT_MIN} minutes "
                          f"(Gradescope's maximum), not {gradescope_timeout_min:g}")
    limit = 60.0 * gradescope_timeout_min
    budget = default_budget(limit) if budget_s is None else float(budget_s)
    if budget <= 0 or budget >= limit:
        raise BundleError(f"--budget must be positive and below the Gradescope limit of {limit:g} s "
                          f"(Gradescope kills the run at its limit and shows nothing), not {budget:g}")
    if budget > default_budget(limit):
        print(f"warning: a budget of {budget:g} s leaves less than a minute before Gradescope's limit of {limit:g} s",
              file=sys.stderr)
    return limit, budget


def _output_path(output: Path) -> Path:
    """``output`` as a zip file that can be written (a file in an existing folder)."""
    output = Path(output).expanduser()
    if output.is_dir():
        raise BundleError(f"{output} is a folder; give the zip file to write, e.g. {output / 'autograder.zip'}")
    if not output.parent.is_dir():
        raise BundleError(f"cannot write {output}: the folder {output.parent} does not exist")
    return output


def _fill(template: str, subst: dict[str, str]) -> bytes:
    for key, value in subst.items():
        template = template.replace(key, value)
    return template.encode()


def _requirements_txt(version: str, commit: str) -> bytes:
    header = [f"# dgm-verify {version} ({commit}): grading dependencies, pinned to the versions this bundle",
              f"# was built and tested with (Python {sys.version.split()[0]}). torch is the CPU build,",
              "# installed first by setup.sh. dgm-verify itself is shipped as source in /autograder/source."]
    return ("\n".join(header + requirements()) + "\n").encode()


def _write_zip(output: Path, files: list[tuple[str, bytes, bool]]) -> None:
    """The zip of ``files`` (name, bytes, executable), in that order, written to ``output`` in one step."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data, executable in files:
            _add(zf, name, data, executable=executable)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".autograder-", suffix=".zip", dir=output.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, output)
    except OSError as exc:
        raise BundleError(f"cannot write {output}: {exc.strerror or exc}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify gradescope-bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("--rubric", default=None, help="TOML rubric (default: the homework's, 100 points)")
    p.add_argument("-o", "--output", default="autograder.zip", type=Path, help="the zip to write (default autograder.zip)")
    p.add_argument("--gradescope-timeout", type=float, default=GRADESCOPE_DEFAULT_LIMIT_S / 60, metavar="MINUTES",
                   help="the assignment's autograder timeout on Gradescope (default 10, Gradescope's default; at most 40)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="seconds run_autograder may take in all (default: the timeout less a minute, or 10%%)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of every check (default {DEFAULT_SEED})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = build(args.output, rubric_path=args.rubric, gradescope_timeout_min=args.gradescope_timeout,
                       budget_s=args.budget, seed=args.seed)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1024:.0f} KiB): dgm-verify {config['version']} ({config['commit']}), "
          f"rubric '{config['rubric_name']}' ({config['max_score']:g} points), "
          f"budget {config['budget_s']:g} s of Gradescope's {config['gradescope_timeout_s']:g} s")
    print("upload it on Gradescope: assignment > Configure Autograder > Zip file upload (base image Ubuntu 24.04)")
    return 0
