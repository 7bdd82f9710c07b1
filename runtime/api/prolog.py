"""@prolog and @epilog (pycompss.api.prolog / pycompss.api.epilog): commands run on the worker,
in the task's sandbox, before and after the task (any kind of task).

    @prolog(binary="mkdir", args="-p {{work_dir}}")            # fail_by_exit_value: True
    @epilog(binary="tar", args="czf {{archive}} {{work_dir}}")  # fail_by_exit_value: False
    @task(work_dir=DIRECTORY_OUT, archive=FILE_OUT)
    def simulate(work_dir, archive): ...

The epilog runs only when the task (and the prolog) succeeded. Defaults as in PyCOMPSs 3.
"""
from __future__ import annotations

from ..worker.commands import StageSpec
from .command_tasks import check_fields, decorated, record

SUPPORTED = ("binary", "args", "params", "fail_by_exit_value")


def stage_spec(decorator: str, options: dict, fail_by_default: bool, where: str) -> StageSpec:
    unknown = sorted(set(options) - set(SUPPORTED))
    if unknown:
        raise TypeError(f"{where}: {decorator} got unknown argument(s) {', '.join(unknown)}; "
                        f"it takes binary, args, fail_by_exit_value")
    if not options.get("binary"):
        raise TypeError(f"{where}: {decorator} needs binary=...")
    return StageSpec(str(options["binary"]), options.get("args", options.get("params")),
                     options.get("fail_by_exit_value", fail_by_default))


class _Stage:
    decorator = ""
    fail_by_default = True

    def __init__(self, **options):
        self.options = options

    def __call__(self, target):
        task_function, where = decorated(target, self.decorator)
        spec = stage_spec(self.decorator, self.options, self.fail_by_default, where)
        check_fields(task_function, {"binary": spec.binary, "args": spec.args}, where)
        return record(task_function, self.decorator[1:], spec)


class prolog(_Stage):  # noqa: N801 - the PyCOMPSs name
    decorator = "@prolog"
    fail_by_default = True


class epilog(_Stage):  # noqa: N801 - the PyCOMPSs name
    decorator = "@epilog"
    fail_by_default = False


Prolog, Epilog = prolog, epilog
