"""What the application thread hands the master for one task call, and the master's own store.

A TaskCall is built once, during parameter analysis, and is the engine's opaque payload: it
already holds the serialized captured values, so the master never touches them again and the
shell only decides where to send them.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field

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
        compact form, one bytes object (~150 bytes for a small call, not ~1 KB of objects).
        What the task record already holds (id, name, reads, writes) is left out, and so are
        the call site (only submission reports it) and the identity (journaled when DONE)."""
        entry = {name: value for name, value in self.entry.items()
                 if name not in _FROM_THE_RECORD}
        frames = compact_frames(self.frames)
        inline = all(type(frame) is bytes for frame in frames)   # no large buffer to copy
        on_failure = None if self.on_failure is FailurePolicy.RETRY else self.on_failure
        packed = pickle.dumps((entry, frames if inline else None, self.kinds or None,
                               self.variant_functions, on_failure), protocol=5)
        if inline and self.failure_defaults is None:
            return packed
        return KeptCall(packed, None if inline else frames, self.failure_defaults)


# Left out too: "persist" (~90 bytes a task). A task made again from its lineage is not
# persisted again: its first run's record serves, or it runs again on resume.
_FROM_THE_RECORD = ("id", "name", "reads", "persist")


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
    entry, inline_frames, kinds, variants, on_failure = pickle.loads(packed)
    entry.update(id=task.task_id, name=task.name, reads=list(task.reads))
    call = TaskCall(task.task_id, task.name, entry["fn"], entry,
                    inline_frames if frames is None else frames, tuple(task.reads),
                    tuple(task.writes), kinds or {}, variant_functions=variants,
                    on_failure=on_failure or FailurePolicy.RETRY, failure_defaults=defaults)
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
