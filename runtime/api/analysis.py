"""Parameter analysis: one task call becomes a TaskCall (descriptors, captured frames, keys).

Runs on the application thread at call time, which is what makes capture semantics hold: an
IN value is serialized now, so changing it afterwards in the main program cannot leak into the
already-submitted task. Futures and tracked objects found inside any value (a list of futures
passed as IN) are recorded as reads and pickled as references the worker resolves.
"""
from __future__ import annotations

import os

from ..core.params import Direction, Kind, ParamSpec
from ..master.calls import MasterValue, TaskCall
from ..transport.payload import SerializationError, fast_serialize, frames_nbytes, serialize
from .future import Future

_ATOMIC = (int, float, complex, str, bytes, bool, type(None))


class CallError(TypeError):
    """A task call the runtime cannot accept; the message names call site, task, parameter."""


class CallBuilder:
    def __init__(self, session, task_name: str, call_site: str):
        self.session = session
        self.registry = session.registry
        self.task_name = task_name
        self.call_site = call_site
        self.frames: list = []
        self.reads: dict[str, None] = {}       # ordered set
        self.writes: list[str] = []
        self.kinds: dict[str, str] = {}
        self.after_submit: list = []           # (callable, args) run once the task is submitted
        self._parameter = ""
        self.last_written_datum: int | None = None   # set by every object write

    def fail(self, problem: str) -> CallError:
        return CallError(f"{self.call_site}: @task '{self.task_name}': parameter "
                         f"'{self._parameter}' {problem}")

    # ---- entry point ------------------------------------------------------------------------
    def describe(self, name: str, value, spec: ParamSpec) -> list:
        self._parameter = name
        if spec.kind is Kind.OBJECT:
            return self._object(value, spec.direction)
        if spec.is_file_like:
            return self._file(value, spec)
        if spec.kind is Kind.COLLECTION:
            return self._collection(value, spec)
        return self._dictionary(value, spec)

    # ---- objects ------------------------------------------------------------------------------
    def _object(self, value, direction: Direction) -> list:
        datum_id = self._datum_of(value)
        if direction in (Direction.IN, Direction.IN_DELETE):
            if datum_id is None:
                return self._captured(value)
            key = self._read(datum_id)
            if direction is Direction.IN_DELETE:
                self.after_submit.append((self.session.forget_datum, (datum_id, value)))
            return ["r", key]
        if datum_id is None:
            if direction is Direction.OUT:
                datum_id = self.registry.new_datum()
                source = self._captured(value, exclude=value)
                self._track(value, datum_id)
                access = self.registry.access(datum_id, direction)
                self.writes.append(access.write_key)
                self.last_written_datum = datum_id
                return ["o", source, access.write_key]
            datum_id = self._new_master_datum(value)
            self._track(value, datum_id)
        # An OUT task does not wait for the old value; it gets the application's copy of the
        # object (captured before the new version exists) as the instance to fill in.
        source = None
        if direction is Direction.OUT and not isinstance(value, Future):
            source = self._captured(value, exclude=value)
        access = self.registry.access(datum_id, direction)
        if access.read_key is not None:
            self._add_read(access.read_key, "obj")
            source = ["r", access.read_key]
        self.writes.append(access.write_key)
        self.last_written_datum = datum_id
        return ["o", source, access.write_key]

    def _datum_of(self, value) -> int | None:
        if type(value) is Future:
            if not self.registry.exists(value.datum_id):
                raise self.fail("is a future whose value was deleted (compss_delete_object)")
            return value.datum_id
        tracked = self.session.tracked.get(id(value))
        if tracked is not None and tracked[0] is value:
            return tracked[1]
        return None

    def _read(self, datum_id: int) -> str:
        key = self.registry.current_key(datum_id)
        self._add_read(key, "obj")
        return key

    def _add_read(self, key: str, kind: str) -> None:
        self.reads[key] = None
        self.kinds[key] = kind

    def _captured(self, value, exclude=None) -> list:
        """Serialize now; futures and tracked objects inside become references (except
        `exclude`, an object captured as itself)."""
        def reference_of(obj):
            return None if obj is exclude else self._reference_of(obj)
        try:
            if type(value) in _ATOMIC:          # plain pickle: same bytes, no CloudPickler
                frames = fast_serialize(value)
            else:
                frames = serialize(value, reference_of)
        except SerializationError as error:
            raise self.fail(f"cannot be serialized to send to a worker: {error}") from None
        start = len(self.frames)
        self.frames.extend(frames)
        return ["v", start, len(frames)]

    def _reference_of(self, obj) -> str | None:
        if isinstance(obj, _ATOMIC):
            return None
        datum_id = self._datum_of(obj)
        if datum_id is None:
            return None
        return self._read(datum_id)

    def _new_master_datum(self, value) -> int:
        datum_id, key = self.registry.new_datum_with_value()
        try:
            frames = serialize(value, self._reference_of)
        except SerializationError as error:
            raise self.fail(f"cannot be serialized to send to a worker: {error}") from None
        self.session.add_master_value(key, MasterValue("obj", frames), frames_nbytes(frames))
        return datum_id

    def _track(self, value, datum_id: int) -> None:
        if not isinstance(value, (Future,) + _ATOMIC):
            self.session.tracked[id(value)] = (value, datum_id)

    # ---- files and directories --------------------------------------------------------------
    def _file(self, value, spec: ParamSpec) -> list:
        noun = "DIRECTORY" if spec.kind is Kind.DIRECTORY else "FILE"
        if not isinstance(value, (str, os.PathLike)):
            raise self.fail(f"is {noun}_{spec.direction.value} but got "
                            f"{type(value).__name__}; pass a path string")
        path = os.path.abspath(os.fspath(value))
        kind = "dir" if spec.kind is Kind.DIRECTORY else "file"
        datum_id = self.session.files.get(path)
        if datum_id is None and spec.direction.reads:
            exists = os.path.isdir(path) if kind == "dir" else os.path.isfile(path)
            if not exists:
                raise self.fail(f"is {noun}_{spec.direction.value} but {path} does not exist")
        if datum_id is None:
            datum_id = self._new_file_datum(path, kind, spec.direction.reads)
        access = self.registry.access(datum_id, _file_direction(spec.direction))
        source = None
        if access.read_key is not None:
            self._add_read(access.read_key, kind)
            source = ["r", access.read_key]
        if access.write_key is not None:
            self.writes.append(access.write_key)
            self.kinds[access.write_key] = kind      # what an ignored failure leaves there
        prefix = spec.prefix
        return ["f", source, os.path.basename(path) or "data", access.write_key, kind, prefix]

    def _new_file_datum(self, path: str, kind: str, has_value: bool) -> int:
        if has_value:
            datum_id, key = self.registry.new_datum_with_value()
            self.session.add_master_value(key, MasterValue(kind, None, path), 0)
        else:
            datum_id = self.registry.new_datum()
        self.session.files[path] = datum_id
        self.session.datum_kinds[datum_id] = kind
        return datum_id

    # ---- collections --------------------------------------------------------------------------
    def _collection(self, value, spec: ParamSpec) -> list:
        if not isinstance(value, (list, tuple)):
            raise self.fail(f"is COLLECTION_{spec.direction.value} but got "
                            f"{type(value).__name__}; pass a list or tuple")
        element_spec = spec.element_spec()
        name = self._parameter
        elements = []
        for index, item in enumerate(value):
            nested = spec.depth > 1 and isinstance(item, (list, tuple))
            item_spec = element_spec if nested else _leaf(spec)
            elements.append(self.describe(f"{name}[{index}]", item, item_spec))
            if isinstance(value, list) and elements[-1][0] == "o":
                self.after_submit.append((self._replace_with_future,
                                          (value, index, self.last_written_datum)))
        self._parameter = name
        return ["c", "tuple" if isinstance(value, tuple) else "list", elements]

    def _dictionary(self, value, spec: ParamSpec) -> list:
        if not isinstance(value, dict):
            raise self.fail(f"is DICTIONARY_{spec.direction.value} but got "
                            f"{type(value).__name__}; pass a dict")
        name = self._parameter
        pairs = []
        for key, item in value.items():
            nested = spec.depth > 1 and isinstance(item, dict)
            item_spec = ParamSpec(direction=spec.direction, kind=Kind.DICTIONARY,
                                  depth=spec.depth - 1) if nested else _leaf(spec)
            pairs.append([self._captured(key), self.describe(f"{name}[{key!r}]", item, item_spec)])
            if pairs[-1][1][0] == "o":
                self.after_submit.append((self._replace_with_future,
                                          (value, key, self.last_written_datum)))
        self._parameter = name
        return ["d", pairs]

    def _replace_with_future(self, container, index, datum_id: int) -> None:
        """A written element becomes a future in the caller's container: passing the container
        to a later task then depends on the new versions, and compss_wait_on resolves them."""
        element = container[index]
        if type(element) is Future:
            return
        tracked = self.session.tracked.get(id(element))
        if tracked is not None and tracked[0] is element:
            del self.session.tracked[id(element)]
        container[index] = Future(datum_id, self.task_name, self.call_site, self.session)

    def build(self, task_id: int, function_id: int, entry: dict) -> TaskCall:
        entry["reads"] = list(self.reads)
        return TaskCall(task_id, self.task_name, function_id, entry, self.frames,
                        tuple(self.reads), tuple(self.writes), self.kinds, self.call_site)


def _leaf(spec: ParamSpec) -> ParamSpec:
    direction = spec.direction
    if direction is Direction.IN_DELETE:
        direction = Direction.IN
    return ParamSpec(direction=direction, kind=spec.element_kind)


def _file_direction(direction: Direction) -> Direction:
    if direction is Direction.IN_DELETE:
        return Direction.IN
    return direction
