"""@mpi (pycompss.api.mpi): an MPI program, or the task's Python body on every MPI rank.

    @constraint(computing_units=2)          # cores (OpenMP threads) per MPI process
    @mpi(binary="./solver", runner="mpirun", processes=4, processes_per_node=2,
         flags="--report-bindings", args="-n {{size}}", working_dir="{{run_dir}}",
         fail_by_exit_value=True)
    @task(returns=int)
    def solve(size, run_dir): pass          # returns the exit value, as @binary

    @mpi(processes=4, col_layout={"block_count": 4, "block_length": 2, "stride": 2})
    @task(col=COLLECTION_IN, returns=1)
    def partial_sums(col):                  # Python MPI (mpi4py): the body runs on each rank
        from mpi4py import MPI               # with its part of `col`; the task returns the
        return sum(col)                      # list of every rank's result, rank order

`processes` and `processes_per_node` may be ints, "$VAR" or "{{param}}" (decided per call).
The runner (mpirun by default; srun too) gets a hostfile built from the hosts the scheduler
reserved (TaskFunction calls runner.adjust_requirements to reserve them).
"""
from __future__ import annotations

from .binary import command_fields
from .command_tasks import (CommandDeclaration, check_fields, check_python_body_outputs,
                            check_returns_exit_value, decorated, record)
from ..worker.mpi_commands import MpiFields

SUPPORTED = {"binary", "runner", "processes", "processes_per_node", "working_dir", "workingDir",
             "flags", "args", "params", "fail_by_exit_value", "scale_by_cu", "computing_nodes",
             "computingNodes"}
_LAYOUT_KEYS = ("block_count", "block_length", "stride")


def mpi_fields(options: dict, task_function, where: str) -> MpiFields:
    processes = options.get("processes", options.get("computing_nodes",
                                                     options.get("computingNodes", 1)))
    if isinstance(processes, int) and processes < 1:
        raise ValueError(f"{where}: processes={processes} must be at least 1")
    return MpiFields(runner=str(options.get("runner") or "mpirun"), processes=processes,
                     processes_per_node=options.get("processes_per_node"),
                     flags=options.get("flags"),
                     scale_by_cu=options.get("scale_by_cu", False),
                     layouts=_layouts(options, task_function, where))


def _layouts(options: dict, task_function, where: str) -> tuple:
    layouts = []
    for key, layout in options.items():
        if not key.endswith("_layout"):
            continue
        name = key[:-len("_layout")]
        if name not in task_function.parameters:
            raise ValueError(f"{where}: {key} names no parameter '{name}' of the function")
        if not isinstance(layout, dict) or set(layout) - set(_LAYOUT_KEYS):
            raise ValueError(f"{where}: {key} must be a dict with keys among "
                             f"{', '.join(_LAYOUT_KEYS)}, got {layout!r}")
        values = tuple(int(layout.get(field, -1)) for field in _LAYOUT_KEYS)
        if values[0] == -1 and (values[1] != -1 or values[2] != -1):
            raise ValueError(f"{where}: {key} must contain block_count")
        layouts.append((name, values))
    return tuple(layouts)


class mpi:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, **options):
        self.options = options

    def __call__(self, target):
        task_function, where = decorated(target, "@mpi", self.options, SUPPORTED)
        mpi_options = mpi_fields(self.options, task_function, where)
        strings = {name: self.options.get(name) for name in (
            "binary", "runner", "processes", "processes_per_node", "working_dir", "flags",
            "args", "params")}
        check_fields(task_function, strings, where)
        if self.options.get("binary"):
            if mpi_options.layouts:
                raise ValueError(f"{where}: <param>_layout is for Python MPI tasks (no binary)")
            check_returns_exit_value(task_function, "@mpi", where)
            declaration = CommandDeclaration("mpi", command_fields(self.options, where),
                                             mpi_options)
        else:
            check_python_body_outputs(task_function, where)
            working_dir = self.options.get("working_dir", self.options.get("workingDir"))
            declaration = CommandDeclaration("mpi", None, mpi_options, working_dir)
        return record(task_function, "command", declaration)


Mpi = MPI = mpi
