"""Task groups, barriers, cancellation, COMPSsException, task failures and exit codes, misuse of
futures, resources and object deletion.
"""
import pytest

from conftest import TWO_NODES, assert_same_as_sequential, run_program
from helpers_api import api_program, describe, named, run_both

pytestmark = pytest.mark.timeout(300)

MARKERS = """
def mark(folder, name):
    # Written behind the runtime's back (a plain path, not a FILE parameter): the main program
    # can see whether the task has run when a barrier returns. Workers share this host.
    with open(os.path.join(folder, name), "w") as handle:
        handle.write(name)


def marks(folder):
    return sorted(os.listdir(folder))
"""


def test_groups_and_barriers_wait_for_their_tasks(program, tmp_path):
    path = api_program(program, MARKERS, """
        @task(returns=1)
        def work(folder, name, seconds):
            time.sleep(seconds)
            mark(folder, name)
            return name

        if __name__ == "__main__":
            folder = sys.argv[1]
            with TaskGroup("implicit"):
                first = [work(folder, f"a{i}", 0.1) for i in range(3)]
            report("after_implicit", marks(folder))

            with TaskGroup("explicit", implicit_barrier=False):
                second = [work(folder, f"b{i}", 0.1) for i in range(3)]
            outside = work(folder, "z", 0.0)
            compss_barrier_group("explicit")
            report("after_group_barrier", [m for m in marks(folder) if m.startswith("b")])

            third = [work(folder, f"c{i}", 0.1) for i in range(3)]
            compss_barrier()
            report("after_barrier", marks(folder))
            report("values", compss_wait_on(first + second + third + [outside]))
            compss_barrier_group("never_used")            # an unknown group: returns at once
            compss_barrier(no_more_tasks=True)
            report("done", True)
    """)
    folders = {mode: tmp_path / mode for mode in ("seq", "dist")}
    for folder in folders.values():
        folder.mkdir()
    sequential = run_program(path, mode="python", args=[folders["seq"]])
    assert sequential.returncode == 0, describe(sequential)
    distributed = run_program(path, args=[folders["dist"]], resources=TWO_NODES)
    assert distributed.returncode == 0, describe(distributed)
    results = named(distributed)
    assert results["after_implicit"] == ["a0", "a1", "a2"]
    assert results["after_group_barrier"] == ["b0", "b1", "b2"]
    assert results["after_barrier"] == sorted(
        [f"{p}{i}" for p in "abc" for i in range(3)] + ["z"])
    assert results["values"] == [f"{p}{i}" for p in "abc" for i in range(3)] + ["z"]
    assert results["done"] is True
    assert named(sequential) == results


def test_compss_exception_cancels_the_group_and_is_raised_at_its_barrier(program):
    path = api_program(program, """
        @task(returns=1)
        def check(x):
            if x == 4:
                raise COMPSsException(f"value {x} is too big")
            return x

        @task(returns=1)
        def inc(x):
            return x + 1

        if __name__ == "__main__":
            try:
                with TaskGroup("checks"):
                    results = [check(i) for i in range(3)]
                    bad = check(4)
                    after_bad = inc(bad)                  # depends on the raising task
                report("raised", False)
            except COMPSsException as error:
                report("raised", describe_error(error))
            try:
                compss_wait_on(after_bad)
                report("dependent", "no error")
            except Exception as error:
                report("dependent", type(error).__name__)
            try:
                compss_wait_on(bad)
                report("raiser", "no error")
            except COMPSsException as error:
                report("raiser", describe_error(error))

            with TaskGroup("manual", implicit_barrier=False):
                failing = check(4)
            try:
                compss_barrier_group("manual")
                report("manual", "no error")
            except COMPSsException as error:
                report("manual", describe_error(error))

            report("after", compss_wait_on(inc(41)))       # the program goes on normally
    """)
    sequential, distributed = run_both(path)
    assert sequential.returncode == 0, describe(sequential)
    assert distributed.returncode == 0, describe(distributed)  # handled: not a failed run
    assert distributed.results == sequential.results
    assert named(distributed) == {
        "raised": ["COMPSsException", "value 4 is too big"], "dependent": "COMPSsException",
        "raiser": ["COMPSsException", "value 4 is too big"],
        "manual": ["COMPSsException", "value 4 is too big"], "after": 42}


# One worker with two units: a gate task and the task that cancels its group run side by side
# whatever order the worker's slots are filled in.
TWO_UNITS_ONE_NODE = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<ResourcesList>
    <ComputeNode Name="localhost">
        <Processor Name="MainProcessor">
            <ComputingUnits>2</ComputingUnits>
        </Processor>
    </ComputeNode>
</ResourcesList>
"""


GATE_TASKS = """
@task(returns=1)
def gate(marker):
    # Blocks until the main program creates `marker` (deadline 30 s): the task is certainly
    # still running when the main program cancels its group.
    deadline = time.monotonic() + 30
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return 1


@task(returns=1)
def inc(x):
    return x + 1


@task(returns=1)
def stop(x):
    raise COMPSsException(f"stop at {x}")
"""


def _run_on_two_units(path, tmp_path):
    resources = tmp_path / "two_units.xml"
    resources.write_text(TWO_UNITS_ONE_NODE)
    return run_program(path, args=[tmp_path], resources=resources)


def test_compss_exception_cancels_running_tasks_of_its_group(program, tmp_path):
    """Only under runcompss: sequentially the gate would run (and block) at its call."""
    path = api_program(program, GATE_TASKS, """
        if __name__ == "__main__":
            held = os.path.join(sys.argv[1], "held")
            try:
                with TaskGroup("stopped"):
                    blocked = gate(held)                   # running when the exception comes
                    stop(1)
                report("stopped", "no error")
            except COMPSsException as error:
                report("stopped", str(error))
            with open(held, "w"):
                pass
            try:
                compss_wait_on(blocked)
                report("blocked", "no error")
            except Exception:
                report("blocked", "raised")
            report("later", compss_wait_on(inc(inc(0))))
    """)
    run = _run_on_two_units(path, tmp_path)
    assert run.returncode == 0, describe(run)
    assert named(run) == {"stopped": "stop at 1", "blocked": "raised", "later": 2}


def test_cancel_group(program, tmp_path):
    """Only under runcompss: sequentially every task has already run when the cancel comes."""
    path = api_program(program, GATE_TASKS, """
        if __name__ == "__main__":
            marker = os.path.join(sys.argv[1], "go")
            with TaskGroup("doomed", implicit_barrier=False):
                head = gate(marker)                        # still running at the cancel
                chain = inc(inc(head))                     # cannot have started
            outside = inc(10)
            compss_cancel_group("doomed")
            with open(marker, "w"):
                pass
            compss_barrier_group("doomed")
            for name, future in (("head", head), ("chain", chain)):
                try:
                    compss_wait_on(future)
                    report(name, "no error")
                except Exception as error:
                    report(name, "raised")
            report("outside", compss_wait_on(outside))
            report("later", compss_wait_on(inc(inc(0))))
    """)
    run = _run_on_two_units(path, tmp_path)
    assert run.returncode == 0, describe(run)
    assert named(run) == {"head": "raised", "chain": "raised", "outside": 11, "later": 2}


def test_cancel_group_right_after_submitting_its_tasks(program):
    """Cancelling a group whose tasks were just dispatched (possibly in the same turn of the
    runtime's loop): the run must go on and end cleanly. Which tasks had finished before the
    cancel is up to timing, so only what does not depend on it is checked."""
    path = api_program(program, """
        @task(returns=1)
        def work(x):
            time.sleep(0.05)
            return x

        if __name__ == "__main__":
            compss_wait_on(work(0))
            outcomes = set()
            for index in range(30):
                with TaskGroup(f"group{index}", implicit_barrier=False):
                    futures = [work(j) for j in range(4)]
                compss_cancel_group(f"group{index}")
                compss_barrier_group(f"group{index}")
                for j, future in enumerate(futures):
                    try:
                        outcomes.add("value" if compss_wait_on(future) == j else "wrong value")
                    except Exception:
                        outcomes.add("cancelled")
            report("no_wrong_values", "wrong value" not in outcomes)
            report("later", compss_wait_on([work(i) for i in range(3)]))
    """)
    run = run_program(path)
    assert run.returncode == 0, describe(run)
    assert named(run) == {"no_wrong_values": True, "later": [0, 1, 2]}


def test_task_exception_reaches_the_caller_with_its_type_and_traceback(program):
    path = api_program(program, """
        class ModelError(Exception):
            def __init__(self, message, code):
                super().__init__(message)
                self.code = code

            def __reduce__(self):
                return (ModelError, (self.args[0], self.code))

        class Unrebuildable(Exception):
            def __init__(self, message, code):          # no __reduce__: cannot be unpickled
                super().__init__(message)
                self.code = code

        @task(returns=1)
        def unrebuildable(x):
            raise Unrebuildable(f"odd input {x}", x)

        @task(returns=1)
        def fails(x):
            values = [1, 2]
            return values[x]  # the failing line

        @task(returns=1)
        def custom(x):
            raise ModelError(f"bad input {x}", code=x * 2)

        @task(returns=1)
        def inc(x):
            return x + 1

        @task(x=INOUT)
        def append(x, value):
            x.append(value)

        if __name__ == "__main__":
            try:
                compss_wait_on(fails(5))
            except IndexError as error:
                cause = error.__cause__
                report("index", [describe_error(error), type(cause).__name__,
                                 "return values[x]  # the failing line" in str(cause),
                                 "fails" in str(cause)])
            try:
                compss_wait_on(custom(3))
            except ModelError as error:
                report("custom", [describe_error(error), error.code])
            try:
                compss_wait_on(unrebuildable(4))
            except Exception as error:
                report("unrebuildable", [type(error).__name__, "Unrebuildable: odd input 4" in
                                         str(error), "raise Unrebuildable(" in str(error)])

            root = fails(7)
            first = inc(root)
            second = inc(first)
            independent = inc(100)
            try:
                compss_wait_on(second)
            except IndexError as error:
                report("dependent", [type(error).__name__, "return values[x]" in
                                     str(error.__cause__)])
            try:
                compss_wait_on([independent, first])
            except IndexError:
                report("list_with_failed", "raised")
            report("independent", compss_wait_on(independent))

            target = [0]
            append(target, fails(9))
            try:
                compss_wait_on(target)
            except IndexError:
                report("inout_after_failure", "raised")
            report("later_tasks_run", compss_wait_on(inc(inc(1))))
    """)
    sequential, distributed = run_both(path)
    assert distributed.results == sequential.results, describe(distributed)
    assert named(distributed) == {
        "index": [["IndexError", "list index out of range"], "RemoteTraceback", True, True],
        "custom": [["ModelError", "bad input 3"], 6],
        "unrebuildable": ["TaskFailedError", True, True], "dependent": ["IndexError", True],
        "list_with_failed": "raised", "independent": 101, "inout_after_failure": "raised",
        "later_tasks_run": 3}
    assert distributed.returncode != 0, "a failed task must make runcompss exit non-zero"
    assert "fails" in distributed.stderr


def test_exit_codes(program):
    failed_unwaited = api_program(program, """
        @task(returns=1)
        def boom(x):
            raise ValueError(f"boom {x}")

        @task(returns=1)
        def fine(x):
            return x

        if __name__ == "__main__":
            boom(1)                                   # never waited on
            report("fine", compss_wait_on(fine(2)))
    """)
    handled = api_program(program, """
        @task(returns=1)
        def stop(x):
            raise COMPSsException("stop here")

        if __name__ == "__main__":
            try:
                with TaskGroup("g"):
                    stop(1)
            except COMPSsException as error:
                report("handled", str(error))
    """)
    clean = api_program(program, """
        @task(returns=1)
        def fine(x):
            return x

        if __name__ == "__main__":
            report("fine", compss_wait_on(fine(3)))
    """)
    run = run_program(failed_unwaited)
    assert run.returncode != 0 and named(run) == {"fine": 2}, describe(run)
    assert "boom 1" in run.stderr
    run = run_program(handled)
    assert run.returncode == 0 and named(run) == {"handled": "stop here"}, describe(run)
    run = run_program(clean)
    assert run.returncode == 0 and named(run) == {"fine": 3}, describe(run)


def test_future_used_before_sync(program):
    path = api_program(program, """
        @task(returns=1)
        def produce(x):
            return [x, x]

        MISUSES = {
            "add": lambda f: f + 1,
            "radd": lambda f: 1 + f,
            "multiply": lambda f: f * 2,
            "compare": lambda f: f < 3,
            "attribute": lambda f: f.append,
            "set_attribute": lambda f: setattr(f, "value", 1),
            "truth": lambda f: bool(f),
            "if": lambda f: 1 if f else 0,
            "len": lambda f: len(f),
            "iterate": lambda f: [x for x in f],
            "unpack": lambda f: tuple(f),
            "index": lambda f: f[0],
            "set_item": lambda f: f.__setitem__(0, 1),
            "contains": lambda f: 1 in f,
            "int": lambda f: int(f),
            "float": lambda f: float(f),
            "range": lambda f: range(f),
        }

        if __name__ == "__main__":
            future = produce(7)
            for name, misuse in MISUSES.items():
                try:
                    misuse(future)
                    report(name, "no error")
                except Exception as error:
                    report(name, [type(error).__name__, "'produce'" in str(error),
                                  "compss_wait_on" in str(error)])
            report("str_is_harmless", "produce" in str(future))
            report("value", compss_wait_on(future))
    """)
    results = named(assert_same_as_sequential(path))
    misuse = ["FutureUsedBeforeSync", True, True]
    assert results.pop("value") == [7, 7]
    assert results.pop("str_is_harmless") is True
    assert results == {name: misuse for name in (
        "add", "radd", "multiply", "compare", "attribute", "set_attribute", "truth", "if", "len",
        "iterate", "unpack", "index", "set_item", "contains", "int", "float", "range")}


def test_number_of_resources(program):
    path = api_program(program, """
        @task(returns=1)
        def one():
            return 1

        if __name__ == "__main__":
            report("resources", [compss_get_number_of_resources(), compss_wait_on(one())])
    """)
    assert named(run_program(path, mode="python")) == {"resources": [1, 1]}
    assert named(run_program(path)) == {"resources": [1, 1]}
    assert named(run_program(path, resources=TWO_NODES)) == {"resources": [2, 1]}


def test_compss_delete_object(program):
    path = api_program(program, """
        @task(returns=1)
        def produce(x, seconds=0.0):
            time.sleep(seconds)
            return x * 10

        @task(returns=1)
        def inc(x):
            return x + 1

        @task(x=INOUT)
        def append(x, value):
            x.append(value)

        if __name__ == "__main__":
            doomed = produce(1, 0.3)              # likely still running at the delete
            reader = inc(doomed)                  # submitted before the delete
            kept = produce(2)
            report("delete_returns", compss_delete_object(doomed))
            report("reader", compss_wait_on(reader))
            report("kept", compss_wait_on(kept))
            try:
                compss_wait_on(doomed)
                report("wait_deleted", "no error")
            except Exception as error:
                report("wait_deleted", "raised")
            try:
                inc(doomed)
                report("pass_deleted", "no error")
            except Exception as error:
                report("pass_deleted", [type(error).__name__, "inc" in str(error)])

            items = [1]
            append(items, 2)
            last = inc(len(compss_wait_on(items)))
            compss_delete_object(items)           # a synchronised object: nothing to do
            report("after_sync", compss_wait_on(last))
            many = [produce(i) for i in range(20)]
            total = inc(sum(compss_wait_on(many)))
            compss_delete_object(*many)
            report("many", compss_wait_on(total))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {"delete_returns": True, "reader": 11, "kept": 20,
                       "wait_deleted": "raised", "pass_deleted": ["CallError", True],
                       "after_sync": 3, "many": 1901}


def test_time_out_fails_the_task_and_the_run_goes_on(program):
    """Only under runcompss: the sequential backend runs a task inline, with no watchdog."""
    path = api_program(program, """
        @task(returns=1, time_out=1)
        def too_slow(x):
            time.sleep(30)
            return x

        @task(returns=1)
        def inc(x):
            return x + 1

        if __name__ == "__main__":
            slow = too_slow(1)
            dependent = inc(slow)
            try:
                compss_wait_on(slow)
                report("slow", "no error")
            except Exception as error:
                report("slow", ["time_out" in str(error), "too_slow" in str(error)])
            try:
                compss_wait_on(dependent)
                report("dependent", "no error")
            except Exception:
                report("dependent", "raised")
            report("later", compss_wait_on([inc(i) for i in range(4)]))
    """)
    run = run_program(path, timeout=60)
    assert named(run) == {"slow": [True, True], "dependent": "raised", "later": [1, 2, 3, 4]}, \
        describe(run)
    assert run.returncode != 0, describe(run)


def test_call_and_result_errors_name_the_task(program):
    path = api_program(program, """
        import threading

        @task(returns=1)
        def identity(x):
            return x

        @task(returns=1, path=FILE_IN)
        def read(path):
            with open(path) as handle:
                return handle.read()

        @task(returns=2)
        def three_values():
            return 1, 2, 3

        @task(returns=1)
        def generator():
            return (i for i in range(3))

        @task(returns=1)
        def inc(x):
            return x + 1

        def attempt(name, function):
            try:
                function()
                report(name, "no error")
            except Exception as error:
                report(name, [type(error).__name__, str(error)])

        def submitted(name, make):
            try:
                compss_wait_on(make())
                report(name, "no error")
            except Exception as error:
                report(name, type(error).__name__)

        if __name__ == "__main__":
            lock = threading.Lock()
            try:
                identity(lock)
                report("unpicklable", "no error")
            except Exception as error:
                report("unpicklable", [type(error).__name__, "identity" in str(error),
                                       "'x'" in str(error)])
            try:
                identity(1, 2)
                report("arity", "no error")
            except TypeError as error:
                report("arity", "identity" in str(error))
            try:
                read(os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "missing.txt"))
                report("missing_file", "no error")
            except Exception as error:
                report("missing_file", [type(error).__name__, "read" in str(error),
                                        "missing.txt" in str(error)])
            try:
                task(nonexistent=INOUT)(lambda x: x)
                report("unknown_parameter", "no error")
            except Exception as error:
                report("unknown_parameter", "nonexistent" in str(error))
            submitted("too_many_values", lambda: three_values()[0])
            submitted("unpicklable_result", generator)
            report("still_working", compss_wait_on(inc(1)))
            report("lambda_argument", compss_wait_on(identity(lambda: 5))())
    """)
    sequential, distributed = run_both(path)
    assert distributed.results == sequential.results, describe(distributed)
    results = named(distributed)
    assert results["unpicklable"] == ["CallError", True, True]
    assert results["arity"] is True
    assert results["missing_file"] == ["CallError", True, True]
    assert results["unknown_parameter"] is True
    assert results["too_many_values"] == "ValueError"
    assert results["unpicklable_result"].endswith("Error")   # the task failed, not the run
    assert results["still_working"] == 2
    assert results["lambda_argument"] == 5
    assert distributed.returncode != 0, "failed tasks must make runcompss exit non-zero"
