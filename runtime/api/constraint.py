"""@constraint (pycompss.api.constraint): what a task needs from the node that runs it."""
from __future__ import annotations

import os
import re

from ..core.records import Requirements

_ENV = re.compile(r"^\$\{?(\w+)\}?$")


def _resolve(value):
    """COMPSs allows "$VAR" / "${VAR}" to take a value from the environment."""
    if isinstance(value, str):
        match = _ENV.match(value.strip())
        if match:
            return os.environ.get(match.group(1), "")
    return value


def requirements_from(options: dict, where: str) -> Requirements:
    values = {key: _resolve(value) for key, value in options.items()}
    try:
        units = int(values.get("computing_units", values.get("computingUnits", 1)) or 1)
        memory = float(values.get("memory_size", values.get("memorySize", 0)) or 0)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: @constraint value is not a number: {error}") from None
    gpus = 0
    for processor in values.get("processors", []) or []:
        kind = str(processor.get("processorType", processor.get("ProcessorType", "CPU"))).upper()
        count = int(processor.get("computingUnits", processor.get("ComputingUnits", 1)))
        if kind == "GPU":
            gpus += count
    software = values.get("app_software", values.get("appSoftware", ())) or ()
    if isinstance(software, str):
        software = tuple(s.strip() for s in software.split(",") if s.strip())
    return Requirements(
        computing_units=units, memory_gb=memory, gpus=gpus,
        architecture=values.get("processor_architecture") or None,
        processor_name=values.get("processor_name") or None,
        operating_system=values.get("operating_system_type") or None,
        software=tuple(software), local_only=bool(values.get("is_local", False)))


class constraint:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, **options):
        self.options = options

    def __call__(self, function):
        code = getattr(function, "__code__", getattr(getattr(function, "function", None),
                                                     "__code__", None))
        where = f"{code.co_filename}:{code.co_firstlineno}" if code else "@constraint"
        function.__superscalar_requirements__ = requirements_from(self.options, where)
        return function
