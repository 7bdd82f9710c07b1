"""Failures and lost workers, for the engine: which transitions they cause. Pure, no I/O.

A failed attempt (the task raised, timed out, killed its executor) goes through the policy
table of runtime.core.failures. A lost worker (its process died, or it went silent: the shell
decides) is not the fault of the tasks it ran:

    lost worker W ─► tasks RUNNING on W ──────────────────────────► READY (or WAITING)
                 ─► versions whose only copy was on W, still needed ─► their producers' kept
                    records go DONE -> WAITING and run again, and so do the producers of their
                    own lost inputs (tombstones), transitively
                 ─► tasks reading a version being made again ──────► WAITING for it (a RUNNING
                    one elsewhere is cancelled: it may be waiting for a copy on W)
                 ─► a task RUNNING on each of the last MAX_WORKER_KILLS lost workers fails

The engine keeps what recomputation needs of a finished task (runtime.core.lineage)
as the `lineage` of its outputs while they are in use (runtime.core.engine: task_done,
_collect, _release_lineage), and only as much of it as live versions can still ask for; a
recompute runs as a fresh TaskRecord made from it.
"""
from __future__ import annotations

from .failures import (MAX_WORKER_KILLS, FailurePolicy, Outputs, consequence,
                       retry_candidates)
from .lineage import open_lineage
from .placement import UnsatisfiableRequirements, can_ever_fit
from .records import (MASTER, CancelRunning, FetchValue, StopApplication, TaskFailure,
                      UseDefaults, ValueAtMaster, ValueFailed, with_location,
                      without_location)
from .states import FINISHED, TaskState

W, R, X, F = TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.FAILED
_NOT_FOR_RECOMPUTES = (FailurePolicy.IGNORE, FailurePolicy.CANCEL_SUCCESSORS)


# ---- a failed attempt ---------------------------------------------------------------------------
def attempt_failed(engine, task, payload, message: str, retriable: bool,
                   instructions: list) -> None:
    """`task` was RUNNING and is already released from its worker's slots."""
    task.attempts += 1
    task.failed_on += (task.worker,)
    policy = task.on_failure
    if task.recompute and policy in _NOT_FOR_RECOMPUTES:
        # Readers already used what its first run made: no defaults or None in its place.
        policy = FailurePolicy.RETRY
    outcome = consequence(policy, task.attempts, retriable)
    if outcome.retry:
        _recall_pipelined(engine, task, f"its producer {task.name} is retried", instructions)
        engine._move(task, F, f"attempt {task.attempts} failed on {task.worker}: {message}")
        where = "the same worker" if task.attempts == 1 else "another worker"
        engine._move(task, R, f"retry {task.attempts + 1} on {where}")
        _queue_retry(engine, task, instructions)
        return
    failure = TaskFailure(task.task_id, task.name, payload, task.task_id, message,
                          outcome.outputs is Outputs.NONE)
    (engine.failures if outcome.counts_as_failure else engine.ignored).append(failure)
    if outcome.outputs is Outputs.DEFAULTS:
        _use_defaults(engine, task, failure, instructions)
    else:
        engine._fail_outputs(task, failure, F, message, instructions)
    if outcome.stops_application:
        instructions += engine.abort(f"task {task.name} failed and its on_failure policy is "
                                     f"FAIL: {message}")
        instructions.append(StopApplication(failure))


def _recall_pipelined(engine, task, cause: str, instructions: list) -> None:
    """Successors sent ahead to the producer's worker wait there for outputs that will now be
    made elsewhere (or come from the master): take them back, and what was sent ahead behind
    them too (else they hold that worker's slots waiting for what never comes there)."""
    producers = [task]
    while producers:
        for successor in producers.pop().successors:
            if successor.state is X:
                instructions.append(CancelRunning(successor.worker, successor.task_id))
                engine.placement.release(successor, 0.0)
                engine._move(successor, W, cause)
                producers.append(successor)


def _queue_retry(engine, task, instructions: list) -> None:
    if task.requirements.nodes > 1:          # multi-node placement keeps its own queues
        _enqueue(engine, task, instructions)
    else:
        engine.retries.append(task)


def place_retries(engine, instructions: list) -> None:
    """Retries go first, each to a worker retry_candidates allows, with no prefetching."""
    placement = engine.placement
    waiting = []
    for task in engine.retries:
        if task.state is not R:
            continue                           # cancelled, or waiting again for an input
        need = task.requirements
        joining = any(worker.worker_id not in placement.workers and can_ever_fit(worker, need)
                      for worker in placement.declared)
        targets = retry_candidates(task.failed_on, task.attempts,
                                   placement.eligible_workers(need), joining)
        fitting = [worker for worker in targets if placement.fits_now(worker, need)]
        if not fitting:
            waiting.append(task)
            continue
        worker = max(fitting, key=lambda w: w.free_units)
        placement.take(worker, task)
        engine._dispatch(task, worker, f"retry placed on {worker.worker_id}", instructions)
    engine.retries = waiting


def _use_defaults(engine, task, failure: TaskFailure, instructions: list) -> None:
    """IGNORE: the outputs become values at the master and the successors run on them."""
    _recall_pipelined(engine, task, f"{task.name} failed; its outputs take their defaults",
                      instructions)
    engine._move(task, F, f"failed; on_failure=IGNORE gives its outputs their defaults: "
                          f"{failure.message}")
    task.error = failure
    outputs = [engine.versions[key] for key in task.writes if key in engine.versions]
    instructions.append(UseDefaults(task.payload, tuple(v.key for v in outputs)))
    for version in outputs:
        version.producer = None
        version.locations = with_location((), MASTER)
        version.nbytes = 0
        if version.waiters:
            instructions.append(ValueAtMaster(version.key, tuple(version.waiters)))
            version.waiters = None
    for successor in task.successors:
        successor.waiting_on -= 1
        if successor.waiting_on == 0 and successor.state is W:
            engine._make_ready(successor, f"{task.name} failed; inputs are its defaults",
                               instructions)
    engine._finish(task, instructions)
    for version in outputs:
        engine._collect(version, instructions)


def _enqueue(engine, task, instructions: list) -> None:
    try:
        engine.placement.enqueue(task)
    except UnsatisfiableRequirements as error:
        failure = TaskFailure(task.task_id, task.name, error, task.task_id, str(error))
        engine.failures.append(failure)
        engine._fail_outputs(task, failure, TaskState.CANCELLED, str(error), instructions)


# ---- a lost worker ------------------------------------------------------------------------------
def worker_lost(engine, worker_id: str, message: str, replaced: bool) -> list:
    instructions: list = []
    worker = engine.placement.workers.get(worker_id)
    if worker is None or not worker.alive:
        return instructions
    worker.alive = False
    engine.placement.workers_changed()
    engine.losses += 1
    on_worker = [engine.tasks[task_id] for task_id in sorted(worker.running)
                 if task_id in engine.tasks and engine.tasks[task_id].state is X]
    for task in on_worker:
        engine.placement.release(task, 0.0)
        _count_loss(engine, task)
    touched, lost = _forget_locations(engine, worker_id, instructions)
    for task in on_worker:
        if task.worker_losses >= MAX_WORKER_KILLS and task.state is X:
            attempt_failed(engine, task, None,
                           f"RuntimeError: task {task.name} killed its worker "
                           f"{task.worker_losses} times (it was running on each of the last "
                           f"{task.worker_losses} workers lost; the last: {message}); it is "
                           f"not run again", False, instructions)
    needed = [v for v in lost if v.referenced or v.pending_readers or v.waiters]
    recomputing = _recompute(engine, needed, message, instructions)
    _relink(engine, worker_id, recomputing, touched, message, instructions)
    if not replaced and not any(w.alive for w in engine.placement.workers.values()):
        engine.no_worker_left = f"no worker is left: {message}"
        instructions += engine.abort(engine.no_worker_left)
    engine._schedule(instructions)
    return instructions


def _count_loss(engine, task) -> None:
    consecutive = task.worker_losses and task.last_loss == engine.losses - 1
    task.worker_losses = task.worker_losses + 1 if consecutive else 1
    task.last_loss = engine.losses


def _forget_locations(engine, worker_id: str, instructions: list) -> tuple[set, list]:
    """Drop the worker from every version's locations. Returns the keys it held and the
    versions it held the only copy of (made by tasks, not failed)."""
    touched, lost = set(), []
    for version in engine.versions.values():
        if worker_id not in version.locations:
            continue
        version.locations = without_location(version.locations, worker_id)
        touched.add(version.key)
        if version.locations:
            if version.waiters:          # the fetch may have gone to the lost worker
                instructions.append(FetchValue(version.key, tuple(version.locations)))
        elif version.producer is None and version.failure is None:
            lost.append(version)
    return touched, lost


def _recompute(engine, needed: list, message: str, instructions: list) -> dict:
    """Re-enter the kept records that made `needed`, and those that made their lost inputs.
    Returns {key: record} for every output being made again."""
    recomputing: dict = {}
    worklist = list(needed)
    while worklist:
        version = worklist.pop()
        if version.key in recomputing or version.failure is not None:
            continue
        lineage = open_lineage(version.lineage) if version.lineage is not None else None
        if lineage is None or lineage.payload is None or lineage.task_id in engine.tasks:
            _unrecoverable(engine, version, message, instructions)
            continue
        record = lineage.task()
        record.recompute = True
        engine._move(record, W, f"made again: its output {version.key} only lived on a lost "
                                f"worker ({message})")
        engine.tasks[record.task_id] = record
        for key in record.writes:
            output = engine.versions.get(key)
            if output is not None:
                output.producer = record
                recomputing[key] = record
        for key in record.reads:
            source = engine.versions[key]
            source.pending_readers += 1
            if source.producer is None and not source.locations and source.failure is None:
                worklist.append(source)
    return recomputing


def _unrecoverable(engine, version, message: str, instructions: list) -> None:
    failure = TaskFailure(0, "runtime", None, 0,
                          f"RuntimeError: value {version.key} only lived on a lost worker "
                          f"({message}) and cannot be made again: it was not made by a task "
                          f"whose record is kept (a value the application released?)")
    version.failure = failure
    engine.failures.append(failure)
    if version.waiters:
        instructions.append(ValueFailed(version.key, failure, tuple(version.waiters)))
        version.waiters = None


def _relink(engine, worker_id: str, recomputing: dict, touched: set, message: str,
            instructions: list) -> None:
    """Every live task that read something lost, or ran on the lost worker, waits or goes
    back to READY; the re-entered records start when their inputs are there."""
    versions = engine.versions
    for task in list(engine.tasks.values()):
        if task.state in FINISHED:
            continue
        failed = next((versions[k].failure for k in task.reads
                       if versions[k].failure is not None), None)
        if failed is not None:
            engine._cancel(task, failed, "an input was lost and cannot be made again",
                           instructions)
            continue
        lost_reads = [k for k in task.reads if recomputing.get(k, task) is not task]
        was_here = task.state is X and task.worker == worker_id
        fetching = task.state is X and not was_here and any(
            k in touched and task.worker not in versions[k].locations for k in task.reads)
        if not (lost_reads or was_here or fetching or task.recompute and task.state is W):
            continue
        for key in lost_reads:
            recomputing[key].successors.append(task)
            task.waiting_on += 1
        cause = f"worker {worker_id} was lost ({message})"
        if task.state is X:
            _recall_pipelined(engine, task, f"its producer {task.name} runs again", instructions)
            if not was_here:
                instructions.append(CancelRunning(task.worker, task.task_id))
                engine.placement.release(task, 0.0)
            if task.waiting_on:
                engine._move(task, W, cause)
            else:
                engine._make_ready(task, cause, instructions)
        elif task.state is R and lost_reads:
            engine.placement.discard(task)
            engine._move(task, W, cause)
        elif task.state is W and task.waiting_on == 0:
            engine._make_ready(task, "inputs of the re-run are there", instructions)
