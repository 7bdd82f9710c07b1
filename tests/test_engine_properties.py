"""The pure core, no processes: random programs run in random legal orders give the values of
the program run in order. This is what renaming promises: only read-after-write orders tasks."""
from hypothesis import given, settings, strategies as st

from runtime.core.engine import Engine
from runtime.core.failures import MAX_WORKER_KILLS
from runtime.core.params import Direction
from runtime.core.failures import FailurePolicy
from runtime.core.records import (MASTER, CancelRunning, DeleteVersions, Dispatch, TaskRecord,
                                  UseDefaults, WorkerSlots)
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


# ---- failures and lost workers ----------------------------------------------------------------

class SimulatedCluster:
    """Workers as the engine's instructions describe them: each holds the versions it made or
    fetched, and starts a dispatched task only once every input is really there (in its own
    store, or at a live location the Dispatch named). A wrong location, a deleted version
    still needed, or a task left waiting on a dead worker shows up as a run that is stuck."""

    def __init__(self, engine, initial: dict):
        self.engine = engine
        self.stores = {MASTER: dict(initial)}
        self.dispatched = {}          # task id -> (worker, {key: locations})
        self.next_worker = 0

    def add_worker(self) -> None:
        worker_id = f"w{self.next_worker}"
        self.next_worker += 1
        self.stores[worker_id] = {}
        self.carry_out(self.engine.add_worker(WorkerSlots(worker_id, "node", 2, 0.0)))

    def live_workers(self) -> list:
        return [w for w in self.stores if w != MASTER]

    def carry_out(self, instructions) -> None:
        for instruction in instructions:
            if isinstance(instruction, Dispatch):
                sources = {key: locations for key, locations in instruction.sources}
                self.dispatched[instruction.task.task_id] = (instruction.worker_id, sources)
            elif isinstance(instruction, CancelRunning):
                placed = self.dispatched.get(instruction.task_id)
                if placed and placed[0] == instruction.worker_id:
                    del self.dispatched[instruction.task_id]
            elif isinstance(instruction, DeleteVersions):
                self.stores.get(instruction.location, {}).pop(instruction.keys[0], None)
            elif isinstance(instruction, UseDefaults):
                for key in instruction.keys:
                    self.stores[MASTER][key] = ("default", key)

    def input_of(self, worker: str, key: str, sources: dict):
        if key in self.stores[worker]:
            return True, self.stores[worker][key]
        for location in sources.get(key, ()):
            if location in self.stores and key in self.stores[location]:
                return True, self.stores[location][key]
        return False, None

    def startable(self, plans: dict) -> list:
        ready = []
        for task_id, (worker, sources) in self.dispatched.items():
            if all(self.input_of(worker, key, sources)[0] for key in plans[task_id][0]):
                ready.append(task_id)
        return sorted(ready)

    def run(self, task_id: int, plans: dict, observed: dict) -> None:
        worker, sources = self.dispatched.pop(task_id)
        reads, writes = plans[task_id]
        values = tuple(self.input_of(worker, key, sources)[1] for key in reads)
        for key, value in zip(reads, values):
            self.stores[worker][key] = value          # a fetched input stays cached there
        observed.setdefault(task_id, []).append(values)
        for key, datum in writes:
            self.stores[worker][key] = (task_id, datum, values)
        self.carry_out(self.engine.task_done(task_id, {key: 1 for key, _ in writes}, 0.001))

    def fail(self, task_id: int) -> None:
        del self.dispatched[task_id]
        self.carry_out(self.engine.task_failed(task_id, None, "OSError: flaky"))

    def kill(self, worker: str) -> None:
        del self.stores[worker]
        for task_id in [t for t, (w, _) in self.dispatched.items() if w == worker]:
            del self.dispatched[task_id]
        self.carry_out(self.engine.worker_lost(worker, f"{worker} killed", replaced=True))
        self.add_worker()


@settings(max_examples=200, deadline=None)
@given(program, st.randoms(use_true_random=False), st.integers(0, MAX_WORKER_KILLS - 1),
       st.floats(0, 0.3))
def test_failures_and_lost_workers_still_give_the_sequential_values(tasks, random, kills,
                                                                     failure_rate):
    """Random programs; tasks fail at random (at most twice each, so RETRY always ends in
    success) and workers are killed at random moments, each replaced (fewer times than would
    make a task running on all of them a suspected killer). Every run
    of every task, re-runs included, must read what the sequential program reads, and the
    final version of every datum must be held by a live worker (made again if it was lost)."""
    registry = DataRegistry()
    engine = Engine()
    datums, initial = [], {}
    for datum in range(3):
        datum_id, key = registry.new_datum_with_value()
        datums.append(datum_id)
        engine.add_master_value(key, 0)
        initial[key] = ("initial", datum)
    cluster = SimulatedCluster(engine, initial)
    for _ in range(2):
        cluster.add_worker()
    plans = {}
    for task_id, accesses in enumerate(tasks):
        resolved = [(registry.access(datums[d], direction), d, direction)
                    for d, direction in accesses]
        reads = tuple(dict.fromkeys(a.read_key for a, _, direction in resolved
                                    if direction.reads))
        plans[task_id] = (reads, [(a.write_key, d) for a, d, direction in resolved
                                  if direction.writes])
        record = TaskRecord(task_id, f"t{task_id}", reads,
                            tuple(k for k, _ in plans[task_id][1]), object())
        cluster.carry_out(engine.submit(record))
    observed, failed_attempts = {}, {}
    for _ in range(10 * len(tasks) + 50):
        startable = cluster.startable(plans)
        if not startable and not engine.tasks:
            break
        stuck = [(t.task_id, t.state, engine.story(t.task_id)) for t in engine.tasks.values()]
        assert startable, f"stuck: {stuck}"
        if kills and random.random() < 0.15:
            kills -= 1
            cluster.kill(random.choice(cluster.live_workers()))
            continue
        task_id = random.choice(startable)
        if failed_attempts.get(task_id, 0) < 2 and random.random() < failure_rate:
            failed_attempts[task_id] = failed_attempts.get(task_id, 0) + 1
            cluster.fail(task_id)
        else:
            cluster.run(task_id, plans, observed)
    expected_reads, expected_final = sequential_reference(tasks)
    assert engine.live_task_count == 0 and not engine.failures, engine.failures
    for task_id in range(len(tasks)):
        assert observed[task_id] and set(observed[task_id]) == {expected_reads[task_id]}
    for datum in range(3):
        key = registry.current_key(datums[datum])
        holders = [location for location in engine.versions[key].locations
                   if key in cluster.stores.get(location, {})]
        assert holders, f"the final version {key} is held nowhere"
        assert all(cluster.stores[h][key] == expected_final[datum] for h in holders)


def test_a_lost_value_is_made_again_from_its_lineage():
    """a -> b -> c on one worker; the application keeps c only. The worker dies: c is made
    again, and so are b and a, whose records were kept for that (a and b as tombstones)."""
    engine = Engine()
    engine.add_worker(WorkerSlots("w0", "node", 1, 0.0))
    engine.add_worker(WorkerSlots("w1", "node", 1, 0.0))
    for task_id, reads, writes in ((1, (), ("a",)), (2, ("a",), ("b",)), (3, ("b",), ("c",))):
        dispatched = [i for i in engine.submit(TaskRecord(task_id, f"t{task_id}", reads, writes,
                                                          object())) if isinstance(i, Dispatch)]
        assert [i.worker_id for i in dispatched] == ["w0"] or task_id > 1
        engine.task_done(task_id, {writes[0]: 8}, 1.0)
        engine.placement.workers["w1"].free_units = 0          # keep everything on w0
    engine.placement.workers["w1"].free_units = 1
    for key in ("a", "b"):
        engine.release(key)
    assert engine.versions["a"].locations == () and engine.versions["a"].dependents == 1
    instructions = engine.worker_lost("w0", "w0 killed")
    assert [i.task.task_id for i in instructions if isinstance(i, Dispatch)] == [1]
    assert "made again" in engine.story(1)[-3][1]
    for task_id, key in ((1, "a"), (2, "b"), (3, "c")):
        assert engine.tasks[task_id].state is TaskState.RUNNING
        more = engine.task_done(task_id, {key: 8}, 1.0)
        if task_id < 3:
            assert [i.task.task_id for i in more if isinstance(i, Dispatch)] == [task_id + 1]
    assert engine.versions["c"].locations == ("w1",) and engine.live_task_count == 0
    engine.release("c")
    assert engine.versions == {}, "releasing the last value lets go of its whole lineage"


POLICIES = [FailurePolicy.RETRY, FailurePolicy.CANCEL_SUCCESSORS, FailurePolicy.IGNORE]


@settings(max_examples=200, deadline=None)
@given(program, st.randoms(use_true_random=False),
       st.lists(st.tuples(st.booleans(), st.sampled_from(POLICIES)), min_size=25, max_size=25),
       st.integers(0, MAX_WORKER_KILLS - 1))
def test_policies_decide_what_runs_and_what_successors_read(tasks, random, behaviour, kills):
    """Some tasks always fail, each under a random policy. Reference: run the program in
    order, where a failing IGNORE task's outputs are its defaults, any other failing task's
    outputs are errors, and a task reading an error does not run (its outputs are errors
    too). The engine must run exactly the tasks the reference runs, on the same inputs, and
    mark every other output failed (None at wait_on below CANCEL_SUCCESSORS only)."""
    registry, engine = DataRegistry(), Engine()
    datums, initial, plans, failing = [], {}, {}, set()
    for datum in range(3):
        datum_id, key = registry.new_datum_with_value()
        datums.append(datum_id)
        engine.add_master_value(key, 0)
        initial[key] = ("initial", datum)
    cluster = SimulatedCluster(engine, initial)
    cluster.add_worker()
    cluster.add_worker()
    reference, ran_in_reference = dict(initial), {}
    for task_id, accesses in enumerate(tasks):
        resolved = [(registry.access(datums[d], direction), d, direction)
                    for d, direction in accesses]
        reads = tuple(dict.fromkeys(a.read_key for a, _, direction in resolved
                                    if direction.reads))
        writes = [(a.write_key, d) for a, d, direction in resolved if direction.writes]
        plans[task_id] = (reads, writes)
        fails, policy = behaviour[task_id]
        values = tuple(reference[key] for key in reads)
        if any(value == "error" for value in values):
            outputs = ["error"] * len(writes)
        elif fails:
            failing.add(task_id)
            outputs = [("default", key) if policy is FailurePolicy.IGNORE else "error"
                       for key, _ in writes]
        else:
            ran_in_reference[task_id] = values
            outputs = [(task_id, d, values) for _, d in writes]
        reference.update((key, value) for (key, _), value in zip(writes, outputs))
        record = TaskRecord(task_id, f"t{task_id}", reads, tuple(k for k, _ in writes),
                            object(), on_failure=policy)
        cluster.carry_out(engine.submit(record))
    observed = {}
    for _ in range(20 * len(tasks) + 50):
        startable = cluster.startable(plans)
        if not startable:
            break
        if kills and random.random() < 0.1:
            kills -= 1
            cluster.kill(random.choice(cluster.live_workers()))
            continue
        task_id = random.choice(startable)
        if task_id in failing:
            cluster.fail(task_id)
        else:
            cluster.run(task_id, plans, observed)
    assert engine.live_task_count == 0, "every task ends: run, failed or cancelled"
    assert {t: runs[0] for t, runs in observed.items()} == ran_in_reference
    assert all(len(set(runs)) == 1 for runs in observed.values())
    for key, value in reference.items():
        version = engine.versions.get(key)
        if version is None or key in initial:
            continue
        if value == "error":
            assert version.failure is not None, key
            root = behaviour[version.failure.root_task_id][1]
            assert version.failure.none_on_wait == (root is FailurePolicy.CANCEL_SUCCESSORS)
        else:
            assert version.failure is None and any(
                cluster.stores.get(location, {}).get(key) == value
                for location in version.locations), key
