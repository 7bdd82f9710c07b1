"""The part of the master's I/O shell both backends share: carrying out engine instructions
that do not touch a worker, and the waiters application threads block on.

The distributed backend (zmq_backend) and the sequential one (inline) differ only in how a task
is run and how a value is brought back; everything else, including versioning and the engine,
is the same code, which is what makes the sequential run a trustworthy reference.
"""
from __future__ import annotations

import threading

from ..core.engine import Engine
from ..core.records import (MASTER, CancelRunning, DeleteVersions, Dispatch, FetchValue,
                            QuiescenceReached, StopApplication, UseDefaults, ValueAtMaster,
                            ValueFailed)
from .calls import MasterStore, default_value


class ApplicationStopped(SystemExit):
    """A task failed under on_failure='FAIL': the application ends here, exit code 1. A
    SystemExit, so `except Exception` in the application does not keep it running."""


def stop_message(failure) -> str:
    return (f"[superscalar] task '{failure.task_name}' failed and its on_failure policy is "
            f"FAIL: the application was stopped ({failure.message})")


class Waiter:
    """An application thread blocked until some keys are available (or failed)."""

    __slots__ = ("pending", "values", "failures", "event")

    def __init__(self, keys=()):
        self.pending = set(keys)
        self.values: dict = {}
        self.failures: dict = {}
        self.event = threading.Event()
        if not self.pending:
            self.event.set()

    def deliver(self, key: str, value) -> None:
        self.values[key] = value
        self._settle(key)

    def fail(self, key: str, failure) -> None:
        self.failures[key] = failure
        self._settle(key)

    def _settle(self, key: str) -> None:
        self.pending.discard(key)
        if not self.pending:
            self.event.set()

    def done(self) -> None:
        self.event.set()


class Shell:
    def __init__(self) -> None:
        self.engine = Engine()
        self.store = MasterStore()
        self._handlers = {
            Dispatch: self.send_task,
            DeleteVersions: self._delete,
            FetchValue: self.fetch,
            ValueAtMaster: self._value_at_master,
            ValueFailed: self._value_failed,
            CancelRunning: self.cancel_running,
            QuiescenceReached: self._quiescent,
            UseDefaults: self._use_defaults,
            StopApplication: self._stop_application,
        }
        self.stop_failure = None         # set once a FAIL policy stopped the application
        # Called (I/O thread) with task ids whose journal records are now complete in a pack
        # (runtime.master.reuse); None when the run keeps no journal
        self.on_persisted = None
        # task id -> the small journal record its worker sent inline with its report
        # (runtime.worker.persist.inline_record), until the journal's observer takes it when
        # the task is marked done, in the same TasksDone; only journaled tasks have one
        self.inline_records: dict[int, bytes] = {}

    def apply(self, instructions: list) -> None:
        for instruction in instructions:
            self._handlers[type(instruction)](instruction)

    # ---- backend-specific -----------------------------------------------------------------
    def persist_pending(self) -> None:
        """Return once every journal record of a task finished so far is written and
        reported through on_persisted (workers delay them; this backend writes at once)."""

    def send_task(self, instruction: Dispatch) -> None:
        raise NotImplementedError

    def fetch(self, instruction: FetchValue) -> None:
        raise NotImplementedError

    def delete_at(self, location: str, keys: tuple) -> None:
        raise NotImplementedError

    def cancel_running(self, instruction: CancelRunning) -> None:
        raise NotImplementedError

    def interrupt_application(self) -> None:
        """Make the application thread raise ApplicationStopped as soon as possible."""
        raise NotImplementedError

    def raise_if_stopped(self) -> None:
        if self.stop_failure is not None:
            raise ApplicationStopped(stop_message(self.stop_failure))

    # ---- shared -------------------------------------------------------------------------------
    def _delete(self, instruction: DeleteVersions) -> None:
        if instruction.location == MASTER:
            for key in instruction.keys:
                self.store.drop(key)
        else:
            self.delete_at(instruction.location, instruction.keys)

    def _value_at_master(self, instruction: ValueAtMaster) -> None:
        value = self.store.get(instruction.key)
        for waiter in instruction.waiters:
            waiter.deliver(instruction.key, value)

    def _value_failed(self, instruction: ValueFailed) -> None:
        for waiter in instruction.waiters:
            waiter.fail(instruction.key, instruction.failure)

    def _use_defaults(self, instruction: UseDefaults) -> None:
        call = instruction.payload             # a running task's: never in its kept form
        defaults = getattr(call, "failure_defaults", None) or {}
        kinds = getattr(call, "kinds", None) or {}
        for key in instruction.keys:
            value = defaults.get(key)
            self.store.put(key, value if value is not None else
                           default_value(kinds.get(key, "obj")))

    def _stop_application(self, instruction: StopApplication) -> None:
        if self.stop_failure is None:
            self.stop_failure = instruction.failure
            self.interrupt_application()

    @staticmethod
    def _quiescent(instruction: QuiescenceReached) -> None:
        for waiter in instruction.waiters:
            waiter.done()
