"""Chaos: a 5,001-task program while a helper kill -9s worker processes at random moments.

The run must end with the right answer (computed here in plain Python), and the helper must
have killed workers while it ran: a run that ends before the chaos starts proves nothing.
"""
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

THREE_NODES = "<ResourcesList>" + "".join(
    f'<ComputeNode Name="{name}"><Processor Name="P"><ComputingUnits>2</ComputingUnits>'
    f'</Processor></ComputeNode>' for name in ("localhost", "127.0.0.1", "127.0.0.2")) + \
    "</ResourcesList>"

SQUARES, CHAINS, CHAIN_LENGTH = 3500, 90, 15

PROGRAM = f"""
import json, time
from pycompss.api.task import task
from pycompss.api.api import compss_wait_on


@task(returns=1)
def square(i):
    time.sleep(0.003)
    return i * i


@task(returns=1)
def inc(x):
    time.sleep(0.003)
    return x + 1


@task(returns=1)
def total(*parts):
    return sum(parts)


if __name__ == "__main__":
    squares = [square(i) for i in range({SQUARES})]
    chains = []
    for start in range({CHAINS}):
        value = start
        for _ in range({CHAIN_LENGTH}):
            value = inc(value)
        chains.append(value)
    partials = [total(*squares[i:i + 25]) for i in range(0, len(squares), 25)]
    chain_sums = [total(*chains[i:i + 9]) for i in range(0, len(chains), 9)]
    tasks = len(squares) + len(chains) * {CHAIN_LENGTH} + len(partials) + len(chain_sums) + 1
    answer = compss_wait_on(total(*partials, *chain_sums))
    sample = compss_wait_on(squares[::500])
    print("RESULT", json.dumps([tasks, answer, sample]), flush=True)
"""


class Chaos:
    """Kills a random worker (or, one time in four, a random executor) of the run every
    0.4-1.2 s, at most `limit` times; remembers what it killed."""

    def __init__(self, master_pid: int, seed: int, limit: int = 10):
        self.master = psutil.Process(master_pid)
        self.random = random.Random(seed)
        self.limit = limit
        self.kills: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _workers(self) -> list:
        found = []
        try:
            children = self.master.children()
        except psutil.Error:
            return found
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE and \
                        "runtime.worker.main" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                pass
        return found

    def _run(self) -> None:
        while not self.stop.wait(self.random.uniform(0.4, 1.2)) and len(self.kills) < self.limit:
            workers = self._workers()
            if len(workers) < 2:
                continue                  # starting up, or a replacement is on its way
            victim = self.random.choice(workers)
            kind = "worker"
            if self.random.random() < 0.25:
                executors = victim.children()
                if executors:
                    victim, kind = self.random.choice(executors), "executor"
            try:
                victim.send_signal(signal.SIGKILL)
                self.kills.append(f"{kind} {victim.pid}")
            except psutil.Error:
                pass


def test_random_kill_9_of_workers_during_5000_tasks(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(PROGRAM))
    (tmp_path / "resources.xml").write_text(THREE_NODES)
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli.runcompss", f"--log_dir={tmp_path / 'logs'}",
         f"--resources={tmp_path / 'resources.xml'}", str(tmp_path / "app.py")],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seed = int(os.environ.get("CHAOS_SEED") or time.time())   # CHAOS_SEED replays a run
    chaos = Chaos(process.pid, seed)
    chaos.thread.start()
    hung = False
    try:
        stdout, stderr = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        hung = True                      # keep what it printed: the report must say why
        process.send_signal(signal.SIGUSR1)          # the master prints its threads' stacks
        time.sleep(1)
        process.kill()
        stdout, stderr = process.communicate()
    finally:
        chaos.stop.set()
        chaos.thread.join(timeout=5)
        if process.poll() is None:
            process.kill()
    report = f"seed {seed}, kills {chaos.kills}\nstdout:\n{stdout}\nstderr:\n{stderr[-12000:]}"
    assert not hung, f"the run did not finish in 150 s: {report}"
    assert process.returncode == 0, report
    results = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert results, report
    tasks, answer, sample = __import__("json").loads(results[-1][len("RESULT "):])
    expected = (sum(i * i for i in range(SQUARES))
                + sum(start + CHAIN_LENGTH for start in range(CHAINS)))
    assert tasks == 5001
    assert answer == expected, report
    assert sample == [i * i for i in range(0, SQUARES, 500)], report
    worker_kills = [kill for kill in chaos.kills if kill.startswith("worker")]
    assert len(worker_kills) >= 3, f"the run ended before the chaos could hit it: {report}"
    assert stderr.count("was killed by SIGKILL") >= len(worker_kills), report
