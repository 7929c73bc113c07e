"""Waiting on a condition with a deadline, never a bare sleep: `wait_until` for every test.

    job = wait_until(lambda: RedriveJob.objects.filter(pk=pk, state="done").first(), 30, "the job to finish")

The implementation lives in bench/common.py, shared with the benchmarks (which wait
for the same processes): bench/ must not import tests/, while tests already import bench.
"""

from bench.common import wait_until

__all__ = ["wait_until"]
