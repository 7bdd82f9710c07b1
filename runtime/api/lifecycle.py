"""The end of a run: wait for every task, write final file versions back, report failures."""
from __future__ import annotations

import atexit
import sys

from ..master.session import end_session
from ..master.shell import ApplicationStopped
from .functions import _sync_path


def finish_session(report=sys.stderr) -> int:
    """Stop the current session; return the number of failed tasks (0: success)."""
    session = end_session()
    if session is None:
        return 0
    try:
        try:
            session.barrier()
            for path in list(session.files):
                try:
                    _sync_path(session, path)
                except Exception as error:   # a failed producer: reported below with its task
                    print(f"[superscalar] could not write back {path}: {error}", file=report)
        except ApplicationStopped:
            pass                 # a FAIL policy stopped the run: nothing more is written
        failures = list(session.failures)
        ignored = list(session.ignored_failures)
    finally:
        session.stop()
    for failure in ignored:
        print(f"[superscalar] warning: task '{failure.task_name}' (id {failure.task_id}) "
              f"failed and on_failure='IGNORE' gave its outputs their defaults: "
              f"{failure.message}", file=report)
    for failure in failures:
        trace = failure.payload[1] if isinstance(failure.payload, tuple) else ""
        print(f"[superscalar] task '{failure.task_name}' (id {failure.task_id}) failed: "
              f"{failure.message}\n{trace}", file=report)
    for line in session.reuse.summary() if session.reuse is not None else ():
        print(line, file=report)
    return len(failures)


def _finish_at_exit() -> None:
    """`python app.py` (sequential mode): the same end-of-run work as runcompss."""
    failed = finish_session()
    if failed:
        print(f"[superscalar] {failed} task(s) failed", file=sys.stderr)


atexit.register(_finish_at_exit)
