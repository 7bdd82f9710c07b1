"""From a task's arguments to the argv of a command (@binary, @mpi, @container, @prolog/@epilog).

Pure functions, no processes: what a parameter contributes to the command line follows COMPSs'
binary invoker, so existing PyCOMPSs programs build the same commands:

    parameter                          contributes
    value 3, no prefix                 "3"
    value "x", Prefix "--name="        "--name=x"          (prefix and value are one argument)
    value "x", Prefix "-i " (space)    "-i", "x"           (superscalar: a trailing space splits)
    list [1, 2], Prefix "-v"           "-v", "1", "2"      (a collection: prefix, then items)
    Prefix "#"                         nothing             (the parameter is not on the line)
    FILE_* / DIRECTORY_*               the sandbox path    (the worker already staged it)
    FILE_*_STDIN/STDOUT/STDERR         nothing: a redirection of the command's stream
    True / False / None                "true" / "false" / nothing

`{{name}}` in any string field (binary, args, working_dir, runner, flags, processes, image,
options, prolog/epilog args) is replaced by the parameter's value; `$VAR`/`${VAR}` and `~` are
expanded first, on the host that runs the command. In `args`, a token that is exactly
`{{name}}` becomes the parameter's arguments (a list gives several); when `args` is given the
parameters are not appended on their own (COMPSs).
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from ..core.params import Direction, Kind, ParamSpec, Stream

SKIP_PREFIX = "#"
_EMPTY_PREFIXES = (None, "", "null")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
_WHOLE_PLACEHOLDER = re.compile(r"^\{\{\s*([A-Za-z_]\w*)\s*\}\}$")


class CommandError(RuntimeError):
    """A command task could not run, or its command failed: names the task and the command."""


@dataclass(frozen=True, slots=True)
class ParameterSlot:
    """One parameter of the decorated function, as the runner needs it (copied at decoration
    time). kind: "positional" | "varargs" | "keyword" | "varkeyword"."""

    name: str
    kind: str
    spec: ParamSpec


@dataclass(frozen=True, slots=True)
class NamedValue:
    name: str
    value: object
    spec: ParamSpec
    vararg: bool = False        # one item of *name


def bind_arguments(slots: tuple, args: tuple, kwargs: dict) -> list:
    """The call's values in the function's parameter order, as the worker passes them: the
    positional parameters, then the *varargs items, then keyword-only and **kwargs items."""
    named, position, remaining = [], 0, dict(kwargs)
    for slot in slots:
        if slot.kind == "positional":
            if position < len(args):
                named.append(NamedValue(slot.name, args[position], slot.spec))
                position += 1
            elif slot.name in remaining:
                named.append(NamedValue(slot.name, remaining.pop(slot.name), slot.spec))
        elif slot.kind == "varargs":
            named.extend(NamedValue(slot.name, item, slot.spec, True) for item in args[position:])
            position = len(args)
        elif slot.kind == "keyword":
            if slot.name in remaining:
                named.append(NamedValue(slot.name, remaining.pop(slot.name), slot.spec))
        else:
            named.extend(NamedValue(name, value, slot.spec) for name, value in remaining.items())
            remaining = {}
    return named


def values_by_name(named: list) -> dict:
    """{name: value}; the items of *varargs are gathered back into one list."""
    values: dict = {}
    for item in named:
        if item.vararg:
            values.setdefault(item.name, []).append(item.value)
        else:
            values[item.name] = item.value
    return values


# ---- one value as text / arguments ---------------------------------------------------------
def text_of(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(text_of(item) for item in _flatten(value))
    return str(value)


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def fields_of(value, spec: ParamSpec) -> list[str]:
    """The arguments one parameter contributes when the parameters form the command line."""
    if spec.stream is not Stream.UNSPECIFIED or spec.prefix == SKIP_PREFIX or value is None:
        return []
    prefix = "" if spec.prefix in _EMPTY_PREFIXES else spec.prefix
    if isinstance(value, (list, tuple)):
        return ([prefix.strip()] if prefix.strip() else []) + [
            text_of(item) for item in _flatten(value)]
    if prefix.endswith((" ", "\t")):
        return [prefix.strip(), text_of(value)]
    return [prefix + text_of(value)]


def parameter_arguments(named: list) -> list[str]:
    arguments: list[str] = []
    for item in named:
        arguments.extend(fields_of(item.value, item.spec))
    return arguments


# ---- templates -------------------------------------------------------------------------------
def placeholders(template) -> set[str]:
    return set(PLACEHOLDER.findall(template)) if isinstance(template, str) else set()


def expand_environment(template: str) -> str:
    return os.path.expanduser(os.path.expandvars(template))


def substitute(template, values: dict, where: str) -> str:
    """A string field with `{{name}}` replaced by the value's text ($VAR expanded first)."""
    if not isinstance(template, str):
        return text_of(template)

    def replace(match):
        return text_of(_lookup(values, match.group(1), where))
    return PLACEHOLDER.sub(replace, expand_environment(template))


def expand_arguments(template: str, named: list, where: str) -> list[str]:
    """`args="-n {{n}} {{files}}"` as argv items: split like a shell line, then substitute."""
    values = values_by_name(named)
    specs = {item.name: item.spec for item in named}
    try:
        tokens = shlex.split(expand_environment(template))
    except ValueError as error:
        raise CommandError(f"{where}: cannot split args {template!r}: {error}") from None
    arguments: list[str] = []
    for token in tokens:
        whole = _WHOLE_PLACEHOLDER.match(token)
        if whole:
            name = whole.group(1)
            value = _lookup(values, name, where)
            spec = specs[name]
            if spec.stream is not Stream.UNSPECIFIED or spec.prefix == SKIP_PREFIX:
                spec = ParamSpec(spec.direction, spec.kind)   # named explicitly: its value
            arguments.extend(fields_of(value, spec))
        else:
            arguments.append(PLACEHOLDER.sub(
                lambda match: text_of(_lookup(values, match.group(1), where)), token))
    return arguments


def _lookup(values: dict, name: str, where: str):
    if name not in values:
        known = ", ".join(sorted(values)) or "none"
        raise CommandError(f"{where}: '{{{{{name}}}}}' is not a parameter of the task "
                           f"(parameters: {known})")
    return values[name]


def check_placeholders(fields: dict, parameter_names: set, where: str,
                       accepts_any: bool = False) -> None:
    """At decoration time: every `{{name}}` must name a parameter of the function."""
    if accepts_any:
        return
    for field_name, template in fields.items():
        unknown = placeholders(template) - parameter_names
        if unknown:
            names = ", ".join(sorted(parameter_names)) or "none"
            raise ValueError(f"{where}: {field_name}={template!r} refers to "
                             f"{', '.join('{{' + n + '}}' for n in sorted(unknown))}, not a "
                             f"parameter of the function (parameters: {names})")


# ---- standard streams ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Redirections:
    """Paths the command's stdin/stdout/stderr are redirected to; append for INOUT files."""

    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    append_stdout: bool = False
    append_stderr: bool = False


def redirections_of(named: list, where: str) -> Redirections:
    found: dict = {}
    for item in named:
        stream = item.spec.stream
        if stream is Stream.UNSPECIFIED:
            continue
        if stream in found:
            raise CommandError(f"{where}: parameters '{found[stream][0]}' and '{item.name}' are "
                               f"both redirected to {stream.value}")
        if item.value is None or isinstance(item.value, (list, tuple, dict)):
            raise CommandError(f"{where}: parameter '{item.name}' is redirected to "
                               f"{stream.value} but is {type(item.value).__name__}, not a file "
                               f"path")
        found[stream] = (item.name, str(item.value), item.spec.direction is Direction.INOUT)
    return Redirections(
        stdin=found.get(Stream.STDIN, (None, None))[1],
        stdout=found.get(Stream.STDOUT, (None, None))[1],
        stderr=found.get(Stream.STDERR, (None, None))[1],
        append_stdout=found.get(Stream.STDOUT, (None, None, False))[2],
        append_stderr=found.get(Stream.STDERR, (None, None, False))[2])


# ---- failure policy ----------------------------------------------------------------------
def resolve_flag(value, where: str, field_name: str) -> bool:
    """A boolean field given as a bool, "true"/"false", or the name of an environment variable
    holding one (PyCOMPSs' fail_by_exit_value / scale_by_cu)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).strip()
    if text.startswith("$"):
        text = os.path.expandvars(text)
    elif text.lower() not in ("true", "false", "1", "0", "yes", "no") and text in os.environ:
        text = os.environ[text]
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise CommandError(f"{where}: {field_name}={value!r} is neither a boolean nor the name of "
                       f"an environment variable holding one")


def exit_value(returncode: int) -> int:
    """As COMPSs reports it: a command killed by signal N exited with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def is_writable_object(spec: ParamSpec) -> bool:
    return spec.direction.writes and spec.kind not in (Kind.FILE, Kind.DIRECTORY) and not (
        spec.kind is Kind.COLLECTION and spec.element_kind is Kind.FILE)
