"""The distributed backend: an I/O thread that owns every socket and the engine.

    application thread                    I/O thread                         workers
    post(fn, args) ─deque + wake(inproc)─► fn(args) → engine → instructions
                                           batches per worker ──RunTasks──► DEALER
                                           ROUTER ◄──TasksDone / TaskFailed / Values──
                                           (local workers: the same messages over a
                                            socketpair each, runtime.transport.framed)

The application thread never blocks on a socket: it appends commands and, to read a value,
waits on a Waiter the I/O thread completes. Messages are batched per worker per loop turn.

A worker is lost when its process exits (local: polled) or when nothing came from it for
SUPERSCALAR_WORKER_TIMEOUT seconds (it sends a heartbeat every second): the engine re-runs
its work elsewhere (runtime.core.recovery), a local one is replaced by a fresh worker (up to
SUPERSCALAR_WORKER_RESTARTS times per node), and whatever it says afterwards is ignored.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque

import zmq

from ..core.records import MASTER, CancelRunning, Dispatch, FetchValue, WorkerSlots
from ..transport import protocol
from ..transport.auth import is_valid
from ..transport.curve import CurveKeys, Gatekeeper
from ..transport.framed import READABLE, WRITABLE, ChannelClosed, ChannelWatch, WouldBlock
from ..transport.payload import compact_frames
from ..worker.lifetime import exit_description
from .calls import MasterValue, TaskCall
from .dispatch import Outbox
from .shell import Shell

log = logging.getLogger("superscalar.master")

WORKER_CHECK_SECONDS = 0.5
WORKER_TIMEOUT_ENV = "SUPERSCALAR_WORKER_TIMEOUT"      # seconds of silence: the worker is lost
WORKER_RESTARTS_ENV = "SUPERSCALAR_WORKER_RESTARTS"    # replacements per local node
DEFAULT_WORKER_TIMEOUT, DEFAULT_WORKER_RESTARTS = 5.0, 10
_KILL_HINT = "kill -9, or the kernel's out-of-memory killer"
# Tasks submitted and not finished before the application thread is made to wait: bounds the
# master's memory when a program submits 10^6 tasks faster than the workers run them.
MAX_PENDING_ENV = "SUPERSCALAR_MAX_PENDING_TASKS"
DEFAULT_MAX_PENDING = 20_000


class _WorkerLink:
    __slots__ = ("worker_id", "routing_id", "data_address", "process", "is_local", "node",
                 "functions", "log_path", "slots", "last_seen", "lost", "restarts", "channel")

    def __init__(self, slots: WorkerSlots, process, node, log_path, restarts: int = 0):
        self.worker_id = slots.worker_id
        self.routing_id: bytes | None = None
        self.data_address: str | None = None
        self.process = process
        self.is_local = slots.is_local
        self.node = node
        self.functions: set[int] = set()
        self.log_path = log_path
        self.slots = slots                   # what the engine is told when the worker joins
        self.last_seen = 0.0                 # monotonic time of its last message
        self.lost = False                    # declared lost: anything it says is ignored
        self.restarts = restarts             # workers of its node replaced before it
        # A local worker's socketpair end (deploy/launch.py); None: it talks to the ROUTER
        self.channel = getattr(process, "control_channel", None)


class ZmqBackend(Shell):
    def __init__(self, bind_host: str = "127.0.0.1", curve_keys: CurveKeys | None = None) -> None:
        super().__init__()
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # With keys, only the run's members complete a handshake (see transport/curve.py).
        self.gatekeeper = Gatekeeper(self.context, curve_keys, "master", log) \
            if curve_keys else None
        if self.gatekeeper:
            self.gatekeeper.secure_server(self.router)
        port = self.router.bind_to_random_port(f"tcp://{bind_host}")
        self.port = port
        log.info("master listening on %s:%d, %s", bind_host, port,
                 "CURVE-secured" if self.gatekeeper else "plain (no CURVE)")
        self._wake_receiver = self.context.socket(zmq.PAIR)
        self._wake_receiver.bind(f"inproc://wake-{id(self)}")
        self._wake_sender = self.context.socket(zmq.PAIR)
        self._wake_sender.connect(f"inproc://wake-{id(self)}")
        self._wake_lock = threading.Lock()
        self._commands: deque = deque()
        self.links: dict[str, _WorkerLink] = {}
        self._by_routing_id: dict[bytes, _WorkerLink] = {}
        self._poller = zmq.Poller()
        self._watch = ChannelWatch(self._poller)      # local workers' socketpairs
        self._channel_links: dict[int, _WorkerLink] = {}
        self.outbox = Outbox(self)
        self.run_key = ""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="superscalar-io", daemon=True)
        self.fatal_error: BaseException | None = None
        self.bytes_received = 0      # every frame from workers: proves data bypasses the master
        self.max_pending = max(1, int(os.environ.get(MAX_PENDING_ENV) or DEFAULT_MAX_PENDING))
        self._room = threading.Condition()   # back-pressure's slow path only (admit_task)
        # A waiting application resumes once pending tasks fell this low, not at the first one
        # that finishes: one wake-up (a GIL hand-over) per batch of tasks, not per loop turn.
        self._resume_at = self.max_pending - max(1, self.max_pending // 10)
        self._admission_waits = False
        self.admitted = 0                    # tasks let through admit_task (application thread)
        self.peak_pending = 0                # most admitted and not yet seen finished at once
        self._finished_released = 0          # engine.finished as last released (I/O thread)
        self.worker_timeout = max(1.0, float(os.environ.get(WORKER_TIMEOUT_ENV) or
                                             DEFAULT_WORKER_TIMEOUT))
        self.max_restarts = int(os.environ.get(WORKER_RESTARTS_ENV) or DEFAULT_WORKER_RESTARTS)
        self.relaunch = None                 # (lost id, new id) -> (slots, process, log path)
        self.interrupt_thread: int | None = None   # gets SIGINT when a FAIL policy stops the run
        self.engine.on_kept = TaskCall.pack        # payloads kept as lineage take less room
        # PersistNow token -> (workers yet to answer, event set when none is left)
        self._persist_requests: dict[int, tuple[set, threading.Event]] = {}
        self._persist_tokens = 0

    # ---- set-up -----------------------------------------------------------------------------
    def expect_worker(self, slots: WorkerSlots, process, node, log_path: str,
                      restarts: int = 0) -> None:
        self.links[slots.worker_id] = _WorkerLink(slots, process, node, log_path, restarts)

    def start(self, run_key: str) -> None:
        self.run_key = run_key
        self._thread.start()

    # ---- called from the application thread --------------------------------------------------
    def post(self, function, *args) -> None:
        was_empty = not self._commands
        self._commands.append((function, args))
        if was_empty:
            with self._wake_lock:
                self._wake_sender.send(b"", zmq.NOBLOCK)

    def call(self, function, *args):
        """Run `function(*args)` on the I/O thread and wait for its result."""
        box: list = []
        done = threading.Event()

        def run():
            try:
                box.append((True, function(*args)))
            except BaseException as error:  # noqa: BLE001 - handed back to the caller
                box.append((False, error))
            done.set()
        self.post(run)
        while not done.wait(0.5):
            self.raise_if_dead()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def raise_if_dead(self) -> None:
        self.raise_if_stopped()
        if self.fatal_error is not None:
            raise RuntimeError("the runtime's I/O thread failed") from self.fatal_error
        if not self._thread.is_alive() and not self._stopping:
            raise RuntimeError("the runtime's I/O thread is not running")

    def stop(self) -> None:
        if self._thread.is_alive():
            self.post(self._begin_stop)
            self._thread.join(timeout=10)
        deadline = time.monotonic() + 2.0      # workers got Stop; give them a moment, then kill
        for link in self.links.values():
            if link.process is None:
                continue
            if link.routing_id is None:
                link.process.kill()            # never connected: nothing to wait for
                link.process.wait()
                continue
            try:
                link.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                link.process.kill()
        self.context.destroy(linger=0)

    # ---- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        poller = self._poller
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_receiver, zmq.POLLIN)
        if self.gatekeeper:
            self.gatekeeper.register(poller)
        last_check = time.monotonic()
        try:
            while not self._stopping:
                self._watch_channels()
                events = dict(poller.poll(200))
                if self.gatekeeper:
                    events = self.gatekeeper.serve_ready(events)
                if self._wake_receiver in events:
                    self._drain_wakes()
                if self.router in events:
                    self._drain_router()
                for fd, event in events.items():
                    if type(fd) is int:
                        self._serve_channel(fd, event)
                self._run_commands()
                self.outbox.flush()
                self._release_finished()
                now = time.monotonic()
                if now - last_check > WORKER_CHECK_SECONDS:
                    self._check_workers(now, now - last_check)
                    last_check = now
            self.outbox.flush()
            self._send_stop()
            self._flush_channels()
        except BaseException as error:  # noqa: BLE001 - surfaced to the application thread
            log.exception("I/O thread failed")
            self.fatal_error = error

    # ---- local workers' socketpairs -------------------------------------------------------------
    def _watch_channels(self) -> None:
        """Poll each live local worker's channel; a lost worker's channel is closed."""
        for link in self.links.values():
            if link.channel is None:
                continue
            if link.lost:
                self._close_channel(link)
                continue
            self._channel_links[link.channel.fileno()] = link
            self._watch.update(link.channel)

    def _close_channel(self, link: _WorkerLink) -> None:
        fd = link.channel.fileno()
        self._watch.unwatch(fd)                  # before closing: the fd number gets reused
        self._channel_links.pop(fd, None)
        link.channel.close()
        link.channel = None

    def _serve_channel(self, fd: int, event: int) -> None:
        link = self._channel_links.get(fd)
        if link is None or link.channel is None:
            return
        try:
            if event & WRITABLE:
                link.channel.flush()
            while event & READABLE:
                try:
                    parts = link.channel.recv_multipart()
                except WouldBlock:
                    return
                self.bytes_received += sum(memoryview(part).nbytes for part in parts)
                self._guarded(self._from_link, link, parts)
        except ChannelClosed:
            # It exited or died: close our end (an end of file is always readable); the
            # liveness check sees the process gone and recovers its work.
            self._close_channel(link)

    def _from_link(self, link: _WorkerLink, parts: list) -> None:
        message, frames = protocol.decode(parts)
        if link.routing_id is None:
            if getattr(message, "worker_id", None) != link.worker_id:
                raise protocol.ProtocolError("a local worker's first message must be its Hello")
            self._on_hello(b"", message, link)
            return
        self._on_worker_message(link, message, frames)

    def _flush_channels(self) -> None:
        """At the end: what waits to be written (Stop) goes out before the channels close."""
        for link in self.links.values():
            if link.channel is not None and link.channel.wants_to_write:
                try:
                    link.channel.socket.settimeout(2.0)
                    link.channel.flush()
                except (ChannelClosed, OSError):
                    pass

    def admit_task(self) -> None:
        """Back-pressure: called by the application thread before each submission. Once
        `max_pending` tasks are submitted and not finished it blocks until a tenth of them
        finished; the I/O thread keeps running meanwhile (commands already posted, results
        arriving), which is what frees the slots."""
        if self.admitted - self._finished_released >= self.max_pending:
            with self._room:
                self._admission_waits = True
                while self.admitted - self._finished_released > self._resume_at:
                    self._room.wait(0.5)
                    self.raise_if_dead()
                self._admission_waits = False
        self.admitted += 1
        pending = self.admitted - self._finished_released
        if pending > self.peak_pending:
            self.peak_pending = pending

    @property
    def pending_tasks(self) -> int:
        """Submitted and not yet seen finished by the loop (what back-pressure bounds)."""
        return self.admitted - self._finished_released

    def _release_finished(self) -> None:
        finished = self.engine.finished
        if finished != self._finished_released:
            self._finished_released = finished
            if self._admission_waits and self.admitted - finished <= self._resume_at:
                with self._room:     # no lock per task: the waiter re-checks under _room
                    self._room.notify()

    def _drain_wakes(self) -> None:
        while True:
            try:
                self._wake_receiver.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _run_commands(self) -> None:
        commands = self._commands
        while commands:
            function, args = commands.popleft()
            function(*args)

    def _drain_router(self) -> None:
        for _ in range(10000):
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._guarded(self._on_message, parts)

    @staticmethod
    def _guarded(handler, *arguments) -> None:
        try:
            handler(*arguments)
        except protocol.ProtocolError as error:
            log.warning("master dropped a malformed message: %s", error)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            # Well-formed frames with fields of the wrong shape: drop, never crash.
            log.exception("master dropped a message it could not handle")

    def _on_message(self, parts: list) -> None:
        if len(parts) < 2:
            raise protocol.ProtocolError("message without a body")
        routing_id = parts[0].bytes
        self.bytes_received += sum(len(part) for part in parts)
        message, frames = protocol.decode(parts[1:])
        link = self._by_routing_id.get(routing_id)
        if link is None:
            self._on_hello(routing_id, message)
            return
        self._on_worker_message(link, message, frames)

    def _on_worker_message(self, link: _WorkerLink, message, frames: list) -> None:
        if link.lost:
            self._stop_lost(link)
            return
        link.last_seen = time.monotonic()
        if isinstance(message, protocol.TasksDone):
            results, records = [], []       # a malformed entry raises here, before any change
            blob = None                     # the frame of inline journal records, as bytes
            for entry in message.results:
                results.append((entry[0], dict(entry[1]), entry[2]))
                if len(entry) > 3:
                    if blob is None:
                        blob = frames[0] if type(frames[0]) is bytes else bytes(frames[0])
                    records.append((entry[0], blob[entry[3]:entry[4]]))
            if records:
                self.inline_records.update(records)
            self.apply(self.engine.tasks_done(results))
            if self.inline_records:         # the journal took its tasks' records; what is
                self.inline_records.clear()     # left was a late reply's (a task cancelled)
        elif isinstance(message, protocol.TaskFailed):
            payload = ([bytes(memoryview(f)) for f in frames[:message.exception_frames]],
                       message.traceback)
            self.apply(self.engine.task_failed(message.task_id, payload, message.message,
                                               message.is_group_exception))
        elif isinstance(message, protocol.Persisted):
            self._on_persisted(link, message)
        elif isinstance(message, protocol.Values):
            self._on_values(message, frames)

    def _on_hello(self, routing_id: bytes, message, channel_link=None) -> None:
        if not isinstance(message, protocol.Hello) or not is_valid(message.run_key, self.run_key):
            log.warning("master refused a %s from a peer that has not proven it belongs to "
                        "this run", type(message).__name__)
            return
        link = self.links.get(message.worker_id)
        if link is None or link.routing_id is not None or link is not channel_link and \
                link.channel is not None:
            log.warning("master refused an unexpected worker %r", message.worker_id)
            return
        link.routing_id = routing_id
        link.data_address = message.data_address
        link.last_seen = time.monotonic()
        if channel_link is None:
            self._by_routing_id[routing_id] = link
        self.apply(self.engine.add_worker(link.slots))

    def _on_values(self, message, frames: list) -> None:
        for key, start, count, kind in message.entries:
            chunk = compact_frames(frames[start:start + count])
            self.store.put(key, MasterValue(kind, chunk))
            self.apply(self.engine.value_arrived(key))
        for key in message.missing:
            version = self.engine.versions.get(key)
            if version is not None and version.waiters:
                for waiter in version.waiters:
                    waiter.fail(key, f"value {key} was lost by the worker that held it")
                version.waiters = None

    def _on_persisted(self, link: _WorkerLink, message) -> None:
        if self.on_persisted is not None and message.task_ids:
            self.on_persisted([i for i in message.task_ids if type(i) is int])
        if message.token:
            self._persist_answered(message.token, link.worker_id)

    def _persist_answered(self, token: int, worker_id: str) -> None:
        request = self._persist_requests.get(token)
        if request is not None:
            request[0].discard(worker_id)
            if not request[0]:
                del self._persist_requests[token]
                request[1].set()

    def persist_pending(self) -> None:
        """Ask every worker to write the records it is delaying, and wait for the answers
        (a worker lost meanwhile counts as answered: its records are gone anyway)."""
        done = threading.Event()

        def ask():
            self.outbox.flush()          # DeleteData decided before this goes first
            self._persist_tokens += 1
            token = self._persist_tokens
            workers = {link.worker_id for link in self.links.values()
                       if link.routing_id is not None and not link.lost}
            self._persist_requests[token] = (workers, done)
            for worker_id in list(workers):
                self.outbox.send_now(worker_id, protocol.encode(protocol.PersistNow(token)))
            if not workers:
                self._persist_answered(token, "")
        self.post(ask)
        while not done.wait(0.5):
            if self.fatal_error is not None or not self._thread.is_alive():
                raise RuntimeError("the runtime's I/O thread is not running")

    def _check_workers(self, now: float, since_last_check: float) -> None:
        if since_last_check > self.worker_timeout / 2:
            # This loop itself was held up: silence measured across the gap proves nothing.
            for link in self.links.values():
                link.last_seen = max(link.last_seen, now)
        for link in list(self.links.values()):       # _lose adds replacements
            if link.lost:
                continue
            where = f"worker {link.worker_id} on node '{link.node.name}'"
            if link.process is not None and link.process.poll() is not None:
                message = f"{where} {exit_description(link.process.returncode, _KILL_HINT)}"
                log.error(f"{message}; its log: {link.log_path}" + _tail(link.log_path))
            elif link.routing_id is not None and now - link.last_seen > self.worker_timeout:
                message = (f"{where} sent nothing for {now - link.last_seen:.1f} s (heartbeats "
                           f"every second): unreachable or hung")
                log.error(message)
            else:
                continue
            self._lose(link, message)

    def _lose(self, link: _WorkerLink, message: str) -> None:
        link.lost = True
        if link.process is not None and link.process.poll() is None:
            link.process.kill()     # a hung local worker, or the ssh session to a silent node
        if link.worker_id not in self.engine.placement.workers:
            # It never joined: account for it so the run does not wait for it forever.
            self.engine.placement.add_worker(link.slots)
        replaced = self._replace(link)
        self.apply(self.engine.worker_lost(link.worker_id, message, replaced))
        for token in list(self._persist_requests):
            self._persist_answered(token, link.worker_id)

    def _replace(self, link: _WorkerLink) -> bool:
        """Start a fresh local worker for the lost one's node (remote nodes: not yet)."""
        if not link.is_local or self.relaunch is None or self._stopping \
                or link.restarts >= self.max_restarts:
            return False
        worker_id = f"{link.worker_id.split('.')[0]}.{link.restarts + 1}"
        try:
            slots, process, log_path = self.relaunch(link.worker_id, worker_id)
        except Exception:  # noqa: BLE001 - the run goes on with the workers it has
            log.exception("could not start a worker in place of %s", link.worker_id)
            return False
        self.expect_worker(slots, process, link.node, log_path, link.restarts + 1)
        log.warning("worker %s started in place of %s", worker_id, link.worker_id)
        return True

    def _stop_lost(self, link: _WorkerLink) -> None:
        """A worker declared lost spoke again (a healed network): its state is stale."""
        if link.data_address is not None:
            link.data_address = None         # also marks the Stop as sent
            self.outbox.send_now(link.worker_id, protocol.encode(
                protocol.Stop("this worker was declared lost; its work was redone")),
                to_lost=True)

    def interrupt_application(self) -> None:
        if self.interrupt_thread is not None:
            signal.pthread_kill(self.interrupt_thread, signal.SIGINT)

    # ---- instructions that reach workers ---------------------------------------------------
    def send_task(self, instruction: Dispatch) -> None:
        self.outbox.add_task(instruction)

    def fetch(self, instruction: FetchValue) -> None:
        for location in instruction.locations:
            if location != MASTER and location in self.links:
                self.outbox.add_get(location, instruction.key)
                return

    def delete_at(self, location: str, keys: tuple) -> None:
        if location in self.links:
            self.outbox.add_delete(location, keys)

    def cancel_running(self, instruction: CancelRunning) -> None:
        self.outbox.add_cancel(instruction.worker_id, instruction.task_id)

    # ---- stopping ------------------------------------------------------------------------------
    def _begin_stop(self) -> None:
        self._stopping = True

    def _send_stop(self) -> None:
        for link in self.links.values():
            if link.routing_id is not None:
                self.outbox.send_now(link.worker_id, protocol.encode(protocol.Stop("end of run")),
                                     to_lost=True)


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as handle:
            text = handle.readlines()[-lines:]
    except OSError:
        return ""
    return ("\n" + "".join(text)) if text else ""

