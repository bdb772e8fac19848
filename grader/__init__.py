"""Grading: the conformance suite run per submission, scored with a rubric, reported.

* ``rubric``    the TOML rubric (groups of checks, points, visibility, partial credit)
* ``plugin``    the pytest plugin loaded in the process that runs the checks: one JSON line per check, with diagnosis
* ``diagnosis`` which catalogued bug reproduces a failing submission's outputs on the same inputs
* ``options``   ``GradeOptions``: the options of a grading run in one frozen object, built by ``cli``
* ``runner``    runs the worker per submission (timeout, --jobs, progress bar), scores it
* ``reports``   Gradescope results.json, JUnit XML, CSV gradebook, Markdown feedback, text, JSON
* ``cli``       ``python -m verify grade``
* ``metrics``   ``python -m verify grade-metrics``: a student's reported test-set numbers against a TOML rubric
* ``safe_pickle`` the course's metric pickles read by interpreting their opcodes (plain data only; never unpickled)
* ``catalogue`` known bugs as data (planted in tests, named by the diagnosis)
* ``gradescope`` the Gradescope autograder: ``bundle`` (``python -m verify gradescope-bundle``), ``autograder``
  (what ``run_autograder`` runs), ``fallback`` (scoring what was finished)
"""
