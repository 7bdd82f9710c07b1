"""@binary (pycompss.api.binary): the task runs a program instead of its (empty) body.

    @binary(binary="grep", working_dir=".", args=None, fail_by_exit_value=False)
    @task(infile=FILE_IN_STDIN, result=FILE_OUT_STDOUT, returns=int)
    def grepper(keyword, infile, result): pass          # grep Hi < infile > result

The parameters, in order, form the command line (see runtime.worker.command_line); with `args`
only that template does. The task's result is the program's exit value (an int), unless
fail_by_exit_value (a bool, or an environment variable's name) makes a non-zero exit fail it.
"""
from __future__ import annotations

from ..worker.commands import CommandFields
from .command_tasks import (CommandDeclaration, check_fields, check_returns_exit_value,
                            decorated, record)

SUPPORTED = {"binary", "working_dir", "workingDir", "args", "params", "fail_by_exit_value",
             "engine", "image"}


def command_fields(options: dict, where: str) -> CommandFields:
    """The fields @binary and @mpi share; `params` and `workingDir` are the older names."""
    if "args" in options and "params" in options:
        raise TypeError(f"{where}: give args or params (its older name), not both")
    return CommandFields(
        binary=str(options["binary"]),
        args=options.get("args", options.get("params")),
        working_dir=options.get("working_dir", options.get("workingDir")),
        fail_by_exit_value=options.get("fail_by_exit_value", False))


class binary:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, **options):
        self.options = options

    def __call__(self, target):
        task_function, where = decorated(target, "@binary", self.options, SUPPORTED)
        if not self.options.get("binary"):
            raise TypeError(f"{where}: @binary needs binary=...")
        fields = command_fields(self.options, where)
        check_fields(task_function, {"binary": fields.binary, "args": fields.args,
                                     "working_dir": fields.working_dir}, where)
        check_returns_exit_value(task_function, "@binary", where)
        record(task_function, "command", CommandDeclaration("binary", fields))
        if self.options.get("engine") or self.options.get("image"):   # PyCOMPSs 2.x spelling
            from .container import container
            container(engine=self.options.get("engine"), image=self.options.get("image"))(
                task_function)
        return task_function


Binary = binary
