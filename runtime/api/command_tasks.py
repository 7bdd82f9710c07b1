"""What @binary, @mpi, @container, @prolog and @epilog share: they sit above @task (PyCOMPSs
order), each records its part on the TaskFunction, and the parts are composed into the one
runner the worker calls instead of the body, whatever order the decorators come in:

    @prolog / @epilog      StagedRunner(prolog, epilog, body = the runner below, or the body)
    @container             on @binary/@mpi: the engine goes before the program (after mpirun);
                           on a plain task: ContainerPythonRunner
    @binary | @mpi         BinaryRunner | MpiRunner (binary) | PythonMpiRunner (no binary)
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

from ..worker.command_line import ParameterSlot, check_placeholders, is_writable_object
from ..worker.commands import BinaryRunner, CommandFields, ContainerSpec, StagedRunner
from ..worker.mpi_commands import MpiFields, MpiRunner
from ..worker.python_commands import ContainerPythonRunner, PythonMpiRunner
from .parameter import IN
from .task import TaskFunction

PARTS = "_command_parts"


@dataclass(frozen=True, slots=True)
class CommandDeclaration:
    kind: str                           # "binary" | "mpi"
    fields: CommandFields | None        # None: a Python MPI task
    mpi: MpiFields | None = None
    working_dir: str | None = None      # of a Python MPI task


def task_function_of(target, decorator: str) -> TaskFunction:
    if isinstance(target, TaskFunction):
        return target
    name = getattr(target, "__qualname__", repr(target))
    raise TypeError(f"{source_of(target)}: {decorator} on '{name}' must be placed above @task "
                    f"(PyCOMPSs order: {decorator}(...), then @task(...), then def)")


def source_of(target) -> str:
    function = getattr(target, "function", target)
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "<unknown>"


def describe(task_function: TaskFunction, decorator: str) -> str:
    return f"{source_of(task_function)}: {decorator} task '{task_function.name}'"


def decorated(target, decorator: str, options: dict | None = None,
              supported: set = frozenset()) -> tuple[TaskFunction, str]:
    """(the task under `decorator`, how errors name it), its `options` checked if given."""
    task_function = task_function_of(target, decorator)
    where = describe(task_function, decorator)
    if options is not None:
        check_options(options, supported, decorator, where)
    return task_function, where


def check_options(options: dict, supported: set, decorator: str, where: str) -> None:
    unknown = sorted(key for key in options if key not in supported
                     and not (decorator == "@mpi" and key.endswith("_layout")))
    if unknown:
        raise TypeError(f"{where}: {decorator} got unknown argument(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(supported))}")


def parameter_slots(task_function: TaskFunction) -> tuple:
    slots = []
    for name, parameter in task_function.parameters.items():
        kind = {inspect.Parameter.VAR_POSITIONAL: "varargs",
                inspect.Parameter.KEYWORD_ONLY: "keyword",
                inspect.Parameter.VAR_KEYWORD: "varkeyword"}.get(parameter.kind, "positional")
        default = task_function.varargs_spec if kind == "varargs" else IN
        slots.append(ParameterSlot(name, kind, task_function.specs.get(name, default)))
    return tuple(slots)


def check_fields(task_function: TaskFunction, fields: dict, where: str) -> None:
    """Every {{name}} in the decorator's strings names a parameter of the function."""
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                      for p in task_function.parameters.values())
    check_placeholders(fields, set(task_function.parameters), where, accepts_any)


def record(task_function: TaskFunction, part: str, value) -> TaskFunction:
    parts = task_function.__dict__.setdefault(PARTS, {})
    parts[part] = value
    parts.setdefault("origin_dir", os.getcwd())
    task_function.runner = compose(task_function, parts)
    return task_function


def compose(task_function: TaskFunction, parts: dict):
    name, where = task_function.name, source_of(task_function)
    slots, origin = parameter_slots(task_function), parts["origin_dir"]
    command, container = parts.get("command"), parts.get("container")
    if command is None:
        base = None if container is None else ContainerPythonRunner(
            name, where, slots, task_function.function, container)
    elif command.kind == "binary":
        base = BinaryRunner(name, where, slots, command.fields, origin, container)
    elif command.fields is not None:
        base = MpiRunner(name, where, slots, command.fields, command.mpi, origin, container)
    else:
        base = PythonMpiRunner(name, where, slots, task_function.function, command.working_dir,
                               command.mpi, origin, container)
    prolog, epilog = parts.get("prolog"), parts.get("epilog")
    if prolog is None and epilog is None:
        return base
    return StagedRunner(name, where, slots, origin, base or task_function.function, prolog,
                        epilog)


def check_returns_exit_value(task_function: TaskFunction, decorator: str, where: str) -> None:
    if task_function.returns > 1:
        raise ValueError(f"{where}: a {decorator} task returns its exit value (one int); "
                         f"returns={task_function.returns} cannot be filled")


def check_python_body_outputs(task_function: TaskFunction, where: str) -> None:
    """A body run in other processes cannot hand back changed objects, only files."""
    for slot in parameter_slots(task_function):
        if is_writable_object(slot.spec):
            raise ValueError(f"{where}: parameter '{slot.name}' is {slot.spec.direction.value}, "
                             f"but the body runs in other processes and its changes to "
                             f"objects are lost; return the value instead, or use a FILE")


def container_spec(engine, image, options, where: str) -> ContainerSpec:
    engine_name = str(engine or "").strip().lower()
    if engine_name not in ("docker", "singularity", "apptainer"):
        raise ValueError(f"{where}: @container engine={engine!r} is not one of DOCKER, "
                         f"SINGULARITY, APPTAINER")
    if not image:
        raise ValueError(f"{where}: @container needs an image")
    return ContainerSpec(engine_name, str(image), str(options or ""))
