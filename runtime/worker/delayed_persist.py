"""Which finished tasks' outputs a worker appends to the journal's packs, and when (small
journal records skip all of this: they travel inline in TasksDone, see done_report.py).

    DoneReport.flush ─► PersistQueue.add ─┬─ cache record, file outputs, delay 0 ─► immediate
      (after TasksDone)                   └─ journal record ─► waiting (up to `delay` seconds)
    DeleteData(keys) ─► deleted(): a waiting record whose outputs are all dead is dropped
    GetValues(keys)  ─► fetched(): the application read it, the record is kept regardless
    same loop turn   ─► take_immediate() ... take_due() (once the oldest record is
                        `BATCH_SECONDS` overdue: one batch)
                        ─► persist.append_results ─► Persisted(task ids) to the master

Why delay: in data-heavy programs most outputs are intermediates a successor consumes within
milliseconds, after which the master deletes them; appending them to a pack doubled the bytes
the worker moved. Waiting `delay` seconds skips exactly those records: a version the master
deleted can never be read again, so a resumed run has no use for it (the task that consumed it
is either persisted itself or runs again, producers included, since every task is keyed).
A value the application fetched (compss_wait_on) is what a resumed run wants back, so a
GetValues marks its record as kept even when the master then deletes the worker's copy.
Records are written in finish order; the master marks a task persisted in the journal only
when it hears `Persisted`, so the journal never claims a record that is not on disk.
Why batches: taking records as soon as each is due meant, at thousands of tasks a second, one
writev and one Persisted message (a wake-up of the master's I/O thread) per loop turn, often
per task; waiting until the oldest is BATCH_SECONDS overdue writes a few hundred at once.
"""
from __future__ import annotations

import os
from collections import deque

from .persist import append_results

PERSIST_DELAY_ENV = "SUPERSCALAR_PERSIST_DELAY"
DEFAULT_PERSIST_DELAY = 1.0
BATCH_SECONDS = 0.2     # delayed records wait between `delay` and `delay` + this


def persist_delay_from_environment() -> float:
    text = os.environ.get(PERSIST_DELAY_ENV, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_PERSIST_DELAY
    except ValueError:
        return DEFAULT_PERSIST_DELAY


class PendingRecord:
    """One finished task's outputs, as persist.append_results takes them. `reported`: journal
    records are reported to the master (Persisted); cache records need not be, a complete
    record alone makes a cache hit. `frames` None: dropped (every output died first)."""

    __slots__ = ("task_id", "persist", "described", "frames", "due", "live", "kept",
                 "reported")

    def __init__(self, task_id: int, persist: list, described: list, frames: list, due: float):
        self.task_id = task_id
        self.persist = persist
        self.described = described
        self.frames = frames
        self.due = due
        self.live = len(described)      # outputs the master has not deleted yet
        self.kept = False               # fetched by the application: written even if dead
        self.reported = len(persist) > 3 and bool(persist[3])

    @property
    def dropped(self) -> bool:
        return self.frames is None

    def as_result(self) -> tuple:
        return self.persist, self.described, self.frames


class PersistQueue:
    def __init__(self, delay: float):
        self.delay = delay
        self._immediate: list[PendingRecord] = []
        self._waiting: deque[PendingRecord] = deque()     # in finish order, so in due order
        self._by_key: dict[str, PendingRecord] = {}       # output key -> its waiting record
        self.skipped = 0                                  # records dropped: all outputs dead

    def __len__(self) -> int:
        return len(self._immediate) + len(self._waiting)

    def add(self, task_id: int, persist: list, described: list, frames: list,
            now: float) -> None:
        record = PendingRecord(task_id, persist, described, frames, now + self.delay)
        # Files are hard-linked at once: the worker deletes its copy with the version.
        if self.delay <= 0 or not record.reported or not _objects_only(described):
            self._immediate.append(record)
            return
        self._waiting.append(record)
        by_key = self._by_key
        for output in described:
            by_key[output[0]] = record

    def add_outputs(self, task_id: int, persist: list, outputs: list, store, now: float) -> None:
        """add() for an ExecResult's outputs, their frames read from the worker's store
        (shared-memory outputs included)."""
        described, data = [], []
        for key, _, _, kind, path, nbytes in outputs:
            stored = store.get(key)
            frames = stored.object_frames() if stored is not None and kind == "obj" else []
            described.append([key, len(data), len(frames), kind, path, nbytes])
            data.extend(frames)
        self.add(task_id, persist, described, data, now)

    @staticmethod
    def write(records: list) -> list[int]:
        """Append the records to the packs; the ids of the written ones to report Persisted."""
        if not records:
            return []
        written = append_results([record.as_result() for record in records])
        return [record.task_id for record, ok in zip(records, written) if ok and record.reported]

    def deleted(self, keys) -> None:
        """The master deleted these versions: no task and no fetch will ever read them."""
        by_key = self._by_key
        if not by_key:
            return
        for key in keys:
            record = by_key.pop(key, None)
            if record is None:
                continue
            record.live -= 1
            if record.live == 0 and not record.kept:
                record.frames = None        # its memory goes now; skipped when due
                self.skipped += 1

    def fetched(self, keys) -> None:
        by_key = self._by_key
        if not by_key:
            return
        for key in keys:
            record = by_key.get(key)
            if record is not None:
                record.kept = True

    def take_immediate(self) -> list[PendingRecord]:
        """Records to write before this turn's TasksDone (a reported task is persisted)."""
        taken, self._immediate = self._immediate, []
        return taken

    def take_due(self, now: float, everything: bool = False) -> list[PendingRecord]:
        """Waiting records whose delay is over (all of them with `everything`: a snapshot or
        the end of the run), dropped ones left out."""
        waiting, by_key = self._waiting, self._by_key
        taken = self.take_immediate() if everything else []
        while waiting and (everything or waiting[0].due <= now):
            record = waiting.popleft()
            if record.frames is None:       # dropped
                continue
            for output in record.described:
                if by_key.get(output[0]) is record:
                    del by_key[output[0]]
            taken.append(record)
        return taken

    def batch_due(self, now: float) -> bool:
        """Whether the delayed records are worth a write now (see BATCH_SECONDS)."""
        waiting = self._waiting
        return bool(waiting) and waiting[0].due + BATCH_SECONDS <= now

    def next_due(self) -> float | None:
        return self._waiting[0].due if self._waiting else None


def _objects_only(described: list) -> bool:
    for output in described:
        if output[3] != "obj":
            return False
    return True
