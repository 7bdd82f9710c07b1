"""Values as frames: one pickle frame plus one frame per large buffer, never an extra copy.

Pickle protocol 5 hands large contiguous buffers (numpy arrays, bytes-like) to a callback
instead of copying them into the pickle; those become separate ZeroMQ frames sent with
copy=False, and on the receiving side pickle rebuilds the arrays on top of the received frames.

References to runtime data inside a value (a future in a list passed as IN) are pickled as
*persistent ids*: the receiving side resolves them from its store, so a list of futures arrives
as a list of values, never as placeholders.
"""
from __future__ import annotations

import io
import pickle
import tarfile

import cloudpickle

# Buffers smaller than this are cheaper to copy into the pickle than to send as their own frame.
OUT_OF_BAND_MIN_BYTES = 64 * 1024


class SerializationError(TypeError):
    pass


class _Pickler(cloudpickle.CloudPickler):
    def __init__(self, file, buffer_callback, reference_of):
        super().__init__(file, protocol=5, buffer_callback=buffer_callback)
        self._reference_of = reference_of

    def persistent_id(self, obj):  # noqa: D401 - pickle hook
        if self._reference_of is None:
            return None
        return self._reference_of(obj)


def serialize(value: object, reference_of=None) -> list:
    """Return [pickle_bytes, *buffers]. `reference_of(obj) -> str | None` names runtime data."""
    buffers: list = []

    def keep_large(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < OUT_OF_BAND_MIN_BYTES:
            return True            # true means "serialize in band"
        buffers.append(raw)
        return False

    stream = io.BytesIO()
    try:
        _Pickler(stream, keep_large, reference_of).dump(value)
    except Exception as error:   # pickling runs arbitrary __reduce__ code: any error is possible
        raise SerializationError(f"cannot serialize {type(value).__name__}: "
                                 f"{type(error).__name__}: {error}") from error
    return [stream.getbuffer(), *buffers]


def fast_serialize(value: object) -> list:
    """Plain-pickle path for values known to need neither cloudpickle nor references."""
    buffers: list = []
    data = pickle.dumps(value, protocol=5, buffer_callback=lambda b: _oob(b, buffers))
    return [data, *buffers]


def _oob(buffer: pickle.PickleBuffer, buffers: list) -> bool:
    raw = buffer.raw()
    if raw.nbytes < OUT_OF_BAND_MIN_BYTES:
        return True
    buffers.append(raw)
    return False


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, buffers, resolve):
        super().__init__(file, buffers=buffers)
        self._resolve = resolve

    def persistent_load(self, pid):
        if self._resolve is None:
            raise pickle.UnpicklingError(f"value refers to runtime data {pid!r} but no store "
                                         f"was given to resolve it")
        return self._resolve(pid)


def deserialize(frames: list, resolve=None, writable: bool = True) -> object:
    """Rebuild a value. Received frames are read-only memory, so by default large buffers are
    copied once into writable memory: user code may modify what it gets (an IN array inside a
    task, a result after compss_wait_on), as with any Python value. `writable=False` is for
    the runtime's own read-only uses."""
    head, *buffers = frames
    if writable:
        buffers = [bytearray(buffer) for buffer in buffers]
    else:
        buffers = [memoryview(buffer) for buffer in buffers]
    if resolve is None:
        return pickle.loads(memoryview(head), buffers=buffers)
    return _Unpickler(io.BytesIO(head), buffers, resolve).load()


def frames_nbytes(frames: list) -> int:
    return sum(memoryview(frame).nbytes for frame in frames)


def frame_size(frame) -> int:
    """Bytes in one frame: bytes (the usual small frame, without making a memoryview), or any
    buffer (memoryview, zmq.Frame, a shared mapping)."""
    return len(frame) if type(frame) is bytes else memoryview(frame).nbytes


def compact_frames(frames) -> list:
    """Frames kept for a while (stores): small ones as plain bytes, which weigh a fraction of a
    ZeroMQ message object; large ones stay as received (zero-copy)."""
    return [frame if memoryview(frame).nbytes >= OUT_OF_BAND_MIN_BYTES else bytes(frame)
            for frame in frames]


# ---- files and directories on the wire: a file as its bytes, a directory as a tar archive ----

def path_frames(kind: str, path: str) -> list:
    """The frames that carry a file ("file") or directory ("dir") to another process."""
    if kind == "file":
        with open(path, "rb") as handle:
            return [handle.read()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(path, arcname=".")
    return [buffer.getvalue()]


def empty_frames(kind: str) -> list:
    """None ("obj"), an empty file, an empty directory, as frames."""
    if kind == "obj":
        return [pickle.dumps(None, protocol=5)]
    if kind == "file":
        return [b""]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return [buffer.getvalue()]


def write_path_frames(kind: str, frames: list, target: str) -> int:
    """Recreate at `target` what path_frames packed; returns the payload's size."""
    payload = memoryview(frames[0]) if frames else memoryview(b"")
    if kind == "file":
        with open(target, "wb") as handle:
            handle.write(payload)
    else:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as archive:
            archive.extractall(target, filter="data")
    return payload.nbytes
