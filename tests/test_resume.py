"""Resume after the master dies: the journal and the persisted outputs, with real processes.

The master (the runcompss process) is killed with SIGKILL while tasks run; the same command
with --resume must run only the tasks the journal does not record as finished and persisted
(tasks.stored = 'journal', set when the worker reports the record written), and still give
the answer of the sequential run (`python prog.py`).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_program
from runtime.worker.persist import pack_paths, read_inline, scan

CHAINS, LENGTH = 40, 48
TOTAL_TASKS = CHAINS + CHAINS * LENGTH + (CHAINS - 1)        # starts, steps, pairwise adds

CHAINS_PROGRAM = """
import json
import time
from pycompss.api.task import task
from pycompss.api.api import compss_wait_on

PADDING = b"." * {padding}          # 0: small results (inline records), else pack records

def number(value):
    return value[0] if isinstance(value, tuple) else value

@task(returns=1)
def start(chain):
    return (chain, PADDING) if PADDING else chain

@task(returns=1)
def step(value, chain, position):
    time.sleep(0.003)
    result = (number(value) * 31 + chain * 7 + position) % 1_000_003
    return (result, PADDING) if PADDING else result

@task(returns=1)
def add(a, b):
    return number(a) + number(b)

if __name__ == "__main__":
    ends = []
    for chain in range({chains}):
        value = start(chain)
        for position in range({length}):
            value = step(value, chain, position)
        ends.append(value)
    while len(ends) > 1:
        pairs = [add(ends[i], ends[i + 1]) for i in range(0, len(ends) - 1, 2)]
        ends = pairs + ([ends[-1]] if len(ends) % 2 else [])
    print("RESULT", json.dumps(number(compss_wait_on(ends[0]))))
"""


def runcompss_command(path: Path, *flags) -> list:
    return [sys.executable, "-m", "runtime.cli.runcompss", *flags, str(path)]


def environment(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


def journal(log_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(log_dir / "journal" / "journal.sqlite", timeout=30)


def statuses(connection, run: int) -> dict:
    """status -> task keys; finished tasks whose record was reported written are 'persisted'
    (the only ones a resumed run may reuse)."""
    rows = connection.execute("SELECT status, stored, key FROM tasks WHERE run=?",
                              (run,)).fetchall()
    by_status: dict = {}
    for status, stored, key in rows:
        by_status.setdefault(status, []).append(bytes(key))
        if status == "done" and stored == "journal":
            by_status.setdefault("persisted", []).append(bytes(key))
    return by_status


def wait_for_done_rows(database: Path, count: int, process, deadline_seconds: float) -> int:
    """Wait until `count` tasks are journaled as finished and persisted."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and process.poll() is None:
        if database.exists():
            try:
                with sqlite3.connect(database, timeout=5) as connection:
                    done = connection.execute("SELECT count(*) FROM tasks WHERE run=1 AND "
                                              "status='done' AND stored='journal'"
                                              ).fetchone()[0]
            except sqlite3.OperationalError:        # tables not created yet
                done = 0
            if done >= count:
                return done
        time.sleep(0.05)
    raise AssertionError(f"the journal never showed {count} finished tasks "
                         f"(master exit code {process.poll()})")


def assert_no_process_mentions(text: str, timeout: float = 10) -> None:
    """No process (the master's journal writer, a worker) outlives a killed master."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        left.append(entry)
            except (OSError, ValueError):
                continue
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes {left} still run for {text}"


@pytest.mark.parametrize("padding", [0, 2048], ids=["inline-records", "pack-records"])
def test_resume_after_kill_runs_only_the_unfinished_tasks(program, tmp_path, padding):
    """Records written at once (delay 0, as before delayed persistence): half of the tasks
    are persisted when the master dies. Small results travel inline into their journal rows,
    larger ones go to packs; tests/test_persist_delay.py covers the delay."""
    path = program(CHAINS_PROGRAM.format(padding=padding, chains=CHAINS, length=LENGTH))
    log_dir = tmp_path / f"logs-{path.stem}"           # where run_program puts it too
    first = subprocess.Popen(runcompss_command(path, f"--log_dir={log_dir}"),
                             env=environment(SUPERSCALAR_PERSIST_DELAY="0"), cwd=tmp_path,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        wait_for_done_rows(log_dir / "journal" / "journal.sqlite", TOTAL_TASKS // 2, first, 90)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert_no_process_mentions(str(log_dir / "journal"))   # the journal writer exited too

    # What the killed run left: a readable journal, and every task it says finished has a
    # complete record of its outputs on disk: in a pack, or (small outputs) in its own row.
    with journal(log_dir) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finished = set(statuses(connection, 1)["persisted"])
        inline = {bytes(key): read_inline(record) for key, record in connection.execute(
            "SELECT key, outputs FROM tasks WHERE run=1 AND outputs IS NOT NULL")}
    persisted = {key for pack in pack_paths(str(log_dir / "journal" / "outputs"))
                 for key, _, _ in scan(pack)[0]}
    assert finished <= persisted | set(inline)
    assert (set(inline) if padding == 0 else persisted) >= finished    # the expected kind
    assert 0 < len(finished) < TOTAL_TASKS

    sequential = run_program(path, mode="python", timeout=120)
    assert sequential.returncode == 0, sequential.stderr
    resumed = run_program(path, extra=["--resume"], timeout=120)       # same --log_dir
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.results == sequential.results

    with journal(log_dir) as connection:
        second = statuses(connection, 2)
    reused, ran = set(second.get("reused", [])), second.get("done", [])
    assert reused == finished                       # every journaled task was reused...
    assert len(ran) == TOTAL_TASKS - len(finished)  # ...and only the others ran
    assert not reused & set(ran)
    assert f"resumed: {len(reused)} tasks reused, {len(ran)} run" in resumed.stderr


SNAPSHOT_PROGRAM = """
import json
import os
import signal
from pycompss.api.task import task
from pycompss.api.api import compss_snapshot, compss_wait_on

@task(returns=1)
def square(x):
    return x * x

@task(returns=1)
def cube(x):
    return x * x * x

if __name__ == "__main__":
    first = compss_wait_on([square(i) for i in range(30)] + [cube(i) for i in range(10)])
    compss_snapshot()
    marker = os.environ.get("KILL_MARKER")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)      # the master dies right after the snapshot
    second = compss_wait_on([square(i) for i in range(100, 120)])
    print("RESULT", json.dumps([sum(first), sum(second)]))
"""


def test_snapshot_and_compss_checkpoint_flags(program, tmp_path):
    """--checkpoint* (COMPSs) keeps the journal in --checkpoint_folder and every later run of
    the command resumes from it. A period of an hour means only compss_snapshot() can have
    committed phase one; avoid.checkpoint keeps `cube` from being persisted."""
    path = program(SNAPSHOT_PROGRAM, name="snap.py")
    folder = tmp_path / "checkpoints"
    flags = ["--checkpoint=es.bsc.compss.checkpoint.policies.CheckpointPolicyPeriodicTime",
             "--checkpoint_params=period.time:1h,avoid.checkpoint:[snap.cube]",
             f"--checkpoint_folder={folder}", f"--log_dir={tmp_path / 'logs'}"]
    marker = tmp_path / "killed-once"
    killed = subprocess.run(runcompss_command(path, *flags), env=environment(
        KILL_MARKER=str(marker)), cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    again = subprocess.run(runcompss_command(path, *flags), env=environment(
        KILL_MARKER=str(marker)), cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stderr
    sequential = run_program(path, mode="python")
    assert [line for line in again.stdout.splitlines() if line.startswith("RESULT")] == \
        [line for line in sequential.stdout.splitlines() if line.startswith("RESULT")]
    assert "resumed: 30 tasks reused, 30 run" in again.stderr       # 10 cubes + 20 squares
    assert (folder / "journal.sqlite").exists()


def test_resume_finds_the_previous_run_of_the_same_command(program, tmp_path):
    """Without --log_dir, --resume looks for the newest run of this command under ~/.COMPSs."""
    path = program(SNAPSHOT_PROGRAM, name="again.py")
    home = tmp_path / "home"
    home.mkdir()
    env = environment(HOME=str(home), KILL_MARKER=str(tmp_path / "killed-once"))
    killed = subprocess.run(runcompss_command(path), env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=90)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    other = subprocess.run(runcompss_command(path, "--resume") + ["other-arguments"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert other.returncode == 0, other.stderr
    assert "no earlier run of this command" in other.stderr       # different arguments
    resumed = subprocess.run(runcompss_command(path, "--resume"), env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=90)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed: 40 tasks reused, 20 run" in resumed.stderr
    logs = sorted(p.name for p in (home / ".COMPSs").iterdir())
    assert logs == ["again.py_01", "again.py_02"]       # the resumed run reused folder _01


def test_refused_flag_combinations(program, tmp_path):
    path = program("print('never runs')\n")
    for flags, message in (
            (["--no_journal", "--resume"], "--no_journal cannot be combined"),
            (["--checkpoint=my.own.Policy"], "not custom Java policies"),
            (["--checkpoint=PT", "--checkpoint_params=period.time:soon"], "period.time"),
            (["--checkpoint=FT", "--checkpoint_params=every:3"], "unknown parameter")):
        completed = subprocess.run(runcompss_command(path, *flags, f"--log_dir={tmp_path}"),
                                   env=environment(), capture_output=True, text=True,
                                   timeout=60)
        assert completed.returncode == 2, (flags, completed.stderr)
        assert message in completed.stderr, (flags, completed.stderr)
        assert "never runs" not in completed.stdout
