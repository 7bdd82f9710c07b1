"""A worker process: one per compute node, owning that node's data and executor processes.

    master ROUTER ◄──control (DEALER)──► worker ──Exec (socketpair each)──► executors
                                           │ ▲
              peer workers ──Fetch──► data │ │ Fetch ──► peer data servers
                                  (ROUTER) ▼ │ (DEALER per peer)

Task inputs come straight from the worker that holds them (or from the master, attached to the
task, when only the application has them); results stay here until the master asks for them
or says they are no longer needed.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections import deque

import zmq

from ..core import collector
from ..transport import protocol
from ..transport.auth import is_valid, run_key_from_environment
from ..transport.curve import Gatekeeper, curve_keys_from_environment, secure_client
from ..transport.framed import (READABLE, WRITABLE, ChannelClosed, ChannelWatch, FramedChannel,
                                 WouldBlock)
from .lifetime import die_with_parent, exit_description, parent_is_gone
from .devices import bound_cores, gpu_ids
from .delayed_persist import persist_delay_from_environment
from .done_report import DoneReport
from .pool import ExecutorPool
from .shared_values import SharedValue, SharedValueError, raise_fd_limit
from .store import DataStore
from .worker_context import NODE_NAME_ENV, enter_worker_context

log = logging.getLogger("superscalar.worker")

HEARTBEAT_SECONDS = 1.0
SHORT_TASK_SECONDS = 0.05
TINY_TASK_SECONDS, TINY_QUEUE_DEPTH = 0.005, 4
# The data server only ever receives Fetch requests (a few keys): a peer sending more is cut off.
MAX_DATA_REQUEST_BYTES = 16 * 1024 * 1024
_KILL_HINT = "out of memory? the kernel's OOM killer sends it"


class _PendingTask:
    __slots__ = ("entry", "frames", "missing")

    def __init__(self, entry: dict, frames: list):
        self.entry = entry
        self.frames = frames
        self.missing: set[str] = set()


class Worker:
    def __init__(self, options: argparse.Namespace):
        self.worker_id = options.worker_id
        os.environ[NODE_NAME_ENV] = options.node_name    # before the executors start
        self.run_key = run_key_from_environment()
        self.curve_keys = curve_keys_from_environment()   # None: the run stays on loopback
        self.work_dir = options.work_dir
        os.makedirs(self.work_dir, mode=0o700, exist_ok=True)   # its ipc socket lives there
        os.makedirs(os.path.join(self.work_dir, "sandbox"), exist_ok=True)
        self.store = DataStore(os.path.join(self.work_dir, "data"))
        raise_fd_limit()                   # the store holds one fd per large value
        collector.tune()                   # before the executors fork: they inherit it
        # A local worker's control channel is a socketpair from the master (deploy/launch.py)
        channel = FramedChannel.from_fd(options.control_fd, blocking=False) \
            if options.control_fd is not None else None
        # Before any ZeroMQ context exists: the pool forks the first executors.
        self.pool = ExecutorPool(options.computing_units, self.work_dir,
                                 options.jobs_dir, self.run_key,
                                 cores=bound_cores(options.computing_units, options.core_offset),
                                 gpus=gpu_ids(options.gpus),
                                 close_in_children=[channel] if channel else [])
        self.context = zmq.Context()
        self.gatekeeper = Gatekeeper(self.context, self.curve_keys, f"worker {self.worker_id}",
                                     log) if self.curve_keys else None
        if channel is not None:
            self.control = channel
        else:
            self.control = self._client_socket()
            self.control.connect(options.master)
        self.data_server = self._socket(zmq.ROUTER)
        self.data_server.setsockopt(zmq.MAXMSGSIZE, MAX_DATA_REQUEST_BYTES)
        if self.gatekeeper:
            self.gatekeeper.secure_server(self.data_server)
        port = self.data_server.bind_to_random_port(f"tcp://{options.bind_host}")
        self.data_address = f"tcp://{options.advertise_host}:{port}"
        self.functions: dict[int, list] = {}
        self.pending: dict[int, _PendingTask] = {}
        self.runnable: deque[_PendingTask] = deque()
        self.waiting_for_key: dict[str, list[_PendingTask]] = {}
        self.peers: dict[str, zmq.Socket] = {}
        self.report = DoneReport(persist_delay_from_environment())   # TasksDone, records
        self.running_entries: dict[int, dict] = {}     # sent to an executor, not finished
        self.unflushed: dict[int, object] = {}         # executor id -> slot with output queued
        self.mean_duration = 1.0          # of this worker's tasks; queueing only for short ones
        self.parent_pid = die_with_parent() if options.die_with_parent else os.getppid()
        self.poller = zmq.Poller()
        self.poller.register(self.data_server, zmq.POLLIN)
        self.watch = ChannelWatch(self.poller)      # the socketpair channels polled
        self.channel_fd = channel.fileno() if channel is not None else None
        if channel is None:
            self.poller.register(self.control, zmq.POLLIN)
        self._watch_channels()
        if self.gatekeeper:
            self.gatekeeper.register(self.poller)
        hello = protocol.Hello(self.run_key, self.worker_id, options.node_name,
                               options.computing_units, self.data_address, os.getpid())
        self.control.send_multipart(protocol.encode(hello))
        self.stopping = False

    def _socket(self, kind: int) -> zmq.Socket:
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        return socket

    def _client_socket(self) -> zmq.Socket:
        """A DEALER towards the master or a peer: a CURVE client when the run is secured."""
        socket = self._socket(zmq.DEALER)
        if self.curve_keys:
            secure_client(socket, self.curve_keys)
        return socket

    # ---- main loop --------------------------------------------------------------------------
    def serve(self) -> None:
        clock = [time.monotonic(), time.monotonic()]        # last heartbeat, last check
        while not self.stopping:
            try:
                self._turn(clock)
            except ChannelClosed:            # the master's socketpair: the master is gone
                log.warning("the master closed its channel; worker %s exits", self.worker_id)
                break
        self._shutdown()

    def _turn(self, clock: list) -> None:
        """One loop turn: serve what is ready, check executors, heartbeat, report."""
        events = dict(self.poller.poll(self._poll_timeout_ms()))
        if self.gatekeeper:
            events = self.gatekeeper.serve_ready(events)
        for socket, event in events.items():
            if type(socket) is not int:
                self._drain(socket)
            elif socket == self.channel_fd:
                self._serve_control_channel(event)
            else:
                self._serve_channel(socket, event)
        now = time.monotonic()
        if now - clock[1] > 0.2:
            self._check_executors(now)
            clock[1] = now
        if now - clock[0] > HEARTBEAT_SECONDS:
            self.control.send_multipart(protocol.encode(protocol.Heartbeat(self.worker_id)))
            clock[0] = now
            if parent_is_gone(self.parent_pid):
                log.warning("master process is gone; worker %s exits", self.worker_id)
                self.stopping = True
        self._flush_executors()
        self.report.flush(self.control, self.store)
        if self.channel_fd is not None and self.control.wants_to_write:
            self.watch.update(self.control)

    def _poll_timeout_ms(self) -> int:
        return 200

    def _drain(self, socket: zmq.Socket) -> None:
        handler = {self.control: self._on_control,
                   self.data_server: self._on_data_request}.get(socket, self._on_peer_reply)
        while True:
            try:
                parts = socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._handle(handler, parts)

    def _handle(self, handler, *arguments) -> None:
        try:
            handler(*arguments)
        except protocol.ProtocolError as error:
            log.warning("worker %s dropped a malformed message: %s", self.worker_id, error)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            # Well-formed frames with fields of the wrong shape: drop, never crash.
            log.exception("worker %s dropped a message it could not handle", self.worker_id)
        self._start_runnable()

    # ---- control channel --------------------------------------------------------------------
    def _on_control(self, parts: list) -> None:
        message, frames = protocol.decode(parts)
        if isinstance(message, protocol.RunTasks):
            for entry in message.tasks:
                self._accept_task(entry, frames)
        elif isinstance(message, protocol.GetValues):
            self.report.fetched(message.keys)
            protocol.send(self.control, self._values_reply(message.keys))
        elif isinstance(message, protocol.DeleteData):
            for key in message.keys:
                self.store.delete(key)
            self.report.deleted(message.keys)
        elif isinstance(message, protocol.PersistNow):
            self.report.persist_now(message.token)
        elif isinstance(message, protocol.Cancel):
            self._cancel(message.task_id)
        elif isinstance(message, protocol.Stop):
            self.stopping = True

    def _accept_task(self, entry: dict, frames: list) -> None:
        function_range = entry.get("fn_frames")
        if function_range is not None:
            start, count = function_range
            self.functions[entry["fn"]] = [bytes(f) for f in frames[start:start + count]]
        start, count = entry["frames"]
        task = _PendingTask(entry, frames[start:start + count])
        for key, kind, source in entry["sources"]:
            if key in self.store:
                continue
            if source[0] == "path":
                self.store.put_local_copy(key, kind, source[1])
            elif source[0] == "inline":
                self.store.put_transferred(key, kind, frames[source[1]:source[1] + source[2]])
            else:
                task.missing.add(key)
                waiters = self.waiting_for_key.setdefault(key, [])
                if not waiters and source[0] == "peer":
                    self._request_fetch(source[1], key)
                waiters.append(task)
        self.pending[entry["id"]] = task
        if not task.missing:
            self.runnable.append(task)

    def _request_fetch(self, address: str, key: str) -> None:
        socket = self.peers.get(address)
        if socket is None:
            socket = self.peers[address] = self._client_socket()
            socket.connect(address)
            self.poller.register(socket, zmq.POLLIN)
        socket.send_multipart(protocol.encode(protocol.Fetch(self.run_key, [key])))

    def _on_peer_reply(self, parts: list) -> None:
        message, frames = protocol.decode(parts)
        if not isinstance(message, protocol.Values):
            raise protocol.ProtocolError(f"unexpected {type(message).__name__} from a peer")
        for key, start, count, kind in message.entries:
            if key not in self.waiting_for_key or key in self.store:
                log.warning("worker %s dropped %s from a peer: it was not asked for",
                            self.worker_id, key)
                continue
            self.store.put_transferred(key, kind, frames[start:start + count])
            self._satisfy(key)
        for key in message.missing:
            for task in self.waiting_for_key.pop(key, []):
                self._fail_locally(task.entry, f"its input {key} is no longer held by the "
                                               f"worker that produced it")

    def _satisfy(self, key: str) -> None:
        waiters = self.waiting_for_key.pop(key, None)
        if waiters:
            for task in waiters:
                task.missing.discard(key)
                if not task.missing:
                    self.runnable.append(task)

    def _values_reply(self, keys: list) -> list:
        entries, missing, data = [], [], []
        for key in keys:
            found = self.store.frames_for_transfer(key)
            if found is None:
                missing.append(key)
                continue
            kind, frames = found
            entries.append([key, len(data), len(frames), kind])
            data.extend(frames)
        return protocol.encode(protocol.Values(entries, missing), data)

    def _on_data_request(self, parts: list) -> None:
        routing_id, *body = parts
        message, _ = protocol.decode(body)
        if not isinstance(message, protocol.Fetch) or not is_valid(message.run_key, self.run_key):
            log.warning("worker %s refused a data request without the run key", self.worker_id)
            return
        protocol.send(self.data_server, self._values_reply(message.keys), routing_id)

    # ---- executors ----------------------------------------------------------------------------
    def _watch_channels(self) -> None:
        """Poll every executor's channel, and the master's if a socketpair."""
        for slot in self.pool.slots.values():
            self.watch.update(slot.channel)
        if self.channel_fd is not None:
            self.watch.update(self.control)

    def _serve_control_channel(self, event: int) -> None:
        try:
            if event & WRITABLE:
                self.control.flush()
            while event & READABLE:
                try:
                    parts = self.control.recv_multipart()
                except WouldBlock:
                    break
                self._handle(self._on_control, parts)
        except ChannelClosed:
            log.warning("the master closed its channel; worker %s exits", self.worker_id)
            self.stopping = True
            return
        self.watch.update(self.control)

    def _replace_executor(self, slot) -> list[int]:
        """pool.replace, with the dead channel unwatched before its fd can be reused."""
        self.unflushed.pop(slot.executor_id, None)
        self.watch.unwatch(slot.channel.fileno())
        not_started = self.pool.replace(slot)
        self._watch_channels()
        return not_started

    def _serve_channel(self, fd: int, event: int) -> None:
        slot = self.pool.by_fd(fd)
        if slot is None:
            return
        try:
            if event & WRITABLE:
                slot.channel.flush()
            while event & READABLE:
                try:
                    parts = slot.channel.recv_multipart()
                except WouldBlock:
                    break
                self._handle(self._on_executor, slot, parts)
        except ChannelClosed:
            # It died: stop polling its end (always readable now); _check_executors replaces it
            self.watch.unwatch(fd)
            return
        self.watch.update(slot.channel)

    def _send_to_executor(self, slot, parts: list) -> None:
        """Written at the end of the loop turn (_flush_executors), with the turn's others."""
        slot.channel.queue_multipart(parts)
        self.unflushed[slot.executor_id] = slot

    def _flush_executors(self) -> None:
        for slot in self.unflushed.values():
            try:
                slot.channel.flush()
            except ChannelClosed:
                continue                         # it died; _check_executors resends its tasks
            if slot.channel.wants_to_write:
                self.watch.update(slot.channel)
        self.unflushed.clear()

    def _on_executor(self, slot, parts: list) -> None:
        message, frames = protocol.decode(parts)
        if isinstance(message, protocol.ExecutorReady):
            if not is_valid(message.run_key, self.run_key):
                log.warning("worker %s refused an executor without the run key", self.worker_id)
                return
            self.pool.register(slot, message.executor_id)
            return
        if slot.task_id is None:
            self._release(slot, getattr(message, "shared", None))
            return
        task_id = self.pool.finished(slot)
        entry = self.running_entries.pop(task_id, None)
        self.pending.pop(task_id, None)
        if entry is None:
            self._release(slot, getattr(message, "shared", None))
            return                            # cancelled while queued on the executor
        if isinstance(message, protocol.ExecResult):
            self.mean_duration += 0.1 * (message.duration - self.mean_duration)
            adopted = self._adopt_shared(slot, message.shared)
            if adopted is None:
                self._fail_locally(entry, "its outputs could not be read from the executor's "
                                          "shared memory (the executor died?)")
                return
            sizes = []
            for key, start, count, kind, path, nbytes in message.outputs:
                if key in adopted:
                    self.store.put_shared(key, adopted[key], nbytes)
                elif kind == "obj":
                    self.store.put_object(key, frames[start:start + count], nbytes)
                else:
                    self.store.put_path(key, kind, path, nbytes)
                sizes.append([key, nbytes])
                self._satisfy(key)
            self.report.add(task_id, sizes, message.duration, entry.get("persist"),
                            message.outputs, frames, bool(adopted))
        elif isinstance(message, protocol.ExecFailed):
            failed = protocol.TaskFailed(task_id, message.message, message.traceback,
                                         message.is_group_exception, message.exception_frames)
            protocol.send(self.control, protocol.encode(failed, frames[:message.exception_frames]))
        del entry

    def _adopt_shared(self, slot, shared: dict) -> dict | None:
        """Open our own fd on each output the executor put in a memfd, then tell it to close
        its fds. None if one cannot be opened (whatever was opened is closed again)."""
        if not shared:
            return {}
        adopted = {}
        try:
            for key, description in shared.items():
                adopted[key] = SharedValue.adopt(description)
        except SharedValueError as error:
            log.warning("worker %s: %s", self.worker_id, error)
            for value in adopted.values():
                value.close()
            return None
        finally:
            self._release(slot, shared)
        return adopted

    def _release(self, slot, shared: dict | None) -> None:
        """Let an executor close the memfds of outputs we opened or will never use."""
        if shared and isinstance(shared, dict):
            fds = [description[1] for description in shared.values()]
            self._send_to_executor(slot, protocol.encode(protocol.Release(fds)))

    def _start_runnable(self) -> None:
        while self.runnable:
            task = self.runnable[0]
            entry = task.entry
            slot = self.pool.take(entry["id"], entry.get("units", 1),
                                  queue_limit=self._queue_depth(),
                                  gpus=entry.get("gpu_count", 0))
            if slot is None:
                return
            self.runnable.popleft()
            if slot.task_id == entry["id"]:          # started now (not queued behind another)
                entry["cores"], entry["gpus"] = self.pool.assigned(entry["id"], slot)
            self.running_entries[entry["id"]] = entry
            self._send_to_executor(slot, self._exec_message(slot, task))

    def _queue_depth(self) -> int:
        """Tasks an executor may hold behind its running one: with tiny tasks, enough that it
        never waits for this process between two; none for long ones (load balance first)."""
        mean = self.mean_duration
        return TINY_QUEUE_DEPTH if mean < TINY_TASK_SECONDS else int(mean < SHORT_TASK_SECONDS)

    def _exec_message(self, slot, task: _PendingTask) -> list:
        entry = dict(task.entry)
        data: list = []
        if entry["fn"] not in slot.functions:
            function_frames = self.functions[entry["fn"]]
            entry["fn_frames"] = [0, len(function_frames)]
            data.extend(function_frames)
            slot.functions.add(entry["fn"])
        else:
            entry["fn_frames"] = None
        entry["frames"] = [len(data), len(task.frames)]
        data.extend(task.frames)
        inputs, shared = {}, {}
        for key in entry["reads"]:
            stored = self.store.get(key)
            if stored.shared is not None:
                inputs[key] = [0, 0, "obj", None]
                shared[key] = stored.shared.describe()
            elif stored.kind == "obj":
                inputs[key] = [len(data), len(stored.frames), "obj", None]
                data.extend(stored.frames)
            else:
                inputs[key] = [0, 0, stored.kind, stored.path]
        del entry["sources"]
        entry.pop("persist", None)          # the worker persists; the executor needs none of it
        return protocol.encode(protocol.Exec(entry, inputs, shared), data)

    def _check_executors(self, now: float) -> None:
        for slot in self.pool.dead_slots():
            task_id = slot.task_id
            code = slot.process.returncode
            self._resend(self._replace_executor(slot))
            if task_id is not None:
                entry = self.running_entries.pop(task_id, None)
                self.pending.pop(task_id, None)
                if entry is not None:
                    self._fail_locally(entry, f"the executor process running it "
                                              f"{exit_description(code, _KILL_HINT)}")
        for slot in self.pool.running():
            entry = self.running_entries.get(slot.task_id)
            limit = entry.get("time_out", 0) if entry else 0
            if limit and now - slot.started_at > limit:
                task_id = slot.task_id
                self._resend(self._replace_executor(slot))
                self.running_entries.pop(task_id, None)
                self.pending.pop(task_id, None)
                self._fail_locally(entry, f"exceeded its time_out of {limit:g} s and was killed "
                                          f"(its executor process is replaced)")
        self._start_runnable()

    def _resend(self, task_ids: list[int]) -> None:
        """Tasks queued on a replaced executor never started: run them elsewhere first."""
        for task_id in reversed(task_ids):
            entry = self.running_entries.pop(task_id, None)
            task = self.pending.get(task_id)
            if entry is not None and task is not None:
                self.runnable.appendleft(task)

    def _cancel(self, task_id: int) -> None:
        task = self.pending.pop(task_id, None)
        if task is not None and task in self.runnable:
            self.runnable.remove(task)
        if task is not None:
            for key in task.missing:
                waiters = self.waiting_for_key.get(key, [])
                if task in waiters:
                    waiters.remove(task)
        for slot in self.pool.running():
            if slot.task_id == task_id:
                self.running_entries.pop(task_id, None)
                self._resend(self._replace_executor(slot))
            elif task_id in slot.queued:
                self.running_entries.pop(task_id, None)   # its result will be ignored

    def _fail_locally(self, entry: dict, message: str) -> None:
        self.pending.pop(entry["id"], None)
        failed = protocol.TaskFailed(entry["id"], f"RuntimeError: task {entry['name']}: {message}",
                                     f"task {entry['name']}: {message}\n", False, 0)
        self.control.send_multipart(protocol.encode(failed))

    def _shutdown(self) -> None:
        for slot in self.pool.slots.values():
            if slot.ready:
                try:
                    slot.channel.send_multipart(protocol.encode(protocol.Shutdown("stop")))
                    slot.channel.flush()
                except ChannelClosed:
                    pass
        self.pool.stop()
        self.context.destroy(linger=0)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="superscalar-worker")
    parser.add_argument("--master", required=True)
    parser.add_argument("--control-fd", type=int, default=None,
                        help="a socketpair end from a local master, used instead of --master")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--computing-units", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--jobs-dir", default=None)
    parser.add_argument("--bind-host", default="127.0.0.1")
    parser.add_argument("--advertise-host", default="127.0.0.1")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--core-offset", type=int, default=None,
                        help="bind executor slots to CPUs from this index of the allowed set")
    parser.add_argument("--gpus", type=int, default=0, help="GPU devices of this node")
    parser.add_argument("--die-with-parent", action="store_true",
                        help="started by a local master: exit when it does")
    options = parser.parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(),
                        format=f"[worker {options.worker_id}] %(levelname)s %(message)s")
    enter_worker_context()
    Worker(options).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
