"""The engine's typed records: tasks, versions, workers, and the instructions it emits.

Kept deliberately small: at 10^6 tasks every slot of TaskRecord costs ~10^6 pointers, and a
record is dropped the moment its task is finished and nothing waits on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .failures import FailurePolicy
from .states import TaskState

MASTER = "master"   # the location name of data held by the application process


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a task needs from the node that runs it (from @constraint)."""

    computing_units: int = 1
    memory_gb: float = 0.0
    gpus: int = 0
    architecture: str | None = None
    processor_name: str | None = None
    operating_system: str | None = None
    software: tuple[str, ...] = ()
    local_only: bool = False
    storage_gb: float = 0.0
    fpgas: int = 0
    processor_speed_ghz: float = 0.0
    memory_type: str | None = None
    storage_type: str | None = None
    os_distribution: str | None = None
    os_version: str | None = None
    # A multi-node task (@mpi with processes_per_node, @multinode): `computing_units` are
    # reserved on each of `nodes` distinct nodes at once; one of them runs the task.
    nodes: int = 1


DEFAULT_REQUIREMENTS = Requirements()


@dataclass(slots=True, eq=False)
class TaskRecord:
    task_id: int
    name: str
    reads: tuple[str, ...]              # version keys this task reads (deduplicated)
    writes: tuple[str, ...]             # version keys this task creates
    payload: object                     # opaque to the engine: what the shell sends the worker
    requirements: Requirements = DEFAULT_REQUIREMENTS
    priority: bool = False
    group: str | None = None
    state: TaskState = TaskState.WAITING
    waiting_on: int = 0                 # unfinished producers of `reads`
    successors: list = field(default_factory=list)
    worker: str | None = None
    history: list = field(default_factory=list)   # [(state, cause)]: the task's story
    error: object = None                # for FAILED/CANCELLED: the root TaskFailure
    # @implement: every variant's Requirements (index 0: the task itself); placement sets
    # `variant` and `requirements` to the one that fits the chosen worker. None: one variant.
    alternatives: tuple | None = None
    variant: int = 0
    # Multi-node tasks: the other workers whose slots are reserved for this task while it runs.
    co_workers: tuple = ()
    # Failure handling (runtime.core.failures, runtime.core.recovery).
    on_failure: FailurePolicy = FailurePolicy.RETRY
    attempts: int = 0                   # failed attempts so far
    failed_on: tuple = ()               # the workers those attempts ran on
    worker_losses: int = 0              # consecutive lost workers it was running on ...
    last_loss: int = 0                  # ... the last of which was loss number `last_loss`
    recompute: bool = False             # made from its lineage to make a lost output again


@dataclass(slots=True)
class TaskFailure:
    """Why a task did not produce its outputs. `root` is the task whose own code failed."""

    task_id: int
    task_name: str
    payload: object                     # the serialized exception, as the shell received it
    root_task_id: int
    message: str
    none_on_wait: bool = False          # CANCEL_SUCCESSORS: waiting on the outputs gives None


@dataclass(slots=True, eq=False)
class VersionState:
    key: str
    producer: TaskRecord | None         # None once produced (or for application values)
    # Worker ids and/or MASTER; a tuple, changed through with_location/without_location so
    # that the usual one-location tuples are shared (10^6 versions, a handful of workers).
    locations: tuple = ()
    nbytes: int = 0
    pending_readers: int = 0            # submitted tasks that read it and are not finished
    referenced: bool = True             # the application still holds this version (a future, an object)
    failure: TaskFailure | None = None
    waiters: list | None = None         # opaque tokens of application threads waiting for it
    lineage: object = None              # what is kept of the task that made it, to make it
    #                                     again (runtime.core.lineage: bytes or a Lineage)
    # Kept lineage records that read this version. While > 0 the version outlives its data
    # (a tombstone: no locations), so that what was made from it can be made again.
    dependents: int = 0


@dataclass(slots=True, eq=False)
class WorkerSlots:
    worker_id: str
    node_name: str
    computing_units: int
    memory_gb: float
    gpus: int = 0
    architecture: str | None = None
    processor_name: str | None = None
    operating_system: str | None = None
    software: tuple[str, ...] = ()
    is_local: bool = True
    storage_gb: float = 0.0
    fpgas: int = 0
    processor_speed_ghz: float = 0.0
    memory_type: str | None = None
    storage_type: str | None = None
    os_distribution: str | None = None
    os_version: str | None = None
    free_units: int = 0                 # may go below 0 by the prefetch allowance
    free_memory_gb: float = 0.0
    free_gpus: int = 0
    running: set = field(default_factory=set)       # task ids placed here and not finished
    # Tasks running elsewhere that reserved slots here (multi-node): while there are any, no
    # task is queued beyond the free units, since this worker does not see those slots taken.
    foreign_reservations: int = 0
    alive: bool = True
    accepts_anything: bool = False      # the sequential backend: constraints do not apply


_ALONE: dict[str, tuple] = {}      # location -> (location,), one tuple per worker


def with_location(locations: tuple, location: str) -> tuple:
    if location in locations:
        return locations
    if not locations:
        alone = _ALONE.get(location)
        if alone is None:
            alone = _ALONE[location] = (location,)
        return alone
    return locations + (location,)


def without_location(locations: tuple, location: str) -> tuple:
    remaining = tuple(other for other in locations if other != location)
    return with_location((), remaining[0]) if len(remaining) == 1 else remaining


# ---- instructions the shell carries out ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Dispatch:
    worker_id: str
    task: TaskRecord
    sources: tuple                      # ((key, (location, ...)), ...) for inputs not on the worker


@dataclass(frozen=True, slots=True)
class DeleteVersions:
    location: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FetchValue:
    """Bring a version's value to the master for the application (compss_wait_on, sync)."""

    key: str
    locations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValueFailed:
    key: str
    failure: TaskFailure
    waiters: tuple


@dataclass(frozen=True, slots=True)
class ValueAtMaster:
    """The value is already in the master's store: hand it to the waiters."""

    key: str
    waiters: tuple


@dataclass(frozen=True, slots=True)
class CancelRunning:
    worker_id: str
    task_id: int


@dataclass(frozen=True, slots=True)
class UseDefaults:
    """IGNORE: a failed task's outputs take the values given to @on_failure; the shell puts
    them in the master's store (`payload` is the task's, `keys` its outputs still in use)."""

    payload: object
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StopApplication:
    """FAIL: a task failed and its policy stops the whole application."""

    failure: TaskFailure


@dataclass(frozen=True, slots=True)
class QuiescenceReached:
    """No live task remains in the scope (None: the whole run; else a group name)."""

    group: str | None
    waiters: tuple
