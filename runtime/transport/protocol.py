"""The wire protocol: the only module that knows what raw frames look like.

Every message is a ZeroMQ multipart [header, *data_frames]. The header is msgpack
[PROTOCOL_VERSION, type, *fields]; data frames are pickled values and their out-of-band buffers
(see payload.py), referred to from the header by index ranges.

    master (ROUTER) <─── control: Hello / TasksDone / Persisted / TaskFailed / Value ─── worker
                    ───> Welcome / RunTasks / GetValues / DeleteData / Cancel / Stop /
                         PersistNow ───>                                       (DEALER)
    worker (DEALER) ───> Fetch ───> worker data server (ROUTER) ───> Data / Missing
    worker (ROUTER) <─── ExecutorReady / ExecResult / ExecFailed ─── executor (DEALER)
                    ───> Exec / Release / Shutdown
Large values between a worker and its executors travel as shared-value descriptions
[pid, fd, memfd name, [[offset, length], ...]] (runtime/worker/shared_values.py), not frames.
A peer's first control message must be a Hello or ExecutorReady carrying the run's key; a data
request carries the key itself. Anything else from an unknown peer is dropped and logged.
decode() checks the header's version, type, field count and each field's type (the class
annotations); anything else raises ProtocolError, which receivers log and drop.
"""
from __future__ import annotations

import msgpack

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A frame that is not a message of this protocol version (dropped, never fatal)."""


_BY_TYPE: dict[int, type] = {}


class _Message:
    """A typed, slotted record; fields are the class annotations, in order. (Built without
    dataclass code generation: every process imports this module at start-up.)"""

    __slots__ = ()
    TYPE = 0
    FIELD_NAMES: tuple = ()
    FIELD_TYPES: tuple = ()
    FIELD_COUNT = 0
    DEFAULTS: dict = {}

    def __init__(self, *values, **named):
        names = self.FIELD_NAMES
        if not named and len(values) == self.FIELD_COUNT:     # every field given: the usual case
            setter = object.__setattr__
            for name, value in zip(names, values):
                setter(self, name, value)
            return
        if len(values) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields")
        for name, value in zip(names, values):
            object.__setattr__(self, name, value)
        for name in names[len(values):]:
            if name in named:
                value = named.pop(name)
            elif name in self.DEFAULTS:
                value = self.DEFAULTS[name]
            else:
                raise TypeError(f"{type(self).__name__} is missing field {name!r}")
            object.__setattr__(self, name, value)
        if named:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(named)}")

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.FIELD_NAMES)

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELD_NAMES)
        return f"{type(self).__name__}({fields})"


# What msgpack may hand back for each annotated field type: a decoded message's top-level
# fields always have these types, so handlers only meet wrong shapes inside lists and dicts.
_WIRE_TYPES = {"str": str, "int": int, "bool": bool, "float": (int, float), "list": list,
               "dict": dict}


def _message(type_code: int):
    def register(cls):
        annotations = cls.__dict__.get("__annotations__", {})
        names = tuple(annotations)
        defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
        namespace = {"__slots__": names, "TYPE": type_code, "FIELD_NAMES": names,
                     "FIELD_TYPES": tuple(_WIRE_TYPES[annotations[n]] for n in names),
                     "FIELD_COUNT": len(names), "DEFAULTS": defaults,
                     "__annotations__": cls.__dict__.get("__annotations__", {}),
                     "__doc__": cls.__doc__, "__module__": cls.__module__,
                     "__qualname__": cls.__qualname__}
        built = type(cls.__name__, (_Message,), namespace)
        _BY_TYPE[type_code] = built
        return built
    return register


def encode(message, frames: list = ()) -> list:
    values = [getattr(message, name) for name in message.FIELD_NAMES]
    header = msgpack.packb([PROTOCOL_VERSION, message.TYPE, *values], use_bin_type=True)
    return [header, *frames]


ZERO_COPY_MIN_BYTES = 64 * 1024


def send(socket, parts: list, routing_id=None) -> None:
    """Send a multipart message; large frames go zero-copy, small ones are cheaper copied."""
    if routing_id is not None:
        parts = [routing_id, *parts]
    large = any(memoryview(part).nbytes >= ZERO_COPY_MIN_BYTES for part in parts)
    socket.send_multipart(parts, copy=not large)


def decode(parts: list):
    """Return (message, data_frames). Raises ProtocolError for anything malformed."""
    if not parts:
        raise ProtocolError("empty message")
    try:
        header = msgpack.unpackb(memoryview(parts[0]), raw=False, strict_map_key=False,
                                 use_list=True)
    except Exception as error:
        raise ProtocolError(f"undecodable header: {error}") from None
    if not isinstance(header, list) or len(header) < 2:
        raise ProtocolError("header is not [version, type, ...]")
    version, type_code, *values = header
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise ProtocolError(f"protocol version {_short(version)}, expected {PROTOCOL_VERSION}")
    cls = _BY_TYPE.get(type_code) if type(type_code) is int else None
    if cls is None or len(values) != cls.FIELD_COUNT:
        raise ProtocolError(f"unknown message type {_short(type_code)} or wrong field count")
    for name, value, expected in zip(cls.FIELD_NAMES, values, cls.FIELD_TYPES):
        if not isinstance(value, expected):
            raise ProtocolError(f"{cls.__name__}.{name} is {type(value).__name__}")
    return cls(*values), parts[1:]


def _short(value) -> str:
    """A peer's value for a log line: never the whole of a huge one."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- control channel: worker -> master --------------------------------------------------

@_message(1)
class Hello:
    run_key: str
    worker_id: str
    node_name: str
    computing_units: int
    data_address: str
    pid: int


@_message(2)
class TasksDone:
    # [[task_id, [[key, nbytes], ...], duration_seconds(, start, end)], ...]: batched to save
    # round trips; start:end, if given, is the task's inline journal record in frame 0
    results: list


@_message(3)
class TaskFailed:
    task_id: int
    message: str            # one line: exception type and text, for logs and the summary
    traceback: str
    is_group_exception: bool  # a COMPSsException: cancel the task's group
    exception_frames: int   # 0, or the number of data frames holding the pickled exception


@_message(4)
class Values:
    # [[key, frame_start, frame_count, kind], ...] answering GetValues; kind "obj" | "file" | "dir"
    entries: list
    missing: list           # keys the worker does not hold


@_message(5)
class Heartbeat:
    worker_id: str


@_message(6)
class Persisted:
    # Journal records now complete in a pack, batched per loop turn and sent after the
    # TasksDone that reported them; `token` answers a PersistNow (0: none)
    task_ids: list
    token: int = 0


# ---- control channel: master -> worker --------------------------------------------------

@_message(10)
class Welcome:
    worker_id: str
    peers: dict             # worker_id -> data address


@_message(11)
class RunTasks:
    # [task_entry, ...]; each task_entry is a dict made by runtime.master.dispatch; its frame
    # ranges index into this message's data frames.
    tasks: list


@_message(12)
class GetValues:
    keys: list


@_message(13)
class DeleteData:
    keys: list


@_message(14)
class Cancel:
    task_id: int


@_message(15)
class Stop:
    reason: str


@_message(16)
class PersistNow:
    # Write every record still waiting for its delay, then answer Persisted(..., token)
    # (compss_snapshot, and the end of a run whose outputs are kept)
    token: int


# ---- data plane: worker <-> worker ------------------------------------------------------

@_message(20)
class Fetch:
    run_key: str
    keys: list


# ---- worker <-> executor ----------------------------------------------------------------

@_message(30)
class ExecutorReady:
    run_key: str
    executor_id: int
    pid: int


@_message(31)
class Exec:
    task: dict              # the task entry, frame ranges rebased onto this message
    inputs: dict            # key -> [frame_start, frame_count, kind, path_or_None]
    shared: dict = {}       # key -> shared-value description, for inputs held in a memfd


@_message(32)
class ExecResult:
    task_id: int
    outputs: list           # [[key, frame_start, frame_count, kind, path_or_None, nbytes], ...]
    duration: float
    shared: dict = {}       # key -> shared-value description: that output is in a memfd
                            # (frame_count 0); the executor keeps its fd until Release


@_message(33)
class ExecFailed:
    task_id: int
    message: str
    traceback: str
    is_group_exception: bool
    exception_frames: int   # 0 or the number of data frames holding the pickled exception


@_message(34)
class Shutdown:
    reason: str = ""


@_message(35)
class Release:
    fds: list               # the executor's memfds of shared outputs the worker has opened
