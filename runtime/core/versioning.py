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


@dataclass(slots=True)
class _Datum:
    version: int = 0          # 0: no version exists yet (declared, never written)
    # A run of consecutive COMMUTATIVE/CONCURRENT accesses is one group: its tasks may run in any
    # order (never at once) and the access after the group reads the version the group ends on.
    group_direction: Direction | None = None


class DataRegistry:
    """Datum ids and their current versions. Not thread-safe: the application thread owns it."""

    def __init__(self) -> None:
        self._next_id = 1
        self._data: dict[int, _Datum] = {}

    def new_datum(self) -> int:
        datum_id = self._next_id
        self._next_id += 1
        self._data[datum_id] = _Datum()
        return datum_id

    def new_datum_with_value(self) -> tuple[int, str]:
        """A datum whose first version is a value the application already holds."""
        datum_id = self.new_datum()
        self._data[datum_id].version = 1
        return datum_id, version_key(datum_id, 1)

    def current_key(self, datum_id: int) -> str | None:
        datum = self._data[datum_id]
        return version_key(datum_id, datum.version) if datum.version else None

    def exists(self, datum_id: int) -> bool:
        return datum_id in self._data

    def access(self, datum_id: int, direction: Direction) -> Access:
        """Resolve one access; the order of calls is the program order."""
        datum = self._data[datum_id]
        if direction in (Direction.COMMUTATIVE, Direction.CONCURRENT):
            return self._group_access(datum_id, datum, direction)
        datum.group_direction = None
        read_key = version_key(datum_id, datum.version) if direction.reads and datum.version else None
        if direction.reads and read_key is None:
            raise KeyError(f"datum {datum_id} is read before any version of it exists")
        write_key = None
        if direction.writes:
            datum.version += 1
            write_key = version_key(datum_id, datum.version)
        return Access(datum_id, read_key, write_key)

    def _group_access(self, datum_id: int, datum: _Datum, direction: Direction) -> Access:
        # Commutative updates still chain through versions (each reads what the previous one
        # wrote); the engine is told the access was commutative and may run the group's tasks in
        # any order by handing versions out at dispatch time (see engine.CommutativeGroup).
        datum.group_direction = direction
        read_key = version_key(datum_id, datum.version)
        datum.version += 1
        return Access(datum_id, read_key, version_key(datum_id, datum.version))

    def forget(self, datum_id: int) -> str | None:
        """The application no longer refers to this datum; return its last key to release."""
        datum = self._data.pop(datum_id, None)
        if datum is None or not datum.version:
            return None
        return version_key(datum_id, datum.version)

    def __len__(self) -> int:
        return len(self._data)
