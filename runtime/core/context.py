"""Which side of the run this process is on.

A @task function called inside a running task executes as a plain call (there is no nested
runtime in a worker); everywhere else a call becomes a task. This is the single place that
records the difference, set once at process start by the worker's entry point.
"""
from __future__ import annotations

_in_worker = False


def mark_worker_process() -> None:
    global _in_worker
    _in_worker = True


def in_worker() -> bool:
    return _in_worker
