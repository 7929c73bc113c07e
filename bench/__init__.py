"""Benchmarks: each figure measured side by side with the raw client in the same run.

`make bench` (python -m bench) prints a table and writes var/bench.json. Ratios,
not absolute times, are what hold on a noisy two-core machine; see
docs/performance.md for what each figure means and what bounds it.
"""
