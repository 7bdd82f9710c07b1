"""Bounded memory at scale (issue 3): back-pressure on a program that submits faster than the
workers run, and no per-task state left once tasks are finished and their results released.

Timing-free: the figures (tasks/s, peak RSS at 10^6 tasks) are in bench/scale.py.
"""
import sys

import msgpack
import pytest

from conftest import assert_same_as_sequential, run_program
from runtime.core.engine import Engine
from runtime.core.failures import FailurePolicy
from runtime.core.lineage import Lineage, open_lineage
from runtime.core.records import (Requirements, TaskRecord, WorkerSlots, with_location,
                                  without_location)
from runtime.core.states import TaskState
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
    expected = (dict(call.entry), [bytes(f) for f in call.frames], dict(call.kinds),
                call.function_id, call.variant_functions, call.on_failure)
    record = TaskRecord(7, "work", call.reads, call.writes, call)
    record.payload = call.pack()
    if type(record.payload) is bytes:
        assert len(record.payload) < 100 and "failure_defaults" not in options
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


@pytest.mark.parametrize("entry_change", [
    {"units": None, "time_out": None},        # fields given as None stay None
    {"returns": ["d9v1"]},                    # returns that are not the task's last writes
    {"persist": ["/tmp/outputs", b"k" * 16, ("d8v1",), True]},   # nor the persisted keys
    {"gpu_count": 2, "cache": True},
])
def test_a_packed_call_gives_back_every_entry_field(entry_change):
    call = _call([b"small"])
    for name, value in entry_change.items():
        call.entry[name] = value
    expected = dict(call.entry)
    del call.entry["units"]                   # a field the entry never had stays absent
    del expected["units"]
    record = TaskRecord(7, "work", call.reads, call.writes, call.pack())
    assert _as_sent(unpacked(record).entry) == _as_sent(expected)


def _as_sent(entry: dict) -> dict:
    """What the worker receives (msgpack: tuples arrive as lists)."""
    return msgpack.unpackb(msgpack.packb(entry, use_bin_type=True), raw=False)


def _lineage_engine(on_kept=None):
    engine = Engine()
    engine.on_kept = on_kept
    engine.add_worker(WorkerSlots("w0", "node", 2, 0.0))
    return engine


def _run_two(engine, second_requirements=Requirements(memory_gb=1.0)):
    engine.submit(TaskRecord(1, "first", (), ("d1v1",), "payload-1"))
    engine.task_done(1, {"d1v1": 8})
    engine.submit(TaskRecord(2, "second", ("d1v1",), ("d2v1", "d3v1"), "payload-2",
                             second_requirements, group="g"))
    engine.task_done(2, {})


@pytest.mark.parametrize("packed", [True, False])
def test_a_finished_task_is_kept_as_a_small_lineage_not_its_record(packed):
    """At 10^6 held futures what a finished task leaves behind is what the master holds per
    future: with a packed call, one bytes object (names and rarely set fields as indexes, one
    key as a string); with any other payload a 6-slot Lineage. Either gives the task back."""
    engine = _lineage_engine((lambda call: call.encode()) if packed else None)
    _run_two(engine)
    first, second = engine.versions["d1v1"].lineage, engine.versions["d2v1"].lineage
    assert not engine.tasks and engine.versions["d3v1"].lineage is second
    if packed:
        assert type(first) is bytes and len(first) < 60
    else:
        assert type(first) is Lineage and sys.getsizeof(first) <= 100
    payloads = (b"payload-1", b"payload-2") if packed else ("payload-1", "payload-2")
    opened = open_lineage(first)
    assert (opened.task_id, opened.name, opened.reads, opened.writes, opened.payload) == \
        (1, "first", (), ("d1v1",), payloads[0])
    assert opened.task().requirements is TaskRecord(0, "", (), (), None).requirements
    again = open_lineage(second).task()
    assert (again.task_id, again.name, again.reads, again.writes, again.group,
            again.payload, again.state) == \
        (2, "second", ("d1v1",), ("d2v1", "d3v1"), "g", payloads[1], TaskState.DONE)
    assert again.requirements == Requirements(memory_gb=1.0)


@pytest.mark.parametrize("packed", [True, False])
def test_a_lineage_is_released_with_the_last_output_that_needs_it(packed):
    """d1v1 is read by task 2 (outputs d2v1, d3v1): released, it stays as a tombstone while
    either output of task 2 is held, and goes with the last of them, once."""
    engine = _lineage_engine((lambda call: call.encode()) if packed else None)
    _run_two(engine)
    engine.release("d1v1")
    assert engine.versions["d1v1"].dependents == 1 and engine.versions["d1v1"].locations == ()
    engine.release("d2v1")
    assert engine.versions["d1v1"].dependents == 1, "d3v1 still needs task 2's lineage"
    engine.release("d3v1")
    assert engine.versions == {}


@pytest.mark.parametrize("packed", [True, False])
def test_a_lineage_whose_outputs_go_together_is_released_once(packed):
    """Task 3 reads both outputs of task 2; when task 3's output goes, both go in the same
    pass and list task 2's lineage twice: what task 2 read is let go of once, not twice."""
    engine = _lineage_engine((lambda call: call.encode()) if packed else None)
    _run_two(engine)
    engine.submit(TaskRecord(3, "third", ("d2v1", "d3v1"), ("d4v1",), "payload-3"))
    engine.task_done(3, {})
    engine.release("d2v1")
    engine.release("d3v1")
    assert engine.versions["d1v1"].dependents == 1
    engine.release("d4v1")
    assert sorted(engine.versions) == ["d1v1"] and engine.versions["d1v1"].dependents == 0


WAIT_PROGRAM = """
    import json
    import runtime.api.functions as functions
    from pycompss.api.task import task
    from pycompss.api.api import compss_wait_on

    functions.FETCH_CHUNK = 2       # several chunks: repeats far apart, nesting across chunks

    @task(returns=1)
    def make(i):
        return {"i": i}

    if __name__ == "__main__":
        a, b, c, d = (make(i) for i in range(4))
        structure = [a, (b, {"x": c, "y": a}), 5, [d, b], a]
        values = compss_wait_on(structure, c)
        first, alone = values
        same = [first[0] is first[1][1]["y"] is first[4], first[1][0] is first[3][1],
                first[1][1]["x"] is alone]
        print("RESULT", json.dumps({"values": values, "same": same}))
"""


@pytest.mark.timeout(120)
def test_wait_on_in_chunks_keeps_order_nesting_and_repeats(program):
    """compss_wait_on fetches in chunks without a dict of every key: a future listed twice
    still gives the same object twice, whichever chunks it falls in."""
    run = assert_same_as_sequential(program(WAIT_PROGRAM))
    values, same = run.result["values"], run.result["same"]
    assert values[0] == [{"i": 0}, [{"i": 1}, {"x": {"i": 2}, "y": {"i": 0}}], 5,
                         [{"i": 3}, {"i": 1}], {"i": 0}] and values[1] == {"i": 2}
    assert same == [True, True, True]
