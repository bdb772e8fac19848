"""dgm-verify's conformance suite and what runs it.

``pytest verify/`` checks the reference (``impls``); ``pytest verify/ --submission PATH`` checks
anyone's code. Every check reaches the implementation under test through the ``impl`` fixture,
an :class:`verify.loader.Implementation`, and never imports a submission itself.
"""

DEFAULT_SEED = 236  # the suite's fixed default seed (``--verify-seed`` changes it)
