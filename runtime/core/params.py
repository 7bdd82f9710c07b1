"""How a task touches each of its parameters.

A parameter's *spec* is the pair (direction, kind) plus a few modifiers. It is declared on
`@task(x=INOUT)`, either with a PyCOMPSs constant (`FILE_IN`, `COLLECTION_INOUT`, ...) or with
the dict form `{Type: COLLECTION_IN, Direction: INOUT, Depth: 2, Prefix: "--x="}`.
Everything downstream (versioning, staging, the worker's executor) reads only ParamSpec, never
the user's spelling, so there is exactly one place that knows the PyCOMPSs vocabulary.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Direction(enum.Enum):
    IN = "IN"
    OUT = "OUT"
    INOUT = "INOUT"
    IN_DELETE = "IN_DELETE"
    CONCURRENT = "CONCURRENT"
    COMMUTATIVE = "COMMUTATIVE"

    @property
    def reads(self) -> bool:
        return self is not Direction.OUT

    @property
    def writes(self) -> bool:
        return self in _WRITING


_WRITING = frozenset({Direction.OUT, Direction.INOUT, Direction.CONCURRENT, Direction.COMMUTATIVE})


class Kind(enum.Enum):
    OBJECT = "OBJECT"
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"
    COLLECTION = "COLLECTION"
    DICTIONARY = "DICTIONARY"


class Stream(enum.Enum):
    """Redirection of a FILE parameter to the task's standard streams (@binary)."""

    UNSPECIFIED = "UNSPECIFIED"
    STDIN = "STDIN"
    STDOUT = "STDOUT"
    STDERR = "STDERR"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    direction: Direction = Direction.IN
    kind: Kind = Kind.OBJECT
    # For COLLECTION/DICTIONARY: how many nesting levels are unpacked into separate data, and
    # the kind of the leaves (COLLECTION_FILE_* has FILE leaves).
    depth: int = 1
    element_kind: Kind = Kind.OBJECT
    prefix: str | None = None
    stream: Stream = Stream.UNSPECIFIED
    weight: float = 1.0
    keep_rename: bool = False
    cache: bool = True

    @property
    def is_file_like(self) -> bool:
        return self.kind in (Kind.FILE, Kind.DIRECTORY)

    @property
    def is_container(self) -> bool:
        return self.kind in (Kind.COLLECTION, Kind.DICTIONARY)

    def with_direction(self, direction: Direction) -> "ParamSpec":
        return replace(self, direction=direction)

    def element_spec(self) -> "ParamSpec":
        """The spec of one element of a collection one level down."""
        if self.depth > 1:
            return replace(self, depth=self.depth - 1, prefix=None)
        return ParamSpec(direction=self.direction, kind=self.element_kind, weight=self.weight)


# Dict-form keys, with the PyCOMPSs spellings (``{Type: ..., Direction: ...}``).
TYPE_KEY = "type"
DIRECTION_KEY = "direction"
STREAM_KEY = "stream"
PREFIX_KEY = "prefix"
DEPTH_KEY = "depth"
WEIGHT_KEY = "weight"
KEEP_RENAME_KEY = "keep_rename"
CACHE_KEY = "cache"
_DICT_KEYS = {TYPE_KEY, DIRECTION_KEY, STREAM_KEY, PREFIX_KEY, DEPTH_KEY, WEIGHT_KEY,
              KEEP_RENAME_KEY, CACHE_KEY}


class SpecError(ValueError):
    """A parameter declaration that cannot mean anything (unknown key, bad depth...)."""


def spec_from_declaration(value: object, where: str) -> ParamSpec:
    """Normalise one `@task(name=...)` value into a ParamSpec.

    `where` names the decorated function and parameter for the error message.
    """
    if isinstance(value, ParamSpec):
        return value
    if isinstance(value, dict):
        return _spec_from_dict(value, where)
    raise SpecError(f"{where}: unknown direction {value!r}; use IN, OUT, INOUT, FILE_IN, "
                    f"COLLECTION_IN, ... from pycompss.api.parameter or the dict form "
                    f"{{Type: ..., Direction: ...}}")


def _spec_from_dict(declaration: dict, where: str) -> ParamSpec:
    unknown = set(declaration) - _DICT_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)} in parameter declaration; "
                        f"expected some of Type, Direction, StdIOStream, Prefix, Depth, Weight")
    base = declaration.get(TYPE_KEY, ParamSpec())
    if not isinstance(base, ParamSpec):
        raise SpecError(f"{where}: Type must be a parameter constant such as FILE_IN or "
                        f"COLLECTION_IN, got {base!r}")
    spec = base
    if DIRECTION_KEY in declaration:
        direction = declaration[DIRECTION_KEY]
        if not isinstance(direction, ParamSpec):
            raise SpecError(f"{where}: Direction must be IN, OUT, INOUT, ..., got {direction!r}")
        spec = replace(spec, direction=direction.direction)
    if DEPTH_KEY in declaration:
        depth = declaration[DEPTH_KEY]
        if not isinstance(depth, int) or depth < 1:
            raise SpecError(f"{where}: Depth must be a positive int, got {depth!r}")
        spec = replace(spec, depth=depth)
    if STREAM_KEY in declaration:
        stream = declaration[STREAM_KEY]
        spec = replace(spec, stream=stream if isinstance(stream, Stream) else Stream(stream))
    if PREFIX_KEY in declaration:
        spec = replace(spec, prefix=str(declaration[PREFIX_KEY]))
    if WEIGHT_KEY in declaration:
        spec = replace(spec, weight=float(declaration[WEIGHT_KEY]))
    if KEEP_RENAME_KEY in declaration:
        spec = replace(spec, keep_rename=bool(declaration[KEEP_RENAME_KEY]))
    if CACHE_KEY in declaration:
        spec = replace(spec, cache=bool(declaration[CACHE_KEY]))
    return spec
