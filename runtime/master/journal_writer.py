"""The journal's writer: a process of its own that owns the only writing SQLite connection.

    master (any thread) ─► rows in a deque ─► sender thread: one marshal batch per
                           `commit_seconds` or `commit_events` rows ─► pipe ─► this process:
                           one transaction per batch ─► journal.sqlite (WAL)

Why a process: binding 10^4 rows a second to SQLite holds the GIL, and the master's
application and I/O threads already compete for it; measured in-process, the writer added
~20% to a no-op workload's master time. Packing a batch is one C call, so the master's share
is now a few microseconds per task. Safety after a kill -9 of the master: the pipe closes,
this process commits what it received and exits; only rows still in the master's deque are
lost, and those tasks simply run again on resume. The process starts isolated and without
site-packages (python -S -I) and imports only the standard library: its start-up was ~90 ms
of CPU, a measurable share of a short run.

Wire (marshal: both ends are the same interpreter, and this pipe carries only the master's own
rows): u32 length + marshal [op, ...]: "batch" [[row without run], ...] [[sql, params], ...] run
[task id, ...] (one transaction: rows, statements, then those tasks of the run marked
persisted) | "flush" token (answered on stdout with the token: all before it is committed).
"""
from __future__ import annotations

import marshal
import sqlite3
import struct
import sys

LENGTH = struct.Struct("<I")
TASK_COLUMNS = 9
# One multi-row INSERT per chunk: parameters bound in C, SQLite works once per chunk.
_ROWS_PER_STATEMENT = 500 if sqlite3.sqlite_version_info >= (3, 32) else 100   # variables cap
_IDS_PER_STATEMENT = 2048 if _ROWS_PER_STATEMENT == 500 else 512      # a power of two


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                 timeout=60)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def frame(message: list) -> bytes:
    payload = marshal.dumps(message)
    return LENGTH.pack(len(payload)) + payload


_insert_statements: dict[tuple, str] = {}


def insert_tasks(connection: sqlite3.Connection, run: int, rows: list) -> None:
    """`rows` without their run, the batch's own: written into the statement, one value
    fewer to bind per row."""
    run = int(run)
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        sql = _insert_statements.get((run, len(chunk)))
        if sql is None:
            values = f"({run}," + ",".join("?" * (TASK_COLUMNS - 1)) + ")"
            sql = _insert_statements[run, len(chunk)] = \
                "INSERT OR REPLACE INTO tasks VALUES " + ",".join([values] * len(chunk))
        connection.execute(sql, [value for row in chunk for value in row])


def _read_exactly(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(path: str, source, answers) -> None:
    """Apply batches until end of input (the master closed the pipe or died)."""
    connection = connect(path)
    try:
        while True:
            head = _read_exactly(source, LENGTH.size)
            if head is None:
                return
            body = _read_exactly(source, LENGTH.unpack(head)[0])
            if body is None:
                return                  # a truncated last batch: the master died mid-write
            _apply(connection, marshal.loads(body), answers)
    finally:
        connection.close()


def _apply(connection: sqlite3.Connection, message: list, answers) -> None:
    operation = message[0]
    if operation == "flush":
        answers.write(f"{message[1]}\n".encode())
        answers.flush()
        return
    if operation != "batch":
        raise ValueError(f"unknown journal operation {operation!r}")
    _, rows, statements, run, persisted = message
    connection.execute("BEGIN")
    insert_tasks(connection, run, rows)
    for sql, parameters in statements:
        connection.execute(sql, parameters)
    mark_persisted(connection, run, persisted)
    connection.execute("COMMIT")


_mark_statements: dict[int, str] = {}


def mark_persisted(connection: sqlite3.Connection, run: int, task_ids: list) -> None:
    """One UPDATE per chunk of ids (IN list): a statement per task cost twice as much. A
    chunk is padded (repeating an id changes nothing) to a power of two, so that a handful of
    prepared statements serve every batch size."""
    for start in range(0, len(task_ids), _IDS_PER_STATEMENT):
        chunk = task_ids[start:start + _IDS_PER_STATEMENT]
        size = max(8, 1 << (len(chunk) - 1).bit_length())
        sql = _mark_statements.get(size)
        if sql is None:
            sql = _mark_statements[size] = \
                "UPDATE tasks SET stored='journal' WHERE run=? AND task_id IN (" + \
                ",".join("?" * size) + ")"
        connection.execute(sql, [run, *chunk, *[chunk[0]] * (size - len(chunk))])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        serve(argv[0], sys.stdin.buffer, sys.stdout.buffer)
    except BaseException as error:  # noqa: BLE001 - reported to the master through stderr
        print(f"journal writer for {argv[0]} stopped: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
