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
    call_site: str = ""                 # "app.py:12", for error messages
    # @implement: the function id of each variant, index 0 being `function_id` (empty: none).
    variant_functions: tuple = ()

    def function_for(self, variant: int) -> int:
        return self.variant_functions[variant] if self.variant_functions else self.function_id
    on_failure: FailurePolicy = FailurePolicy.RETRY
    failure_defaults: dict | None = None   # IGNORE: write key -> MasterValue given by the user
    packed: bytes | None = None         # entry and kinds, while kept only as lineage

    def pack(self) -> None:
        """The task is done and kept only in case an output of it must be made again: hold
        its descriptors as one bytes object (~200 bytes for a small call, not ~1.4 KB)."""
        if self.packed is not None:
            return
        frames = compact_frames(self.frames)
        inline = all(type(frame) is bytes for frame in frames)   # no large buffer to copy
        self.packed = pickle.dumps((self.entry, self.kinds, frames if inline else None),
                                   protocol=5)
        self.entry = self.kinds = None
        self.frames = None if inline else frames

    def unpack(self) -> "TaskCall":
        if self.packed is not None:
            self.entry, self.kinds, frames = pickle.loads(self.packed)
            if frames is not None:
                self.frames = frames
            self.packed = None
        return self
    # (content key, read versions' identities, "journal" | "cache" | None where its outputs
    # are persisted) when the run keys its tasks (runtime.master.reuse)
    identity: tuple | None = None


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
