"""What the application thread hands the master for one task call, and the master's own store.

A TaskCall is built once, during parameter analysis, and is the engine's opaque payload: it
already holds the serialized captured values, so the master never touches them again and the
shell only decides where to send them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from ..core.failures import FailurePolicy
from ..transport.payload import compact_frames, empty_frames


@dataclass(slots=True, eq=False)
class TaskCall:
    task_id: int
    name: str
    function_id: int
    entry: dict                         # args/kwargs descriptors, returns, reads, units, time_out
    frames: list                        # captured values' frames, referenced by the descriptors
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    kinds: dict                         # key -> "obj" | "file" | "dir": every read, file writes
    call_site: str = ""                 # "app.py:12", for error messages at submission
    # @implement: the function id of each variant, index 0 being `function_id` (empty: none).
    variant_functions: tuple = ()

    def function_for(self, variant: int) -> int:
        return self.variant_functions[variant] if self.variant_functions else self.function_id
    on_failure: FailurePolicy = FailurePolicy.RETRY
    failure_defaults: dict | None = None   # IGNORE: write key -> MasterValue given by the user
    # (content key, read versions' identities, "journal" | "cache" | None where its outputs
    # are persisted) when the run keys its tasks (runtime.master.reuse)
    identity: tuple | None = None

    def pack(self) -> "bytes | KeptCall":
        """The task is done and kept only in case an output of it must be made again: its
        compact form, one msgpack bytes object (~60 bytes for a small call, not ~1 KB of
        objects or ~250 bytes of pickled dict). What the task record already holds (id, name,
        reads, writes, the returns and persisted keys that are its writes) is left out, entry
        names become positions, and the outputs folder an index in a per-process table; the
        call site (only submission reports it) and the identity (journaled when DONE) go."""
        entry = self.entry
        rest = {name: value for name, value in entry.items()
                if name not in _PACKED_FIELDS or value is None and name in _OPTIONAL_FIELDS}
        returns = entry.get("returns", ())
        if list(returns) != list(self.writes[len(self.writes) - len(returns):]):
            rest["returns"] = returns          # not the tail of the writes: kept as it is
        persist = entry.get("persist")
        if persist is not None:
            if tuple(persist[2]) == self.writes:
                persist = [_folder_index(persist[0]), persist[1], *persist[3:]]
            else:
                rest["persist"], persist = persist, None
        frames = compact_frames(self.frames)
        inline = all(type(frame) is bytes for frame in frames)   # no large buffer to copy
        on_failure = None if self.on_failure is FailurePolicy.RETRY else self.on_failure.value
        packed = _PACKER.pack(
            [entry.get("fn"), entry.get("args"), entry.get("kwargs"), len(returns),
             entry.get("units"), entry.get("time_out"), persist, rest or None,
             frames if inline else None, self.kinds or None, self.variant_functions or None,
             on_failure])
        if inline and self.failure_defaults is None:
            return packed
        return KeptCall(packed, None if inline else frames, self.failure_defaults)


# Entry fields the packed form holds by position (or rebuilds from the task record).
_PACKED_FIELDS = frozenset(("id", "name", "reads", "fn", "args", "kwargs", "returns", "units",
                            "time_out", "persist"))
_OPTIONAL_FIELDS = frozenset(("units", "time_out"))    # packed only when present, not None
_PACKER = msgpack.Packer(use_bin_type=True)   # pack runs on the I/O thread only
_FOLDERS: list = []          # outputs folders of packed calls' persist fields (one or two a run)


def _folder_index(folder: str) -> int:
    try:
        return _FOLDERS.index(folder)
    except ValueError:
        _FOLDERS.append(folder)
        return len(_FOLDERS) - 1


class KeptCall:
    """The compact form of a call whose captured values include large buffers, or with IGNORE
    defaults: those stay as they are (pickling them would copy them, or cannot be done)."""

    __slots__ = ("packed", "frames", "failure_defaults")

    def __init__(self, packed: bytes, frames: list | None, failure_defaults: dict | None):
        self.packed = packed
        self.frames = frames
        self.failure_defaults = failure_defaults


def unpacked(task) -> TaskCall:
    """`task.payload` as a TaskCall, rebuilt (and put back) if it was kept packed."""
    payload = task.payload
    if isinstance(payload, TaskCall):
        return payload
    packed, frames, defaults = (payload, None, None) if type(payload) is bytes else \
        (payload.packed, payload.frames, payload.failure_defaults)
    (function_id, args, kwargs, returns, units, time_out, persist, rest, inline_frames, kinds,
     variants, on_failure) = msgpack.unpackb(packed, raw=False, strict_map_key=False)
    writes = tuple(task.writes)
    entry = {"id": task.task_id, "name": task.name, "fn": function_id, "args": args,
             "kwargs": kwargs, "returns": list(writes[len(writes) - returns:]) if returns else [],
             "reads": list(task.reads)}
    if units is not None:
        entry["units"] = units
    if time_out is not None:
        entry["time_out"] = time_out
    if persist is not None:
        entry["persist"] = [_FOLDERS[persist[0]], persist[1], writes, *persist[2:]]
    if rest:
        entry.update(rest)
    call = TaskCall(task.task_id, task.name, function_id, entry,
                    inline_frames if frames is None else frames, tuple(task.reads), writes,
                    kinds or {}, variant_functions=tuple(variants or ()),
                    on_failure=FailurePolicy(on_failure) if on_failure else FailurePolicy.RETRY,
                    failure_defaults=defaults)
    task.payload = call
    return call


@dataclass(slots=True)
class MasterValue:
    kind: str                           # "obj" | "file" | "dir"
    frames: list | None = None
    path: str | None = None


def default_value(kind: str) -> MasterValue:
    """An output of an ignored failure with no default given: None, an empty file or directory
    (PyCOMPSs: "the output parameters are set with empty values")."""
    return MasterValue(kind, empty_frames(kind))


@dataclass(slots=True)
class MasterStore:
    """Values held by the application process: captured objects, its files, fetched results."""

    values: dict = field(default_factory=dict)          # key -> MasterValue
    functions: dict = field(default_factory=dict)       # function id -> [frames]

    def put(self, key: str, value: MasterValue) -> None:
        self.values[key] = value

    def get(self, key: str) -> MasterValue | None:
        return self.values.get(key)

    def drop(self, key: str) -> None:
        self.values.pop(key, None)
