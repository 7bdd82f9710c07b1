"""@implement (pycompss.api.implement): another implementation of an existing task.

    @implement(source_class="mymodule", method="multiply")   # a function of mymodule
    @constraint(processors=[{"processorType": "GPU", "computingUnits": 1}])
    @task(returns=1)
    def multiply_on_gpu(a, b): ...

A call to `multiply` may then run either body: the scheduler takes the first variant (the task
itself first, then the implementations in declaration order) whose constraints fit a worker
that is free now. `source_class` is the module for a function, "module.Class" for a method; a
program's main module may be named by its file name as well as "__main__".
"""
from __future__ import annotations

import os
import sys

# method name -> [(source_class, the implementing TaskFunction)], in declaration order
_IMPLEMENTATIONS: dict[str, list] = {}


class implement:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, source_class: str, method: str):
        if not source_class or not method:
            raise TypeError("@implement needs source_class='module[.Class]' and method='name'")
        self.source_class = source_class
        self.method = method

    def __call__(self, task_function):
        if not hasattr(task_function, "requirements_for"):
            raise TypeError(f"@implement must be placed above @task (on "
                            f"'{getattr(task_function, '__name__', task_function)}')")
        _IMPLEMENTATIONS.setdefault(self.method, []).append((self.source_class, task_function))
        return task_function


def implementations_of(task_function) -> list:
    """The TaskFunctions declared to implement `task_function` (usually none: one dict hit)."""
    candidates = _IMPLEMENTATIONS.get(task_function.function.__name__)
    if not candidates:
        return []
    owners = _owner_names(task_function.function)
    return [variant for source_class, variant in candidates
            if source_class in owners and variant is not task_function]


def _owner_names(function) -> set:
    """Every spelling of the class path a user may give: module[.Class], the main module by
    file name, and the bare last component."""
    module = function.__module__ or ""
    modules = {module}
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            modules.add(os.path.splitext(os.path.basename(main_file))[0])
    qualified = function.__qualname__.split(".<locals>.")[-1]
    owner = qualified.rsplit(".", 1)[0] if "." in qualified else ""
    names = set()
    for name in modules:
        full = f"{name}.{owner}" if owner else name
        names.update({full, full.rsplit(".", 1)[-1]})
    return names
