"""@mpi with real MPI (Open MPI's mpirun, mpicc, mpi4py): a C program compiled here and run
with 2 processes, Python MPI tasks checking rank, size and collection layouts, under runcompss
and sequentially; and the pure parts (placement, hostfiles, launcher lines, requirements,
layouts) with hand-made assignments."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO
from helpers_api import api_program, describe, named, run_both, same_in_fresh_folders
from runtime.core.records import Requirements
from runtime.worker.command_line import CommandError
from runtime.worker.mpi_launch import (GENERIC, MPICH, OPEN_MPI, SLURM, flavor_of,
                                       hostfile_text, launcher_arguments, launcher_environment,
                                       place_processes)
from runtime.worker.python_entry import rank_indices, split_for_ranks
from runtime.worker.worker_context import Assignment

pytestmark = pytest.mark.timeout(300)
RING_SOURCE = REPO / "catalog" / "src" / "mpi_ring.c"


@pytest.fixture(scope="module")
def ring_binary(tmp_path_factory):
    """catalog/src/mpi_ring.c, compiled with the MPI compiler wrapper for this run."""
    target = tmp_path_factory.mktemp("mpi") / "mpi_ring"
    subprocess.run(["mpicc", str(RING_SOURCE), "-o", str(target)], check=True, timeout=120)
    return target


# ---- real MPI -------------------------------------------------------------------------------
def test_c_mpi_program_runs_with_two_processes(program, tmp_path, ring_binary):
    path = api_program(program, f"""
        from pycompss.api.mpi import mpi

        RING = {str(ring_binary)!r}


        @mpi(binary=RING, runner="mpirun", processes=2, fail_by_exit_value=True)
        @task(result=FILE_OUT, returns=int)
        def ring(rounds, result):
            pass


        @mpi(binary=RING, processes="{{{{count}}}}", args="{{{{rounds}}}} {{{{result}}}}")
        @task(result=FILE_OUT, returns=int)
        def ring_of(count, rounds, result):
            pass


        @mpi(binary=RING, processes=2)
        @task(returns=int)
        def ring_without_arguments():
            pass


        def read(path):
            with open(path) as handle:
                return handle.read()
    """, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            first = os.path.join(folder, "ring2.txt")
            report("exit", compss_wait_on(ring(5, first)))
            compss_wait_on_file(first)
            report("two processes", read(first))
            outputs = [os.path.join(folder, f"ring_of{n}.txt") for n in (1, 2)]
            codes = [ring_of(n, 3, output) for n, output in zip((1, 2), outputs)]
            report("dynamic exits", compss_wait_on(codes))
            for output in outputs:
                compss_wait_on_file(output)
            report("dynamic processes", [read(output) for output in outputs])
            report("usage error exit value", compss_wait_on(ring_without_arguments()))
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    results = named(distributed)
    assert results["exit"] == 0
    # independent reference: the token gains 1 + 2 on each of 5 rounds round 2 processes
    assert results["two processes"] == f"2 {5 * (1 + 2)}\n"
    assert results["dynamic exits"] == [0, 0]
    assert results["dynamic processes"] == [f"1 {3 * 1}\n", f"2 {3 * (1 + 2)}\n"]
    assert results["usage error exit value"] == 2      # fail_by_exit_value defaults to False
    jobs = distributed.log_dir / "jobs"
    output = "".join(p.read_text() for p in jobs.glob("job*_NEW.out"))
    assert "mpi_ring: 2 processes, 5 rounds, token 15" in output
    assert "mpi_ring: 2 processes" in sequential.stdout


def test_python_mpi_rank_size_layout_and_per_rank_returns(program, tmp_path):
    path = api_program(program, """
        from pycompss.api.mpi import mpi


        @mpi(runner="mpirun", processes=2,
             values_layout={"block_count": 2, "block_length": 3, "stride": 3})
        @task(values=COLLECTION_IN, returns=1)
        def laid_out(values, offset):
            from mpi4py import MPI
            world = MPI.COMM_WORLD
            total = world.allreduce(sum(values))
            return [world.rank, world.size, list(values), offset, total]


        @mpi(processes=2)
        @task(returns=2)
        def one_future_per_rank(text):
            from mpi4py import MPI
            return f"{text}-{MPI.COMM_WORLD.rank}"


        @mpi(processes=2, values_layout={"block_count": 4})
        @task(values=COLLECTION_IN, result=FILE_OUT, returns=1)
        def round_robin(values, result):
            from mpi4py import MPI
            rank = MPI.COMM_WORLD.rank
            if rank == 0:
                with open(result, "w") as handle:
                    handle.write("written by rank 0")
            return values


        @task(returns=1)
        def total(per_rank):
            return sum(item[4] for item in per_rank) // len(per_rank)
    """, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            values = list(range(10, 17))
            per_rank = laid_out(values, 100)
            report("per rank", compss_wait_on(per_rank))
            report("future as input", compss_wait_on(total(laid_out(values, 0))))
            report("unpacked", list(compss_wait_on(one_future_per_rank("r"))))
            result = os.path.join(folder, "rank0.txt")
            report("round robin", compss_wait_on(round_robin(list("abcdefg"), result)))
            compss_wait_on_file(result)
            with open(result) as handle:
                report("file output", handle.read())
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    results = named(distributed)
    # independent reference (PyCOMPSs' layout): rank r gets blocks r, r + 2, ... of
    # block_length elements starting every stride elements; element 16 is in no block.
    values = list(range(10, 17))
    expected_parts = [values[0:3], values[3:6]]
    total = sum(values[0:6])
    assert results["per rank"] == [[rank, 2, expected_parts[rank], 100, total]
                                   for rank in range(2)]
    assert results["future as input"] == total
    assert results["unpacked"] == ["r-0", "r-1"]
    # block_count 4 > 2 processes: blocks round-robin, rank 0 gets 0 and 2, rank 1 gets 1, 3
    assert results["round robin"] == [["a", "c"], ["b", "d"]]
    assert results["file output"] == "written by rank 0"


def test_python_mpi_failure_names_the_rank(program, tmp_path):
    path = api_program(program, """
        from pycompss.api.mpi import mpi


        @mpi(processes=2)
        @task(returns=1)
        def fails_on_rank_one():
            from mpi4py import MPI
            if MPI.COMM_WORLD.rank == 1:
                raise ValueError("bad input on rank one")
            MPI.COMM_WORLD.barrier()       # rank 0 would wait for ever without the abort
            return 0


        if __name__ == "__main__":
            try:
                compss_wait_on(fails_on_rank_one())
                report("error", None)
            except Exception as error:
                report("error", describe_error(error))
    """)
    sequential, distributed = run_both(path, cwd=tmp_path, timeout=120)
    assert distributed.returncode == 1, describe(distributed)
    for run in (sequential, distributed):
        kind, message = named(run)["error"]
        assert kind == "CommandError", describe(run)
        assert "task 'fails_on_rank_one'" in message
        assert "rank 1 raised ValueError: bad input on rank one" in message


def test_more_processes_than_cores_is_refused_not_oversubscribed(program, tmp_path):
    cores = os.cpu_count()
    path = api_program(program, f"""
        from pycompss.api.mpi import mpi


        @mpi(processes={cores + 1})
        @task(returns=1)
        def too_big():
            return 0


        if __name__ == "__main__":
            try:
                compss_wait_on(too_big())
                report("error", None)
            except Exception as error:
                report("error", describe_error(error))
    """)
    from conftest import run_program
    run = run_program(path, cwd=tmp_path)          # runcompss: this machine's cores
    assert run.returncode == 1, describe(run)
    kind, message = named(run)["error"]
    assert "too_big" in message and str(cores + 1) in message, message


def test_misplaced_layout_and_object_outputs_are_refused(program):
    from conftest import run_program
    for source, expected in (
            ("""
            @mpi(processes=2, other_layout={"block_count": 2})
            @task(values=COLLECTION_IN)
            def f(values):
                pass
            """, "other_layout names no parameter 'other'"),
            ("""
            @mpi(processes=2)
            @task(values=INOUT)
            def f(values):
                pass
            """, "parameter 'values' is INOUT"),
            ("""
            @mpi(processes="{{count}}")
            @task()
            def f(n):
                pass
            """, "refers to {{count}}, not a parameter of the function")):
        path = api_program(program, "from pycompss.api.mpi import mpi\n", source)
        run = run_program(path, mode="python")
        assert run.returncode != 0 and expected in run.stderr, describe(run)


# ---- placement, hostfiles, launcher lines (hand-made assignments) ----------------------------
def _assignment(*hosts):
    return Assignment(task_id=7, units=hosts[0][1], hosts=tuple(hosts), sandbox="/tmp/job7")


def test_hostfile_from_a_multi_node_assignment():
    assignment = _assignment(("node1", 8), ("node2", 8))
    placement = place_processes(assignment.hosts, 8, 4, "t")
    assert placement.hosts == (("node1", 4), ("node2", 4))
    assert placement.cores_per_process == 2              # 8 cores for 4 processes per node
    assert hostfile_text(OPEN_MPI, placement) == "node1\n" * 4 + "node2\n" * 4
    assert hostfile_text(MPICH, placement) == "node1:4\nnode2:4\n"
    assert hostfile_text(SLURM, placement) is None


def test_processes_fill_the_reserved_cores_without_processes_per_node():
    placement = place_processes((("a", 4), ("b", 2)), 6, None, "t")
    assert placement.hosts == (("a", 4), ("b", 2)) and placement.cores_per_process == 1
    placement = place_processes((("here", 6),), 3, None, "t")
    assert placement.hosts == (("here", 3),) and placement.cores_per_process == 2


@pytest.mark.parametrize("hosts, processes, per_node, fragment", [
    ((("a", 2),), 3, None, "3 MPI processes but only 2 cores"),
    ((("a", 4),), 4, 2, "need 2 nodes, but the task was given 1"),
    ((("a", 1), ("b", 1)), 4, 2, "2 processes on a but only 1 cores"),
])
def test_never_more_processes_than_reserved_slots(hosts, processes, per_node, fragment):
    with pytest.raises(CommandError, match="refusing to oversubscribe") as error:
        place_processes(hosts, processes, per_node, "task 'x'")
    assert fragment in str(error.value)


def test_launcher_lines():
    placement = place_processes((("n1", 4), ("n2", 4)), 8, 4, "t")
    assert launcher_arguments(OPEN_MPI, "/usr/bin/mpirun", placement, "/s/hostfile", 4,
                              ["--report-bindings"], ("OMP_NUM_THREADS",)) == [
        "/usr/bin/mpirun", "--hostfile", "/s/hostfile", "-n", "8", "--bind-to", "none",
        "-x", "OMP_NUM_THREADS", "--report-bindings"]
    assert launcher_arguments(MPICH, "mpiexec", placement, "/s/hostfile", 4, []) == [
        "mpiexec", "-f", "/s/hostfile", "-n", "8"]
    assert launcher_arguments(SLURM, "srun", placement, None, 4, ["--mpi=pmix"]) == [
        "srun", "--nodes=2", "--ntasks=8", "--cpus-per-task=1", "--nodelist=n1,n2",
        "--ntasks-per-node=4", "--mpi=pmix"]
    assert launcher_arguments(GENERIC, "mympirun", place_processes((("h", 2),), 2, None, "t"),
                              None, None, []) == ["mympirun", "-n", "2"]


def test_flavor_of_the_installed_mpirun_and_root_environment(monkeypatch):
    monkeypatch.delenv("COMPSS_MPIRUN_TYPE", raising=False)
    assert flavor_of(shutil.which("mpirun"), "t", True) == OPEN_MPI
    assert flavor_of("/opt/slurm/bin/srun", "t", True) == SLURM
    monkeypatch.setenv("COMPSS_MPIRUN_TYPE", "impi")
    assert flavor_of(shutil.which("mpirun"), "t", True) == "impi"
    environment = launcher_environment({})
    if os.geteuid() == 0:
        assert environment == {"OMPI_ALLOW_RUN_AS_ROOT": "1",
                               "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    else:
        assert environment == {}


def test_adjust_requirements_maps_processes_to_cores_and_nodes():
    from runtime.api.constraint import constraint
    from runtime.api.mpi import mpi
    from runtime.api.task import task

    @mpi(processes="{{count}}", processes_per_node=2)
    @task()
    def per_node(count):
        pass

    @constraint(computing_units=3)
    @mpi(processes=4)
    @task()
    def hybrid():
        pass

    @constraint(computing_units=2)
    @mpi(processes=2, scale_by_cu=True)
    @task()
    def scaled():
        pass

    base = Requirements(computing_units=1)
    assert per_node.runner.adjust_requirements(base, {"count": 6}) == Requirements(
        computing_units=2, nodes=3)
    assert hybrid.runner.adjust_requirements(Requirements(computing_units=3), {}) == \
        Requirements(computing_units=12, nodes=1)
    assert scaled.runner.adjust_requirements(Requirements(computing_units=2), {}) == \
        Requirements(computing_units=4, nodes=1)
    with pytest.raises(CommandError, match="not a multiple of processes_per_node"):
        per_node.runner.adjust_requirements(base, {"count": 5})


def test_layout_indices_follow_pycompss():
    # one block per rank (block_count == size): [rank * stride, + block_length)
    assert [rank_indices((4, 2, 1), r, 4, 10) for r in range(4)] == [[0, 1], [1, 2], [2, 3],
                                                                     [3, 4]]
    # defaults: block_count = size, block_length = 1, stride = 1
    assert [rank_indices((-1, -1, -1), r, 3, 10) for r in range(3)] == [[0], [1], [2]]
    # more blocks than ranks: round robin, in collection order; past the end is dropped
    assert rank_indices((5, 2, 3), 0, 2, 13) == [0, 1, 6, 7, 12]
    (shared_args, _), parts = split_for_ranks(([1, 2, 3, 4], "x"), {}, [(("arg", 0),
                                                                          (2, 2, 2))], 2)
    assert shared_args == [None, "x"] and parts == [{("arg", 0): [1, 2]}, {("arg", 0): [3, 4]}]


def test_runner_writes_the_hostfile_of_a_multi_node_assignment(tmp_path, monkeypatch):
    """What the scheduler's multi-node reservation turns into: the runner, called as a worker
    calls it with a hand-made two-host task entry, writes the hostfile and launches mpirun
    (a stand-in here, which records its arguments: no second host exists)."""
    from runtime.api.mpi import mpi
    from runtime.api.task import task
    from runtime.worker.worker_context import set_running_task
    record = tmp_path / "launch"
    folder = tmp_path / "bin"
    folder.mkdir()
    stand_in = folder / "mpirun"
    stand_in.write_text('#!/bin/sh\ncp "$2" "$RECORD.hostfile"\nprintf "%s\\n" "$@" > "$RECORD"\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("COMPSS_MPIRUN_TYPE", "ompi")
    monkeypatch.setenv("RECORD", str(record))

    @mpi(binary="true", runner="mpirun", processes=4, processes_per_node=2)
    @task(returns=int)
    def solver(size):
        pass

    sandbox = tmp_path / "job1"
    # what the scheduler's dispatch puts in the entry of a task reserved on two nodes
    set_running_task({"id": 1, "units": 2, "hosts": [["node1", 2], ["node2", 2]]}, str(sandbox))
    try:
        assert solver.runner(10) == 0
    finally:
        set_running_task(None)
    assert (tmp_path / "launch.hostfile").read_text() == "node1\nnode1\nnode2\nnode2\n"
    assert record.read_text().splitlines() == [
        "--hostfile", str(sandbox / "hostfile"), "-n", "4", "--bind-to", "none",
        "-x", "OMP_NUM_THREADS", "-x", "PYTHONPATH", shutil.which("true"), "10"]
    assert not sandbox.exists()          # made for the command, removed after it


# ---- a task spanning two worker nodes ----------------------------------------------------------
def test_mpi_task_spans_two_worker_nodes_with_a_hostfile_built_for_it(program, tmp_path,
                                                                     ring_binary):
    """Two nodes of one unit each (tests/data/resources/two_nodes.xml, both on this machine):
    a 2-process task with one process per node can only run with a slot reserved on each, and
    its ranks see both nodes; the C program gives the same token as with 2 local processes."""
    from conftest import TWO_NODES, run_program
    path = api_program(program, f"""
        from pycompss.api.mpi import mpi

        RING = {str(ring_binary)!r}


        @mpi(processes=2, processes_per_node=1)
        @task(returns=1)
        def where():
            from mpi4py import MPI
            return [MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size, os.environ["COMPSS_HOSTNAMES"]]


        @mpi(binary=RING, processes=2, processes_per_node=1, fail_by_exit_value=True)
        @task(result=FILE_OUT, returns=int)
        def ring(rounds, result):
            pass
    """, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            report("ranks", compss_wait_on(where()))
            output = os.path.join(folder, "ring.txt")
            report("exit", compss_wait_on(ring(4, output)))
            compss_wait_on_file(output)
            with open(output) as handle:
                report("ring", handle.read())
    """)
    run = run_program(path, resources=TWO_NODES, args=[tmp_path], timeout=240)
    assert run.returncode == 0, run.stderr
    results = named(run)
    assert [rank for rank, _, _ in results["ranks"]] == [0, 1]
    assert {size for _, size, _ in results["ranks"]} == {2}
    # the task runs on either node; both are in its list, the running one first
    assert {tuple(sorted(hosts.split(","))) for _, _, hosts in results["ranks"]} == {
        ("127.0.0.1", "localhost")}
    assert results["exit"] == 0 and results["ring"] == f"2 {4 * (1 + 2)}\n"
