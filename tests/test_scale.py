"""Bounded memory at scale (issue 3): back-pressure on a program that submits faster than the
workers run, and no per-task state left once tasks are finished and their results released.

Timing-free: the figures (tasks/s, peak RSS at 10^6 tasks) are in bench/scale.py.
"""
import pytest

from conftest import run_program
from runtime.core.engine import Engine
from runtime.core.failures import FailurePolicy
from runtime.core.records import TaskRecord, with_location, without_location
from runtime.master.calls import KeptCall, MasterValue, TaskCall, unpacked

LIMIT = 50

SLOW_PROGRAM = """
    import gc, json, time
    from pycompss.api.task import task
    from pycompss.api.api import compss_wait_on, compss_barrier
    from runtime.master.session import current_session

    @task(returns=1)
    def slow(i):
        time.sleep(0.005)
        return i * 2

    if __name__ == "__main__":
        session = current_session(False)
        backend, engine = session.backend, session.backend.engine
        most_pending = most_live = 0
        futures = []
        for i in range(2000):
            futures.append(slow(i))
            most_pending = max(most_pending, backend.pending_tasks)
            most_live = max(most_live, len(engine.tasks))
        values = compss_wait_on(futures)
        del futures
        gc.collect()
        compss_barrier()          # applies the releases of the collected futures
        left = backend.call(lambda: [len(engine.tasks), len(engine.versions),
                                     len(backend.store.values), len(session.registry)])
        print("RESULT", json.dumps({
            "correct": values == [2 * i for i in range(2000)], "limit": backend.max_pending,
            "peak": backend.peak_pending, "most_pending": most_pending,
            "most_live": most_live, "left": left}))
"""


@pytest.mark.timeout(180)
def test_back_pressure_bounds_pending_tasks_and_results_stay_right(program, monkeypatch):
    """2,000 tasks of 5 ms on a machine's few cores, submitted in a tight loop with at most
    50 pending: the submitter is held back (the bound is reached, never passed), every result
    is right, and once the futures are gone the master holds nothing for any task."""
    monkeypatch.setenv("SUPERSCALAR_MAX_PENDING_TASKS", str(LIMIT))
    run = run_program(program(SLOW_PROGRAM), timeout=150)
    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["correct"]
    assert result["limit"] == LIMIT
    assert result["peak"] == LIMIT, "the submitter was never held back, or went past the bound"
    assert result["most_pending"] <= LIMIT and result["most_live"] <= LIMIT
    assert result["left"] == [0, 0, 0, 0], "per-task state outlived its tasks and futures"


def test_a_rejected_submission_is_counted_out_of_back_pressure():
    """A submission the engine refuses never runs: it must not hold a pending slot forever."""
    engine = Engine()
    engine.reject(TaskRecord(1, "orphan", ("d9v1",), ("d1v1",), None), "reads d9v1")
    assert engine.finished == 1 and not engine.tasks


def _call(frames, **options) -> TaskCall:
    entry = {"id": 7, "name": "work", "fn": 3, "args": [["v", 0, len(frames)]], "kwargs": {},
             "returns": ["d5v1"], "units": 1, "time_out": 0.0, "reads": ["d2v3"],
             "persist": ["/tmp/outputs", b"k" * 16, ("d5v1",)]}
    return TaskCall(7, "work", 3, entry, frames, ("d2v3",), ("d5v1",), {"d2v3": "obj"},
                    "app.py:12", **options)


@pytest.mark.parametrize("frames, options", [
    ([b"small"], {}),
    ([b"small", memoryview(bytearray(200_000))], {}),
    ([b"small"], {"on_failure": FailurePolicy.IGNORE,
                  "failure_defaults": {"d5v1": MasterValue("obj", [memoryview(b"0")])}}),
    ([b"small"], {"variant_functions": (3, 4)}),
])
def test_a_call_kept_as_lineage_is_compact_and_runs_again_the_same(frames, options):
    call = _call(frames, **options)
    # made again from its lineage, a task is not persisted again (calls._FROM_THE_RECORD)
    entry = {name: value for name, value in call.entry.items() if name != "persist"}
    expected = (entry, [bytes(f) for f in call.frames], dict(call.kinds),
                call.function_id, call.variant_functions, call.on_failure)
    record = TaskRecord(7, "work", call.reads, call.writes, call)
    record.payload = call.pack()
    if type(record.payload) is bytes:
        assert len(record.payload) < 400 and "failure_defaults" not in options
    else:
        assert isinstance(record.payload, KeptCall)
        if len(frames) > 1:       # the large buffer is kept as it is, not copied
            assert any(frame is frames[1] or getattr(frame, "obj", None) is frames[1].obj
                       for frame in record.payload.frames)
    again = unpacked(record)
    assert record.payload is again and unpacked(record) is again
    assert (again.entry, [bytes(f) for f in again.frames], again.kinds, again.function_id,
            again.variant_functions, again.on_failure) == expected
    assert (again.reads, again.writes, again.task_id, again.name) == \
        (call.reads, call.writes, 7, "work")
    assert again.failure_defaults == options.get("failure_defaults")


def test_location_tuples_are_shared_and_behave_as_sets():
    one = with_location((), "w1")
    assert one == ("w1",) and with_location((), "w1") is one
    both = with_location(one, "master")
    assert both == ("w1", "master") and with_location(both, "w1") is both
    assert without_location(both, "master") is one
    assert without_location(one, "w1") == () and without_location(one, "w2") is one
