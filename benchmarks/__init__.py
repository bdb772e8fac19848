"""Benchmarks of the reference kernels (pytest-benchmark), side by side with torch.distributions,
a naive implementation and the fused fast path (benchmarks/fused.py), against the machine's own limits
measured in the same run. ``pytest benchmarks/ --benchmark-only --benchmark-json=BENCH.json`` then
``python -m benchmarks.report BENCH.json``; see benchmarks/conftest.py for what is recorded.
"""
