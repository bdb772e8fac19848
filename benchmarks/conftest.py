"""Shared machinery of the benchmarks.

Every benchmark goes through the ``bench`` fixture, which times one variant of one kernel with
pytest-benchmark and records in ``extra_info``: kernel, variant (``ours``, ``ours (fused)``,
``torch.distributions``, ``naive``), device, dtype, size; the bytes or FLOPs the kernel must move
or compute at least; the achieved bandwidth or FLOP/s and its fraction of the machine limit
measured in the same run (benchmarks/machine.py: before every benchmark; the fraction is against
the median of those measurements, and the fastest call's against the best of them); the peak
memory of one call. At the end of the run the ratio
of each variant to the torch.distributions and naive variants of the same kernel,
device, dtype and size is added (``pytest_benchmark_update_json``), so every ratio compares
figures taken together. ``python -m benchmarks.report BENCH.json`` prints the table.

With benchmarking disabled (the plain test run) each benchmark runs its function once, no
limits or memory are measured, and two kinds of benchmark skip with the reason: ``heavy`` ones
(seconds per call) and ``compiled`` ones (torch.compile variants, whose compile time would
dominate; their correctness is tests/test_fused.py). ``--benchmark-only`` implies
``--benchmark-enable``, so it works when ``--benchmark-disable`` is in the configured addopts.
"""
import pytest
import torch

from benchmarks.common import COMPILED_REASON, HEAVY_REASON, Bench, benchmarking
from benchmarks.machine import MachineLimits
from benchmarks.report import enrich


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: a benchmark of seconds per call, skipped when benchmarking is disabled")
    config.addinivalue_line("markers", "compiled: a torch.compile variant, skipped when benchmarking is disabled")
    # --benchmark-only must benchmark even when --benchmark-disable is in the configured addopts
    # (pytest-benchmark refuses the combination otherwise); --benchmark-enable is its documented override.
    option = config.option
    if getattr(option, "benchmark_only", False) and getattr(option, "benchmark_disable", False):
        option.benchmark_enable = True


def pytest_runtest_setup(item):
    if benchmarking(item.config):
        return
    if item.get_closest_marker("heavy") is not None:
        pytest.skip(HEAVY_REASON)
    if item.get_closest_marker("compiled") is not None:
        pytest.skip(COMPILED_REASON)


# ------------------------------------------------------------------------------- limits
_LIMITS_KEY = pytest.StashKey()


@pytest.fixture(scope="session")
def limits(pytestconfig):
    """The machine's limits, measured before each benchmark (benchmarks/machine.py)."""
    lim = MachineLimits(reps=5)
    pytestconfig.stash[_LIMITS_KEY] = lim
    return lim


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """The run's limits; each fraction against the median of its limit over the run (and the
    fastest call's against the best); the ratios between the variants of each kernel and size."""
    output_json["torch_threads"] = torch.get_num_threads()  # OMP_NUM_THREADS=1 pytest ... to change it
    lim = config.stash.get(_LIMITS_KEY, None)
    if lim is not None:
        limits = output_json["machine_limits"] = lim.summary()
        for bench in output_json["benchmarks"]:
            info = bench.get("extra_info") or {}
            run = limits.get(info.get("limit_key"))
            if run is not None and info.get("achieved") is not None:
                info.update(limit_value=run["median"], fraction_of_limit=info["achieved"] / run["median"])
            if run is not None and info.get("achieved_best") is not None:
                info.update(limit_best_value=run["best"], fraction_of_limit_best=info["achieved_best"] / run["best"])
            if run is not None and info.get("floor_achieved") is not None:
                info["floor_fraction_of_limit"] = info["floor_achieved"] / run["median"]
    enrich(output_json["benchmarks"])


# ------------------------------------------------------------------------------- inputs
class _LastInputs:
    """Keeps only the most recently built inputs: the variants of one kernel and size run one
    after another and share them, and large inputs do not pile up."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, key, build):
        if key != self.key:
            self.key, self.value = None, None  # free the old ones before building the new
            self.value, self.key = build(), key
        return self.value


@pytest.fixture(scope="session")
def inputs():
    return _LastInputs()


@pytest.fixture
def bench(benchmark, limits, pytestconfig):
    return Bench(benchmark, limits, pytestconfig)
