"""Scale-out proofs: several EventHub processes side by side behave as one.

Two Daphnes share the Redis channel layer, two collectors produce one series,
a Celery worker on the `redrive` queue alone takes the redrive jobs. The
fixtures and helpers come from tests/fault (same process harness).
"""
