"""Small journal records travel inline (worker report -> the task's journal row) and read back
exactly; anything else goes to packs. The end-to-end paths (kill, resume, snapshot) are in
tests/test_resume.py, run with both kinds of records."""
from __future__ import annotations

import pickle
import sqlite3

import numpy as np

from runtime.master.journal import Journal
from runtime.worker.persist import INLINE_LIMIT, inline_record, read_inline

KEY = bytes(range(16))


def joined(frames) -> bytes:
    return b"".join(bytes(frame) for frame in frames)


def test_one_small_object_round_trips_without_a_header():
    frame = pickle.dumps({"answer": 42})
    record = inline_record(["/out", KEY, ["d1v1"], True], [["d1v1", 0, 1, "obj", None, 9]],
                           [frame])
    (kind, frames, path, nbytes), = read_inline(record)
    assert (kind, path, nbytes) == ("obj", None, len(frame))
    assert pickle.loads(joined(frames)) == {"answer": 42}


def test_several_outputs_and_frames_keep_the_declared_order():
    """Outputs described out of order, one of them in two frames (pickle 5 buffers)."""
    first, second = pickle.dumps("first"), [pickle.dumps([1, 2]), b"\x01\x02"]
    frames = [*second, first]
    described = [["d2v1", 0, 2, "obj", None, 11], ["d1v1", 2, 1, "obj", None, len(first)]]
    record = inline_record(["/out", KEY, ["d1v1", "d2v1"], True], described, frames)
    outputs = read_inline(record)
    assert [joined(frames) for _, frames, _, _ in outputs] == [first, b"".join(second)]
    assert [nbytes for *_, nbytes in outputs] == [len(first), sum(map(len, second))]


def test_large_file_cache_and_unjournaled_records_do_not_go_inline():
    big = pickle.dumps(np.zeros(INLINE_LIMIT))
    journal = ["/out", KEY, ["d1v1"], True]
    assert inline_record(journal, [["d1v1", 0, 1, "obj", None, len(big)]], [big]) is None
    assert inline_record(journal, [["d1v1", 0, 0, "file", "/tmp/f", 3]], []) is None
    small = pickle.dumps(1)
    for persist in (["/cache", KEY, ["d1v1"]], ["/out", KEY, ["d1v1"], False]):
        assert inline_record(persist, [["d1v1", 0, 1, "obj", None, 5]], [small]) is None


def small_record(value) -> bytes:
    return inline_record(["/out", KEY, ["d1v1"], True], [["d1v1", 0, 1, "obj", None, 5]],
                         [pickle.dumps(value)])


def journaled_run(folder, value=None, discard=False) -> tuple:
    """One run of a journal: records KEY's task with an inline result if `value` is given,
    looks KEY up first; returns (what the lookup found, read back, or None) and the run."""
    journal = Journal(str(folder))
    try:
        run = journal.start_run("app.py", [])
        location = journal.lookup(KEY, require_done=True)
        found = None
        if location is not None:
            (_, frames, _, _), = journal.read_outputs(location)
            found = pickle.loads(joined(frames))
        if value is not None:
            journal.record(1, KEY, "square", "done", b"", "journal", small_record(value))
        if discard:
            journal.discard_outputs()
        journal.flush()
    finally:
        journal.close()
    return found, run


def test_a_journal_from_before_inline_records_gains_their_columns(tmp_path):
    folder = tmp_path / "journal"
    folder.mkdir()
    with sqlite3.connect(folder / "journal.sqlite") as connection:
        connection.execute("CREATE TABLE tasks (run INTEGER, task_id INTEGER, key BLOB, "
                           "name TEXT, status TEXT, finished REAL, inputs BLOB, stored TEXT, "
                           "PRIMARY KEY (run, task_id)) WITHOUT ROWID")
        connection.execute("CREATE TABLE runs (run INTEGER PRIMARY KEY, application TEXT, "
                           "arguments TEXT, started REAL, finished REAL, status TEXT, "
                           "reused INTEGER DEFAULT 0, ran INTEGER DEFAULT 0, "
                           "failed INTEGER DEFAULT 0)")
    assert journaled_run(folder, value=7) == (None, 1)
    assert journaled_run(folder) == (7, 2)          # a later run reads the row's outputs


def test_inline_outputs_are_reused_only_until_a_run_discards_its_outputs(tmp_path):
    """A run that succeeded discards what it persisted: packs are deleted, and rows' inline
    outputs (kept as history) are never reused again, like the packs."""
    assert journaled_run(tmp_path, value=7, discard=True) == (None, 1)
    assert journaled_run(tmp_path, value=8) == (None, 2)
    assert journaled_run(tmp_path) == (8, 3)
