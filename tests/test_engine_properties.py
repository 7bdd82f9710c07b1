"""The pure core, no processes: random programs run in random legal orders give the values of
the program run in order. This is what renaming promises: only read-after-write orders tasks."""
from hypothesis import given, settings, strategies as st

from runtime.core.engine import Engine
from runtime.core.params import Direction
from runtime.core.records import Dispatch, TaskRecord, WorkerSlots
from runtime.core.states import TaskState
from runtime.core.versioning import DataRegistry

DIRECTIONS = [Direction.IN, Direction.OUT, Direction.INOUT, Direction.COMMUTATIVE]

access = st.tuples(st.integers(0, 2), st.sampled_from(DIRECTIONS))
program = st.lists(st.lists(access, min_size=1, max_size=3, unique_by=lambda a: a[0]),
                   min_size=1, max_size=25)


def sequential_reference(tasks):
    values = {datum: ("initial", datum) for datum in range(3)}
    observed = []
    for task_id, accesses in enumerate(tasks):
        reads = tuple(values[d] for d, direction in accesses if direction.reads)
        observed.append(reads)
        for datum, direction in accesses:
            if direction.writes:
                values[datum] = (task_id, datum, reads)
    return observed, values


@settings(max_examples=300, deadline=None)
@given(program, st.randoms(use_true_random=False))
def test_any_legal_order_gives_the_sequential_values(tasks, random):
    registry = DataRegistry()
    engine = Engine()
    engine.add_worker(WorkerSlots("w", "node", 1000, 0.0))
    store = {}
    datums = []
    for datum in range(3):
        datum_id, key = registry.new_datum_with_value()
        datums.append(datum_id)
        engine.add_master_value(key, 0)
        store[key] = ("initial", datum)
    runnable = []
    plans = {}
    for task_id, accesses in enumerate(tasks):
        resolved = [(registry.access(datums[d], direction), d, direction)
                    for d, direction in accesses]
        reads = tuple(a.read_key for a, _, direction in resolved if direction.reads)
        writes = tuple(a.write_key for a, _, direction in resolved if direction.writes)
        plans[task_id] = (reads, [(a.write_key, d) for a, d, direction in resolved
                                  if direction.writes])
        record = TaskRecord(task_id, f"t{task_id}", tuple(dict.fromkeys(reads)), writes, None)
        runnable += [i.task.task_id for i in engine.submit(record) if isinstance(i, Dispatch)]
    observed = {}
    while runnable:
        # Like a worker: a dispatched (possibly pipelined) task starts once its inputs exist.
        startable = [i for i, t in enumerate(runnable) if all(k in store for k in plans[t][0])]
        assert startable, "dispatched tasks wait for inputs that nothing will produce"
        task_id = runnable.pop(random.choice(startable))
        reads, writes = plans[task_id]
        values = tuple(store[key] for key in reads)
        observed[task_id] = values
        for key, datum in writes:
            store[key] = (task_id, datum, values)
        runnable += [i.task.task_id for i in engine.task_done(task_id, {})
                     if isinstance(i, Dispatch)]
    expected_reads, expected_final = sequential_reference(tasks)
    assert len(observed) == len(tasks), "every task must have run"
    assert [observed[i] for i in range(len(tasks))] == expected_reads
    for datum in range(3):
        assert store[registry.current_key(datums[datum])] == expected_final[datum]
    assert engine.live_task_count == 0


def test_chain_is_pipelined_to_the_producers_worker():
    engine = Engine()
    engine.add_worker(WorkerSlots("w", "node", 2, 0.0))
    engine.submit(TaskRecord(100, "warm-up", (), ("w1",), None))
    engine.task_done(100, {}, 0.001)       # tasks are known to be short: pipelining allowed
    dispatched = []
    previous = None
    for task_id in range(1, 7):
        reads = (previous,) if previous else ()
        record = TaskRecord(task_id, f"t{task_id}", reads, (f"k{task_id}",), None)
        dispatched += [i for i in engine.submit(record) if isinstance(i, Dispatch)]
        previous = f"k{task_id}"
    # t1 runs; t2.. are sent ahead (up to 2 units + 2 of allowance), each told its input is
    # produced on that same worker.
    assert [i.task.task_id for i in dispatched] == [1, 2, 3, 4]
    assert dispatched[1].sources == (("k1", ()),)
    assert "pipelined" in engine.story(2)[-1][1]
    more = engine.task_done(1, {"k1": 8}, 0.001)
    assert [i.task.task_id for i in more if isinstance(i, Dispatch)] == [5]


def test_nothing_is_pipelined_before_tasks_are_known_to_be_short():
    engine = Engine()
    engine.add_worker(WorkerSlots("w", "node", 1, 0.0))
    first = engine.submit(TaskRecord(1, "t1", (), ("k1",), None))
    second = engine.submit(TaskRecord(2, "t2", ("k1",), ("k2",), None))
    assert [i.task.task_id for i in first] == [1] and second == []


def test_illegal_transition_tells_the_story():
    engine = Engine()
    record = TaskRecord(1, "lonely", (), ("d1v1",), None)
    engine.add_worker(WorkerSlots("w", "node", 1, 0.0))
    engine.submit(record)
    assert record.state is TaskState.RUNNING
    engine.task_done(1, {})
    try:
        engine._move(record, TaskState.RUNNING, "bogus")
    except Exception as error:
        message = str(error)
    assert "illegal move DONE -> RUNNING" in message and "submitted" in message


def test_failure_cancels_successors_transitively():
    engine = Engine()
    engine.add_worker(WorkerSlots("w", "node", 4, 0.0))
    engine.submit(TaskRecord(1, "root", (), ("a",), None))
    engine.submit(TaskRecord(2, "child", ("a",), ("b",), None))
    engine.submit(TaskRecord(3, "grandchild", ("b",), ("c",), None))
    for attempt in (1, 2):              # RETRY (the default): twice more, then for good
        engine.task_failed(1, None, "ValueError: boom")
        assert engine.tasks[1].state is TaskState.RUNNING and engine.live_task_count == 3
    engine.task_failed(1, None, "ValueError: boom")
    assert engine.live_task_count == 0
    assert engine.versions["c"].failure.root_task_id == 1
    assert [f.task_name for f in engine.failures] == ["root"]
