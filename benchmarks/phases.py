"""A pytest plugin that times one grading by phase (``-p benchmarks.phases``; benchmarks/profile.py).

It writes, to the JSON file named by the environment variable ``DGM_PHASES_OUT`` (``%p``: this
process's pid, for several checks' processes at once), the wall time
since this process started
(``/proc/self/stat``; for a process forked from a pre-imported one, the fork) and the CPU seconds
of this process (self) and of its workers (its reaped children, or those the workers' zygote reaped) at each phase boundary:
the plugin loaded (interpreter and pytest imported), the suite's conftest imported, the worker
launched (then torch imported while it starts), the checks collected (their modules' imports;
scipy and sympy wait for the checks that use them), each check's setup, call and teardown with its worker round trips (requests, and the
checks' networks called back), and the session's end. Measurement only: it changes no verdict.
"""
from __future__ import annotations

import json
import os
import resource
import time

import pytest



def _started() -> float:
    """This process's start, in seconds of CLOCK_BOOTTIME (``/proc/self/stat``: clock ticks since boot)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


STARTED = _started()
T0 = time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - STARTED)  # the wall clock when this process started
_marks: list[dict] = []
_checks: dict[str, dict] = {}
_trips = {"requests": 0, "callbacks": 0}
_workers: list[dict] = []
_forked_cpu = [0.0]  # CPU seconds of the workers forked by the zygote (sandbox.process.ForkedWorker)


def _mark(name: str) -> dict:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    entry = {"phase": name, "wall": time.time() - T0, "cpu_self": own.ru_utime + own.ru_stime,
             "cpu_children": kids.ru_utime + kids.ru_stime + _forked_cpu[0]}
    _marks.append(entry)
    return entry


_mark("plugin loaded (interpreter, pytest)")


def _time_worker_starts():
    """Record each worker's launch and the moment its ready message was read (the worker's start-up:
    interpreter, torch, confinement, the submission's import)."""
    from sandbox.process import Sandbox

    launch, wait = Sandbox._launch, Sandbox._wait_ready

    def timed_launch(self, *a, **k):
        _workers.append({"launched": time.time() - T0})
        return launch(self, *a, **k)

    def timed_wait(self, *a, **k):
        asked = time.time() - T0
        try:
            return wait(self, *a, **k)
        finally:
            if _workers:
                _workers[-1].update(asked=asked, ready=time.time() - T0)

    if not getattr(Sandbox, "_dgm_timed", False):
        Sandbox._launch, Sandbox._wait_ready, Sandbox._dgm_timed = timed_launch, timed_wait, True
    _count_forked_cpu()


def _count_forked_cpu():
    """The CPU seconds of the workers forked by the workers' zygote (its children, not ours: it
    reports each one's when it reaps it)."""
    from sandbox import process

    forked = getattr(process, "ForkedWorker", None)
    if forked is None or getattr(forked, "_dgm_counted", False):
        return
    wait = forked.wait

    def counted_wait(self, *a, **k):
        code = wait(self, *a, **k)
        if getattr(self, "cpu", None) is not None and not getattr(self, "_dgm_counted_cpu", False):
            self._dgm_counted_cpu = True
            _forked_cpu[0] += self.cpu
        return code

    forked.wait, forked._dgm_counted = counted_wait, True


def _count_round_trips():
    """Count the requests to the worker and the callbacks it makes (wrapping the channel's methods)."""
    from sandbox.channel import Channel

    def counting(method, key):
        def wrapper(self, *args, **kwargs):
            _trips[key] += 1
            return method(self, *args, **kwargs)
        return wrapper

    if not getattr(Channel, "_dgm_counted", False):
        Channel.exchange = counting(Channel.exchange, "requests")
        Channel._serve_callback = counting(Channel._serve_callback, "callbacks")
        Channel._serve_callback_vjp = counting(Channel._serve_callback_vjp, "callbacks")
        Channel._dgm_counted = True


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    _time_worker_starts()  # sandbox.process imports torch: a cost the conftest pays next anyway
    yield
    _mark("conftest imported (light: torch waits for the worker)")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    _count_round_trips()
    _mark("configured (worker launched, then torch and numpy imported)")


def pytest_collection_finish(session):
    _mark(f"collected {len(session.items)} checks (their modules, hypothesis)")


def _worker_cpu(config) -> float:
    """CPU seconds of the running sandboxed worker so far (``/proc/PID/stat``), 0 if none or gone."""
    sandbox = getattr(config, "_dgm_sandbox", None)
    pid = getattr(getattr(sandbox, "proc", None), "pid", None)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before, worker = dict(_trips), _worker_cpu(item.config)
    start = _mark("check start")
    _marks.pop()
    yield
    end = _mark("check end")
    _marks.pop()
    _checks.setdefault(item.nodeid, {}).update({"wall": end["wall"] - start["wall"],
                            "cpu_self": end["cpu_self"] - start["cpu_self"],
                            "cpu_worker": max(0.0, _worker_cpu(item.config) - worker),
                            "requests": _trips["requests"] - before["requests"],
                            "callbacks": _trips["callbacks"] - before["callbacks"]})


def pytest_runtest_logreport(report):
    entry = _checks.setdefault(report.nodeid, {})
    entry[report.when] = round(report.duration, 4)


def pytest_sessionfinish(session):
    _mark("checks run")


def pytest_unconfigure(config):
    _mark("session closed (worker stopped and reaped)")
    path = os.environ.get("DGM_PHASES_OUT", "").replace("%p", str(os.getpid()))
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"marks": _marks, "checks": _checks, "round_trips": _trips, "workers": _workers,
                       "started_boottime": STARTED}, f)
