"""@container (pycompss.api.container): run the task in a container image.

    @container(engine="DOCKER", image="ubuntu:24.04", options="--network none")
    @binary(binary="grep")                  # on @binary/@mpi: the program runs in the image
    @task(...)                              # on a plain @task: the Python body runs in it

Engines: DOCKER, SINGULARITY, APPTAINER. The task's sandbox (and working_dir) is mounted at the
same path and is the working directory. Where the engine is not installed the task fails,
naming the engine and the host.
"""
from __future__ import annotations

from .command_tasks import (check_fields, check_python_body_outputs, container_spec, decorated,
                            record)


class container:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, engine=None, image=None, options: str = "", **unknown):
        if unknown:
            raise TypeError(f"@container got unknown argument(s) {', '.join(sorted(unknown))}; "
                            f"it takes engine, image, options")
        self.engine, self.image, self.options = engine, image, options

    def __call__(self, target):
        task_function, where = decorated(target, "@container")
        spec = container_spec(self.engine, self.image, self.options, where)
        check_fields(task_function, {"image": spec.image, "options": spec.options}, where)
        if "command" not in getattr(task_function, "_command_parts", {}):
            check_python_body_outputs(task_function, where)
        return record(task_function, "container", spec)


Container = container
