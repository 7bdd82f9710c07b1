"""@constraint (pycompss.api.constraint): what a task needs from the node that runs it.

    @constraint(computing_units="cus", processors=[{"processorType": "GPU", "computingUnits": 1}])
    @task()
    def simulate(data, cus): ...

Values may be literals, "$VAR"/"${VAR}" (read from the environment when the task is called) or,
as in COMPSs 3.3, the name of one of the task's parameters: the constraint is then evaluated per
call from that argument. A key COMPSs does not define is an error naming the key, so a typo never
silently drops a constraint.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..core.params import SpecError
from ..core.records import Requirements

_ENV = re.compile(r"^\$\{?(\w+)\}?$")

# COMPSs key -> (Requirements field, converter). camelCase spellings are accepted too.
_NUMBER_KEYS = {"computing_units": ("computing_units", int),
                "memory_size": ("memory_gb", float),
                "storage_size": ("storage_gb", float),
                "processor_speed": ("processor_speed_ghz", float)}
_TEXT_KEYS = {"processor_architecture": "architecture", "processor_name": "processor_name",
              "operating_system_type": "operating_system",
              "operating_system_distribution": "os_distribution",
              "operating_system_version": "os_version", "memory_type": "memory_type",
              "storage_type": "storage_type"}
# Accepted for compatibility; they describe things this runtime does not schedule on.
_ACCEPTED_KEYS = {"processor_type", "processor_property_name", "processor_property_value",
                  "processor_internal_memory_size", "storage_bw", "wall_clock_limit",
                  "host_queues"}
_OTHER_KEYS = {"processors", "app_software", "is_local"}
KNOWN_KEYS = set(_NUMBER_KEYS) | set(_TEXT_KEYS) | _ACCEPTED_KEYS | _OTHER_KEYS


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@dataclass(frozen=True)
class ConstraintSpec:
    """The declared constraint, resolved into Requirements once (static) or per call."""

    options: dict
    where: str

    @classmethod
    def declare(cls, options: dict, where: str) -> "ConstraintSpec":
        normalised = {}
        for key, value in options.items():
            name = _snake(key)
            if name not in KNOWN_KEYS:
                raise SpecError(f"{where}: @constraint: unknown key '{key}' (COMPSs keys: "
                                f"{', '.join(sorted(KNOWN_KEYS))})")
            normalised[name] = value
        return cls(normalised, where)

    def parameter_names(self, parameters) -> set:
        """The options whose value names a task parameter: evaluated per call."""
        return {key for key, value in self.options.items()
                if isinstance(value, str) and value.strip() in parameters}

    def resolve(self, arguments: dict | None = None) -> Requirements:
        values = {key: self._value(key, value, arguments or {})
                  for key, value in self.options.items()}
        fields: dict = {}
        for key, (field_name, convert) in _NUMBER_KEYS.items():
            if values.get(key) not in (None, ""):
                fields[field_name] = self._number(key, values[key], convert)
        for key, field_name in _TEXT_KEYS.items():
            if values.get(key) not in (None, ""):
                fields[field_name] = str(values[key])
        gpus, fpgas = self._accelerators(values.get("processors"))
        if str(values.get("processor_type") or "CPU").upper() == "GPU":
            gpus += fields.pop("computing_units", 1)     # the main processor is a GPU
        fields["gpus"], fields["fpgas"] = gpus, fpgas
        fields["software"] = _software(values.get("app_software"))
        fields["local_only"] = _truthy(values.get("is_local", False))
        requirements = Requirements(**fields)
        if requirements.computing_units < 1:
            raise SpecError(f"{self.where}: @constraint computing_units="
                            f"{requirements.computing_units} must be at least 1")
        return requirements

    def _value(self, key: str, value, arguments: dict):
        if isinstance(value, str):
            stripped = value.strip()
            if stripped in arguments:
                return arguments[stripped]
            match = _ENV.match(stripped)
            if match:
                return os.environ.get(match.group(1), "")
        return value

    def _number(self, key: str, value, convert):
        try:
            return convert(float(value)) if convert is int else convert(value)
        except (TypeError, ValueError):
            raise SpecError(f"{self.where}: @constraint {key}={value!r} is not a number") from None

    def _accelerators(self, processors) -> tuple[int, int]:
        gpus = fpgas = 0
        for processor in processors or []:
            if not isinstance(processor, dict):
                raise SpecError(f"{self.where}: @constraint processors must be a list of dicts, "
                                f"got {processor!r}")
            described = {_snake(k): v for k, v in processor.items()}
            kind = str(described.get("processor_type", "CPU")).upper()
            count = self._number("processors.computingUnits",
                                 described.get("computing_units", 1), int)
            if kind == "GPU":
                gpus += count
            elif kind == "FPGA":
                fpgas += count
        return gpus, fpgas


def _software(value) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(sorted(str(item).strip() for item in value if str(item).strip()))


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def requirements_from(options: dict, where: str) -> Requirements:
    """Static requirements (no per-call values), for callers outside a task."""
    return ConstraintSpec.declare(options, where).resolve()


def where_declared(function) -> str:
    inner = getattr(function, "function", function)
    code = getattr(inner, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "<unknown>"


class constraint:  # noqa: N801 - the PyCOMPSs name
    """Above or below @task: either way the spec ends up on what @task reads."""

    def __init__(self, **options):
        self.options = options

    def __call__(self, function):
        spec = ConstraintSpec.declare(self.options, f"{where_declared(function)}: "
                                                    f"@constraint on '{function.__name__}'")
        function.__superscalar_constraint__ = spec
        return function
