"""The pure placement policy, no processes: multi-node reservations and @implement variants."""
from runtime.core.engine import Engine
from runtime.core.records import Dispatch, Requirements, TaskRecord, WorkerSlots


def _engine(*units: int) -> Engine:
    engine = Engine()
    engine.placement.mean_duration = 10.0          # long tasks: no prefetch beyond free units
    engine.placement._measured = True
    for index, count in enumerate(units):
        engine.add_worker(WorkerSlots(f"w{index}", f"node{index}", count, 0.0))
    return engine


def _dispatched(instructions) -> dict:
    return {i.task.task_id: i for i in instructions if isinstance(i, Dispatch)}


def test_multi_node_task_reserves_slots_on_distinct_nodes_until_it_ends():
    engine = _engine(2, 2, 2)
    wide = TaskRecord(1, "mpi", (), (), None, Requirements(computing_units=2, nodes=2))
    sent = _dispatched(engine.submit(wide))
    assert set(sent) == {1}
    task = sent[1].task
    assert len(task.co_workers) == 1 and task.co_workers[0] != task.worker
    reserved = {task.worker, *task.co_workers}
    workers = engine.placement.workers
    assert all(workers[w].free_units == 0 for w in reserved)
    # Two one-unit tasks: both go to the one node with room, none to a reserved node.
    followers = {}
    for task_id in (2, 3):
        followers.update(_dispatched(engine.submit(TaskRecord(task_id, "small", (), (), None))))
    assert {d.worker_id for d in followers.values()} <= set(workers) - reserved
    assert len(followers) == 2
    # A third waits: the reserved nodes are full even though their workers run nothing.
    assert not _dispatched(engine.submit(TaskRecord(4, "small", (), (), None)))
    freed = _dispatched(engine.task_done(1, {}, 1.0))
    assert set(freed) == {4} and freed[4].worker_id in reserved
    assert sum(w.foreign_reservations for w in workers.values()) == 0


def test_multi_node_task_waits_for_enough_free_nodes():
    engine = _engine(1, 1)
    assert _dispatched(engine.submit(TaskRecord(1, "busy", (), (), None)))
    wide = TaskRecord(2, "mpi", (), (), None, Requirements(computing_units=1, nodes=2))
    assert not _dispatched(engine.submit(wide))
    assert set(_dispatched(engine.task_done(1, {}, 1.0))) == {2}


def test_more_nodes_than_exist_is_unsatisfiable_at_once():
    engine = _engine(4)
    wide = TaskRecord(1, "mpi", (), ("out",), None, Requirements(computing_units=1, nodes=2))
    engine.submit(wide)
    assert engine.failures and "nodes=2" in engine.failures[0].message
    assert "can never be met" in engine.failures[0].message


def test_implement_variant_is_the_first_that_fits_now():
    engine = _engine(1)
    gpu = Requirements(gpus=1)
    cpu = Requirements(computing_units=1)
    sent = _dispatched(engine.submit(
        TaskRecord(1, "f", (), (), None, gpu, alternatives=(gpu, cpu))))
    assert sent[1].task.variant == 1 and sent[1].task.requirements == cpu
    both = TaskRecord(2, "g", (), (), None, cpu, alternatives=(cpu, cpu))
    engine.task_done(1, {}, 1.0)
    sent = _dispatched(engine.submit(both))
    assert sent[2].task.variant == 0
