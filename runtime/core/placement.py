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
# for tiny tasks and let the worker handle them in batches (fewer wake-ups of every process:
# -20% CPU per no-op task against 8), one for short ones, none for long ones (they would wait
# behind a busy node).
TINY_PREFETCH, SHORT_PREFETCH = 32, 1
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
    if requirements.storage_gb:
        parts.append(f"storage_size={requirements.storage_gb:g}")
    if requirements.fpgas:
        parts.append(f"processors=[FPGA x{requirements.fpgas}]")
    for name in ("memory_type", "storage_type", "os_distribution", "os_version"):
        value = getattr(requirements, name)
        if value:
            parts.append(f"{name}={value!r}")
    if requirements.processor_speed_ghz:
        parts.append(f"processor_speed={requirements.processor_speed_ghz:g}")
    if requirements.nodes > 1:
        parts.append(f"nodes={requirements.nodes}")
    return ", ".join(parts)


def can_ever_fit(worker: WorkerSlots, need) -> bool:
    """`need` is a Requirements or a tuple of them (@implement: any variant will do)."""
    if worker.accepts_anything:
        return True
    if type(need) is tuple:
        return any(can_ever_fit(worker, variant) for variant in need)
    return (need.computing_units <= worker.computing_units
            and _at_most(need.memory_gb, worker.memory_gb)
            and _at_most(need.storage_gb, worker.storage_gb)
            and _at_most(need.processor_speed_ghz, worker.processor_speed_ghz)
            and need.gpus <= worker.gpus and need.fpgas <= worker.fpgas
            and _matches(need.architecture, worker.architecture)
            and _matches(need.processor_name, worker.processor_name)
            and _matches(need.operating_system, worker.operating_system)
            and _matches(need.os_distribution, worker.os_distribution)
            and _matches(need.os_version, worker.os_version)
            and _matches(need.memory_type, worker.memory_type)
            and _matches(need.storage_type, worker.storage_type)
            and set(need.software) <= set(worker.software)
            and (worker.is_local or not need.local_only))


def _at_most(wanted: float, offered: float) -> bool:
    """A size the node does not declare (0) is not checked, as in COMPSs."""
    return not wanted or not offered or wanted <= offered


def _matches(wanted: str | None, offered: str | None) -> bool:
    """A property the node does not declare matches anything ("[unassigned]" in COMPSs)."""
    return (not wanted or wanted == "[unassigned]" or not offered
            or offered.lower() == wanted.lower())


def _nodes_needed(need) -> int:
    return need.nodes if type(need) is not tuple else min(v.nodes for v in need)


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
        need = task.alternatives or task.requirements
        satisfiable = self._satisfiable.get(need)
        if satisfiable is None:
            pool = self.declared or list(self.workers.values())
            satisfiable = self._satisfiable[need] = not pool or sum(
                can_ever_fit(worker, need) for worker in pool) >= _nodes_needed(need)
        if not satisfiable:
            raise UnsatisfiableRequirements(self._unsatisfiable_message(task, need))
        queues = self._priority_queues if task.priority else self._queues
        queue = queues.get(need)
        if queue is None:
            queue = queues[need] = deque()
        queue.append(task)

    def _unsatisfiable_message(self, task: TaskRecord, need) -> str:
        pool = self.declared or list(self.workers.values())
        largest = max(pool, key=lambda w: (w.computing_units, w.memory_gb))
        variants = need if type(need) is tuple else (need,)
        wanted = " or ".join(f"({describe(variant)})" for variant in variants)
        return (f"task {task.name}: its requirements {wanted} (from @constraint, @mpi or "
                f"@implement) can never be met by the {len(pool)} node(s); the "
                f"largest resource is node '{largest.node_name}' with computing_units="
                f"{largest.computing_units}, memory_size={largest.memory_gb:g} GB, "
                f"gpus={largest.gpus}")

    def discard(self, task: TaskRecord) -> None:
        queues = self._priority_queues if task.priority else self._queues
        queue = queues.get(task.alternatives or task.requirements)
        if queue is not None and task in queue:
            queue.remove(task)

    def release(self, task: TaskRecord, duration: float) -> None:
        worker = self.workers.get(task.worker)
        if worker is None:
            return
        self._give_back(worker, task)
        for worker_id in task.co_workers:
            co_worker = self.workers.get(worker_id)
            if co_worker is not None and task.task_id in co_worker.running:
                self._give_back(co_worker, task)
                co_worker.foreign_reservations -= 1
        task.co_workers = ()
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
                if type(need) is tuple or need.nodes > 1:
                    yield from self._place_special(need, queue, eligible, versions)
                    continue
                while queue:
                    candidates = [w for w in eligible if fits_now(w, need, allowance_factor)]
                    if not candidates:
                        break
                    task = queue.popleft()
                    worker = self._best(candidates, task, versions)
                    self._take(worker, task)
                    yield task, worker

    def _place_special(self, need, queue: deque, eligible: tuple, versions: dict):
        """@implement variants (the first variant that fits a worker now) and multi-node
        tasks (slots on `nodes` distinct workers at once, never beyond their free units)."""
        while queue:
            chosen = None
            for index, variant in enumerate(need if type(need) is tuple else (need,)):
                candidates = [w for w in eligible
                              if can_ever_fit(w, variant) and self._fits_now(w, variant, 0)]
                if len(candidates) >= variant.nodes:
                    chosen = index, variant, candidates
                    break
            if chosen is None:
                return
            index, variant, candidates = chosen
            task = queue.popleft()
            task.variant, task.requirements = index, variant
            worker = self._best(candidates, task, versions)
            self._take(worker, task)
            if variant.nodes > 1:
                others = sorted((w for w in candidates if w is not worker),
                                key=lambda w: -w.free_units)[:variant.nodes - 1]
                for co_worker in others:
                    self._take(co_worker, task)
                    co_worker.foreign_reservations += 1
                task.co_workers = tuple(w.worker_id for w in others)
            yield task, worker

    def prefetch_factor(self) -> int:
        if self.mean_duration < TINY_TASK_SECONDS:
            return TINY_PREFETCH
        return SHORT_PREFETCH if self.mean_duration < SHORT_TASK_SECONDS else 0

    def can_pipeline(self, worker: WorkerSlots, need: Requirements) -> bool:
        """Room to queue a task behind its producers on `worker` (only when tasks are short)."""
        return (self.mean_duration < SHORT_TASK_SECONDS and need.nodes == 1
                and worker in self._eligible_workers(need) and self._fits_now(worker, need, 1))

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
        """Callers pass only workers that can ever run `need` (its eligible workers)."""
        if not worker.alive:
            return False
        if worker.accepts_anything:
            return True
        allowance = 0 if worker.foreign_reservations else worker.computing_units * allowance_factor
        return (worker.free_units - need.computing_units >= -allowance
                and worker.free_gpus >= need.gpus
                and (not need.memory_gb or not worker.memory_gb
                     or worker.free_memory_gb >= need.memory_gb))

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

    @staticmethod
    def _give_back(worker: WorkerSlots, task: TaskRecord) -> None:
        """Idempotent: a task released twice (lost co-worker, then done) gives back once."""
        if task.task_id not in worker.running:
            return
        need = task.requirements
        worker.running.discard(task.task_id)
        worker.free_units += need.computing_units
        worker.free_memory_gb += need.memory_gb
        worker.free_gpus += need.gpus

    def queued_count(self) -> int:
        return sum(map(len, self._queues.values())) + sum(map(len, self._priority_queues.values()))
