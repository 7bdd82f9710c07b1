"""The worker's executor processes: start them, hand out slots, replace the ones that die.

Each executor is a separate OS process (the GIL makes threads useless for Python tasks). A task
asking for N computing units holds N executor slots; one runs it, the others stay idle so the
node is not oversubscribed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from ..transport.auth import RUN_KEY_ENV
from ..transport.framed import FramedChannel, pair


class ForkedProcess:
    """The Popen-like handle of an executor forked from the worker."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@dataclass(slots=True, eq=False)
class ExecutorSlot:
    executor_id: int
    process: object                          # subprocess.Popen or ForkedProcess
    channel: FramedChannel                   # the worker's end of its socketpair
    ready: bool = False                      # it said ExecutorReady
    functions: set = field(default_factory=set)
    task_id: int | None = None               # the task it runs
    # Tasks already sent to it, to start as soon as `task_id` ends: the executor finds the
    # next task waiting in its socket instead of sleeping until the worker answers (waking an
    # idle CPU costs hundreds of microseconds on virtual machines).
    queued: deque = field(default_factory=deque)
    held_for: int | None = None              # a multi-unit task that reserved this slot
    started_at: float = 0.0
    core: int | None = None                  # the CPU this slot's tasks are bound to, if any


class ExecutorPool:
    """Create it before the worker makes its ZeroMQ context: the first executors are forked
    from the worker (no interpreter start-up, modules already imported), which is only safe
    while no context exists. Replacements later are started as fresh interpreters. Each talks
    to the worker over its own socketpair (runtime.transport.framed)."""

    def __init__(self, size: int, work_dir: str, jobs_dir: str | None,
                 run_key: str, python: str | None = None, cores: list | None = None,
                 gpus: list | None = None, close_in_children: list | None = None):
        """cores: one CPU id per slot (None: unbound); gpus: the device ids tasks may take;
        close_in_children: the worker's own channels, which forked executors must not keep."""
        self._close_in_children = list(close_in_children or ())
        self._free_gpus = list(gpus or ())
        self._gpus_of: dict[int, list] = {}         # task id -> the device ids it holds
        self._work_dir = work_dir
        self._jobs_dir = jobs_dir
        self._run_key = run_key
        self._python = python or sys.executable
        self.slots: dict[int, ExecutorSlot] = {}
        self._by_fd: dict[int, ExecutorSlot] = {}
        self._next_id = 0
        for index in range(size):
            self._fork(cores[index] if cores else None)

    def _fork(self, core: int | None) -> ExecutorSlot:
        from .executor import serve_in_forked_child
        executor_id = self._next_id
        self._next_id += 1
        worker_end, executor_end = pair()
        pid = os.fork()
        if pid == 0:
            worker_end.close()
            for slot in self.slots.values():       # other executors' channels are not its own
                slot.channel.close()
            for channel in self._close_in_children:
                channel.close()
            serve_in_forked_child(executor_end, executor_id, self._work_dir, self._jobs_dir,
                                  self._run_key, core)       # never returns
        executor_end.close()
        return self._add(ExecutorSlot(executor_id, ForkedProcess(pid),
                                      FramedChannel(worker_end, blocking=False), core=core))

    def _spawn(self, core: int | None) -> ExecutorSlot:
        executor_id = self._next_id
        self._next_id += 1
        worker_end, executor_end = pair()
        command = [self._python, "-m", "runtime.worker.executor",
                   "--channel-fd", str(executor_end.fileno()),
                   "--executor-id", str(executor_id), "--work-dir", self._work_dir]
        if self._jobs_dir:
            command += ["--jobs-dir", self._jobs_dir]
        if core is not None:
            command += ["--core", str(core)]
        environment = dict(os.environ, **{RUN_KEY_ENV: self._run_key})
        process = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL,
                                   pass_fds=(executor_end.fileno(),))
        executor_end.close()
        return self._add(ExecutorSlot(executor_id, process,
                                      FramedChannel(worker_end, blocking=False), core=core))

    def _add(self, slot: ExecutorSlot) -> ExecutorSlot:
        self.slots[slot.executor_id] = slot
        self._by_fd[slot.channel.fileno()] = slot
        return slot

    def register(self, slot: ExecutorSlot, executor_id: int) -> bool:
        """The executor on `slot`'s channel said it is ready, under `executor_id`."""
        if slot.executor_id != executor_id or slot.ready:
            return False
        slot.ready = True
        return True

    def by_fd(self, fd: int) -> ExecutorSlot | None:
        return self._by_fd.get(fd)

    def free_slots(self) -> list[ExecutorSlot]:
        return [slot for slot in self.slots.values()
                if slot.ready and slot.task_id is None and slot.held_for is None]

    def take(self, task_id: int, units: int, queue_limit: int = 0,
             gpus: int = 0) -> ExecutorSlot | None:
        """A slot to send the task to: a free one, else (single-unit) the running one with the
        fewest tasks queued behind it, if fewer than `queue_limit`. A GPU task also takes
        `gpus` free device ids (see `assigned`)."""
        if gpus > len(self._free_gpus):
            return None
        free = self.free_slots()
        if len(free) >= units:
            runner, *held = free[:units]
            runner.task_id = task_id
            runner.started_at = time.monotonic()
            for slot in held:
                slot.held_for = task_id
            if gpus:
                self._gpus_of[task_id] = self._free_gpus[:gpus]
                del self._free_gpus[:gpus]
            return runner
        if units == 1 and queue_limit and not gpus:
            shortest = None
            for slot in self.slots.values():
                if slot.task_id is not None and slot.held_for is None and \
                        len(slot.queued) < queue_limit and \
                        (shortest is None or len(slot.queued) < len(shortest.queued)):
                    shortest = slot
            if shortest is not None:
                shortest.queued.append(task_id)
                return shortest
        return None

    def finished(self, slot: ExecutorSlot) -> int | None:
        """The slot's running task ended; the next queued one (if any) is now running."""
        task_id = slot.task_id
        if task_id is None:
            return None
        self.release(task_id)
        if slot.queued:
            slot.task_id = slot.queued.popleft()
            slot.started_at = time.monotonic()
        return task_id

    def assigned(self, task_id: int, runner: ExecutorSlot) -> tuple[list, list]:
        """(cores, gpu ids) of a started task: its slots' cores, runner first."""
        cores = [runner.core] + [slot.core for slot in self.slots.values()
                                 if slot.held_for == task_id]
        return ([] if None in cores else cores), list(self._gpus_of.get(task_id, ()))

    def release(self, task_id: int) -> None:
        self._free_gpus.extend(self._gpus_of.pop(task_id, ()))
        for slot in self.slots.values():
            if slot.task_id == task_id:
                slot.task_id = None
            if slot.held_for == task_id:
                slot.held_for = None

    def replace(self, slot: ExecutorSlot) -> list[int]:
        """Kill (if needed) and replace an executor: a timed-out, cancelled or dead one.
        Returns the tasks that were queued behind the running one: never started, to resend."""
        task_id = slot.task_id
        not_started = list(slot.queued)
        slot.queued.clear()
        if slot.process.poll() is None:
            slot.process.send_signal(signal.SIGKILL)
            slot.process.wait()
        self.slots.pop(slot.executor_id, None)
        self._by_fd.pop(slot.channel.fileno(), None)
        slot.channel.close()
        if task_id is not None:
            self.release(task_id)
        self._spawn(slot.core)
        return not_started

    def dead_slots(self) -> list[ExecutorSlot]:
        return [slot for slot in self.slots.values() if slot.process.poll() is not None]

    def running(self) -> list[ExecutorSlot]:
        return [slot for slot in self.slots.values() if slot.task_id is not None]

    def stop(self, grace: float = 0.3) -> None:
        deadline = time.monotonic() + grace
        for slot in self.slots.values():
            while slot.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if slot.process.poll() is None:
                slot.process.kill()
                slot.process.wait()
