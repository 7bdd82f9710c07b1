"""Which side of the run this process is on.

A @task function called inside a running task executes as a plain call (there is no nested
runtime in a worker); everywhere else a call becomes a task. This is the single place that
records the difference, set once at process start by the worker's entry point.
"""
from __future__ import annotations

import contextlib
import contextvars

_in_worker = False
_running_task = contextvars.ContextVar("superscalar_running_task", default=False)


def mark_worker_process() -> None:
    global _in_worker
    _in_worker = True


def in_worker() -> bool:
    return _in_worker or _running_task.get()


@contextlib.contextmanager
def running_task():
    """The sequential backend runs a task's body in the application process: inside it, task
    calls are plain calls, exactly as on a worker."""
    token = _running_task.set(True)
    try:
        yield
    finally:
        _running_task.reset(token)
