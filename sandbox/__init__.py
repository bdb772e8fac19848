"""Run untrusted submissions out of process.

* ``worker.py``: the only process that runs student code; confines itself (``confine.py``: rlimits,
  Landlock, an unprivileged uid, seccomp), imports the submission (``submission.py``) and serves
  requests;
* ``wire.py``: the message format both sides speak (JSON header + raw tensor bytes; never pickle);
* ``proxy.py``: the trusted side: starts and restarts the worker, enforces the per-check time
  limit, validates replies, and stands in for the submission's functions and classes.

``verify.loader.load(path)`` returns an implementation backed by a :class:`proxy.Sandbox` unless
``in_process=True`` (``--in-process``), which imports trusted code directly.
"""
