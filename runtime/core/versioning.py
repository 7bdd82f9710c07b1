"""Data versioning with renaming: the reason only read-after-write orders tasks.

Every datum (an object, a file, a directory, or one element of a collection) has a current
version. A task that reads gets the current version's key; a task that writes gets a brand new
key, so a later writer never has to wait for an earlier reader (WAR) or writer (WAW): they use
different keys. The engine then orders a task only after the producers of the keys it reads.

This registry lives on the application's thread: it runs during parameter analysis, so the
key a future stands for is known the moment the task call returns.
"""
from __future__ import annotations

from dataclasses import dataclass

from .params import Direction


def version_key(datum_id: int, version: int) -> str:
    """PyCOMPSs-style renaming: d<datum>v<version>."""
    return f"d{datum_id}v{version}"


@dataclass(slots=True)
class Access:
    """What one parameter access resolved to: the key read (if any) and the key written."""

    datum_id: int
    read_key: str | None
    write_key: str | None


class DataRegistry:
    """Datum ids and their current versions. Not thread-safe: the application thread owns it."""

    def __init__(self) -> None:
        self._next_id = 1
        # datum -> its current version; 0: declared, never written (an OUT not yet produced)
        self._versions: dict[int, int] = {}

    def new_datum(self) -> int:
        datum_id = self._next_id
        self._next_id += 1
        self._versions[datum_id] = 0
        return datum_id

    def new_datum_with_value(self) -> tuple[int, str]:
        """A datum whose first version is a value the application already holds."""
        datum_id = self.new_datum()
        self._versions[datum_id] = 1
        return datum_id, version_key(datum_id, 1)

    def current_key(self, datum_id: int) -> str | None:
        version = self._versions[datum_id]
        return version_key(datum_id, version) if version else None

    def exists(self, datum_id: int) -> bool:
        return datum_id in self._versions

    def access(self, datum_id: int, direction: Direction) -> Access:
        """Resolve one access; the order of calls is the program order. COMMUTATIVE and
        CONCURRENT read and write like INOUT: their tasks run in program order (correct
        results; reordering them is left to the engine, not done yet)."""
        version = self._versions[datum_id]
        read_key = None
        if direction.reads:
            if not version:
                raise KeyError(f"datum {datum_id} is read before any version of it exists")
            read_key = version_key(datum_id, version)
        write_key = None
        if direction.writes:
            version = self._versions[datum_id] = version + 1
            write_key = version_key(datum_id, version)
        return Access(datum_id, read_key, write_key)

    def forget(self, datum_id: int) -> str | None:
        """The application no longer refers to this datum; return its last key to release."""
        version = self._versions.pop(datum_id, None)
        return version_key(datum_id, version) if version else None

    def __len__(self) -> int:
        return len(self._versions)
