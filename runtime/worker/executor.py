"""An executor process: runs one task at a time for its worker.

    worker process ──Exec──► executor ──ExecResult / ExecFailed──► worker
                   (one socketpair per executor: runtime.transport.framed)

Large inputs and outputs do not travel in these messages: they are memfds (shared_values.py).
An output's memfd stays open here until the worker says (Release) it has opened its own.

Output the task's code prints (Python-level and fd-level, so subprocesses and C libraries are
caught too) goes to a scratch file; when a task printed anything it is copied to
<log_dir>/jobs/job<id>_NEW.out|.err as COMPSs does, so 10^6 silent tasks create no files.
"""
from __future__ import annotations

import argparse
import os
import sys

import socket

import cloudpickle

from ..transport import protocol
from ..transport.auth import run_key_from_environment
from ..transport.framed import ChannelClosed, FramedChannel, inherit
from ..transport.payload import serialize
from .devices import TaskBinding
from .execution import StoredInput, TaskError, run_task
from .shared_values import SharedValue, should_share
from .lifetime import die_with_parent
from .worker_context import enter_worker_context, node_name


class _CapturedStreams:
    def __init__(self, scratch_dir: str, jobs_dir: str | None):
        self._jobs_dir = jobs_dir
        self._files = {}
        for number, suffix in ((1, "out"), (2, "err")):
            path = os.path.join(scratch_dir, f"executor{os.getpid()}.{suffix}")
            handle = open(path, "w+b")
            os.dup2(handle.fileno(), number)
            self._files[suffix] = handle
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)

    def finish_task(self, task_id: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for suffix, handle in self._files.items():
            size = os.fstat(handle.fileno()).st_size
            if not size:
                continue
            if self._jobs_dir:
                handle.seek(0)
                with open(os.path.join(self._jobs_dir, f"job{task_id}_NEW.{suffix}"), "ab") as job:
                    job.write(handle.read(size))
            os.ftruncate(handle.fileno(), 0)
            os.lseek(handle.fileno(), 0, os.SEEK_SET)


class Executor:
    def __init__(self, channel: FramedChannel, executor_id: int, work_dir: str,
                 jobs_dir: str | None, run_key: str | None = None, core: int | None = None):
        self._run_key = run_key or run_key_from_environment()
        self._socket = channel
        self._executor_id = executor_id
        self._functions: dict[int, object] = {}
        self._sandbox_root = os.path.join(work_dir, "sandbox")
        self._data_dir = os.path.join(work_dir, "data")
        self._streams = _CapturedStreams(work_dir, jobs_dir)
        self._binding = TaskBinding(core, node_name())
        self._handed_off: dict[int, SharedValue] = {}   # fd -> output the worker may not have

    def serve(self) -> None:
        ready = protocol.ExecutorReady(self._run_key, self._executor_id, os.getpid())
        self._socket.send_multipart(protocol.encode(ready))
        while True:
            try:
                parts = self._socket.recv_multipart()
            except ChannelClosed:
                return                          # the worker exited or died
            message, frames = protocol.decode(parts)
            if isinstance(message, protocol.Shutdown):
                return
            if isinstance(message, protocol.Exec):
                self._execute(message, frames)
            elif isinstance(message, protocol.Release):
                self._release(message.fds)

    def _release(self, fds: list) -> None:
        for fd in fds:
            shared = self._handed_off.pop(fd, None) if type(fd) is int else None
            if shared is not None:
                shared.close()

    def _execute(self, message: protocol.Exec, frames: list) -> None:
        entry = message.task
        try:
            function = self._function(entry, frames)
            inputs = {key: StoredInput(kind, frames[start:start + count] if kind == "obj" else None,
                                       path, message.shared.get(key))
                      for key, (start, count, kind, path) in message.inputs.items()}
            base = entry["frames"][0]
            task_frames = frames[base:base + entry["frames"][1]]
            self._binding.apply(entry)
            outputs, duration = run_task(entry, task_frames, inputs, function,
                                         self._sandbox_root, self._data_dir)
        except TaskError as error:
            self._streams.finish_task(entry["id"])
            self._send_failure(entry, error)
            return
        except Exception as error:   # the runtime's own failure around the task: still report it
            self._streams.finish_task(entry["id"])
            import traceback
            self._send_failure(entry, TaskError(error, traceback.format_exc(), False))
            return
        self._streams.finish_task(entry["id"])
        described, data, shared = [], [], {}
        for output in outputs:
            frames = output.frames or ()
            value = self._share(output.key, frames) if frames and should_share(frames) else None
            if value is not None:
                shared[output.key] = value.describe()
                frames = ()
            described.append([output.key, len(data), len(frames), output.kind, output.path,
                              output.nbytes])
            data.extend(frames)
        reply = protocol.ExecResult(entry["id"], described, duration, shared)
        protocol.send(self._socket, protocol.encode(reply, data))

    def _share(self, key: str, frames: list) -> SharedValue | None:
        """The output in a memfd, kept open until the worker's Release; None (send the frames
        as before) when memory or fds run out."""
        try:
            value = SharedValue.write(key, frames)
        except OSError:
            return None
        self._handed_off[value.fd] = value
        return value

    def _function(self, entry: dict, frames: list):
        function_id = entry["fn"]
        function = self._functions.get(function_id)
        if function is None:
            start, count = entry["fn_frames"]
            loaded = cloudpickle.loads(memoryview(frames[start]))
            function = getattr(loaded, "function", loaded)   # a @task wrapper: its plain function
            self._functions[function_id] = function
        return function

    def _send_failure(self, entry: dict, error: TaskError) -> None:
        try:
            exception_frames = serialize(error.exception)
        except Exception:
            exception_frames = []
        reply = protocol.ExecFailed(entry["id"], str(error), error.traceback_text,
                                    error.is_group_exception, len(exception_frames))
        protocol.send(self._socket, protocol.encode(reply, exception_frames))


def serve_in_forked_child(executor_end: socket.socket, executor_id: int, work_dir: str,
                          jobs_dir: str | None, run_key: str, core: int | None = None) -> None:
    """Entry point of an executor forked from its worker; exits the process when done."""
    code = 0
    try:
        die_with_parent()
        enter_worker_context()
        Executor(FramedChannel(executor_end), executor_id, work_dir, jobs_dir, run_key,
                 core).serve()
    except BaseException:  # noqa: BLE001 - a forked child must never return into the worker
        code = 1
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="superscalar-executor")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--executor-id", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--jobs-dir", default=None)
    parser.add_argument("--core", type=int, default=None)
    options = parser.parse_args(argv)
    die_with_parent()
    enter_worker_context()
    Executor(inherit(options.channel_fd), options.executor_id, options.work_dir,
             options.jobs_dir, core=options.core).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
