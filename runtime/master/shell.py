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
                            QuiescenceReached, ValueAtMaster, ValueFailed)
from .calls import MasterStore


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
        }

    def apply(self, instructions: list) -> None:
        for instruction in instructions:
            self._handlers[type(instruction)](instruction)

    # ---- backend-specific -----------------------------------------------------------------
    def send_task(self, instruction: Dispatch) -> None:
        raise NotImplementedError

    def fetch(self, instruction: FetchValue) -> None:
        raise NotImplementedError

    def delete_at(self, location: str, keys: tuple) -> None:
        raise NotImplementedError

    def cancel_running(self, instruction: CancelRunning) -> None:
        raise NotImplementedError

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

    @staticmethod
    def _quiescent(instruction: QuiescenceReached) -> None:
        for waiter in instruction.waiters:
            waiter.done()
