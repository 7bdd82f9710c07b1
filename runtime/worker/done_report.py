"""What a worker tells the master about finished tasks, once per loop turn, and the journal
records of their outputs.

    ExecResult ─► DoneReport.add ─┬─ [task id, sizes, seconds] ──────────► TasksDone (turn end)
                                  ├─ small journal record (inline_record, made at the turn's
                                  │    end, after the tasks this one unblocked started) ─► the
                                  │    same TasksDone, [start, end) of its one frame; the
                                  │    master stores it in the task's journal row
                                  └─ other records ─► PersistQueue (delayed_persist): packs,
                                       then Persisted(task ids) once written
    PersistNow(token) ─► every delayed record written, then Persisted(..., token)

Why one report per turn: at thousands of tasks a second, a message per task would cost the
master a wake-up each. Why inline records: a tiny result costs less to carry to the master
than to track, delay, append to a pack and report on its own, and its row and outputs then
commit together. The report goes out before the turn's records are queued and written, so
that persistence stays off the path of the next task in a chain; no DeleteData can reach
those versions before the next turn.
"""
from __future__ import annotations

import time

from ..transport import protocol
from .delayed_persist import PersistQueue
from .persist import inline_record


class DoneReport:
    def __init__(self, persist_delay: float):
        self.persists = PersistQueue(persist_delay)
        self._done: list = []               # [task id, [[key, nbytes]], seconds(, start, end)]
        self._finished: list = []           # (done entry, persist, outputs, frames, shared)
        self._outputs: list = []            # (task id, persist, outputs) to queue after the report
        self._records: list = []            # inline records, joined into one frame
        self._records_size = 0
        self._tokens: list[int] = []        # PersistNow requests answered this turn

    def add(self, task_id: int, sizes: list, seconds: float, persist: list | None,
            outputs: list, frames: list, shared: bool) -> None:
        """A task finished: `outputs` as in its ExecResult (objects' bytes in `frames`),
        `persist` its entry's, `shared` whether an output came in shared memory. Its record
        is made at the end of the turn: a task that waits for this one starts first."""
        done = [task_id, sizes, seconds]
        self._done.append(done)
        if persist is not None:
            self._finished.append((done, persist, outputs, frames, shared))

    def _take_records(self) -> None:
        """Small journal records into this turn's TasksDone; the others queued for packs."""
        finished, self._finished = self._finished, []
        for done, persist, outputs, frames, shared in finished:
            record = None if shared else inline_record(persist, outputs, frames)
            if record is None:
                self._outputs.append((done[0], persist, outputs))
                continue
            start = self._records_size
            self._records_size += len(record)
            done += (start, self._records_size)
            self._records.append(record)

    def fetched(self, keys) -> None:
        self.persists.fetched(keys)

    def deleted(self, keys) -> None:
        self.persists.deleted(keys)

    def persist_now(self, token: int) -> None:
        self._tokens.append(token)

    def flush(self, control, store) -> None:
        """End of a loop turn: report finished tasks, then queue their outputs for persistence
        and write what is due (records that are not delayed at once, in this same turn)."""
        persists = self.persists
        persisted: list = []
        if self._done:
            if self._finished:
                self._take_records()
            done, self._done = self._done, []
            records = [b"".join(self._records)] if self._records else []
            self._records, self._records_size = [], 0
            control.send_multipart(protocol.encode(protocol.TasksDone(done), records))
        now = time.monotonic()
        if self._outputs:
            outputs, self._outputs = self._outputs, []
            for task_id, persist, described in outputs:
                persists.add_outputs(task_id, persist, described, store, now)
            persisted += persists.write(persists.take_immediate())
        tokens = self._tokens
        if tokens or persists.batch_due(now):
            persisted += persists.write(persists.take_due(now, bool(tokens)))
        if persisted or tokens:
            self._tokens = []               # the ids go first: an answer covers them
            control.send_multipart(protocol.encode(
                protocol.Persisted(persisted, tokens[0] if tokens else 0)))
            for token in tokens[1:]:
                control.send_multipart(protocol.encode(protocol.Persisted([], token)))
