"""The sequential backend: `python app.py` without the launcher.

Each task runs at once, in this process, through the same parameter analysis, versioning,
engine and serialization as on workers (runtime.worker.execution), so an IN argument is never
mutated for the caller and the results are the reference the distributed runs are checked
against.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque

import cloudpickle

from ..core.context import running_task
from ..core.records import CancelRunning, Dispatch, FetchValue, WorkerSlots
from ..core.states import TaskState
from ..transport.payload import serialize, write_path_frames
from ..worker.execution import StoredInput, TaskError, run_task
from ..worker.persist import append_record
from .calls import MasterValue
from .shell import ApplicationStopped, Shell, stop_message

INLINE_WORKER = "inline"


class InlineBackend(Shell):
    def __init__(self) -> None:
        super().__init__()
        self._scratch = tempfile.mkdtemp(prefix="superscalar-seq-")
        self._data_dir = os.path.join(self._scratch, "data")
        os.makedirs(self._data_dir)
        self._local: dict[str, StoredInput] = {}
        self._functions: dict[int, object] = {}
        self._queue: deque = deque()
        self._running = False
        self.engine.add_worker(WorkerSlots(INLINE_WORKER, "localhost", 1 << 30, 0.0,
                                           accepts_anything=True))
        self.engine.keep_lineage = False      # this process is the only worker: never lost

    def post(self, function, *args) -> None:
        function(*args)

    def call(self, function, *args):
        return function(*args)

    def raise_if_dead(self) -> None:
        return None

    def admit_task(self) -> None:
        return None      # each task has already run when the next is submitted

    def start(self, run_key: str) -> None:
        return None

    def stop(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # ---- instructions ------------------------------------------------------------------------
    def send_task(self, instruction: Dispatch) -> None:
        self._queue.append(instruction.task)
        if self._running:
            return
        self._running = True
        try:
            while self._queue:
                self._run(self._queue.popleft())
        finally:
            self._running = False

    def _run(self, task) -> None:
        if task.state is not TaskState.RUNNING:
            return                            # cancelled after it was dispatched
        call = task.payload
        inputs = {key: self._input(key) for key in call.reads}
        try:
            with running_task():
                outputs, duration = run_task(call.entry, call.frames, inputs,
                                             self._function(call.function_for(task.variant)),
                                             os.path.join(self._scratch, "sandbox"),
                                             self._data_dir)
            persisted = append_record(call.entry, outputs)
        except TaskError as error:
            try:
                exception_frames = [bytes(f) for f in serialize(error.exception)]
            except Exception:
                exception_frames = []
            self.apply(self.engine.task_failed(task.task_id,
                                               (exception_frames, error.traceback_text),
                                               str(error), error.is_group_exception))
            return
        sizes = {}
        for output in outputs:
            self._local[output.key] = StoredInput(output.kind, output.frames, output.path)
            sizes[output.key] = output.nbytes
        self.apply(self.engine.task_done(task.task_id, sizes, duration))
        if persisted and self.on_persisted is not None:
            self.on_persisted([task.task_id])        # after the row the observer recorded

    def _input(self, key: str) -> StoredInput:
        stored = self._local.get(key)
        if stored is not None:
            return stored
        value = self.store.get(key)
        if value.kind != "obj" and value.path is None:     # a file held as bytes (a default)
            path = os.path.join(self._data_dir, key)
            write_path_frames(value.kind, value.frames, path)
            stored = self._local[key] = StoredInput(value.kind, None, path)
            return stored
        return StoredInput(value.kind, value.frames, value.path)

    def _function(self, function_id: int):
        function = self._functions.get(function_id)
        if function is None:
            loaded = cloudpickle.loads(self.store.functions[function_id][0])
            function = self._functions[function_id] = getattr(loaded, "function", loaded)
        return function

    def fetch(self, instruction: FetchValue) -> None:
        stored = self._local[instruction.key]
        if stored.kind == "obj":
            value = MasterValue("obj", stored.frames)
        elif stored.kind == "file":
            with open(stored.path, "rb") as handle:
                value = MasterValue("file", [handle.read()])
        else:
            value = MasterValue(stored.kind, None, stored.path)
        self.store.put(instruction.key, value)
        self.apply(self.engine.value_arrived(instruction.key))

    def delete_at(self, location: str, keys: tuple) -> None:
        for key in keys:
            stored = self._local.pop(key, None)
            if stored is not None and stored.path and stored.path.startswith(self._data_dir):
                if stored.kind == "dir":
                    shutil.rmtree(stored.path, ignore_errors=True)
                else:
                    os.unlink(stored.path)

    def cancel_running(self, instruction: CancelRunning) -> None:
        return None   # nothing runs concurrently here

    def interrupt_application(self) -> None:
        """Tasks run on the application's thread: raising here stops it."""
        self._queue.clear()
        raise ApplicationStopped(stop_message(self.stop_failure))
