"""The journal's writer process applies batches exactly: every row, and the persisted mark on
exactly the task ids it was given (whatever the batch size: statements are padded and chunked).
"""
from __future__ import annotations

import io
import sqlite3

from runtime.master.journal import _SCHEMA
from runtime.master.journal_writer import frame, serve


def test_batches_insert_rows_and_mark_exactly_the_given_tasks(tmp_path):
    path = str(tmp_path / "journal.sqlite")
    with sqlite3.connect(path) as connection:
        connection.executescript(_SCHEMA)
    tasks = 5000
    rows = [[task_id, task_id.to_bytes(16, "little"), "noop", "done", 0.5, b"", None, None]
            for task_id in range(tasks)]
    marked = {task_id for task_id in range(tasks) if task_id % 3 != 1}
    ordered = sorted(marked)
    batches = [frame(["batch", rows[:2500], [], 1, []]),
               frame(["batch", rows[2500:], [], 1, ordered[:1]]),     # one id: padded
               frame(["batch", [], [], 1, ordered[1:7]]),
               frame(["batch", [], [], 1, ordered[7:]]),               # over one statement
               frame(["batch", [[0, b"k", "noop", "done", 0.5, b"", None, None]], [], 2, [0]])]
    serve(path, io.BytesIO(b"".join(batches)), io.BytesIO())
    with sqlite3.connect(path) as connection:
        stored = dict(connection.execute("SELECT task_id, stored FROM tasks WHERE run=1"))
        other_run = connection.execute("SELECT stored FROM tasks WHERE run=2").fetchall()
    assert len(stored) == tasks
    assert {task_id for task_id, mark in stored.items() if mark == "journal"} == marked
    assert all(stored[task_id] is None for task_id in range(tasks) if task_id not in marked)
    assert other_run == [("journal",)]
