"""The worker's data: versions it produced or received, held until the master says delete.

Objects are kept as the frames they arrived in (the worker process never unpickles user data,
so a value that fails to unpickle can only fail the task that reads it); large ones as a memfd
(shared_values.py) that executors map instead of receiving the bytes. Files and directories
live under <work_dir>/data/<key>.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

from ..transport.payload import compact_frames, path_frames, write_path_frames
from .shared_values import SharedValue, should_share


VERSION_KEY = re.compile(r"d\d+v\d+\Z")


@dataclass(slots=True)
class Stored:
    kind: str                 # "obj" | "file" | "dir"
    frames: list | None       # an object's frames, unless it is `shared`
    path: str | None
    nbytes: int
    shared: SharedValue | None = None     # a large object, in a memfd this process holds

    def object_frames(self) -> list:
        return self.shared.frames() if self.shared is not None else self.frames


class DataStore:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self._items: dict[str, Stored] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> Stored | None:
        return self._items.get(key)

    def put_object(self, key: str, frames: list, nbytes: int) -> None:
        """Large values are copied once into a memfd: executors then map them."""
        if should_share(frames):
            try:
                self.put_shared(key, SharedValue.write(key, frames), nbytes)
                return
            except OSError:
                pass                    # out of fds or memory for memfds: keep the frames
        self._put(key, Stored("obj", compact_frames(frames), None, nbytes))

    def put_shared(self, key: str, shared: SharedValue, nbytes: int) -> None:
        self._put(key, Stored("obj", None, None, nbytes, shared))

    def _put(self, key: str, stored: Stored) -> None:
        replaced = self._items.get(key)
        if replaced is not None and replaced.shared is not None:
            replaced.shared.close()
        self._items[key] = stored

    def put_path(self, key: str, kind: str, path: str, nbytes: int) -> None:
        self._put(key, Stored(kind, None, path, nbytes))

    def put_transferred(self, key: str, kind: str, frames: list) -> None:
        """Store a value received from a peer; files arrive as bytes, directories as tar."""
        if kind == "obj":
            self.put_object(key, frames, sum(memoryview(f).nbytes for f in frames))
            return
        if not VERSION_KEY.match(key):    # the key becomes a file name: never "../x"
            raise ValueError(f"refusing to store a value under the malformed key {key!r}")
        path = os.path.join(self.data_dir, key)
        self.put_path(key, kind, path, write_path_frames(kind, frames, path))

    def put_local_copy(self, key: str, kind: str, origin: str) -> None:
        """A file at a path this host can read (the application's own disk)."""
        self.put_path(key, kind, origin, 0)

    def frames_for_transfer(self, key: str) -> tuple[str, list] | None:
        stored = self._items.get(key)
        if stored is None:
            return None
        if stored.kind == "obj":
            return "obj", stored.object_frames()
        return stored.kind, path_frames(stored.kind, stored.path)

    def delete(self, key: str) -> None:
        stored = self._items.pop(key, None)
        if stored is not None and stored.shared is not None:
            stored.shared.close()
        if stored is None or stored.path is None:
            return
        if not stored.path.startswith(self.data_dir):
            return                      # never delete the application's own files
        if stored.kind == "dir":
            shutil.rmtree(stored.path, ignore_errors=True)
        else:
            try:
                os.unlink(stored.path)
            except FileNotFoundError:
                pass

    def __len__(self) -> int:
        return len(self._items)
