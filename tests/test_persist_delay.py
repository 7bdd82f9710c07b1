"""Delayed persistence: a worker appends a journal record only if its outputs are still live
(or were fetched by the application) `SUPERSCALAR_PERSIST_DELAY` seconds after the task, and
the journal marks a task reusable only when the worker reports its record written.

The queue is tested alone (no processes), then with real runs of a tree sum whose large
intermediates are consumed and deleted at once.
"""
from __future__ import annotations

import signal
import subprocess

from conftest import run_program
from runtime.worker.delayed_persist import BATCH_SECONDS, PersistQueue
from runtime.worker.persist import pack_paths, scan
from test_resume import environment, journal, runcompss_command, statuses

JOURNAL = ["/outputs", b"key", ["d1v1"], True]     # entry["persist"] of a journal record


def journal_record(queue: PersistQueue, task_id: int, keys: list, now: float = 0.0,
                   kind: str = "obj") -> None:
    described = [[key, index, 1, kind, None, 8] for index, key in enumerate(keys)]
    queue.add(task_id, [*JOURNAL[:2], keys, True], described, [b"x" * 8] * len(keys), now)


def task_ids(records: list) -> list:
    return [record.task_id for record in records]


def test_dead_outputs_are_skipped_and_live_ones_written_when_due():
    queue = PersistQueue(delay=1.0)
    journal_record(queue, 1, ["d1v1"])
    journal_record(queue, 2, ["d2v1"])
    journal_record(queue, 3, ["d3v1", "d4v1"], now=0.5)
    queue.deleted(["d1v1", "d3v1", "unknown"])          # task 3 still has a live output
    assert queue.take_immediate() == []
    assert queue.take_due(0.9) == []                    # nothing is due yet
    assert task_ids(queue.take_due(1.0)) == [2]         # task 1's only output is dead
    assert task_ids(queue.take_due(2.0)) == [3]
    assert queue.skipped == 1 and len(queue) == 0


def test_a_fetched_output_is_kept_even_once_deleted():
    queue = PersistQueue(delay=1.0)
    journal_record(queue, 1, ["d1v1"])
    queue.fetched(["d1v1"])
    queue.deleted(["d1v1"])
    assert task_ids(queue.take_due(1.0)) == [1]


def test_a_snapshot_takes_everything_pending():
    queue = PersistQueue(delay=1.0)
    journal_record(queue, 1, ["d1v1"])
    journal_record(queue, 2, ["d2v1"])
    queue.deleted(["d2v1"])
    assert task_ids(queue.take_due(0.0, everything=True)) == [1]
    queue.deleted(["d1v1"])                             # already written: nothing to undo
    assert len(queue) == 0


def test_delayed_records_are_written_in_batches():
    """One write and one Persisted message per batch, not per loop turn: the worker takes
    due records only once the oldest is BATCH_SECONDS overdue, then every due one."""
    queue = PersistQueue(delay=1.0)
    for task_id in range(1, 4):
        journal_record(queue, task_id, [f"d{task_id}v1"], now=task_id * BATCH_SECONDS / 4)
    assert not queue.batch_due(1.0 + BATCH_SECONDS * 0.9)   # task 1 due, not yet overdue
    now = 1.0 + BATCH_SECONDS * 1.25
    assert queue.batch_due(now)
    assert task_ids(queue.take_due(now)) == [1, 2, 3]
    assert not queue.batch_due(now + 10)


def test_records_that_are_not_delayed():
    """Delay 0, cache records (their whole point), and files (the worker deletes its copy with
    the version) are written before the report; only journal records are reported."""
    queue = PersistQueue(delay=0.0)
    journal_record(queue, 1, ["d1v1"])
    delayed = PersistQueue(delay=1.0)
    journal_record(delayed, 2, ["d2v1"], kind="file")
    delayed.add(3, ["/cache", b"k", ["d3v1"]], [["d3v1", 0, 1, "obj", None, 8]], [b"x"], 0.0)
    assert task_ids(queue.take_immediate()) == [1]
    immediate = delayed.take_immediate()
    assert task_ids(immediate) == [2, 3]
    assert [record.reported for record in immediate] == [True, False]


TREE_PROGRAM = """
import json
import os
import signal
import numpy as np
from pycompss.api.task import task
from pycompss.api.api import compss_snapshot, compss_wait_on

LENGTH = 131072                      # 1 MiB of float64 per array
ROUNDS, ARRAYS = 4, 16

@task(returns=1)
def make(i):
    return np.full(LENGTH, float(i))

@task(returns=1)
def add(a, b):
    return a + b

def tree_sum(parts):
    while len(parts) > 1:
        level = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            level.append(parts[-1])
        parts = level
    return parts[0]

if __name__ == "__main__":
    totals = []
    for round_ in range(ROUNDS):
        total = compss_wait_on(tree_sum([make(round_ * ARRAYS + i) for i in range(ARRAYS)]))
        totals.append(float(total[0]))
        marker = os.environ.get("KILL_MARKER")
        if round_ == 1 and marker and not os.path.exists(marker):
            compss_snapshot()
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)     # the master dies after half the rounds
    print("RESULT", json.dumps(totals))
"""
TREE_TASKS = 4 * (16 + 15)


def pack_keys(log_dir) -> list:
    return [key for pack in pack_paths(str(log_dir / "journal" / "outputs"))
            for key, _, _ in scan(pack)[0]]


def journal_rows(log_dir, run: int) -> dict:
    """status -> task keys, 'persisted' for finished tasks marked as written."""
    with journal(log_dir) as connection:
        return statuses(connection, run)


def test_only_live_outputs_are_persisted_and_the_journal_says_which(program, tmp_path):
    path = program(TREE_PROGRAM, name="tree.py")
    log_dir = tmp_path / "logs"
    run = subprocess.run(runcompss_command(path, f"--log_dir={log_dir}", "--keep_outputs"),
                         env=environment(SUPERSCALAR_PERSIST_DELAY="2"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    sequential = run_program(path, mode="python", timeout=120)
    assert [line for line in run.stdout.splitlines() if line.startswith("RESULT")] == \
        [line for line in sequential.stdout.splitlines() if line.startswith("RESULT")]
    records = pack_keys(log_dir)
    rows = journal_rows(log_dir, 1)
    assert len(rows["done"]) == TREE_TASKS
    # The dead intermediates were skipped; the four fetched sums were kept (at the latest
    # when the run ended: kept outputs are persisted before the workers stop).
    assert 4 <= len(records) < TREE_TASKS // 2
    assert len(set(records)) == len(records)
    assert set(records) == set(rows["persisted"])       # the journal is exact


def test_resume_after_kill_reuses_exactly_what_was_persisted(program, tmp_path):
    """compss_snapshot() writes the records workers delay; the master is then killed. The
    resumed run reuses the marked tasks and reruns the rest, producers of reused sums too."""
    path = program(TREE_PROGRAM, name="tree.py")
    log_dir = tmp_path / "logs"
    env = environment(SUPERSCALAR_PERSIST_DELAY="2", KILL_MARKER=str(tmp_path / "killed"))
    killed = subprocess.run(runcompss_command(path, f"--log_dir={log_dir}"), env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    marked = set(journal_rows(log_dir, 1).get("persisted", []))
    records = pack_keys(log_dir)
    assert len(marked) >= 2                  # the two fetched sums, written by the snapshot
    assert marked <= set(records)
    assert len(records) < TREE_TASKS // 4    # of the 62 tasks that ran, most were dead

    resumed = subprocess.run(runcompss_command(path, f"--log_dir={log_dir}", "--resume"),
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    sequential = run_program(path, mode="python", timeout=120)
    assert [line for line in resumed.stdout.splitlines() if line.startswith("RESULT")] == \
        [line for line in sequential.stdout.splitlines() if line.startswith("RESULT")]
    second = journal_rows(log_dir, 2)
    reused, ran = set(second.get("reused", [])), second.get("done", [])
    assert reused == marked
    assert len(ran) == TREE_TASKS - len(reused)
    assert f"resumed: {len(reused)} tasks reused, {len(ran)} run" in resumed.stderr
