"""Workers lost mid-run (kill -9, a hung process): the run still gives the sequential results.

The programs kill their own workers (children of the master, which runs inside the
application's process), so the moment of the kill is a known point of the program; run with
plain `python` there is no worker and nothing is killed.
"""
import pytest

from conftest import TWO_NODES, run_program
from helpers_api import api_program, describe, named

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

ONE_NODE_TWO_UNITS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<ResourcesList>
    <ComputeNode Name="localhost">
        <Processor Name="MainProcessor"><ComputingUnits>2</ComputingUnits></Processor>
    </ComputeNode>
</ResourcesList>
"""

HELPERS = """
import signal
import psutil


def workers():
    '''This process's worker processes (none when run sequentially), oldest first.'''
    children = [p for p in psutil.Process().children()
                if "runtime.worker.main" in " ".join(p.cmdline())]
    return sorted(children, key=lambda p: p.create_time())


def hit_worker(index=0, how=signal.SIGKILL):
    found = workers()
    if not found:
        return False
    found[index].send_signal(how)
    return True


def runs(folder, name):
    path = os.path.join(folder, name)
    return len(open(path).read().split()) if os.path.exists(path) else 0


def record_run(folder, name):
    with open(os.path.join(folder, name), "a") as handle:
        handle.write(f"{os.getpid()}\\n")
"""


def one_node(tmp_path):
    resources = tmp_path / "one_node.xml"
    resources.write_text(ONE_NODE_TWO_UNITS)
    return resources


def test_killed_worker_mid_run_gives_the_sequential_result(program, tmp_path):
    path = api_program(program, HELPERS, """
        @task(returns=1)
        def square(x):
            time.sleep(0.02)
            return np.full(1000, x * x, dtype=np.int64)

        @task(returns=1)
        def add(a, b):
            return a + b

        if __name__ == "__main__":
            squares = [square(i) for i in range(120)]
            compss_wait_on(squares[:10])             # the run is under way
            report("killed", hit_worker(0))
            while len(squares) > 1:                 # a reduction tree over what was lost
                pairs = [add(squares[i], squares[i + 1]) for i in range(0, len(squares) - 1, 2)]
                squares = pairs + squares[len(pairs) * 2:]
            report("total", int(compss_wait_on(squares[0]).sum()))
    """)
    sequential = run_program(path, mode="python")
    distributed = run_program(path, resources=TWO_NODES, timeout=150)
    assert named(sequential) == {"killed": False, "total": sum(i * i for i in range(120)) * 1000}
    assert named(distributed) == dict(named(sequential), killed=True), describe(distributed)
    assert distributed.returncode == 0, describe(distributed)
    assert "was killed by SIGKILL" in distributed.stderr and "started in place of" in \
        distributed.stderr


def test_value_that_only_lived_on_the_killed_worker_is_made_again(program, tmp_path):
    """c = step(step(make())); the application keeps b and c, releases a; the only worker dies
    after all three ran. Waiting on c makes c again, which needs b, which needs a (released,
    kept as lineage only): each runs exactly twice."""
    path = api_program(program, HELPERS, """
        @task(returns=1)
        def make(folder):
            record_run(folder, "make")
            return np.arange(1000)

        @task(returns=1)
        def step(folder, name, x):
            record_run(folder, name)
            return x * 2 + 1

        if __name__ == "__main__":
            folder = sys.argv[1]
            a = make(folder)
            b = step(folder, "b", a)
            del a
            c = step(folder, "c", b)
            compss_barrier()
            report("killed", hit_worker(0))
            report("c", int(compss_wait_on(c).sum()))
            report("b", int(compss_wait_on(b).sum()))
            report("runs", [runs(folder, name) for name in ("make", "b", "c")])
    """)
    folders = {mode: tmp_path / mode for mode in ("seq", "dist")}
    for folder in folders.values():
        folder.mkdir()
    sequential = run_program(path, mode="python", args=[folders["seq"]])
    distributed = run_program(path, args=[folders["dist"]], resources=one_node(tmp_path))
    values = {"c": sum((x * 2 + 1) * 2 + 1 for x in range(1000)),
              "b": sum(x * 2 + 1 for x in range(1000))}
    assert named(sequential) == dict(values, killed=False, runs=[1, 1, 1]), describe(sequential)
    assert named(distributed) == dict(values, killed=True, runs=[2, 2, 2]), describe(distributed)
    assert distributed.returncode == 0


def test_task_that_kills_its_worker_fails_after_three_kills(program, tmp_path):
    """Only under runcompss: sequentially the task's parent is the test itself."""
    path = api_program(program, HELPERS, """
        @task(returns=1)
        def killer(folder):
            record_run(folder, "killer")
            os.kill(os.getppid(), signal.SIGKILL)     # the worker running this task
            time.sleep(30)

        @task(returns=1)
        def inc(x):
            return x + 1

        if __name__ == "__main__":
            folder = sys.argv[1]
            try:
                compss_wait_on(killer(folder))
                report("killer", "no error")
            except Exception as error:
                report("killer", "task killer killed its worker 3 times" in str(error))
            report("runs", runs(folder, "killer"))
            report("others", compss_wait_on([inc(i) for i in range(20)]))
    """)
    run = run_program(path, args=[tmp_path], resources=TWO_NODES, timeout=150)
    assert named(run) == {"killer": True, "runs": 3, "others": list(range(1, 21))}, describe(run)
    assert run.returncode != 0 and "killed its worker 3 times" in run.stderr


def test_hung_worker_is_found_by_its_missing_heartbeats(program, tmp_path, monkeypatch):
    """SIGSTOP: the process is alive but silent. The master gives up on it after
    SUPERSCALAR_WORKER_TIMEOUT seconds, kills it, and redoes its work elsewhere."""
    monkeypatch.setenv("SUPERSCALAR_WORKER_TIMEOUT", "3")
    path = api_program(program, HELPERS, """
        @task(returns=1)
        def slow_square(x):
            time.sleep(0.05)
            return x * x

        if __name__ == "__main__":
            values = [slow_square(i) for i in range(60)]
            compss_wait_on(values[:4])
            report("stopped", hit_worker(0, signal.SIGSTOP))
            report("sum", sum(compss_wait_on(values)))
    """)
    run = run_program(path, resources=TWO_NODES, timeout=150)
    assert named(run) == {"stopped": True, "sum": sum(i * i for i in range(60))}, describe(run)
    assert run.returncode == 0
    assert "sent nothing for" in run.stderr and "unreachable or hung" in run.stderr


def test_workers_that_cannot_start_end_the_run_with_an_error(program, monkeypatch):
    """Every worker exits at once (its interpreter is /bin/false): after the replacements
    allowed (SUPERSCALAR_WORKER_RESTARTS) the run has no worker left; waiting tasks and
    tasks submitted afterwards fail with that reason instead of waiting forever."""
    monkeypatch.setenv("SUPERSCALAR_WORKER_RESTARTS", "2")
    path = api_program(program, """
        @task(returns=1)
        def inc(x):
            return x + 1

        if __name__ == "__main__":
            for name in ("first", "later"):
                try:
                    compss_wait_on(inc(1))
                    report(name, "no error")
                except Exception as error:
                    report(name, "no worker is left" in str(error))
    """)
    run = run_program(path, extra=["--python_interpreter=/bin/false"], timeout=60)
    assert named(run) == {"first": True, "later": True}, describe(run)
    assert run.returncode != 0, describe(run)
    assert run.stderr.count("started in place of") == 2, "two replacements, then no more"
    assert "worker w0.2 on node 'localhost' exited with code 1" in run.stderr
