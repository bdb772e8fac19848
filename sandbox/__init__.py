"""Run untrusted submissions out of process.

The worker side (run as ``python -I``; it loads its siblings by file path, not through this package):

* ``worker.py``: the only process that runs student code; confines itself (``confine.py``: rlimits,
  Landlock, an unprivileged uid, seccomp), imports the submission (``submission.py``) and serves
  requests;
* ``wire.py``: the message format both sides speak (JSON header + raw tensor bytes; never pickle).

The trusted side (imports run one way: ``process`` -> ``remote`` -> ``gradients`` -> ``channel``):

* ``process.py``: :class:`process.Sandbox` starts, restarts and stops the worker, enforces the
  per-check time limit, condemns a contract name whose call killed or hung it, and sweeps what
  the worker leaves behind; ``Limits``, and what the worker may read;
* ``channel.py``: requests and their validated answers over the worker's socket, with deadlines,
  and the checks' networks served to the worker; ``CallSpec``, what one call says;
* ``gradients.py``: calls autograd differentiates through, their gradients cross-checked by
  finite differences;
* ``remote.py``: the stand-ins for the submission's functions, classes and objects;
* ``errors.py``: what the trusted side raises.

``verify.loader.load(path)`` returns an implementation backed by a :class:`process.Sandbox` unless
``in_process=True`` (``--in-process``), which imports trusted code directly.
"""
