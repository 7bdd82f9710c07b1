"""Persisted task outputs: append-only pack files written by whoever ran the task, or, for
small journal records, bytes the master stores in the task's own journal row.

    worker (or the sequential backend)                        master, next run (--resume, cache)
    ExecResult ─► store ─► done_report: small journal record   scan(pack) ─► index (journal.py)
                           ─► inline_record() in TasksDone     read(pack, offset, length)
                           other records ─► PersistQueue ─►      ─► frames (mmap slices), paths
                           append_results() (one writev)       read_inline(journal row)
                  <store>/outputs/pack-<host>-<pid>-<token>.ssp
                  <store>/outputs/files/<task key>-<index>        (FILE/DIRECTORY outputs)

Why here and why like this: the worker already holds the outputs' bytes, so persisting costs an
append, and the master never fetches results it does not need. Records are written in the
loop turn that reports their tasks, just after the report, so the write is off the critical
path of a chain's next task. One record holds every output of a task, so a complete record
proves the task finished; a kill -9 can only leave a truncated record at the end of a pack,
which a scan stops at. 10^6 small outputs become a few large files (one per worker process),
not 10^6 files. Large arrays are read back through mmap: a resumed run touches only the pages
it sends on. A result of at most INLINE_LIMIT bytes costs less to carry to the master in the
report it is part of anyway than to track, delay, append and report on its own.

Record layout: MAGIC, u32 header length, msgpack header [task_key, [output, ...]], payload.
An output is ["obj", [frame lengths]] (frames follow in the payload, in order) or
[kind, relative path, nbytes] for a file or directory linked or copied under files/. An
inline record is a whole record, or ONE_FRAME + the frame of a task's one object.
"""
from __future__ import annotations

import logging
import mmap
import os
import shutil
import socket
import struct

import msgpack

from ..transport.payload import frame_size

log = logging.getLogger("superscalar.persist")

MAGIC = b"SSP1"
_PREFIX = struct.Struct("<4sI")
PACK_SUFFIX = ".ssp"
FILES_DIR = "files"
_SMALL = 64 * 1024            # frames below this are copied into one buffer, larger go as-is
_MAX_PARTS = 512              # below the kernel's IOV_MAX for one writev


class _PackWriter:
    """This process's pack in one outputs folder (opened on first use, after any fork)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.pid = os.getpid()
        os.makedirs(folder, exist_ok=True)
        name = f"pack-{socket.gethostname()}-{self.pid}-{os.urandom(4).hex()}{PACK_SUFFIX}"
        self.fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                          0o644)
        self.parts: list = []
        self.small = bytearray()

    def add(self, head: bytes, frames) -> None:
        """One record: its header, then its frames (small ones copied into one buffer)."""
        small = self.small
        small += head
        for frame in frames:
            if frame_size(frame) < _SMALL:
                small += frame
            else:
                self.parts.append(small)
                self.parts.append(frame)
                small = self.small = bytearray()
        if len(self.parts) >= _MAX_PARTS:
            self.write()

    def write(self) -> None:
        parts, self.parts = self.parts, []
        if self.small:
            parts.append(self.small)
            self.small = bytearray()
        if not parts:
            return
        total = sum(memoryview(part).nbytes for part in parts)
        written = os.writev(self.fd, parts)
        if written != total:              # a short write (huge records): finish it in pieces
            joined = memoryview(b"".join(bytes(part) for part in parts))
            while written < total:
                written += os.write(self.fd, joined[written:])


_writers: dict[str, _PackWriter] = {}
_packer = msgpack.Packer(use_bin_type=True)
_pid = os.getpid


def append_results(results: list) -> list[bool]:
    """Persist finished tasks' outputs: `results` = [(persist, described, frames)], persist
    being the entry's ["persist"] = [outputs folder, task key, write keys in order, journal]
    and `described` the executor's ExecResult outputs ([key, start, count, kind, path,
    nbytes], objects' bytes in `frames`). Returns, per result, whether its record was written.
    Never fails a task: an output that cannot be persisted only means the task runs again on
    resume."""
    writers: dict = {}
    written = [False] * len(results)
    folder = writer = indices = None
    for index, (persist, described, frames) in enumerate(results):
        if persist[0] != folder:
            folder = persist[0]
            try:
                writer, indices = writers.get(folder) or \
                    writers.setdefault(folder, (_writer(folder), []))
            except OSError as error:
                _warn_once(folder, f"could not persist task outputs in {folder}: {error}; "
                                   f"such tasks run again on resume")
                folder = None
                continue
        try:
            _add_record(writer, folder, persist[1], persist[2], described, frames)
        except Exception as error:   # disk full, permissions: the task itself succeeded
            _warn_once(folder, f"could not persist the outputs of task "
                               f"{bytes(persist[1]).hex()} in {folder}: {error}; such tasks "
                               f"run again on resume")
            continue
        indices.append(index)
    for writer, indices in writers.values():
        try:
            writer.write()
        except OSError as error:
            _warn_once(writer.folder, f"could not persist task outputs in {writer.folder}: "
                                      f"{error}; such tasks run again on resume")
            continue
        for index in indices:
            written[index] = True
    return written


def append_record(entry: dict, outputs: list) -> bool:
    """One task run by the sequential backend (`outputs`: execution.Output), if asked; True
    if a journal record was written (the sequential backend never delays)."""
    persist = entry.get("persist")
    if not persist:
        return False
    described, frames = [], []
    for output in outputs:
        count = len(output.frames) if output.frames else 0
        described.append([output.key, len(frames), count, output.kind, output.path,
                          output.nbytes])
        frames.extend(output.frames or ())
    return append_results([(persist, described, frames)])[0] and len(persist) > 3 and \
        bool(persist[3])


INLINE_LIMIT = 512      # a journal record of at most this many payload bytes goes inline
ONE_FRAME = b"\0"       # an inline record that is one object's one frame, no header


def inline_record(persist: list, described: list, frames: list) -> bytes | None:
    """A journal record small enough to travel inside the worker's TasksDone and be stored in
    the task's own journal row, or None (the record goes to a pack, delayed). Why: a tiny
    result costs less to send on than to track, delay, append and report on its own; the
    row and its outputs then commit in one transaction, with no persisted mark. The usual task
    (one object, one frame) is sent as ONE_FRAME + the frame: no header to build per task
    (read_inline knows both forms)."""
    if len(persist) < 4 or not persist[3]:
        return None
    if len(described) == 1 and described[0][2] == 1 and described[0][3] == "obj":
        frame = frames[described[0][1]]
        return ONE_FRAME + frame if frame_size(frame) <= INLINE_LIMIT else None
    total = 0
    for output in described:
        if output[3] != "obj":
            return None
        for frame in frames[output[1]:output[1] + output[2]]:
            total += frame_size(frame)
    if total > INLINE_LIMIT:
        return None
    head, payload = _record(None, persist[1], persist[2], described, frames)
    return b"".join([head, *payload])


def read_inline(record: bytes) -> list:
    """An inline record (inline_record) as read_record returns it."""
    if record[:1] == ONE_FRAME:
        frame = memoryview(record)[1:]
        return [("obj", [frame], None, frame.nbytes)]
    return read_record(record, "", "a journal row")


_warned: set = set()


def _warn_once(folder: str, message: str) -> None:
    """10^6 tasks must not log 10^6 times that their folder is not writable."""
    if folder not in _warned:
        _warned.add(folder)
        log.warning(message)


def _writer(folder: str) -> _PackWriter:
    writer = _writers.get(folder)
    if writer is None or writer.pid != _pid():
        writer = _writers[folder] = _PackWriter(folder)
    return writer


def _add_record(writer: _PackWriter, folder: str, task_key: bytes, writes: list,
                described: list, frames: list) -> None:
    writer.add(*_record(folder, task_key, writes, described, frames))


def _record(folder: str | None, task_key: bytes, writes: list, described: list,
            frames: list) -> tuple[bytes, list]:
    """A record's head (MAGIC, header length, header) and its payload frames."""
    if len(described) == 1 and described[0][3] == "obj" and len(writes) == 1 and \
            described[0][0] == writes[0]:      # the usual task: one object, its frames
        _, start, count = described[0][:3]
        payload = frames if start == 0 and count == len(frames) else frames[start:start + count]
        layout = [["obj", _sizes(payload)]]
    else:
        layout, payload = _layout(folder, task_key, writes, described, frames)
    header = _packer.pack([task_key, layout])
    return _PREFIX.pack(MAGIC, len(header)) + header, payload


def _layout(folder: str, task_key: bytes, writes: list, described: list,
            frames: list) -> tuple[list, list]:
    """The record's outputs in the order of `writes`; files linked or copied under files/."""
    by_key = {output[0]: output for output in described}
    if len(by_key) != len(writes) or any(key not in by_key for key in writes):
        raise ValueError(f"outputs {sorted(by_key)} do not match the declared {writes}")
    layout, payload = [], []
    for index, key in enumerate(writes):
        _, start, count, kind, path, nbytes = by_key[key]
        if kind == "obj":
            chunk = frames[start:start + count]
            layout.append(["obj", _sizes(chunk)])
            payload += chunk
        else:
            relative = os.path.join(FILES_DIR, f"{bytes(task_key).hex()}-{index}")
            _link_or_copy(kind, path, os.path.join(folder, relative))
            layout.append([kind, relative, nbytes])
    return layout, payload


def _sizes(frames: list) -> list:
    return [frame_size(f) for f in frames]


def _link_or_copy(kind: str, source: str, target: str) -> None:
    """Versions are immutable files (a new version is a new file): a hard link is a copy."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if kind == "dir":
        if os.path.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(source, target, copy_function=_link_or_copy_file)
    else:
        _link_or_copy_file(source, target)


def _link_or_copy_file(source: str, target: str) -> None:
    try:
        if os.path.exists(target):
            os.unlink(target)
        os.link(source, target)
    except OSError:                        # another file system, or no hard links there
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
    offset = start
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= start:
            return records, start
        with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                while offset + _PREFIX.size <= size:
                    magic, header_length = _PREFIX.unpack_from(view, offset)
                    header_end = offset + _PREFIX.size + header_length
                    if magic != MAGIC or header_end > size:
                        break
                    try:
                        task_key, described = msgpack.unpackb(view[offset + _PREFIX.size:
                                                                   header_end], raw=False)
                        payload = sum(sum(item[1]) for item in described if item[0] == "obj")
                    except Exception:
                        break
                    if header_end + payload > size:
                        break
                    records.append((bytes(task_key), offset, header_end + payload - offset))
                    offset = header_end + payload
            finally:
                view.release()
    return records, offset


def read_record(view, folder: str, where: str) -> list:
    """One whole record (from a pack, or inline in a journal row) as [(kind, frames or None,
    path or None, nbytes)] in the task's write order; ValueError if it is not one."""
    view = memoryview(view)
    if view.nbytes < _PREFIX.size:
        raise ValueError(f"no record at {where}")
    magic, header_length = _PREFIX.unpack(view[:_PREFIX.size])
    position = _PREFIX.size + header_length
    if magic != MAGIC or position > view.nbytes:
        raise ValueError(f"no record at {where}")
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
    if position != view.nbytes:
        raise ValueError(f"a truncated record at {where}")
    return outputs


class PackReader:
    """Reads records back; maps each pack once so object frames are slices of the file."""

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def read(self, folder: str, pack: str, offset: int, length: int) -> list:
        """[(kind, frames or None, path or None, nbytes)] in the task's write order."""
        view = memoryview(self._map(os.path.join(folder, pack), offset + length))
        return read_record(view[offset:offset + length], folder, f"{pack}:{offset}")

    def _map(self, path: str, needed: int) -> mmap.mmap:
        mapped = self._maps.get(path)
        if mapped is None or len(mapped) < needed:
            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[path] = mapped
        return mapped
