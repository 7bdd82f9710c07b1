"""@on_failure policies and time_out, on small programs whose results are known.

Each program runs under runcompss (two workers) and, where the policy means the same thing
without workers, sequentially too: both must give the same results.
"""
import pytest

from conftest import TWO_NODES, run_program
from helpers_api import api_program, describe, named, run_both

pytestmark = pytest.mark.timeout(300)

IMPORTS = """
from pycompss.api.on_failure import on_failure


def attempts_of(folder, name):
    path = os.path.join(folder, name)
    return open(path).read().split() if os.path.exists(path) else []


def record_attempt(folder, name):
    # One line per attempt: the pid of the worker running it (an executor's parent).
    with open(os.path.join(folder, name), "a") as handle:
        handle.write(f"{os.getppid()}\\n")
    return len(attempts_of(folder, name))
"""


def fresh_folders(tmp_path):
    folders = {mode: tmp_path / mode for mode in ("seq", "dist")}
    for folder in folders.values():
        folder.mkdir()
    return folders


def test_retry_runs_again_on_the_same_worker_then_on_another(program, tmp_path):
    path = api_program(program, IMPORTS, """
        @task(returns=1)
        def flaky(folder, name, failures):
            attempt = record_attempt(folder, name)
            if attempt <= failures:
                raise RuntimeError(f"{name} fails at attempt {attempt}")
            return attempt

        @task(returns=1)
        def inc(x):
            return x + 1

        if __name__ == "__main__":
            folder = sys.argv[1]
            once = flaky(folder, "once", 1)            # succeeds at the second attempt
            always = flaky(folder, "always", 99)
            after = inc(always)
            report("once", compss_wait_on(inc(once)))
            try:
                compss_wait_on(after)
                report("always", "no error")
            except RuntimeError as error:
                report("always", describe_error(error))
            report("later", compss_wait_on(inc(1)))
    """)
    folders = fresh_folders(tmp_path)
    sequential = run_program(path, mode="python", args=[folders["seq"]])
    distributed = run_program(path, args=[folders["dist"]], resources=TWO_NODES)
    assert named(distributed) == named(sequential) == {
        "once": 3, "always": ["RuntimeError", "always fails at attempt 3"], "later": 2}, \
        describe(distributed)
    assert distributed.returncode != 0 and "always fails at attempt 3" in distributed.stderr
    once = (folders["dist"] / "once").read_text().split()
    always = (folders["dist"] / "always").read_text().split()
    assert len(once) == 2 and once[0] == once[1], "a retry runs on the same worker first"
    assert len(always) == 3, "RETRY: three attempts, then the task fails"
    assert always[0] == always[1] != always[2], "the last attempt avoids the worker that failed"


def test_cancel_successors_gives_none_and_never_runs_them(program, tmp_path):
    path = api_program(program, IMPORTS, """
        @on_failure(management="CANCEL_SUCCESSORS")
        @task(returns=1)
        def check(folder, x):
            record_attempt(folder, f"check{x}")
            if x < 0:
                raise ValueError(f"negative {x}")
            return x

        @task(returns=1, on_failure="CANCEL_SUCCESSORS")
        def inc(folder, x):
            record_attempt(folder, "inc")
            return x + 1

        if __name__ == "__main__":
            folder = sys.argv[1]
            bad = check(folder, -1)
            first = inc(folder, bad)
            second = inc(folder, first)                 # cancelled transitively
            good = inc(folder, check(folder, 1))
            report("values", compss_wait_on([bad, first, second, good]))
            report("check_attempts", len(attempts_of(folder, "check-1")))
            report("inc_runs", len(attempts_of(folder, "inc")))
            report("later", compss_wait_on(inc(folder, 41)))
    """)
    folders = fresh_folders(tmp_path)
    sequential = run_program(path, mode="python", args=[folders["seq"]])
    distributed = run_program(path, args=[folders["dist"]], resources=TWO_NODES)
    expected = {"values": [None, None, None, 2], "check_attempts": 1, "inc_runs": 1,
                "later": 42}
    assert named(sequential) == expected, describe(sequential)
    assert named(distributed) == expected, describe(distributed)
    # A failure the policy handled, but still a failed task: the run says so.
    assert distributed.returncode != 0
    assert "task 'check'" in distributed.stderr and "negative -1" in distributed.stderr


def test_fail_stops_the_application_at_once(program, tmp_path):
    path = api_program(program, IMPORTS, """
        @task(returns=1, on_failure="FAIL")
        def critical(x):
            raise ValueError(f"critical {x} broke")

        @task(returns=1)
        def slow(seconds):
            time.sleep(seconds)
            return seconds

        if __name__ == "__main__":
            report("started", True)
            running = slow(2)
            critical(7)
            deadline = time.time() + 60
            while time.time() < deadline:     # the application's own work: interrupted
                sum(range(10000))
            report("not_stopped", True)
    """)
    sequential, distributed = run_both(path)
    for run in (sequential, distributed):
        assert named(run) == {"started": True}, describe(run)
        assert run.returncode != 0
        assert ("task 'critical' failed and its on_failure policy is FAIL: the application "
                "was stopped (ValueError: critical 7 broke)") in run.stderr, describe(run)
    assert distributed.stderr.count("critical 7 broke") >= 2, "with the traceback at the end"


def test_ignore_gives_the_defaults_and_successors_run(program, tmp_path):
    path = api_program(program, IMPORTS, """
        @on_failure(management="IGNORE", returns=0, acc=[-1])
        @task(returns=1, acc=INOUT)
        def risky(x, acc):
            acc.append(x)
            if x % 2:
                raise ValueError(f"odd {x}")
            return x * x

        @task(returns=1)
        def add(a, b):
            return a + b

        @task(returns=2, on_failure="IGNORE")
        def pair(x):
            raise KeyError(x)

        @task(path=FILE_OUT, on_failure="IGNORE")
        def write(path, ok):
            if not ok:
                raise OSError("cannot write")
            with open(path, "w") as handle:
                handle.write("data")

        @task(returns=1, path=FILE_IN)
        def size(path):
            return os.path.getsize(path)

        if __name__ == "__main__":
            folder = sys.argv[1]
            accumulators = [[] for _ in range(4)]
            squares = [risky(i, accumulators[i]) for i in range(4)]
            total = add(add(squares[0], squares[1]), add(squares[2], squares[3]))
            report("squares", compss_wait_on(squares))
            report("total", compss_wait_on(total))
            report("accumulators", compss_wait_on(accumulators))
            report("pair", list(compss_wait_on(pair(1))))
            written, failed = os.path.join(folder, "ok.txt"), os.path.join(folder, "no.txt")
            write(written, True)
            write(failed, False)
            report("sizes", compss_wait_on([size(written), size(failed)]))
            compss_wait_on_file(failed)
            report("failed_file", open(failed).read())
    """)
    folders = fresh_folders(tmp_path)
    sequential = run_program(path, mode="python", args=[folders["seq"]])
    distributed = run_program(path, args=[folders["dist"]], resources=TWO_NODES)
    expected = {"squares": [0, 0, 4, 0], "total": 4,
                "accumulators": [[0], [-1], [2], [-1]], "pair": [None, None],
                "sizes": [4, 0], "failed_file": ""}
    assert named(sequential) == expected, describe(sequential)
    assert named(distributed) == expected, describe(distributed)
    assert distributed.returncode == 0, "IGNORE: the failures are not the run's"
    assert "task 'risky'" in distributed.stderr and "odd 3" in distributed.stderr


def test_time_out_kills_the_task_and_counts_as_a_failure(program, tmp_path):
    """Only under runcompss: sequentially there is no executor to kill."""
    path = api_program(program, IMPORTS, """
        @task(returns=1, time_out=1, on_failure="IGNORE")
        def sleepy(seconds):
            time.sleep(seconds)
            return seconds

        @task(returns=1, time_out=1)
        def stuck(folder):
            record_attempt(folder, "stuck")
            time.sleep(60)

        if __name__ == "__main__":
            folder = sys.argv[1]
            report("fast", compss_wait_on(sleepy(0.1)))
            report("slow", compss_wait_on(sleepy(30)))
            try:
                compss_wait_on(stuck(folder))
                report("stuck", "no error")
            except Exception as error:
                report("stuck", [type(error).__name__, "exceeded its time_out of 1 s" in
                                 str(error)])
            report("stuck_attempts", len(attempts_of(folder, "stuck")))
            report("after", compss_wait_on([sleepy(0), sleepy(0.2)]))
    """)
    run = run_program(path, args=[tmp_path], resources=TWO_NODES)
    assert named(run) == {"fast": 0.1, "slow": None, "stuck": ["TaskFailedError", True],
                          "stuck_attempts": 3, "after": [0, 0.2]}, describe(run)
    assert run.returncode != 0 and "task stuck: exceeded its time_out" in run.stderr


def test_unknown_policy_is_refused_at_decoration(program):
    path = api_program(program, IMPORTS, """
        @task(returns=1, on_failure="SOMETIMES")
        def f(x):
            return x
    """)
    run = run_program(path, mode="python", timeout=30)
    assert run.returncode != 0 and "on_failure='SOMETIMES' is not one of" in run.stderr
    assert "@task 'f'" in run.stderr, run.stderr
