"""@software (pycompss.api.software): the task is described in a JSON file (eFlows4HPC software
invocation description) instead of decorators. It is the top decorator and replaces the others.

    @software(config_file="catalog/sort_lines.json")
    def sort_lines(order, source, target): pass

    {"execution": {"type": "binary", "binary": "sort", "args": "{{order}}"},
     "parameters": {"source": "FILE_IN_STDIN", "target": "FILE_OUT_STDOUT", "returns": 1},
     "constraints": {"computing_units": 1},
     "container": {"engine": "DOCKER", "image": "debian:12"},
     "prolog": {"binary": "mkdir", "args": "-p {{work_dir}}"}, "epilog": {...}}

execution.type: task (the body, as a @task), workflow (plain code, not a task), binary, mpi
(with a binary, or Python MPI without one); the other execution keys are that decorator's
arguments. The file is checked against runtime/api/schema/software.schema.json when the
function is decorated; errors name the file and the key (`x.json: execution.type: ...`).
A relative config_file is looked up in the current directory, then next to the source file.
"""
from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

from ..core.params import SpecError, Stream
from . import parameter as parameters_module
from .binary import binary
from .command_tasks import source_of
from .constraint import constraint
from .container import container
from .mpi import mpi
from .prolog import epilog, prolog
from .task import TaskFunction

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "software.schema.json"
_DICT_KEYS = {"type": parameters_module.Type, "Type": parameters_module.Type,
              "direction": parameters_module.Direction,
              "Direction": parameters_module.Direction,
              "stream": parameters_module.StdIOStream,
              "StdIOStream": parameters_module.StdIOStream,
              "prefix": parameters_module.Prefix, "Prefix": parameters_module.Prefix,
              "depth": parameters_module.Depth, "Depth": parameters_module.Depth,
              "weight": parameters_module.Weight, "Weight": parameters_module.Weight,
              "keep_rename": parameters_module.Keep_rename,
              "cache": parameters_module.Cache}


class SoftwareDescriptionError(ValueError):
    """A @software JSON description that cannot be used: names the file and the key."""


# ---- reading and checking ------------------------------------------------------------------
def load_description(path: str, shown: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise SoftwareDescriptionError(f"{shown}: cannot read: {error.strerror}") from None
    try:
        description = json.loads(text)
    except json.JSONDecodeError as error:
        raise SoftwareDescriptionError(f"{shown}:{error.lineno}:{error.colno}: not valid JSON: "
                                       f"{error.msg}") from None
    validate(description, shown)
    return description


def validate(description, shown: str) -> None:
    import jsonschema
    schema = _schema()
    validator = jsonschema.Draft7Validator(schema)
    problems = sorted({(_key(error.absolute_path), error.message)
                       for error in validator.iter_errors(description)})
    if not problems and isinstance(description, dict):
        execution = description.get("execution", {})
        if execution.get("type") in ("task", "workflow"):
            problems = [(f"execution.{key}", f"not used by type '{execution['type']}'")
                        for key in sorted(execution) if key != "type"]
    if problems:
        raise SoftwareDescriptionError("\n".join(
            f"{shown}: {key}: {message}" if key else f"{shown}: {message}"
            for key, message in problems))


_SCHEMA: dict = {}


def _schema() -> dict:
    if not _SCHEMA:
        with open(SCHEMA_PATH, encoding="utf-8") as handle:
            _SCHEMA.update(json.load(handle))
    return _SCHEMA


def _key(path) -> str:
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


# ---- the description as decorators ---------------------------------------------------------
def task_options(parameters: dict, shown: str) -> dict:
    """"parameters" as @task(...) options: names of parameter constants, or the dict form."""
    options = {}
    for name, value in parameters.items():
        if name == "returns":
            options["returns"] = _returns(value)
        elif isinstance(value, str):
            options[name] = getattr(parameters_module, value)
        else:
            options[name] = {_DICT_KEYS[key]: _dict_value(key, item)
                             for key, item in value.items()}
    return options


def _returns(value):
    if isinstance(value, str) and not value.strip().isdigit():
        return getattr(builtins, value, value)      # "int", "list": a type, one result
    return value


def _dict_value(key: str, value):
    if key in ("type", "Type", "direction", "Direction"):
        return getattr(parameters_module, value)
    if key in ("stream", "StdIOStream"):
        return Stream(value)
    return value


class software:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, config_file: str | None = None, **unknown):
        if unknown:
            raise TypeError(f"@software takes only config_file, got "
                            f"{', '.join(sorted(unknown))}")
        if not config_file:
            raise TypeError("@software needs config_file=...")
        self.config_file = str(config_file)

    def __call__(self, target):
        function = target.function if isinstance(target, TaskFunction) else target
        path = self._locate(function)
        description = load_description(path, self.config_file)
        execution = dict(description["execution"])
        kind = execution.pop("type")
        if kind == "workflow":
            return function                  # the user's code runs as is, not as a task
        try:
            return self._build(target, function, kind, execution, description, path)
        except (TypeError, ValueError, SpecError) as error:
            if isinstance(error, SoftwareDescriptionError):
                raise
            raise SoftwareDescriptionError(f"{self.config_file}: {error}") from None

    def _build(self, target, function, kind: str, execution: dict, description: dict,
               path: str) -> TaskFunction:
        options = dict(target.options) if isinstance(target, TaskFunction) else {}
        options.update(task_options(description.get("parameters", {}), self.config_file))
        task_function = TaskFunction(function, options)
        inherited = getattr(target, "__superscalar_constraint__", None)
        if inherited is not None:
            task_function.__superscalar_constraint__ = inherited
        if description.get("constraints"):
            constraint(**description["constraints"])(task_function)
        if kind == "binary":
            binary(**execution)(task_function)
        elif kind == "mpi":
            mpi(**execution)(task_function)
        if description.get("container"):
            container(**description["container"])(task_function)
        if description.get("prolog"):
            prolog(**description["prolog"])(task_function)
        if description.get("epilog"):
            epilog(**description["epilog"])(task_function)
        task_function.software_config = path
        return task_function

    def _locate(self, function) -> str:
        if os.path.isabs(self.config_file):
            return self.config_file
        source = source_of(function).rsplit(":", 1)[0]
        candidates = [os.path.abspath(self.config_file)]
        if os.path.isfile(source):
            candidates.append(os.path.join(os.path.dirname(os.path.abspath(source)),
                                           self.config_file))
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
        raise SoftwareDescriptionError(f"{source_of(function)}: @software config_file "
                                       f"'{self.config_file}' not found (looked at "
                                       f"{', '.join(candidates)})")


Software = software
