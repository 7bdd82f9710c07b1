"""Process set-up shared by the worker and executor entry points."""
from __future__ import annotations

from ..core.context import mark_worker_process


def enter_worker_context() -> None:
    mark_worker_process()
