"""The run's journal: an SQLite database next to the persisted outputs, in one folder.

    <folder>/journal.sqlite     runs, tasks (one row per finished or reused task; a small
                                result's whole record inline in its row), the index of
                                persisted outputs (task key -> pack, offset, length)
    <folder>/outputs/           packs and copied files (runtime.worker.persist)

    I/O thread (engine observer) ─┐  append to a deque (no I/O on the hot path)
    application thread (reused) ──┴─► sender thread: one batch every `commit_seconds` or
                                      `commit_events` rows ─► writer process (journal_writer):
                                      one transaction per batch ─► journal.sqlite (WAL)

    worker: TasksDone with inline records ─► rows written with their outputs, stored='journal'
    worker: Persisted(task ids) ─► mark_persisted ─► same batches ─► UPDATE tasks SET
                                                       stored='journal' (after the rows)

Why it can be trusted after a kill -9 at any moment: SQLite in WAL mode commits atomically, so
the next run reads the last committed transaction; a task is written as done only after its
worker reported it, with its outputs in the same row when they are small, and otherwise marked
persisted (stored='journal') only after its worker appended its outputs to a pack and said so
(workers delay those records and skip dead ones); a resumed run reuses a task only when its
row holds its outputs, or when both the persisted mark and a complete pack record exist.
(synchronous=NORMAL: durable against the death of any process; a power cut may lose the last
transactions, which only means those tasks run again.)

The same class serves the memoization cache (a shared folder): there the index of complete
pack records alone decides a hit, since a complete record proves the task finished.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque

from ..worker.persist import PackReader, pack_paths, read_inline, scan
from .journal_writer import connect, frame

log = logging.getLogger("superscalar.journal")

DATABASE = "journal.sqlite"
OUTPUTS = "outputs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY, application TEXT, arguments TEXT, started REAL, finished REAL,
    status TEXT, reused INTEGER DEFAULT 0, ran INTEGER DEFAULT 0, failed INTEGER DEFAULT 0,
    discarded INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS tasks (
    run INTEGER, task_id INTEGER, key BLOB, name TEXT, status TEXT, finished REAL,
    inputs BLOB, stored TEXT, outputs BLOB, PRIMARY KEY (run, task_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS packs (pack INTEGER PRIMARY KEY, name TEXT UNIQUE, scanned INTEGER);
CREATE TABLE IF NOT EXISTS outputs (key BLOB, pack INTEGER, offset INTEGER, length INTEGER);
"""
# Built after a bulk load (sorting once beats 10^6 random B-tree inserts), then kept.
_INDEXES = """
CREATE INDEX IF NOT EXISTS outputs_key ON outputs (key);
CREATE INDEX IF NOT EXISTS tasks_key ON tasks (key);
"""


class Journal:
    def __init__(self, folder: str, commit_seconds: float = 0.5, commit_events: int = 10_000):
        self.folder = folder
        self.outputs_dir = os.path.join(folder, OUTPUTS)
        os.makedirs(self.outputs_dir, exist_ok=True)
        self.path = os.path.join(folder, DATABASE)
        self._reader = connect(self.path)          # the application thread's lookups
        self._reader.executescript(_SCHEMA)
        _add_columns(self._reader)
        self._packs = PackReader()
        self.run: int | None = None
        self._discarded = 0
        self._writer = _Writer(self.path, commit_seconds, commit_events)

    # ---- runs ---------------------------------------------------------------------------------
    def start_run(self, application: str, arguments: list) -> int:
        cursor = self._reader.execute(
            "INSERT INTO runs (application, arguments, started, status) VALUES (?, ?, ?, ?)",
            (application, json.dumps(list(arguments)), time.time(), "running"))
        self.run = self._writer.run = cursor.lastrowid
        # Rows of runs up to the last whose outputs were discarded hold no reusable outputs
        self._discarded = self._reader.execute(
            "SELECT coalesce(max(run), 0) FROM runs WHERE discarded=1").fetchone()[0]
        self._writer.start()
        return self.run

    def finish_run(self, status: str, reused: int, ran: int, failed: int) -> None:
        self._writer.execute("UPDATE runs SET finished=?, status=?, reused=?, ran=?, failed=? "
                             "WHERE run=?", (time.time(), status, reused, ran, failed, self.run))

    # ---- tasks (any thread) ---------------------------------------------------------------------
    def record(self, task_id: int, key: bytes, name: str, status: str, inputs: bytes,
               stored: str | None, outputs: bytes | None = None) -> None:
        """`outputs`: the task's whole record, inline (small outputs), else None."""
        self._writer.add((task_id, key, name, status, time.time(), inputs, stored, outputs))

    def mark_persisted(self, task_ids: list) -> None:
        """These tasks' (already recorded) rows become reusable: their records are on disk."""
        self._writer.persisted.extend(task_ids)

    def flush(self) -> None:
        """Return once every row recorded so far is committed (compss_snapshot)."""
        self._writer.flush()

    def close(self) -> None:
        self._writer.stop()
        self._reader.close()

    # ---- persisted outputs ------------------------------------------------------------------------
    def index_outputs(self) -> int:
        """Add the complete records of every pack (from where the last scan stopped) to the
        index; returns how many were added. Packs being written by a live run are read up to
        their last complete record. Called before a run looks anything up."""
        added = 0
        for path in pack_paths(self.outputs_dir):
            name = os.path.basename(path)
            with self._reader:      # one writer at a time: programs may share a cache
                self._reader.execute("BEGIN IMMEDIATE")
                row = self._reader.execute("SELECT pack, scanned FROM packs WHERE name=?",
                                           (name,)).fetchone()
                records, end = scan(path, row[1] if row else 0)
                if row is None:
                    row = (self._reader.execute("INSERT INTO packs (name, scanned) VALUES (?, ?)",
                                                (name, end)).lastrowid, end)
                else:
                    self._reader.execute("UPDATE packs SET scanned=? WHERE pack=?", (end, row[0]))
                self._reader.executemany(
                    "INSERT INTO outputs (key, pack, offset, length) VALUES (?, ?, ?, ?)",
                    [(key, row[0], offset, length) for key, offset, length in records])
            added += len(records)
        self._reader.executescript(_INDEXES)
        return added

    def lookup(self, key: bytes, require_done: bool) -> tuple | None:
        """Where the task's outputs are persisted; with `require_done`, only if the journal
        also records the task as finished with its record reported written, or as reused
        (a resumed run), else a complete record suffices (the cache)."""
        if require_done:
            row = self._reader.execute(     # an earlier run's (as for packs, indexed once),
                "SELECT outputs FROM tasks WHERE key=? AND outputs IS NOT NULL AND run<? "
                "AND run>? LIMIT 1", (key, self.run, self._discarded)).fetchone()
            if row is not None:
                return (row[0],)            # inline in the row (read_outputs knows the form)
            return self._reader.execute(
                "SELECT name, offset, length FROM outputs JOIN packs USING (pack) WHERE key=? "
                "AND EXISTS (SELECT 1 FROM tasks WHERE tasks.key=? AND (stored='journal' OR "
                "status='reused')) LIMIT 1", (key, key)).fetchone()
        return self._reader.execute("SELECT name, offset, length FROM outputs JOIN packs "
                                    "USING (pack) WHERE key=? LIMIT 1", (key,)).fetchone()

    def read_outputs(self, location: tuple) -> list:
        if len(location) == 1:
            return read_inline(location[0])
        pack, offset, length = location
        return self._packs.read(self.outputs_dir, pack, offset, length)

    def discard_outputs(self) -> None:
        """A run that finished has nothing left to resume: free the disk, keep the history."""
        self._writer.execute("DELETE FROM outputs", ())
        # Inline outputs stay in their rows (clearing them would free no disk without a
        # VACUUM); the mark makes them, like the packs, never reused again.
        self._writer.execute("UPDATE runs SET discarded=1 WHERE run=?", (self.run,))
        self._writer.execute("DELETE FROM packs", ())
        self._writer.flush()
        shutil.rmtree(self.outputs_dir, ignore_errors=True)


class _Writer:
    """Feeds the writer process (journal_writer.py): rows and statements queued by any thread
    leave in one batch every `commit_seconds`, or as soon as `commit_events` rows wait."""

    def __init__(self, path: str, commit_seconds: float, commit_events: int):
        self._path = path
        self._seconds = commit_seconds
        self._events = commit_events
        self._rows: deque = deque()
        self.persisted: deque = deque()         # task ids whose rows get stored='journal'
        self.run: int | None = None
        self._statements: deque = deque()      # (sql, parameters) or (None, flush event)
        self._wake = threading.Event()
        self._stopping = False
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="superscalar-journal",
                                        daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-S", "-I", "-c", _WRITER_BOOT, _PACKAGE_ROOT, self._path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._thread.start()

    def add(self, row: tuple) -> None:
        if self.error is not None:
            return                      # the journal stopped (logged once); the run goes on
        self._rows.append(row)
        if len(self._rows) >= self._events:
            self._wake.set()

    def execute(self, sql: str, parameters: tuple) -> None:
        self._statements.append((sql, parameters))

    def flush(self) -> None:
        if not self._thread.is_alive():
            return
        done = threading.Event()
        self._statements.append((None, done))
        self._wake.set()
        while not done.wait(0.5):
            if not self._thread.is_alive():
                return

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        process = self._process
        try:
            while True:
                self._wake.wait(self._seconds)
                self._wake.clear()
                stopping = self._stopping
                self._send(process)
                if stopping:
                    break
        except BaseException as error:  # noqa: BLE001 - a journal failure must not stop the run
            self.error = error
            log.error("the journal %s stopped recording (%s); the run goes on without it",
                      self._path, error)
        finally:
            _close_writer(process, self._path)

    def _send(self, process: subprocess.Popen) -> None:
        # Marks first: a task's row is queued before its mark, so every mark drained here
        # has its row in this batch or an earlier one (the writer applies rows first).
        persisted = _drain(self.persisted)
        rows, statements = _drain(self._rows), _drain(self._statements)
        if not rows and not statements and not persisted:
            return
        batch, flushes = [], []
        for sql, parameters in statements:
            if sql is None:
                flushes.append(parameters)
            else:
                batch.append((sql, parameters))
        process.stdin.write(frame(["batch", rows, batch, self.run, persisted]))
        if flushes:
            process.stdin.write(frame(["flush", 0]))
        process.stdin.flush()
        if flushes:
            if not process.stdout.readline():
                raise OSError(f"the journal writer exited (code {process.wait()})")
            for event in flushes:
                event.set()


# The writer process imports only the standard library and its own module (the package's own
# __init__ files are empty), so it starts without site-packages (see journal_writer).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_WRITER_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from runtime.master.journal_writer import main; sys.exit(main(sys.argv[2:]))")


def _close_writer(process: subprocess.Popen, path: str) -> None:
    try:
        process.stdin.close()
    except OSError:
        pass
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code:
        log.error("the journal writer for %s exited with code %s", path, code)


def _add_columns(connection: sqlite3.Connection) -> None:
    """A journal written before rows held inline outputs gains their columns (--resume)."""
    for table, column, kind in (("tasks", "outputs", "BLOB"),
                                ("runs", "discarded", "INTEGER DEFAULT 0")):
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        if column not in columns:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _drain(queue: deque) -> list:
    """Take what is queued now; other threads keep appending safely meanwhile."""
    return [queue.popleft() for _ in range(len(queue))]


# ---- finding the journal of an earlier run ----------------------------------------------------

def journal_folder(log_dir: str) -> str:
    return os.path.join(log_dir, "journal")


def last_run(folder: str) -> dict | None:
    """The newest run recorded in the journal at `folder`, or None (no journal there)."""
    path = os.path.join(folder, DATABASE)
    if not os.path.isfile(path):
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = connection.execute("SELECT run, application, arguments, started, status "
                                     "FROM runs ORDER BY run DESC LIMIT 1").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    return {"run": row[0], "application": row[1], "arguments": json.loads(row[2] or "[]"),
            "started": row[3], "status": row[4]}


def find_resumable(base: str, application: str, arguments: list) -> str | None:
    """The log folder, among ~/.COMPSs/<app>_NN, of the newest run of this same command."""
    prefix = os.path.basename(application) + "_"
    try:
        candidates = [os.path.join(base, n) for n in os.listdir(base) if n.startswith(prefix)]
    except FileNotFoundError:
        return None
    best, best_started = None, -1.0
    for log_dir in candidates:
        run = last_run(journal_folder(log_dir))
        if run and run["application"] == application and run["arguments"] == list(arguments) \
                and run["started"] > best_started:
            best, best_started = log_dir, run["started"]
    return best
