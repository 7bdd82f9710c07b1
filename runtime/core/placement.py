"""Where a ready task runs: a free slot that satisfies its constraints, nearest its data.

Ready tasks wait in FIFO queues, one per distinct Requirements, priority queues first. A task is
placed on the worker that fits it now and already holds most of its input bytes (ties: the
emptiest worker). When tasks are short, a worker is given more tasks than its computing units so
the next task is already there when one finishes (the worker still runs only as many at once as
it has units): up to 9x for tiny tasks, 2x for short ones; for long tasks that would only delay
them behind a busy worker, so it is off.
"""
from __future__ import annotations

from collections import deque

from .records import Requirements, TaskRecord, WorkerSlots

SHORT_TASK_SECONDS = 0.05
TINY_TASK_SECONDS = 0.005
# Tasks a worker may hold beyond its units, per unit: enough to cover the master's round trip
# for tiny tasks, one for short ones, none for long ones (they would wait behind a busy node).
TINY_PREFETCH, SHORT_PREFETCH = 8, 1
_DURATION_SMOOTHING = 0.1


class UnsatisfiableRequirements(ValueError):
    pass


def describe(requirements: Requirements) -> str:
    parts = [f"computing_units={requirements.computing_units}"]
    if requirements.memory_gb:
        parts.append(f"memory_size={requirements.memory_gb:g}")
    if requirements.gpus:
        parts.append(f"processors=[GPU x{requirements.gpus}]")
    for name in ("architecture", "processor_name", "operating_system"):
        value = getattr(requirements, name)
        if value:
            parts.append(f"{name}={value!r}")
    if requirements.software:
        parts.append(f"app_software={list(requirements.software)}")
    if requirements.local_only:
        parts.append("is_local=True")
    return ", ".join(parts)


def can_ever_fit(worker: WorkerSlots, need: Requirements) -> bool:
    if worker.accepts_anything:
        return True
    return (need.computing_units <= worker.computing_units
            and (not need.memory_gb or not worker.memory_gb or need.memory_gb <= worker.memory_gb)
            and need.gpus <= worker.gpus
            and _matches(need.architecture, worker.architecture)
            and _matches(need.processor_name, worker.processor_name)
            and _matches(need.operating_system, worker.operating_system)
            and set(need.software) <= set(worker.software)
            and (worker.is_local or not need.local_only))


def _matches(wanted: str | None, offered: str | None) -> bool:
    return not wanted or wanted == "[unassigned]" or (offered or "").lower() == wanted.lower()


class Placement:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerSlots] = {}
        self.declared: list[WorkerSlots] = []     # nodes expected to join (from resources.xml)
        self._queues: dict[Requirements, deque] = {}
        self._priority_queues: dict[Requirements, deque] = {}
        # Unknown (no prefetch, no pipelining) until the first task reports how long it took;
        # then a moving average. Prefetching before that could queue tasks behind a long one.
        self.mean_duration = SHORT_TASK_SECONDS * 2
        # Per distinct Requirements (a handful per program): the live workers that can ever
        # run it, and whether any declared node can. Recomputed when the worker set changes.
        self._measured = False
        self._eligible: dict[Requirements, tuple] = {}
        self._satisfiable: dict[Requirements, bool] = {}

    def declare(self, nodes: list[WorkerSlots]) -> None:
        self.declared = list(nodes)
        self.workers_changed()

    def add_worker(self, worker: WorkerSlots) -> None:
        worker.free_units = worker.computing_units
        worker.free_memory_gb = worker.memory_gb
        worker.free_gpus = worker.gpus
        self.workers[worker.worker_id] = worker
        self.workers_changed()

    def workers_changed(self) -> None:
        self._eligible.clear()
        self._satisfiable.clear()

    def _eligible_workers(self, need: Requirements) -> tuple:
        eligible = self._eligible.get(need)
        if eligible is None:
            eligible = self._eligible[need] = tuple(
                w for w in self.workers.values() if w.alive and can_ever_fit(w, need))
        return eligible

    def enqueue(self, task: TaskRecord) -> None:
        need = task.requirements
        satisfiable = self._satisfiable.get(need)
        if satisfiable is None:
            pool = self.declared or list(self.workers.values())
            satisfiable = self._satisfiable[need] = not pool or any(
                can_ever_fit(worker, need) for worker in pool)
        if not satisfiable:
            pool = self.declared or list(self.workers.values())
            largest = max(pool, key=lambda w: (w.computing_units, w.memory_gb))
            raise UnsatisfiableRequirements(
                f"task {task.name}: @constraint({describe(need)}) can never be met; the largest "
                f"resource is node '{largest.node_name}' with computing_units="
                f"{largest.computing_units}, memory_size={largest.memory_gb:g} GB, "
                f"gpus={largest.gpus}")
        queues = self._priority_queues if task.priority else self._queues
        queue = queues.get(need)
        if queue is None:
            queue = queues[need] = deque()
        queue.append(task)

    def discard(self, task: TaskRecord) -> None:
        queues = self._priority_queues if task.priority else self._queues
        queue = queues.get(task.requirements)
        if queue is not None and task in queue:
            queue.remove(task)

    def release(self, task: TaskRecord, duration: float) -> None:
        worker = self.workers.get(task.worker)
        if worker is None:
            return
        need = task.requirements
        worker.running.discard(task.task_id)
        worker.free_units += need.computing_units
        worker.free_memory_gb += need.memory_gb
        worker.free_gpus += need.gpus
        if duration:
            if not self._measured:
                self.mean_duration, self._measured = duration, True
            else:
                self.mean_duration += _DURATION_SMOOTHING * (duration - self.mean_duration)

    def place(self, versions: dict):
        """Yield (task, worker) pairs until no ready task fits any worker now."""
        if not self.workers:
            return
        allowance_factor = self.prefetch_factor()
        fits_now = self._fits_now
        for queues in (self._priority_queues, self._queues):
            for need, queue in queues.items():
                if not queue:
                    continue
                eligible = self._eligible_workers(need)
                while queue:
                    candidates = [w for w in eligible if fits_now(w, need, allowance_factor)]
                    if not candidates:
                        break
                    task = queue.popleft()
                    worker = self._best(candidates, task, versions)
                    self._take(worker, task)
                    yield task, worker

    def prefetch_factor(self) -> int:
        if self.mean_duration < TINY_TASK_SECONDS:
            return TINY_PREFETCH
        return SHORT_PREFETCH if self.mean_duration < SHORT_TASK_SECONDS else 0

    def can_pipeline(self, worker: WorkerSlots, need: Requirements) -> bool:
        """Room to queue a task behind its producers on `worker` (only when tasks are short)."""
        return (self.mean_duration < SHORT_TASK_SECONDS and worker in self._eligible_workers(need)
                and self._fits_now(worker, need, 1))

    def take(self, worker: WorkerSlots, task: TaskRecord) -> None:
        self._take(worker, task)

    def eligible_workers(self, need: Requirements) -> tuple:
        """The live workers that can ever run `need` (retries choose among them)."""
        return self._eligible_workers(need)

    def fits_now(self, worker: WorkerSlots, need: Requirements) -> bool:
        """Free room for `need` on `worker` now, without the prefetch allowance."""
        return self._fits_now(worker, need, 0)

    @staticmethod
    def _fits_now(worker: WorkerSlots, need: Requirements, allowance_factor: int) -> bool:
        if not worker.alive or not can_ever_fit(worker, need):
            return False
        allowance = worker.computing_units * allowance_factor
        if worker.accepts_anything:
            return True
        return (worker.free_units - need.computing_units >= -allowance
                and worker.free_gpus >= need.gpus
                and (not need.memory_gb or worker.free_memory_gb >= need.memory_gb))

    @staticmethod
    def _best(candidates: list, task: TaskRecord, versions: dict) -> WorkerSlots:
        if len(candidates) == 1:
            return candidates[0]
        if not task.reads:
            best = candidates[0]
            for worker in candidates:
                if worker.free_units > best.free_units:
                    best = worker
            return best
        local_bytes = dict.fromkeys((w.worker_id for w in candidates), 0)
        for key in task.reads:
            version = versions.get(key)
            if version is None:
                continue
            for location in version.locations:
                if location in local_bytes:
                    local_bytes[location] += version.nbytes + 1
        return max(candidates, key=lambda w: (local_bytes[w.worker_id], w.free_units))

    @staticmethod
    def _take(worker: WorkerSlots, task: TaskRecord) -> None:
        need = task.requirements
        worker.running.add(task.task_id)
        worker.free_units -= need.computing_units
        worker.free_memory_gb -= need.memory_gb
        worker.free_gpus -= need.gpus

    def queued_count(self) -> int:
        return sum(map(len, self._queues.values())) + sum(map(len, self._priority_queues.values()))
