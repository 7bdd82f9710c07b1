"""Process set-up shared by the worker and executor entry points, and what the running task
was given: the body of a @binary/@mpi/@container task needs its hosts, cores and GPUs to build
a command line, and user code may ask too (COMPSs exposes them as environment variables)."""
from __future__ import annotations

import socket
from dataclasses import dataclass

from ..core.context import mark_worker_process


def enter_worker_context() -> None:
    mark_worker_process()


@dataclass(frozen=True, slots=True)
class Assignment:
    """The resources the scheduler gave the task now running in this process.

    hosts: [(host name, slots)] in rank order; a single-node task has one entry. The first host
    is the one running the task body. cores/gpus: device ids on this host (empty: unbound).
    """

    task_id: int
    units: int
    hosts: tuple[tuple[str, int], ...]
    cores: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    sandbox: str = ""


_current: Assignment | None = None


def assignment_from_entry(entry: dict, sandbox: str = "") -> Assignment:
    """Built from the task entry's optional keys "units", "hosts", "cores", "gpus"."""
    units = int(entry.get("units", 1) or 1)
    hosts = entry.get("hosts") or [[socket.gethostname(), units]]
    return Assignment(entry.get("id", 0), units, tuple((str(h), int(n)) for h, n in hosts),
                      tuple(entry.get("cores") or ()), tuple(entry.get("gpus") or ()), sandbox)


def set_assignment(assignment: Assignment | None) -> None:
    global _current
    _current = assignment


def current_assignment() -> Assignment:
    """The running task's assignment (a one-host default outside a task)."""
    return _current or Assignment(0, 1, ((socket.gethostname(), 1),))
