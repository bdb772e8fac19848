"""Options and fixtures of the conformance suite.

--submission PATH   the implementation under test (default: the reference in ``impls``)
--device cpu|cuda   where the checks put their tensors (cuda: skipped with a reason when absent)
--verify-seed N     re-randomize every stochastic check and generated input (default: fixed)
--verify-seed-count N  run each stochastic check under N seeds (calibration; see tests/)
--in-process        import the submission into this process instead of the sandbox (trusted code only)
--check-timeout S   wall-clock seconds a check may spend in the sandboxed submission (default 120)
--worker-memory MiB address-space limit of the sandboxed submission (default 4096)
"""
from __future__ import annotations

import gc
import re
import time
import zlib
from pathlib import Path

import pytest

from verify import DEFAULT_SEED, SUITE_OPTIONS, loader
from verify.contract import CONTRACT_NAMES, MARKER, graded_names
from verify.lazy import OnFirstUse

# Nothing here imports torch before pytest_configure has launched the sandboxed worker: the worker
# then imports torch while this process does (a one-check regrade waits for neither twice).
np, torch = OnFirstUse("numpy"), OnFirstUse("torch")


def _hypothesis_profile(grading: bool = False):
    """Generated inputs: fixed (derandomized), 25 examples, no deadline, no database. A failing
    example is shrunk to a minimal one, except under the grader (``grading``): the verdict is the
    same, and shrinking cost up to 250 more calls, a CPU-second, a failing check."""
    from hypothesis import Phase, settings

    phases = (Phase.explicit, Phase.reuse, Phase.generate) + (() if grading else (Phase.shrink,))
    settings.register_profile(
        "verify",
        derandomize=True,
        max_examples=25,
        deadline=None,
        database=None,
        phases=phases,  # no explain phase: it writes patch files
    )
    settings.load_profile("verify")
    _no_local_constants()


def _no_local_constants():
    """Hypothesis (>= 6.131) mixes into its examples the literal constants of every non-library
    module loaded in this process, so the inputs a check generates depended on which of our modules
    happened to be imported before it: a one-check regrade (``-k``) and the whole suite could judge
    the same check on different inputs. Generated inputs depend on the check and the seed alone:
    no local constants (hypothesis' own interesting values stay)."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # an older hypothesis: it has no local constants
        return
    if hasattr(providers, "_get_local_constants"):
        empty = providers.Constants()
        providers._get_local_constants = lambda: empty


def pytest_addoption(parser):
    group = parser.getgroup("dgm-verify")
    for flag, kwargs in SUITE_OPTIONS:  # shared with python -m verify --help
        group.addoption(flag, **kwargs)


def pytest_configure(config):
    config.addinivalue_line("markers", "stochastic: a statistical check with a stated false-failure rate")
    config.addinivalue_line("markers", f"{MARKER}(name, ...): the contract name a check grades (verify/contract.py)")
    config._dgm_sandbox = None
    path = config.getoption("--submission", None)
    if path is not None and not config.getoption("--in-process") and Path(path).expanduser().exists():
        from sandbox.process import Limits

        # started now, the worker imports torch and the submission while pytest collects the checks
        limits = Limits(check_seconds=config.getoption("--check-timeout"),
                        memory_bytes=config.getoption("--worker-memory") << 20,
                        cuda=config.getoption("--device") == "cuda")
        config._dgm_sandbox = loader.launch(path, limits)
    _hypothesis_profile(grading=config.getoption("--grading-out", default=None) is not None)


def pytest_unconfigure(config):
    sandbox = getattr(config, "_dgm_sandbox", None)
    if sandbox is not None:
        sandbox.stop()


def pytest_generate_tests(metafunc):
    count = metafunc.config.getoption("--verify-seed-count", 0)
    if count and metafunc.definition.get_closest_marker("stochastic") and "verify_seed" in metafunc.fixturenames:
        base = metafunc.config.getoption("--verify-seed") or 0
        metafunc.parametrize("verify_seed", [base + i for i in range(count)], ids=lambda s: f"seed{s}")


def pytest_collection_modifyitems(config, items):
    for item in items:  # the reports carry what each check grades (the summary, the grader)
        item.user_properties.append((MARKER, graded_names(item)))
    if config.getoption("--device") == "cuda" and not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="--device cuda was asked for, but torch.cuda.is_available() is False")
        for item in items:
            item.add_marker(skip)
    seed = config.getoption("--verify-seed")
    if seed is not None:
        for item in items:
            inner = getattr(getattr(item, "obj", None), "hypothesis", None)
            if inner is not None:  # the documented effect of @hypothesis.seed(seed)
                item.obj._hypothesis_internal_use_seed = seed


def pytest_collection_finish(session):
    """The imports' objects (torch's, the checks' modules) are never garbage: freeze them, so that
    the full collections made while the checks run (hypothesis makes one before its first example)
    skip them: about half a second each with torch and scipy loaded."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A check whose contract name is not available fails at once with the reason (no generated inputs)."""
    __tracebackhide__ = True
    impl = pyfuncitem.funcargs.get("impl")
    if impl is not None:
        for name in graded_names(pyfuncitem):
            if name in CONTRACT_NAMES:
                impl.require(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Each check gets its own wall-clock budget in the sandboxed submission."""
    impl = item.funcargs.get("impl")
    sandbox = getattr(impl, "sandbox", None)
    if sandbox is not None:
        sandbox.deadline = time.monotonic() + item.config.getoption("--check-timeout")
    try:
        yield
    finally:
        if sandbox is not None:
            sandbox.deadline = None
        # no "git apply .hypothesis/patches/..." advice: it would patch the checks, not the submission
        item.__dict__.pop("_hypothesis_failing_examples", None)


@pytest.fixture(scope="session")
def impl(request):
    """The implementation under test; checks use ``impl.<contract name>`` and nothing else."""
    config = request.config
    implementation = loader.load(config.getoption("--submission"), in_process=config.getoption("--in-process"),
                                 sandbox=config._dgm_sandbox)
    config._dgm_load_notes = implementation.notes  # the load report (grader/plugin.py, python -m verify)
    threads = torch.get_num_threads()
    # one thread: the checks' tensors are small, and more threads spin on every core (sandboxed, the
    # checks and the worker take turns; in process, a 2-core machine ran some image-sized ops 50 ms each)
    torch.set_num_threads(1)
    yield implementation
    implementation.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def device(request):
    return torch.device(request.config.getoption("--device"))


@pytest.fixture(scope="session")
def verify_seed(request):
    seed = request.config.getoption("--verify-seed")
    return DEFAULT_SEED if seed is None else seed


@pytest.fixture(autouse=True)
def _seed_everything(request, verify_seed):
    """Seed torch per check from (seed, check id): results do not depend on which checks run."""
    seed = zlib.crc32(f"{verify_seed}:{_check_name(request)}".encode())
    # torch.manual_seed(seed) also queues a seed for every accelerator (CUDA, XPU, MTIA), each with a
    # formatted stack trace: some 2 ms a check under pytest's deep stack. The CPU generator is
    # seeded alike; CUDA's, where the checks run there, too.
    torch.random.default_generator.manual_seed(seed)
    if request.config.getoption("--device") == "cuda" and torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@pytest.fixture
def rng(request, verify_seed):
    """A numpy Generator for a check's own inputs, seeded like the torch RNG."""
    return np.random.default_rng(zlib.crc32(f"inputs:{verify_seed}:{_check_name(request)}".encode()))


def _check_name(request) -> str:
    """The check's id without its calibration-seed parameter."""
    return re.sub(r"-?seed\d+(?=[\]-])", "", request.node.nodeid.split("::", 1)[-1]).replace("[]", "")
