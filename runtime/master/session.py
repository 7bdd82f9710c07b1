"""A run of the runtime inside the application process: start, serve the API, stop.

There is at most one session per process. `runcompss` starts a distributed one before running
the application; `python app.py` gets a sequential one the first time a task is called.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field

import cloudpickle

from ..core import collector
from ..core.records import Requirements, TaskRecord, WorkerSlots
from ..core.versioning import DataRegistry
from ..resources import ResourceModel, load_resources
from ..transport.auth import new_run_key
from ..transport.curve import new_curve_keys
from .calls import MasterValue, TaskCall
from .reuse import start_reuse
from .shell import Waiter

log = logging.getLogger("superscalar.master")


@dataclass(slots=True)
class SessionOptions:
    distributed: bool = True
    resources: str | None = None
    project: str | None = None
    log_dir: str | None = None
    log_level: str = "WARNING"
    pythonpath: list = field(default_factory=list)
    python: str | None = None
    secure: bool = False        # CURVE on loopback-only runs too (always on beyond loopback)
    reuse: object = None        # runtime.master.reuse.ReuseOptions: journal, resume, cache


class Session:
    def __init__(self, options: SessionOptions):
        self.options = options
        self.registry = DataRegistry()
        self.tracked: dict[int, tuple[object, int]] = {}   # id(obj) -> (obj, datum)
        self.files: dict[str, int] = {}                    # absolute path -> datum
        self.datum_kinds: dict[int, str] = {}              # datum -> "file" | "dir"
        self._function_ids: dict[int, tuple[object, int]] = {}
        self._next_task_id = 1
        self._releases: deque = deque()                    # keys dropped by GC, any thread
        self.group_stack: list[str] = []
        self.model: ResourceModel | None = None
        self._lock = threading.Lock()
        if options.distributed:
            collector.tune()           # 10^6 long-lived records: see runtime/core/collector.py
            self.backend = self._start_distributed(options)
        else:
            from .inline import InlineBackend
            self.backend = InlineBackend()
        self.stopped = False
        self.reuse = start_reuse(self, options.reuse, options.distributed)

    # ---- start ----------------------------------------------------------------------------
    def _start_distributed(self, options: SessionOptions):
        from ..deploy.launch import start_local_worker, start_ssh_worker
        from ..deploy.plan import master_bind_host, needs_secure_channel, plan_workers
        from .zmq_backend import ZmqBackend
        self.model = load_resources(options.resources, options.project)
        curve_keys = new_curve_keys() if needs_secure_channel(self.model, options.secure) \
            else None
        backend = ZmqBackend(master_bind_host(self.model), curve_keys)
        run_key = new_run_key()
        self.work_root = tempfile.mkdtemp(prefix="superscalar-")
        workers_log_dir = os.path.join(options.log_dir, "workers") if options.log_dir else \
            self.work_root
        os.makedirs(workers_log_dir, exist_ok=True)
        jobs_dir = os.path.join(options.log_dir, "jobs") if options.log_dir else None
        if jobs_dir:
            os.makedirs(jobs_dir, exist_ok=True)
        declared = []
        self._launches = {}
        for planned in plan_workers(self.model, backend.port, self.work_root, workers_log_dir,
                                    jobs_dir, options.pythonpath, options.python,
                                    options.log_level, curve_keys):
            launch, local, node = planned.launch, planned.is_local, planned.launch.node
            start = start_local_worker if local else start_ssh_worker
            process = start(launch, run_key)
            slots = _worker_slots(launch.worker_id, node, local)
            backend.expect_worker(slots, process, node, launch.log_path)
            declared.append(slots)
            self._launches[launch.worker_id] = launch
        backend.engine.placement.declare(declared)
        backend.relaunch = lambda lost, new: self._relaunch(lost, new, run_key)
        backend.start(run_key)
        return backend

    def _relaunch(self, lost_worker_id: str, worker_id: str, run_key: str) -> tuple:
        """Start a local worker in place of a lost one (called by the I/O thread)."""
        from ..deploy.launch import relaunched, start_local_worker
        lost = self._launches.pop(lost_worker_id)
        shutil.rmtree(lost.work_dir, ignore_errors=True)
        launch = self._launches[worker_id] = relaunched(lost, worker_id)
        process = start_local_worker(launch, run_key)
        return _worker_slots(worker_id, launch.node, True), process, launch.log_path

    # ---- used by runtime.api ------------------------------------------------------------------
    def new_task_id(self) -> int:
        task_id = self._next_task_id
        self._next_task_id += 1
        return task_id

    def function_id(self, function) -> int:
        known = self._function_ids.get(id(function))
        if known is not None and known[0] is function:
            return known[1]
        function_id = len(self._function_ids) + 1
        self.backend.store.functions[function_id] = [cloudpickle.dumps(function, protocol=5)]
        self._function_ids[id(function)] = (function, function_id)
        return function_id

    def add_master_value(self, key: str, value: MasterValue, nbytes: int) -> None:
        self.backend.store.put(key, value)
        self.backend.post(self.backend.engine.add_master_value, key, nbytes)

    def submit(self, call: TaskCall, requirements: Requirements, priority: bool,
               group: str | None, alternatives: tuple | None = None) -> None:
        self.backend.raise_if_stopped()
        if self.reuse is not None and self.reuse.before_submit(call):
            return                      # outputs reused from the journal or the cache
        record = TaskRecord(call.task_id, call.name, call.reads, call.writes, call,
                            requirements, priority, group, alternatives=alternatives,
                            on_failure=call.on_failure)
        self.backend.admit_task()
        self._flush_releases()
        self.backend.post(self._submit_on_io_thread, record)

    def _submit_on_io_thread(self, record: TaskRecord) -> None:
        engine = self.backend.engine
        try:
            instructions = engine.submit(record)
        except KeyError as error:
            log.error("task %s rejected: %s", record.name, error.args[0])
            instructions = engine.reject(record, f"RuntimeError: {error.args[0]}")
        self.backend.apply(instructions)

    def forget_datum(self, datum_id: int, obj=None) -> None:
        """The application is done with a datum (deleted, synchronised, IN_DELETE, a collected
        future): stop tracking `obj` and release the datum's last version."""
        if obj is not None:
            tracked = self.tracked.get(id(obj))
            if tracked is not None and tracked[0] is obj:
                del self.tracked[id(obj)]
        key = self.registry.forget(datum_id)
        if key is not None:
            self.release_key(key)

    def release_key(self, key: str) -> None:
        """Safe from any thread and from __del__: only appends to a deque."""
        self._releases.append(key)

    def _flush_releases(self) -> None:
        releases = self._releases
        if not releases:
            return
        keys = []
        while releases:
            keys.append(releases.popleft())
        if self.reuse is not None:
            self.reuse.forget(keys)
        self.backend.post(self._release_on_io_thread, keys)

    def _release_on_io_thread(self, keys: list) -> None:
        engine = self.backend.engine
        for key in keys:
            self.backend.apply(engine.release(key))
            if key not in engine.versions:     # else pending readers still need the master's
                self.backend.store.drop(key)   # copy; dropped when the engine collects it

    def wait_keys(self, keys) -> Waiter:
        waiter = Waiter(keys)
        self._flush_releases()
        self.backend.post(self._request_on_io_thread, list(waiter.pending), waiter)
        self._block(waiter)
        return waiter

    def _request_on_io_thread(self, keys: list, waiter: Waiter) -> None:
        for key in keys:
            try:
                self.backend.apply(self.backend.engine.request_value(key, waiter))
            except KeyError as error:
                waiter.fail(key, str(error.args[0]))

    def discard_fetched(self, keys: list) -> None:
        """Objects handed to the application need not stay in the master's memory too."""
        self.backend.post(self._discard_on_io_thread, keys)

    def _discard_on_io_thread(self, keys: list) -> None:
        engine, store = self.backend.engine, self.backend.store
        for key in keys:
            if engine.drop_master_copy(key):
                store.drop(key)

    def barrier(self, group: str | None = None) -> None:
        waiter = Waiter(["barrier"])
        self._flush_releases()
        self.backend.post(lambda: self.backend.apply(
            self.backend.engine.request_barrier(waiter, group)))
        self._block(waiter)

    def _block(self, waiter: Waiter) -> None:
        while not waiter.event.wait(0.5):
            self.backend.raise_if_dead()
        self.backend.raise_if_stopped()

    def cancel_group(self, group: str) -> None:
        self.backend.post(lambda: self.backend.apply(
            self.backend.engine.cancel_group(group, f"compss_cancel_group({group!r})")))

    def protect_master_file(self, keys: list, path: str) -> None:
        """The application is about to write `path` in place: tasks that still read a version
        stored there must see it as it was when they were called. Snapshot each such version,
        point it at the snapshot, and wait for readers already sent the user's path."""
        engine, store = self.backend.engine, self.backend.store

        def snapshot_if_read():
            running = []
            for key in keys:
                version = engine.versions.get(key)
                value = store.get(key)
                if version is None or not version.pending_readers or value is None \
                        or value.path != path:
                    continue
                snapshot = os.path.join(self.snapshot_root(), key)
                if value.kind == "dir":
                    shutil.copytree(path, snapshot)
                else:
                    shutil.copyfile(path, snapshot)
                store.put(key, MasterValue(value.kind, None, snapshot))
                running += [task.task_id for task in engine.tasks.values()
                            if task.worker is not None and key in task.reads]
            return running
        running = self.backend.call(snapshot_if_read)
        while running and self.backend.call(lambda: any(t in engine.tasks for t in running)):
            threading.Event().wait(0.01)

    def snapshot_root(self) -> str:
        root = getattr(self, "_snapshot_root", None)
        if root is None:
            root = self._snapshot_root = tempfile.mkdtemp(prefix="superscalar-versions-")
        return root

    def group_failure(self, group: str):
        state = self.backend.call(lambda: self.backend.engine.groups.get(group))
        return state.failure if state is not None else None

    @property
    def failures(self) -> list:
        return self.backend.engine.failures

    @property
    def ignored_failures(self) -> list:
        return self.backend.engine.ignored

    def number_of_resources(self) -> int:
        return len(self.model.nodes) if self.model else 1

    # ---- stop -----------------------------------------------------------------------------
    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        failed = len(self.backend.engine.failures)
        if self.reuse is not None:
            self.reuse.before_stop(failed)
        self.backend.stop()
        if self.reuse is not None:
            self.reuse.close(failed)
        for root in (getattr(self, "work_root", None), getattr(self, "_snapshot_root", None)):
            if root:
                shutil.rmtree(root, ignore_errors=True)


def _worker_slots(worker_id: str, node, is_local: bool) -> WorkerSlots:
    return WorkerSlots(worker_id, node.name, node.computing_units, node.memory_gb or 0.0,
                       gpus=node.gpus, architecture=node.processor_architecture,
                       processor_name=node.processors[0].name, operating_system=node.os_type,
                       software=tuple(node.software), is_local=is_local,
                       storage_gb=node.storage_gb or 0.0, fpgas=node.fpgas,
                       processor_speed_ghz=node.processor_speed_ghz or 0.0,
                       memory_type=node.memory_type, storage_type=node.storage_type,
                       os_distribution=node.os_distribution, os_version=node.os_version)


_current: Session | None = None
_current_lock = threading.Lock()


def current_session(create_sequential: bool = True) -> Session | None:
    global _current
    if _current is None and create_sequential:
        with _current_lock:
            if _current is None:
                _current = Session(SessionOptions(distributed=False))
    return _current


def start_session(options: SessionOptions) -> Session:
    global _current
    if _current is not None:
        raise RuntimeError("a runtime session is already running in this process")
    _current = Session(options)
    return _current


def end_session() -> Session | None:
    global _current
    session, _current = _current, None
    return session
