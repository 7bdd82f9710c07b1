"""Persisted task outputs: append-only pack files written by whoever ran the task.

    executor (or the sequential backend)                    master, next run (--resume, cache)
    run_task ─► outputs ─► append_record(entry, outputs)     scan(pack) ─► index (journal.py)
                            │ one record per task, one         read(pack, offset, length)
                            ▼ write() before ExecResult           ─► frames (mmap slices), paths
                  <store>/outputs/pack-<host>-<pid>-<token>.ssp
                  <store>/outputs/files/<task key>-<index>       (FILE/DIRECTORY outputs)

Why here and why like this: the process that produced an output already holds its bytes, so
writing them costs one append, and the master never fetches results it does not need. One
record holds every output of a task, so a record that is complete proves the task finished; a
kill -9 can only leave a truncated record at the end of a pack, which a scan stops at. 10^6
small outputs become a few large files (one per executor process), not 10^6 files. Large
arrays are read back through mmap: a resumed run touches only the pages it sends on.

Record layout: MAGIC, u32 header length, msgpack header [task_key, [output, ...]], payload.
An output is ["obj", [frame lengths]] (frames follow in the payload, in order) or
[kind, relative path, nbytes] for a file or directory copied under files/.
"""
from __future__ import annotations

import logging
import mmap
import os
import shutil
import socket
import struct

import msgpack

log = logging.getLogger("superscalar.persist")

MAGIC = b"SSP1"
_PREFIX = struct.Struct("<4sI")
PACK_SUFFIX = ".ssp"
FILES_DIR = "files"


class _PackWriter:
    """This process's pack in one outputs folder (opened on first use, after any fork)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.pid = os.getpid()
        os.makedirs(folder, exist_ok=True)
        name = f"pack-{socket.gethostname()}-{self.pid}-{os.urandom(4).hex()}{PACK_SUFFIX}"
        self.fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                          0o644)

    def append(self, parts: list) -> None:
        total = sum(memoryview(part).nbytes for part in parts)
        written = os.writev(self.fd, parts)
        if written != total:              # a short write (huge records): finish it in pieces
            joined = memoryview(b"".join(bytes(part) for part in parts))
            while written < total:
                written += os.write(self.fd, joined[written:])


_writers: dict[str, _PackWriter] = {}


def append_record(entry: dict, outputs: list) -> None:
    """Persist a finished task's outputs if its entry asks for it (entry["persist"] =
    [outputs folder, task key, write keys in order]). Never fails the task: an output that
    cannot be persisted only means the task runs again on resume."""
    persist = entry.get("persist")
    if not persist:
        return
    folder, task_key, writes = persist
    try:
        _append(folder, task_key, writes, outputs)
    except Exception as error:   # disk full, permissions: the task itself succeeded
        log.warning("could not persist the outputs of task %s in %s: %s",
                    entry.get("name"), folder, error)


def _append(folder: str, task_key: bytes, writes: list, outputs: list) -> None:
    by_key = {output.key: output for output in outputs}
    if len(by_key) != len(writes) or any(key not in by_key for key in writes):
        raise ValueError(f"outputs {sorted(by_key)} do not match the declared {writes}")
    described, payload = [], []
    for index, key in enumerate(writes):
        output = by_key[key]
        if output.kind == "obj":
            described.append(["obj", [memoryview(f).nbytes for f in output.frames]])
            payload.extend(output.frames)
        else:
            relative = os.path.join(FILES_DIR, f"{task_key.hex()}-{index}")
            _copy_path(output.kind, output.path, os.path.join(folder, relative))
            described.append([output.kind, relative, output.nbytes])
    header = msgpack.packb([task_key, described], use_bin_type=True)
    writer = _writers.get(folder)
    if writer is None or writer.pid != os.getpid():
        writer = _writers[folder] = _PackWriter(folder)
    writer.append([_PREFIX.pack(MAGIC, len(header)), header, *payload])


def _copy_path(kind: str, source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if kind == "dir":
        if os.path.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


# ---- reading (the master, at the start of a resumed or cached run) ----------------------------

def pack_paths(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(folder, n) for n in names if n.endswith(PACK_SUFFIX))


def scan(path: str, start: int = 0) -> tuple[list, int]:
    """Complete records from byte `start`: ([(task_key, offset, length)], end of the last
    complete record). A truncated or garbled tail ends the scan."""
    records = []
    size = os.path.getsize(path)
    offset = start
    with open(path, "rb") as handle:
        handle.seek(start)
        while offset + _PREFIX.size <= size:
            magic, header_length = _PREFIX.unpack(handle.read(_PREFIX.size))
            if magic != MAGIC or offset + _PREFIX.size + header_length > size:
                break
            try:
                task_key, described = msgpack.unpackb(handle.read(header_length), raw=False)
                payload = sum(sum(item[1]) for item in described if item[0] == "obj")
            except Exception:
                break
            length = _PREFIX.size + header_length + payload
            if offset + length > size:
                break
            records.append((bytes(task_key), offset, length))
            offset += length
            handle.seek(offset)
    return records, offset


class PackReader:
    """Reads records back; maps each pack once so object frames are slices of the file."""

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def read(self, folder: str, pack: str, offset: int, length: int) -> list:
        """[(kind, frames or None, path or None, nbytes)] in the task's write order."""
        view = memoryview(self._map(os.path.join(folder, pack), offset + length))
        view = view[offset:offset + length]
        magic, header_length = _PREFIX.unpack(view[:_PREFIX.size])
        if magic != MAGIC:
            raise ValueError(f"no record at {pack}:{offset}")
        position = _PREFIX.size + header_length
        _, described = msgpack.unpackb(view[_PREFIX.size:position], raw=False)
        outputs = []
        for item in described:
            if item[0] == "obj":
                frames = []
                for size in item[1]:
                    frames.append(view[position:position + size])
                    position += size
                outputs.append(("obj", frames, None, sum(item[1])))
            else:
                kind, relative, nbytes = item
                outputs.append((kind, None, os.path.join(folder, relative), nbytes))
        return outputs

    def _map(self, path: str, needed: int) -> mmap.mmap:
        mapped = self._maps.get(path)
        if mapped is None or len(mapped) < needed:
            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[path] = mapped
        return mapped
