"""Reusing finished work: resume after the master died (--resume, --checkpoint*) and
memoization (--cache, @task(cache=True)), both decided at submit time from content keys.

    Session.submit(call) ─► TaskReuse.before_submit(call)       (application thread)
        key = task_key(function identity, arguments, identities of what it reads)
        journal says done + pack record │ cache has a record  ─► outputs become master values
                                        │                        (futures resolve, successors
                                        │                         read them), the task never runs
        otherwise ─► entry["persist"] = [outputs folder, key, writes, journal?]: the worker
                     that runs it sends a small journal record inline with its report
                     (backend.inline_records, until the observer writes it into the task's
                     row), or appends its outputs to a pack (journal records after a delay,
                     and only if still live: runtime/worker/delayed_persist.py); the engine
                     observer journals its end, and Persisted(task ids) from the worker marks
                     a pack record reusable (tasks.stored = 'journal').

The engine never sees a reused task, so the resumed run's graph holds only the tasks that run.
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass

from ..core.states import TaskState
from .calls import MasterValue
from .identity import (DEFAULT_FUNCTIONS, digest, frames_identity, function_hasher,
                       output_identity, path_identity, task_key)
from .journal import DATABASE, OUTPUTS, Journal

log = logging.getLogger("superscalar.reuse")

CACHE_ENV = "SUPERSCALAR_CACHE_DIR"
_DONE, _FAILED, _CANCELLED = TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED
_STATUS = {_DONE: "done", _FAILED: "failed", _CANCELLED: "cancelled"}


class JournalError(RuntimeError):
    """The journal cannot be opened or written at all; the message names its folder."""


def default_cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".COMPSs", "cache")


@dataclass(slots=True)
class ReuseOptions:
    journal_dir: str | None = None      # None: no journal (sequential mode)
    resume: bool = False                # reuse what the journal at journal_dir says is done
    keep_outputs: bool = False          # keep persisted outputs after a successful run
    cache_dir: str | None = None        # the memoization cache (default: default_cache_dir())
    cache_all: bool = False             # --cache: every task; otherwise @task(cache=True) only
    commit_seconds: float = 0.5         # journal transactions: at most this far apart...
    commit_events: int = 10_000         # ...or this many rows
    avoid: frozenset = frozenset()      # task names never persisted (avoid.checkpoint)
    application: str = ""
    arguments: tuple = ()


class TaskReuse:
    def __init__(self, options: ReuseOptions, session):
        self.options = options
        self._session = session
        self._function_hashers: dict[int, object] = {}   # function id -> seeded key hasher
        # version key -> identity; dropped when the application releases the version or a
        # newer version of the same datum is written (no new task can read it any more)
        self._identities: dict[str, bytes] = {}
        self._avoid = _name_forms(options.avoid)
        self._cache_all, self._resume = options.cache_all, options.resume
        self._cache: Journal | None = None
        self._cache_failed = False
        self.journal: Journal | None = None
        self.exit_code = 0                   # the application's, set by runcompss
        self.reused = self.cache_hits = self.cache_misses = 0
        self.ran = self.failed = self.cancelled = 0          # counted by the engine observer
        # task id -> inline record, until the observer puts it in the task's row (the
        # backend clears what a TasksDone left: a late reply for a task cancelled meanwhile)
        self._records: dict[int, bytes] = session.backend.inline_records
        if options.journal_dir:
            self.journal = self._open_journal()

    def _open_journal(self) -> Journal:
        folder = self.options.journal_dir
        try:
            if not self.options.resume:
                _remove_store(folder)            # a fresh run starts a fresh journal
            journal = Journal(folder, self.options.commit_seconds, self.options.commit_events)
            if self.options.resume:
                indexed = journal.index_outputs()
                log.info("resuming from %s: %d more persisted task records indexed", folder,
                         indexed)
            journal.start_run(self.options.application, self.options.arguments)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"cannot use the journal in {folder}: {error}; run without "
                               f"--resume to start a new one, or with --no_journal") from None
        return journal

    # ---- submit (application thread) ---------------------------------------------------------
    def before_submit(self, call) -> bool:
        """Key the task; True if its outputs were reused and it must not run."""
        reads = call.reads
        inputs = []
        if reads:
            identities = self._identities
            for key in reads:                  # a loop: comprehensions are calls in 3.11
                inputs.append(identities.get(key) or self._read_identity(key))
        try:
            hasher = self._function_hashers.get(call.function_id) or \
                self._function_hasher(call.function_id)
            key = task_key(call, hasher, inputs)
        except Exception as error:   # never a wrong hit: an unkeyable task simply runs
            log.warning("task %s (%s) cannot be keyed, it always runs: %s", call.name,
                        call.call_site, error)
            key = digest(b"unkeyable", os.urandom(16))
        writes = call.writes
        identities = self._identities
        for index, write in enumerate(writes):
            identities[write] = output_identity(key, index)
            if not write.endswith("v1"):
                self._forget_previous(write)
        input_bytes = b"".join(inputs) if inputs else b""
        stored = None
        if self._cache_all or self._resume or "cache" in call.entry:   # else nothing to find
            wants_cache = (self._cache_all or "cache" in call.entry) and \
                self._cache_store() is not None
            found = self._find(key, wants_cache) if wants_cache or self._resume else None
            if found is not None and self._load(call, *found):
                self.reused += 1
                if found[0] is self._cache:
                    self.cache_hits += 1
                if self.journal is not None:
                    self.journal.record(call.task_id, key, call.name, "reused", input_bytes,
                                        None)
                return True
            if wants_cache:
                stored = "cache"
                self.cache_misses += 1
        if stored is None and self.journal is not None and call.name not in self._avoid:
            stored = "journal"
        if stored is not None:
            store = self._cache if stored == "cache" else self.journal
            call.entry["persist"] = [store.outputs_dir, key, writes, stored == "journal"]
        call.identity = (key, input_bytes, stored)
        return False

    def _find(self, key: bytes, wants_cache: bool):
        try:
            return self._look_up(key, wants_cache)
        except sqlite3.Error as error:       # a damaged index: the task runs, the user hears
            log.warning("journal lookup failed, the task runs: %s", error)
            return None

    def _look_up(self, key: bytes, wants_cache: bool):
        if self.options.resume and self.journal is not None:
            location = self.journal.lookup(key, require_done=True)
            if location is not None:
                return self.journal, location
        if wants_cache:
            cache = self._cache_store()
            location = cache.lookup(key, require_done=False)
            if location is not None:
                return cache, location
        return None

    def _load(self, call, store: Journal, location: tuple) -> bool:
        """The persisted outputs become the application's values for the task's writes."""
        try:
            outputs = store.read_outputs(location)
        except (OSError, ValueError) as error:
            log.warning("persisted outputs of task %s unreadable, it runs again: %s",
                        call.name, error)
            return False
        if len(outputs) != len(call.writes) or any(
                path is not None and not os.path.exists(path) for _, _, path, _ in outputs):
            return False
        for write, (kind, frames, path, nbytes) in zip(call.writes, outputs):
            self._session.add_master_value(write, MasterValue(kind, frames, path), nbytes)
        return True

    def _function_hasher(self, function_id: int):
        hasher = self._function_hashers.get(function_id)
        if hasher is None:
            # The session registered the callable under this id (Session.function_id).
            function = next(f for f, i in self._session._function_ids.values()
                            if i == function_id)
            hasher = self._function_hashers[function_id] = function_hasher(
                DEFAULT_FUNCTIONS.of(function))
        return hasher

    def _read_identity(self, key: str) -> bytes:
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identities[key] = self._value_identity(key)
        return identity

    def _value_identity(self, key: str) -> bytes:
        """A version no task produced: a value or file the application handed over."""
        value = self._session.backend.store.get(key)
        try:
            if value is not None and value.path is not None:
                return path_identity(value.kind, value.path)
            if value is not None and value.frames is not None:
                return frames_identity(value.frames)
        except OSError as error:
            log.warning("cannot read %s to key the tasks that use it: %s", value.path, error)
        return digest(b"unknown", os.urandom(16))      # unknown: never matches anything

    def _forget_previous(self, write: str) -> None:
        datum, _, version = write.rpartition("v")
        self._identities.pop(f"{datum}v{int(version) - 1}", None)

    def forget(self, keys: list) -> None:
        """The application released these versions (Session._flush_releases)."""
        identities = self._identities
        for key in keys:
            identities.pop(key, None)

    def _cache_store(self) -> Journal | None:
        """Opened at the first task that may be memoized; None (tasks simply run) if the
        cache's folder cannot be used."""
        if self._cache is None and not self._cache_failed:
            folder = self.options.cache_dir or default_cache_dir()
            try:
                self._cache = Journal(folder)
                indexed = self._cache.index_outputs()
            except (OSError, sqlite3.Error) as error:
                self._cache_failed = True
                log.warning("the memoization cache %s cannot be used, tasks run: %s", folder,
                            error)
                return None
            log.info("memoization cache %s: %d new records indexed", folder, indexed)
        return self._cache

    # ---- the engine observer (I/O thread) --------------------------------------------------------
    def observe(self, task, old, new, cause) -> None:
        """Subscribed to the ends of tasks only (DONE, FAILED, CANCELLED)."""
        if new is _DONE:
            self.ran += 1
        elif new is _FAILED:
            self.failed += 1
        else:
            self.cancelled += 1
        record = self._records.pop(task.task_id, None) if self._records else None
        identity = getattr(task.payload, "identity", None)   # None too once kept as lineage
        if identity is None:
            return
        key, inputs, stored = identity
        if new is not _DONE:
            stored = None
        elif record is not None:
            stored = "journal"                  # the row holds its outputs: reusable
        elif stored == "journal":
            stored = None                       # until its worker reports it written
        self.journal.record(task.task_id, key, task.name, _STATUS[new], inputs, stored, record)

    def persisted(self, task_ids: list) -> None:
        """Workers wrote these tasks' journal records (I/O thread, backend.on_persisted)."""
        self.journal.mark_persisted(task_ids)

    # ---- snapshot and end --------------------------------------------------------------------------
    def snapshot(self) -> None:
        """compss_snapshot(): every task reported finished so far whose outputs are still
        live or were fetched is persisted and committed to the journal as reusable."""
        if self.journal is None:
            return
        backend = self._session.backend
        backend.call(lambda: None)        # results already received are applied
        backend.persist_pending()         # workers write delayed records, then answer
        self.journal.flush()

    def before_stop(self, failed_tasks: int) -> None:
        """A run whose outputs are kept (it failed, or keep_outputs) persists the records its
        workers still delay, so that a resumed run reuses them."""
        if self.journal is None or (failed_tasks == 0 and self.exit_code == 0
                                    and not self.options.keep_outputs):
            return
        try:
            self._session.backend.persist_pending()
        except Exception as error:  # noqa: BLE001 - the run is ending; those tasks run again
            log.warning("could not persist the last task outputs before stopping: %s", error)

    def close(self, failed_tasks: int) -> None:
        for line in self.summary():
            log.info(line.replace("[superscalar] ", ""))
        if self.journal is not None:
            succeeded = failed_tasks == 0 and self.exit_code == 0
            self.journal.finish_run("succeeded" if succeeded else "failed", self.reused,
                                    self.ran, self.failed)
            if succeeded and not self.options.keep_outputs:
                self.journal.discard_outputs()
            self.journal.close()
        if self._cache is not None:
            self._cache.close()

    def summary(self) -> list[str]:
        lines = []
        if self.journal is not None and self.options.resume:
            lines.append(f"[superscalar] resumed: {self.reused - self.cache_hits} tasks reused, "
                         f"{self.ran} run" + (f", {self.failed} failed" if self.failed else ""))
        if self.cache_hits or self.cache_misses:
            lines.append(f"[superscalar] cache: {self.cache_hits} hits, {self.cache_misses} "
                         f"misses ({self._cache.folder})")
        return lines


def _name_forms(names) -> frozenset:
    """'module.task' also matches the qualified name 'task' the runtime knows tasks by."""
    forms = set()
    for name in names:
        parts = name.split(".")
        forms.update(".".join(parts[index:]) for index in range(len(parts)))
    return frozenset(forms)


def _remove_store(folder: str) -> None:
    for name in (DATABASE, DATABASE + "-wal", DATABASE + "-shm"):
        try:
            os.unlink(os.path.join(folder, name))
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(folder, OUTPUTS), ignore_errors=True)


def start_reuse(session, options: ReuseOptions | None, distributed: bool):
    """runcompss passes options (None: --no_journal); `python app.py` keys its tasks too, so
    @task(cache=True) works in sequential mode."""
    if options is None:
        if distributed:
            return None
        options = ReuseOptions()
    try:
        reuse = TaskReuse(options, session)
    except JournalError:
        session.backend.stop()          # workers were started already: stop them cleanly
        raise
    if reuse.journal is not None:
        session.backend.on_persisted = reuse.persisted
        session.backend.call(session.backend.engine.subscribe, reuse.observe, tuple(_STATUS))
    return reuse
