"""Process set-up shared by the worker and executor entry points, and what the running task
was given: the body of a @binary/@mpi/@container task needs its hosts, cores and GPUs to build
a command line, and user code may ask too (COMPSs exposes them as environment variables)."""
from __future__ import annotations

import os
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


# The node this process works for: the worker sets it before starting executors (forked or
# spawned, they inherit it); outside a worker it is this host.
NODE_NAME_ENV = "SUPERSCALAR_NODE_NAME"
_node_name: str | None = None

# The running task's entry and sandbox. The Assignment is only built when a task body asks for
# it (@mpi, @binary): recording the pair costs nothing on the path of 10^6 plain tasks.
_current: tuple | None = None


def node_name() -> str:
    global _node_name
    if _node_name is None:
        _node_name = os.environ.get(NODE_NAME_ENV) or socket.gethostname()
    return _node_name


def assignment_from_entry(entry: dict, sandbox: str = "") -> Assignment:
    """Built from the task entry's optional keys "units", "hosts", "cores", "gpus"; a
    single-node task's host is this node."""
    units = int(entry.get("units", 1) or 1)
    hosts = entry.get("hosts") or [[node_name(), units]]
    return Assignment(entry.get("id", 0), units, tuple((str(h), int(n)) for h, n in hosts),
                      tuple(entry.get("cores") or ()), tuple(entry.get("gpus") or ()), sandbox)


def set_running_task(entry: dict | None, sandbox: str = "") -> None:
    global _current
    _current = (entry, sandbox) if entry is not None else None


def current_assignment() -> Assignment:
    """The running task's assignment (a one-host default outside a task)."""
    if _current is None:
        return Assignment(0, 1, ((node_name(), 1),))
    return assignment_from_entry(*_current)
