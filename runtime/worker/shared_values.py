"""Large values in shared memory: one sealed memfd per value, mapped by whoever reads it.

    executor: result frames ──pwrite once──► memfd (sealed) ──ExecResult.shared [pid, fd, ...]──┐
    worker:   open /proc/<executor>/fd/<fd> ──► own fd ──Release──► executor closes its fd ◄──┘
              store keeps the fd; maps it (MAP_SHARED, read-only) only to send it on or persist it
    worker:   Exec.shared [worker pid, fd, ...] ──► executor opens /proc/<worker>/fd/<fd> and maps
              it MAP_PRIVATE + PROT_WRITE: copy-on-write, so a task may modify its IN array
              without a copy and without touching the stored value
    master / peer frames (ZeroMQ) ──pwrite once on arrival──► memfd owned by the worker

Why: a 4 MiB ZeroMQ hop costs several milliseconds here (page faults on fresh buffers), more
than the arithmetic of a typical task; a memfd is written once and then only mapped.
Nothing leaks: a memfd lives while a process holds its fd or a mapping of it, so it dies with
its holders (kill -9 included); the store's delete closes the worker's fd.
A value's memfd is named "ss:<key>:<token>" and the opener checks the name, so a recycled fd
number can never hand a task another value; the seals (no write, shrink or grow) guarantee
nobody changes a stored value or truncates it under a mapping (which would raise SIGBUS).
"""
from __future__ import annotations

import fcntl
import mmap
import os
import resource

# Values whose frames total at least this go through shared memory; smaller ones are cheaper
# copied inside the message than set up as a mapping.
SHARED_MIN_BYTES = 1024 * 1024
_ALIGN = 64                     # buffers start on cache-line boundaries (numpy likes them so)
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


class SharedValueError(OSError):
    """A shared value that cannot be opened: its holder is gone or the descriptor is stale."""


def should_share(frames: list) -> bool:
    return sum(memoryview(frame).nbytes for frame in frames) >= SHARED_MIN_BYTES


def raise_fd_limit() -> None:
    """One fd per stored value: let the worker hold as many as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class SharedValue:
    """A value's frames in a memfd this process holds: `fd`, and `layout` [[offset, length]]
    (the pickle head first, then the out-of-band buffers)."""

    __slots__ = ("fd", "name", "layout", "_mapping")

    def __init__(self, fd: int, name: str, layout: list):
        self.fd = fd
        self.name = name
        self.layout = layout
        self._mapping = None

    @classmethod
    def write(cls, key: str, frames: list) -> "SharedValue":
        """Copy `frames` into a new sealed memfd (the one copy a value makes)."""
        name = f"ss:{key}:{os.urandom(4).hex()}"
        layout, size = [], 0
        for frame in frames:
            size = -(-size // _ALIGN) * _ALIGN
            length = memoryview(frame).nbytes
            layout.append([size, length])
            size += length
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            for (offset, _), frame in zip(layout, frames):
                _write_all(fd, frame, offset)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, name, layout)

    @classmethod
    def adopt(cls, description: list) -> "SharedValue":
        """Take a value another process of this host described: open its memfd ourselves."""
        pid, fd, name, layout = description
        return cls(open_described(pid, fd, name, layout), name, layout)

    def describe(self) -> list:
        """What another process needs to open this value (sent in Exec / ExecResult)."""
        return [os.getpid(), self.fd, self.name, self.layout]

    @property
    def nbytes(self) -> int:
        return sum(length for _, length in self.layout)

    def frames(self) -> list:
        """Read-only frames over a shared mapping, made on first use (only to send the value
        on or persist it: tasks map their own private copy-on-write view)."""
        if self._mapping is None:
            self._mapping = memoryview(mmap.mmap(self.fd, _size(self.layout), mmap.MAP_SHARED,
                                                 mmap.PROT_READ))
        return [self._mapping[offset:offset + length] for offset, length in self.layout]

    def close(self) -> None:
        """Drop this holder's fd and mapping; frames still being sent keep the mapping alive
        until they are released (the mmap is unmapped when its last view goes)."""
        self._mapping = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def private_frames(description: list) -> list:
    """Writable frames of a value another process holds, copy-on-write: what a task gets."""
    pid, fd, name, layout = description
    opened = open_described(pid, fd, name, layout)
    try:
        mapping = mmap.mmap(opened, _size(layout), mmap.MAP_PRIVATE,
                            mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(opened)
    view = memoryview(mapping)
    return [view[offset:offset + length] for offset, length in layout]


def open_described(pid: int, fd: int, name: str, layout: list) -> int:
    """Our own fd on another process's memfd, after checking it is the value described."""
    if not (type(pid) is int and type(fd) is int and isinstance(name, str) and layout):
        raise SharedValueError(f"malformed shared value description {[pid, fd, name]!r}")
    try:
        opened = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise SharedValueError(f"cannot open shared value {name} of process {pid}: "
                               f"{error.strerror}") from None
    try:
        actual = os.readlink(f"/proc/self/fd/{opened}")
        if actual != f"/memfd:{name} (deleted)":
            raise SharedValueError(f"shared value {name} of process {pid} is gone "
                                   f"(fd {fd} is now {actual})")
        sealed = fcntl.fcntl(opened, fcntl.F_GET_SEALS) & _SEALS == _SEALS
        if not sealed or os.fstat(opened).st_size != _size(layout):
            raise SharedValueError(f"shared value {name} is not sealed at its described size")
    except BaseException:
        os.close(opened)
        raise
    return opened


def _size(layout: list) -> int:
    offset, length = layout[-1]
    return offset + length


def _write_all(fd: int, frame, offset: int) -> None:
    view = memoryview(frame)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
