"""What the application thread hands the master for one task call, and the master's own store.

A TaskCall is built once, during parameter analysis, and is the engine's opaque payload: it
already holds the serialized captured values, so the master never touches them again and the
shell only decides where to send them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class TaskCall:
    task_id: int
    name: str
    function_id: int
    entry: dict                         # args/kwargs descriptors, returns, reads, units, time_out
    frames: list                        # captured values' frames, referenced by the descriptors
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    kinds: dict                         # key -> "obj" | "file" | "dir" for every read key
    call_site: str = ""                 # "app.py:12", for error messages
    # (content key, read versions' identities, "journal" | "cache" | None where its outputs
    # are persisted) when the run keys its tasks (runtime.master.reuse)
    identity: tuple | None = None


@dataclass(slots=True)
class MasterValue:
    kind: str                           # "obj" | "file" | "dir"
    frames: list | None = None
    path: str | None = None


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
