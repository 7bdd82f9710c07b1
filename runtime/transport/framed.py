"""Multipart messages over a connected Unix stream socket: the channel between a worker and
each of its executors, and between the master and each local worker.

Why not ZeroMQ here: a ZeroMQ message crosses two extra I/O threads, one per side, and each
hop wakes a thread; on the 2-vCPU virtual machines our users start on, a ROUTER/DEALER round
trip between two processes costs 5-10x a socketpair's (bench/limits.py). An executor is its
worker's child, and a local worker the master's, so the channel is a socketpair made before
it starts: no address anyone else could connect to, and end of file when either side dies.

    message = u32 frame count, u64 length per frame, then the frames' bytes back to back

The executor side blocks (it has nothing else to do); the worker's and master's sides never
wait: they read what is there, keep a half-received message for the next read, and keep what
they could not write until the socket is writable again. (Two processes each waiting for the
rest of a message the other has not finished writing would deadlock; tests/test_framed.py.)
Frames of LARGE_FRAME bytes or more are received straight into their own buffer (one copy,
the kernel's); smaller ones are sliced out of a shared read buffer.
"""
from __future__ import annotations

import os
import socket
import struct
from collections import deque

import zmq

COUNT = struct.Struct("<I")
LENGTH = struct.Struct("<Q")
LARGE_FRAME = 64 * 1024
READ_CHUNK = 256 * 1024
MAX_FRAMES = 1 << 20
_IOV_MAX = 1024                # sendmsg's limit on buffers per call
# zmq.POLLIN/POLLOUT are IntFlag members: `events & zmq.POLLIN` runs enum's Python-level
# __and__, several per message in a loop; plain ints cost nothing.
READABLE, WRITABLE = int(zmq.POLLIN), int(zmq.POLLOUT)


class ChannelClosed(ConnectionError):
    """The other end closed its side (exited or died)."""


class WouldBlock(BlockingIOError):
    """No complete message is waiting (non-blocking receive)."""


def pair() -> tuple[socket.socket, socket.socket]:
    """(worker end, executor end), both close-on-exec; pass the executor's to a child."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def _header(parts: list) -> bytes:
    lengths = [memoryview(part).nbytes for part in parts]
    return COUNT.pack(len(lengths)) + struct.pack(f"<{len(lengths)}Q", *lengths)


class FramedChannel:
    """One end of the channel. `blocking=False` for the worker's event loop."""

    def __init__(self, sock: socket.socket, blocking: bool = True):
        self.socket = sock
        self.blocking = blocking
        sock.setblocking(blocking)
        self._buffer = bytearray(READ_CHUNK)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0               # unread bytes: _buffer[_start:_end]
        self._outgoing: deque = deque()           # memoryviews not written yet (worker side)
        self._large: _LargeMessage | None = None  # a message with big frames, being received

    @classmethod
    def from_fd(cls, fd: int, blocking: bool = True) -> "FramedChannel":
        return cls(socket.socket(fileno=fd), blocking)

    def fileno(self) -> int:
        return self.socket.fileno()

    def close(self) -> None:
        self.socket.close()

    # ---- sending --------------------------------------------------------------------------------
    def send_multipart(self, parts: list, copy: bool = True) -> None:   # noqa: ARG002 - zmq-like
        if self.blocking:
            self._write_all(_views(parts))
            return
        self._outgoing.extend(_views(parts))
        self.flush()

    def queue_multipart(self, parts: list) -> None:
        """Non-blocking side: keep the message for the next flush(), so that several messages
        of one loop turn leave in one system call (and wake the reader once)."""
        self._outgoing.extend(_views(parts))

    @property
    def wants_to_write(self) -> bool:
        """Bytes wait for the socket to become writable (poll it for POLLOUT)."""
        return bool(self._outgoing)

    def flush(self) -> None:
        """Write what the socket takes now (non-blocking side)."""
        outgoing = self._outgoing
        while outgoing:
            batch = [outgoing[index] for index in range(min(len(outgoing), _IOV_MAX))]
            try:
                sent = self.socket.sendmsg(batch)
            except (BlockingIOError, InterruptedError):
                return
            except (BrokenPipeError, ConnectionResetError) as error:
                outgoing.clear()
                raise ChannelClosed(str(error)) from None
            _consume(outgoing, sent)

    def _write_all(self, views: list) -> None:
        pending = deque(views)
        while pending:
            batch = [pending[index] for index in range(min(len(pending), _IOV_MAX))]
            try:
                sent = self.socket.sendmsg(batch)
            except InterruptedError:
                continue
            except (BrokenPipeError, ConnectionResetError) as error:
                raise ChannelClosed(str(error)) from None
            _consume(pending, sent)

    # ---- receiving ------------------------------------------------------------------------------
    def recv_multipart(self, flags: int = 0, copy: bool = False) -> list:  # noqa: ARG002
        """The next message's frames (bytes, or bytearray for large ones). Non-blocking side:
        raises WouldBlock when no complete message has arrived."""
        while True:
            message = self._advance_large() if self._large is not None else self._parse()
            if message is not None:
                return message
            if self._large is not None and self._large.wants_socket(self):
                if not self._large.read_from(self):
                    raise WouldBlock()
            elif not self._fill():
                raise WouldBlock()

    def _parse(self) -> list | None:
        available = self._end - self._start
        if available < COUNT.size:
            return None
        count = COUNT.unpack_from(self._buffer, self._start)[0]
        if count > MAX_FRAMES:
            raise ChannelClosed(f"garbled channel: {count} frames announced")
        header_size = COUNT.size + count * LENGTH.size
        if available < header_size:
            self._make_room(header_size)
            return None
        lengths = struct.unpack_from(f"<{count}Q", self._buffer, self._start + COUNT.size)
        if any(length >= LARGE_FRAME for length in lengths):
            self._start += header_size
            self._large = _LargeMessage(lengths)
            return self._advance_large()
        body = sum(lengths)
        if available < header_size + body:
            self._make_room(header_size + body)
            return None
        position = self._start + header_size
        frames = []
        for length in lengths:
            frames.append(bytes(self._view[position:position + length]))
            position += length
        self._start = position
        return frames

    def _advance_large(self) -> list | None:
        """Move what was read into the large message's buffers; its frames once complete.
        Never waits: a worker or master must not stall mid-message (the peer may itself be
        waiting for the rest of a message this process has not finished writing)."""
        large = self._large
        taken = large.take(self._view[self._start:self._end])
        self._start += taken
        if not large.complete:
            return None
        self._large = None
        return large.frames

    def _make_room(self, needed: int) -> None:
        """Keep unread bytes at the front, and the buffer large enough for `needed` bytes."""
        if self._start:
            unread = self._end - self._start
            self._view[:unread] = self._view[self._start:self._end]
            self._start, self._end = 0, unread
        if needed > len(self._buffer):
            grown = bytearray(max(needed, 2 * len(self._buffer)))
            grown[:self._end] = self._view[:self._end]
            self._view.release()
            self._buffer, self._view = grown, memoryview(grown)

    def _fill(self) -> bool:
        """Read more; False when nothing is available now (non-blocking side)."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            self._make_room(self._end - self._start + 1)
        received = self._recv_into(self._view[self._end:])
        if received == 0:
            return False
        self._end += received
        return True

    def _recv_into(self, view: memoryview) -> int:
        """Bytes read into `view`; 0 when nothing is there yet (only the non-blocking side)."""
        while True:
            try:
                received = self.socket.recv_into(view)
            except InterruptedError:
                continue
            except BlockingIOError:
                return 0
            except ConnectionResetError as error:
                raise ChannelClosed(str(error)) from None
            if received == 0:
                raise ChannelClosed("the other end closed the channel")
            return received


class _LargeMessage:
    """A message with frames of LARGE_FRAME bytes or more, received across several reads:
    each large frame gets its own buffer, which the socket fills directly (one copy, the
    kernel's); small frames are copied out of the channel's read buffer."""

    def __init__(self, lengths: tuple):
        self.frames = [bytearray(length) for length in lengths]
        self._views = [memoryview(frame) for frame in self.frames]
        self._index = 0
        self._filled = 0
        self._skip_empty()

    @property
    def complete(self) -> bool:
        return self._index == len(self.frames)

    def _skip_empty(self) -> None:
        while self._index < len(self.frames) and not len(self.frames[self._index]):
            self._finish_frame()

    def _finish_frame(self) -> None:
        frame = self.frames[self._index]
        if len(frame) < LARGE_FRAME:
            self.frames[self._index] = bytes(frame)
        self._index += 1
        self._filled = 0

    def take(self, available: memoryview) -> int:
        """Copy from already-read bytes; returns how many were used."""
        used = 0
        while not self.complete and used < available.nbytes:
            view = self._views[self._index]
            count = min(view.nbytes - self._filled, available.nbytes - used)
            view[self._filled:self._filled + count] = available[used:used + count]
            used += count
            self._advance(count)
        return used

    def wants_socket(self, channel: "FramedChannel") -> bool:
        """The current frame is large and nothing buffered is left: read straight into it."""
        return (not self.complete and len(self.frames[self._index]) >= LARGE_FRAME
                and channel._start == channel._end)

    def read_from(self, channel: "FramedChannel") -> bool:
        """One read into the current frame; False when nothing came (non-blocking side)."""
        view = self._views[self._index][self._filled:]
        received = channel._recv_into(view)
        if not received:
            return False
        self._advance(received)
        return True

    def _advance(self, count: int) -> None:
        self._filled += count
        if self._filled == self._views[self._index].nbytes:
            self._finish_frame()
            self._skip_empty()


def _consume(pending: deque, sent: int) -> None:
    while sent:
        first = pending[0]
        if sent >= first.nbytes:
            sent -= first.nbytes
            pending.popleft()
        else:
            pending[0] = first[sent:]
            sent = 0


def _views(parts: list) -> list:
    views = [memoryview(_header(parts))] + [memoryview(part).cast("B") for part in parts]
    return [view for view in views if view.nbytes]


class ChannelWatch:
    """What a zmq.Poller watches each non-blocking channel for: readable always, writable only
    while output waits (a writable socket is almost always ready: polling for it otherwise
    would spin the loop). Unwatch a channel before closing it: its fd number gets reused."""

    def __init__(self, poller):
        self._poller = poller
        self._events: dict[int, int] = {}           # fd -> events it is polled for

    def update(self, channel: FramedChannel) -> None:
        fd = channel.fileno()
        wanted = READABLE | WRITABLE if channel.wants_to_write else READABLE
        if self._events.get(fd) != wanted:
            self._poller.register(fd, wanted)       # registering again updates the events
            self._events[fd] = wanted

    def unwatch(self, fd: int) -> None:
        if self._events.pop(fd, None) is not None:
            self._poller.unregister(fd)

    def __contains__(self, fd: int) -> bool:
        return fd in self._events

    def fds(self) -> list[int]:
        return list(self._events)


def inherit(fd: int) -> FramedChannel:
    """The executor's end, from a file descriptor the worker passed down."""
    os.set_inheritable(fd, False)
    return FramedChannel.from_fd(fd, blocking=True)
