"""The master's state machine: events in, instructions out, no I/O.

    application thread           I/O shell (runtime.master.loop)          workers
    ------------------           -------------------------------          -------
    TaskRecord  ──submit──►  Engine.submit() ──► [Dispatch, ...] ──send──►  run
                             Engine.task_done() ◄────────────── DONE ◄───┘
                             Engine.task_failed()
    wait_on(key) ─request──► Engine.request_value() ──► [FetchValue | ValueAtMaster | ValueFailed]

Invariants:
- a version key is in `versions` from the submission of its producer (or from the application
  handing its value) until nobody references it and no pending task reads it;
- a task is in `tasks` from submission until it is finished (and again while a lost output
  of it is made again: runtime.core.recovery);
- `TaskRecord.waiting_on` equals the number of its producers not yet DONE;
- what recomputation needs of a finished task (runtime.core.lineage, not its record) is the
  `lineage` of its outputs while they are in `versions`; it is released with the last one.
"""
from __future__ import annotations

from collections import deque

from . import recovery
from .placement import Placement, UnsatisfiableRequirements
from .lineage import keep, open_lineage
from .records import (MASTER, CancelRunning, DeleteVersions, Dispatch, FetchValue,
                      QuiescenceReached, TaskFailure, TaskRecord, ValueAtMaster, ValueFailed,
                      VersionState, WorkerSlots, with_location, without_location)
from .states import FINISHED, TaskState, check_transition


MAX_PIPELINE_CANDIDATES = 10_000


class _Group:
    __slots__ = ("live", "failure", "waiters")

    def __init__(self) -> None:
        self.live: set[int] = set()
        self.failure: TaskFailure | None = None    # the COMPSsException that cancelled it
        self.waiters: list = []


class Engine:
    def __init__(self) -> None:
        self.tasks: dict[int, TaskRecord] = {}
        self.versions: dict[str, VersionState] = {}
        self.placement = Placement()
        self.groups: dict[str, _Group] = {}
        self.failures: list[TaskFailure] = []        # root failures, in order, for the exit code
        self.ignored: list[TaskFailure] = []         # failures an IGNORE policy absorbed
        self.completed = 0
        self.recomputed = 0              # runs that made a lost output again
        self.keep_lineage = True         # off where no worker can be lost (sequential backend)
        self.on_kept = None              # the shell's hook: payload -> its compact form, when
        #                                  a finished task is kept (runtime.core.lineage)
        self.losses = 0                  # workers lost so far
        self.no_worker_left: str | None = None      # why new tasks fail at once, if they do
        self.retries: list[TaskRecord] = []          # READY tasks placed by recovery.place_retries
        self._released_lineage: list = []
        self._releasing = False
        self.finished = 0                # DONE + FAILED + CANCELLED, for back-pressure
        self._barrier_waiters: list = []
        self._observers: list = []                   # called on every transition
        self._observers_of: dict[TaskState, list] = {}   # called on transitions into a state
        # Waiting tasks that may be sent ahead to the worker running all their producers, so
        # the worker starts them without a round trip through the master (see _pipeline).
        self._pipeline_candidates: deque = deque()

    # ---- observers (graph, traces, monitor, provenance subscribe here) -------------------
    def subscribe(self, observer, states=None) -> None:
        """`observer(task, old_state, new_state, cause)` is called on every transition, or with
        `states` only on those into one of them: a task makes several transitions, and an
        observer that wants only its end (the journal) must not cost a call on each."""
        if states is None:
            self._observers.append(observer)
            return
        for state in states:
            self._observers_of.setdefault(state, []).append(observer)

    def _move(self, task: TaskRecord, new: TaskState, cause: str) -> None:
        history = task.history
        check_transition(task.name, history, task.state, new)
        old = task.state
        task.state = new
        history.append((new, cause))
        for observer in self._observers:
            observer(task, old, new, cause)
        targeted = self._observers_of.get(new)
        if targeted is not None:
            for observer in targeted:
                observer(task, old, new, cause)

    # ---- application side -----------------------------------------------------------------
    def add_master_value(self, key: str, nbytes: int) -> None:
        """The application holds this version's value (an object it passed, a file on its disk)."""
        self.versions[key] = VersionState(key, None, with_location((), MASTER), nbytes)

    def submit(self, task: TaskRecord) -> list:
        read_versions = [self._version_for_read(task, key) for key in task.reads]  # may raise
        task.history.append((TaskState.WAITING, "submitted"))
        self.tasks[task.task_id] = task
        group = None
        if task.group is not None:
            group = self.groups.setdefault(task.group, _Group())
            group.live.add(task.task_id)
        inherited: TaskFailure | None = group.failure if group is not None else None
        for version in read_versions:
            version.pending_readers += 1
            if version.failure is not None:
                inherited = inherited or version.failure
            elif version.producer is not None:
                task.waiting_on += 1
                version.producer.successors.append(task)
        for key in task.writes:
            self.versions[key] = VersionState(key, task)
        instructions: list = []
        if inherited is not None:
            self._cancel(task, inherited, f"cancelled by the failure of {inherited.task_name}",
                         instructions)
        elif task.waiting_on == 0:
            self._make_ready(task, "no pending inputs", instructions)
            self._schedule(instructions)
        elif task.waiting_on <= 2:
            self._add_pipeline_candidate(task)
            self._pipeline(instructions)
        return instructions

    def reject(self, task: TaskRecord, message: str) -> list:
        """A submission the engine cannot accept: its outputs fail with `message`, so whoever
        waits on them gets the error instead of waiting forever."""
        failure = TaskFailure(task.task_id, task.name, None, task.task_id, message)
        self.failures.append(failure)
        self.finished += 1               # it was admitted: back-pressure must count it out
        instructions: list = []
        for key in task.writes:
            self.versions[key] = VersionState(key, None, failure=failure)
        return instructions

    def _version_for_read(self, task: TaskRecord, key: str) -> VersionState:
        version = self.versions.get(key)
        if version is None:
            raise KeyError(f"task {task.name}: reads {key}, which no task produces and the "
                           f"application never provided (deleted?)")
        return version

    def release(self, key: str) -> list:
        """The application dropped its reference to this version (future collected, deleted)."""
        version = self.versions.get(key)
        if version is None:
            return []
        version.referenced = False
        instructions: list = []
        self._collect(version, instructions)
        return instructions

    def request_value(self, key: str, waiter) -> list:
        version = self.versions.get(key)
        if version is None:
            raise KeyError(f"no value {key} is known to the runtime (deleted?)")
        if version.failure is not None:
            return [ValueFailed(key, version.failure, (waiter,))]
        if version.producer is not None:
            if version.waiters is None:
                version.waiters = []
            version.waiters.append(waiter)
            return []
        if MASTER in version.locations:
            return [ValueAtMaster(key, (waiter,))]
        if version.waiters is None:
            version.waiters = []
        version.waiters.append(waiter)
        return [FetchValue(key, version.locations)]

    def value_arrived(self, key: str) -> list:
        """The shell brought `key` into the master's store."""
        version = self.versions.get(key)
        if version is None:
            return []
        version.locations = with_location(version.locations, MASTER)
        waiters, version.waiters = tuple(version.waiters or ()), None
        return [ValueAtMaster(key, waiters)] if waiters else []

    def drop_master_copy(self, key: str) -> bool:
        """The application has its value: forget the master's copy when a worker still holds
        one (it is fetched again if waited on again). Returns whether the copy may be dropped."""
        version = self.versions.get(key)
        if version is None or MASTER not in version.locations or len(version.locations) < 2:
            return False
        version.locations = without_location(version.locations, MASTER)
        return True

    def request_barrier(self, waiter, group: str | None = None) -> list:
        if group is None:
            if not self.tasks:
                return [QuiescenceReached(None, (waiter,))]
            self._barrier_waiters.append(waiter)
            return []
        state = self.groups.get(group)
        if state is None or not state.live:
            return [QuiescenceReached(group, (waiter,))]
        state.waiters.append(waiter)
        return []

    def cancel_group(self, group: str, cause: str) -> list:
        state = self.groups.get(group)
        instructions: list = []
        if state is None:
            return instructions
        failure = state.failure or TaskFailure(0, f"group {group}", None, 0, cause)
        for task_id in sorted(state.live):
            task = self.tasks.get(task_id)
            if task is not None and task.state not in FINISHED:
                self._cancel(task, failure, cause, instructions)
        return instructions

    # ---- worker side ------------------------------------------------------------------------
    def add_worker(self, worker: WorkerSlots) -> list:
        self.no_worker_left = None
        self.placement.add_worker(worker)
        instructions: list = []
        self._schedule(instructions)
        return instructions

    def task_done(self, task_id: int, output_sizes: dict, duration: float = 0.0) -> list:
        return self.tasks_done([(task_id, output_sizes, duration)])

    def tasks_done(self, results) -> list:
        """(task id, {key: nbytes}, seconds) for each task a worker finished: one scheduling
        pass for the whole batch, not one per task."""
        instructions: list = []
        for task_id, output_sizes, duration in results:
            self._complete(task_id, output_sizes, duration, instructions)
        self._schedule(instructions)
        return instructions

    def _complete(self, task_id: int, output_sizes: dict, duration: float,
                  instructions: list) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.state is not TaskState.RUNNING:
            return                       # a late reply for a cancelled task
        self.placement.release(task, duration)
        self._move(task, TaskState.DONE, f"finished on {task.worker}")
        if task.recompute:
            self.recomputed += 1
        else:
            self.completed += 1
        outputs = []
        lineage = None
        for key in task.writes:
            version = self.versions.get(key)
            if version is None:
                if task.recompute:      # made again, but nobody needs this one any more
                    instructions.append(DeleteVersions(task.worker, (key,)))
                continue
            outputs.append(version)
            version.producer = None
            version.locations = with_location(version.locations, task.worker)
            version.nbytes = output_sizes.get(key, 0)
            if self.keep_lineage and version.lineage is None:   # a recompute's keep theirs
                if lineage is None:
                    lineage = keep(task, task.payload if self.on_kept is None else
                                   self.on_kept(task.payload))
                version.lineage = lineage
            if version.waiters:
                instructions.append(FetchValue(key, (task.worker,)))
        if lineage is not None:
            for key in task.reads:       # still pending readers: this task holds them
                self.versions[key].dependents += 1
        for version in outputs:
            self._collect(version, instructions)
        for successor in task.successors:
            successor.waiting_on -= 1
            if successor.waiting_on == 0 and successor.state is TaskState.WAITING:
                self._make_ready(successor, f"inputs from {task.name} ready", instructions)
        self._finish(task, instructions)

    def task_failed(self, task_id: int, payload: object, message: str,
                    is_group_exception: bool = False) -> list:
        task = self.tasks.get(task_id)
        instructions: list = []
        if task is None or task.state is not TaskState.RUNNING:
            return instructions
        self.placement.release(task, 0.0)
        if not (is_group_exception and task.group is not None):
            recovery.attempt_failed(self, task, payload, message, True, instructions)
            self._schedule(instructions)
            return instructions
        failure = TaskFailure(task.task_id, task.name, payload, task.task_id, message)
        self._fail_outputs(task, failure, TaskState.FAILED, message, instructions)
        group = self.groups[task.group]      # a group's COMPSsException is control flow
        group.failure = failure
        instructions += self.cancel_group(task.group, f"COMPSsException in {task.name}")
        self._schedule(instructions)
        return instructions

    # ---- internals ----------------------------------------------------------------------------
    def _make_ready(self, task: TaskRecord, cause: str, instructions: list) -> None:
        self._move(task, TaskState.READY, cause)
        try:
            if self.no_worker_left is not None:
                raise UnsatisfiableRequirements(f"task {task.name}: {self.no_worker_left}")
            self.placement.enqueue(task)
        except UnsatisfiableRequirements as error:
            failure = TaskFailure(task.task_id, task.name, error, task.task_id, str(error))
            self.failures.append(failure)
            self._fail_outputs(task, failure, TaskState.CANCELLED, str(error), instructions)

    def _schedule(self, instructions: list) -> None:
        if self.retries:
            recovery.place_retries(self, instructions)
        for task, worker in self.placement.place(self.versions):
            self._dispatch(task, worker, f"placed on {worker.worker_id}", instructions)
        if self._pipeline_candidates:
            self._pipeline(instructions)

    def _dispatch(self, task: TaskRecord, worker: WorkerSlots, cause: str,
                  instructions: list) -> None:
        self._move(task, TaskState.RUNNING, cause)
        task.worker = worker.worker_id
        sources = []
        for key in task.reads:
            version = self.versions[key]
            if version.producer is not None:
                sources.append((key, ()))        # produced on this worker by a running task
            elif worker.worker_id not in version.locations:
                sources.append((key, version.locations))
        instructions.append(Dispatch(worker.worker_id, task, tuple(sources)))
        for successor in task.successors:
            if successor.state is TaskState.WAITING and successor.waiting_on <= 2:
                self._add_pipeline_candidate(successor)

    def _add_pipeline_candidate(self, task: TaskRecord) -> None:
        if task.alternatives is not None or task.requirements.nodes > 1:
            return          # their placement needs the scheduler's choice of variant or nodes
        if len(self._pipeline_candidates) < MAX_PIPELINE_CANDIDATES:
            self._pipeline_candidates.append(task)

    def _pipeline(self, instructions: list) -> None:
        """Send waiting tasks ahead, oldest first; stop at the first that finds no room, so
        each call costs O(tasks sent), not O(candidates)."""
        candidates = self._pipeline_candidates
        while candidates:
            task = candidates[0]
            if task.state is not TaskState.WAITING:
                candidates.popleft()
                continue
            worker = self._sole_producer_worker(task)
            if worker is None:
                candidates.popleft()              # reconsidered when another producer runs
                continue
            if not self.placement.can_pipeline(worker, task.requirements):
                return
            candidates.popleft()
            self.placement.take(worker, task)
            self._dispatch(task, worker, f"pipelined on {worker.worker_id} behind its producers",
                           instructions)

    def _sole_producer_worker(self, task: TaskRecord):
        worker_id = None
        for key in task.reads:
            producer = self.versions[key].producer
            if producer is None:
                continue
            if producer.state is not TaskState.RUNNING or \
                    (worker_id is not None and producer.worker != worker_id):
                return None
            worker_id = producer.worker
        return self.placement.workers.get(worker_id) if worker_id is not None else None

    def _cancel(self, task: TaskRecord, failure: TaskFailure, cause: str,
                instructions: list) -> None:
        if task.state is TaskState.RUNNING:
            instructions.append(CancelRunning(task.worker, task.task_id))
            self.placement.release(task, 0.0)
        elif task.state is TaskState.READY:
            self.placement.discard(task)
        inherited = TaskFailure(task.task_id, task.name, failure.payload, failure.root_task_id,
                                failure.message, failure.none_on_wait)
        self._fail_outputs(task, inherited, TaskState.CANCELLED, cause, instructions)

    def _fail_outputs(self, task: TaskRecord, failure: TaskFailure, state: TaskState,
                      cause: str, instructions: list) -> None:
        """Mark the task finished without outputs and cancel everything downstream of it."""
        self._move(task, state, cause)
        task.error = failure
        for key in task.writes:
            version = self.versions.get(key)
            if version is None:
                continue
            version.producer = None
            version.failure = failure
            if version.waiters:
                instructions.append(ValueFailed(key, failure, tuple(version.waiters)))
                version.waiters = None
        for successor in task.successors:
            if successor.state not in FINISHED:
                self._cancel(successor, failure, f"input from failed task {task.name}",
                             instructions)
        self._finish(task, instructions)

    def _finish(self, task: TaskRecord, instructions: list) -> None:
        """Drop a finished task's record and release what it read."""
        del self.tasks[task.task_id]
        if not task.recompute:
            self.finished += 1
        task.successors = ()
        task.payload = None              # a Lineage keeps what a recompute needs of it
        for key in task.reads:
            version = self.versions.get(key)
            if version is not None:
                version.pending_readers -= 1
                self._collect(version, instructions)
        if task.group is not None:
            group = self.groups[task.group]
            group.live.discard(task.task_id)
            if not group.live and group.waiters:
                instructions.append(QuiescenceReached(task.group, tuple(group.waiters)))
                group.waiters = []
        if not self.tasks and self._barrier_waiters:
            instructions.append(QuiescenceReached(None, tuple(self._barrier_waiters)))
            self._barrier_waiters = []

    def _collect(self, version: VersionState, instructions: list) -> None:
        if version.referenced or version.pending_readers or version.producer is not None:
            return
        if version.waiters:
            return
        # A version kept for its dependents' lineage (a tombstone) keeps the application's
        # copy, if any: a recompute of a dependent reads it from there. Otherwise every copy
        # goes, the master's too (the shell drops it).
        kept = with_location((), MASTER) if version.dependents and MASTER in version.locations \
            else ()
        for location in version.locations:
            if location not in kept:
                instructions.append(DeleteVersions(location, (version.key,)))
        if version.dependents:
            version.locations = kept     # a tombstone: no worker data, only what made it
            return
        del self.versions[version.key]
        if version.lineage is not None:
            self._release_lineage(version.lineage, instructions)

    def _release_lineage(self, lineage, instructions: list) -> None:
        """An output of the task is gone; when none is left, neither are its inputs' reasons
        to be kept. A worklist, not recursion: lineage chains can be 10^6 tasks long. The same
        lineage may be listed once per output gone in one pass: it is released once."""
        self._released_lineage.append(lineage)
        if self._releasing:
            return
        self._releasing = True
        released: dict = {}              # id -> lineage released in this pass
        versions = self.versions
        try:
            while self._released_lineage:
                kept = self._released_lineage.pop()
                if id(kept) in released:
                    continue
                opened = open_lineage(kept)
                if any(key in versions for key in opened.writes):
                    continue             # another output of the task still needs it
                released[id(kept)] = kept
                for key in opened.reads:
                    version = versions.get(key)
                    if version is not None:
                        version.dependents -= 1
                        self._collect(version, instructions)
        finally:
            self._releasing = False

    def worker_lost(self, worker_id: str, message: str, replaced: bool = False) -> list:
        """A worker died or went silent: runtime.core.recovery. `replaced`: the shell is
        starting another worker in its place, so the run goes on even if none is left now."""
        return recovery.worker_lost(self, worker_id, message, replaced)

    def abort(self, message: str) -> list:
        """Fail every task that has not finished (the run cannot go on)."""
        instructions: list = []
        failure = TaskFailure(0, "runtime", None, 0, message)
        if not self.failures:
            self.failures.append(failure)
        for task in sorted(self.tasks.values(), key=lambda t: t.task_id):
            if task.state not in FINISHED:
                self._cancel(task, failure, message, instructions)
        return instructions

    def story(self, task_id: int) -> list:
        task = self.tasks.get(task_id)
        return list(task.history) if task else []

    @property
    def live_task_count(self) -> int:
        return len(self.tasks)
