"""Gradescope autograder: ``python -m verify gradescope-bundle`` and what runs inside the bundle.

* :mod:`grader.gradescope.bundle` builds ``autograder.zip`` (``setup.sh``, ``run_autograder``,
  pinned ``requirements.txt``, the rubric, this package as source);
* :mod:`grader.gradescope.autograder` is what ``run_autograder`` runs for each submission: the
  grader CLI (``python -m verify grade``, so the sandbox confines the student's code) in a
  subprocess under a time budget below Gradescope's limit, and a valid ``results.json`` whatever
  happens;
* :mod:`grader.gradescope.fallback` scores what was finished when the grader itself did not
  write results (the runner's own scoring: every check without a result fails with the reason).

This package's ``__init__`` imports nothing: ``run_autograder`` must start even if torch is broken.
"""
