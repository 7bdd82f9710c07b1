"""@mpi: launching processes on the reserved hosts, and the runner of an MPI binary (the
Python @mpi runner, which shares the launch, is in python_commands).

    runner(*args) on the worker
      │ processes / processes_per_node ({{param}}, $VAR) → Placement on Assignment.hosts
      │ hostfile in the sandbox → mpirun --hostfile F -n P [flags] [container] program
      ▼
    binary:  program = the binary + its arguments          → the exit value (an int)
    Python:  program = python -m runtime.worker.python_entry --mpi DIR
             DIR/call.pkl (body, arguments, layouts) ──► every rank runs the body on its part
             DIR/results.pkl ◄── rank 0 gathers [result of rank 0, rank 1, ...] → that list

Requirements: `processes` MPI processes of `computing_units` cores each (the @constraint,
OpenMP threads per process; with scale_by_cu one process per core instead) are
`processes_per_node` × computing_units cores on each of processes ÷ processes_per_node nodes,
or all of them on one node when processes_per_node is not given.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass

from .command_line import CommandError, resolve_flag, substitute
from .commands import BinaryRunner, Call, CommandFields, CommandRunner, ContainerSpec
from .mpi_launch import (Placement, flavor_of, hostfile_text, launcher_arguments,
                         launcher_environment, place_processes)
from .worker_context import current_assignment

@dataclass(frozen=True, slots=True)
class MpiFields:
    runner: str = "mpirun"
    processes: object = 1
    processes_per_node: object = None
    flags: str | None = None
    scale_by_cu: object = False
    layouts: tuple = ()         # ((parameter, (block_count, block_length, stride)), ...)


class MpiLaunch(CommandRunner):
    """What both @mpi runners share: process counts, placement, the launcher's argv."""

    mpi: MpiFields

    def counts(self, values: dict, computing_units: int, where: str) -> tuple[int, int | None]:
        """(processes, processes per node) after {{param}}/$VAR and scale_by_cu."""
        processes = _whole_number(self.mpi.processes, values, where, "processes")
        per_node = None
        if self.mpi.processes_per_node not in (None, "", 0):
            per_node = _whole_number(self.mpi.processes_per_node, values, where,
                                     "processes_per_node")
        if resolve_flag(self.mpi.scale_by_cu, where, "scale_by_cu"):
            processes *= computing_units
            per_node = per_node * computing_units if per_node else None
        if per_node and processes % per_node:
            raise CommandError(f"{where}: processes={processes} is not a multiple of "
                               f"processes_per_node={per_node}")
        return processes, per_node

    def adjust_requirements(self, requirements, arguments: dict):
        """Per call: the cores and nodes the scheduler must reserve for this task's processes.
        `requirements` come from @constraint (computing_units = cores per MPI process)."""
        where = self.describe()
        values = _flatten_arguments(self.slots, arguments)
        units = max(1, requirements.computing_units)
        processes, per_node = self.counts(values, units, where)
        per_process = 1 if resolve_flag(self.mpi.scale_by_cu, where, "scale_by_cu") else units
        if per_node:
            return dataclasses.replace(requirements, computing_units=per_node * per_process,
                                       nodes=processes // per_node)
        return dataclasses.replace(requirements, computing_units=processes * per_process,
                                   nodes=1)

    def full_argv(self, program: list, call: Call, cwd: str, environment: dict) -> list:
        """mpirun (or srun...) on the reserved hosts, then the container and the program."""
        assignment = current_assignment()
        processes, per_node = self._counts_at_run_time(call.values, assignment, call.where)
        placement = place_processes(assignment.hosts, processes, per_node, call.where)
        runner = substitute(self.mpi.runner, call.values, call.where)
        runner_path = shutil.which(runner, path=environment.get("PATH", os.defpath))
        if runner_path is None:
            raise CommandError(f"{call.where}: MPI runner '{runner}' not found on PATH "
                               f"({environment.get('PATH', '')})")
        flavor = flavor_of(runner_path, call.where, len(placement.hosts) > 1)
        hostfile = self._write_hostfile(flavor, placement, call.sandbox)
        environment["OMP_NUM_THREADS"] = str(placement.cores_per_process)
        launcher_environment(environment)
        flags = (substitute(self.mpi.flags, call.values, call.where).split() if self.mpi.flags
                 else [])
        argv = launcher_arguments(flavor, runner_path, placement, hostfile, per_node, flags,
                                  ("OMP_NUM_THREADS", "PYTHONPATH"))
        return argv + super().full_argv(program, call, cwd, environment)

    def container_environment(self, environment: dict) -> dict:
        return {"OMP_NUM_THREADS": environment["OMP_NUM_THREADS"]}

    def _counts_at_run_time(self, values, assignment, where):
        # The reserved cores already include processes × cores per process (see
        # adjust_requirements); with scale_by_cu every reserved core is one process.
        if resolve_flag(self.mpi.scale_by_cu, where, "scale_by_cu"):
            per_node = assignment.hosts[0][1] if self.mpi.processes_per_node else None
            return sum(cores for _, cores in assignment.hosts), per_node
        return self.counts(values, 1, where)

    @staticmethod
    def _write_hostfile(flavor: str, placement: Placement, sandbox: str) -> str | None:
        text = hostfile_text(flavor, placement)
        if text is None:
            return None
        path = os.path.join(sandbox, "hostfile")
        with open(path, "w") as handle:
            handle.write(text)
        return path


class MpiRunner(MpiLaunch, BinaryRunner):
    """@mpi(binary=...): the exit value of the MPI program, as for @binary."""

    kind = "@mpi"

    def __init__(self, name: str, where: str, slots: tuple, fields: CommandFields,
                 mpi: MpiFields, origin_dir: str, container: ContainerSpec | None = None):
        super().__init__(name, where, slots, fields, origin_dir, container)
        self.mpi = mpi


# ---- helpers -----------------------------------------------------------------------------------
def _whole_number(value, values: dict, where: str, field_name: str) -> int:
    text = substitute(value, values, where) if isinstance(value, str) else value
    try:
        number = int(str(text).strip())
    except (TypeError, ValueError):
        raise CommandError(f"{where}: {field_name}={value!r} gave {text!r}, not a whole "
                           f"number") from None
    if number < 1:
        raise CommandError(f"{where}: {field_name}={value!r} gave {number}; it must be >= 1")
    return number


def _flatten_arguments(slots: tuple, arguments: dict) -> dict:
    """bound.arguments with the **kwargs dict opened, so {{name}} finds keyword arguments."""
    values = dict(arguments)
    for slot in slots:
        if slot.kind == "varkeyword" and isinstance(arguments.get(slot.name), dict):
            values.update(values.pop(slot.name))
        elif slot.kind == "varargs" and slot.name in values:
            values[slot.name] = list(values[slot.name])
    return values


__all__ = ["MpiFields", "MpiLaunch", "MpiRunner"]
