"""The synchronisation and data API (pycompss.api.api)."""
from __future__ import annotations

import os
import shutil

from ..core.params import Direction
from ..core.versioning import version_key
from ..master.calls import MasterValue
from ..master.session import current_session
from ..transport.payload import deserialize, write_path_frames
from .exceptions import COMPSsException, RemoteTraceback, TaskFailedError
from .future import Future


# ---- values -------------------------------------------------------------------------------
def compss_wait_on(*values, **_options):
    """Wait for futures / tracked objects (also inside lists, tuples, dicts) and return values.

    Memory: waiting on 10^6 futures costs the list of their datum ids and the list of their
    values (8 bytes each), not a dict of 10^6 fresh key strings and another of values."""
    session = current_session()
    datums: list = []
    for value in values:
        _collect_datums(session, value, datums)
    fetched = iter(_fetch(session, datums)) if datums else None
    results = [_rebuild(session, value, fetched) for value in values]
    return results[0] if len(results) == 1 else tuple(results)


def _datum_of(session, value) -> int | None:
    if type(value) is Future:
        return value.datum_id
    tracked = session.tracked.get(id(value))
    if tracked is not None and tracked[0] is value:
        return tracked[1]
    return None


def _collect_datums(session, value, datums: list) -> None:
    """The datum of every future or tracked object in `value`, in the order _rebuild visits."""
    datum_id = _datum_of(session, value)
    if datum_id is not None:
        if not session.registry.exists(datum_id) or session.registry.current_key(datum_id) \
                is None:
            raise TaskFailedError(f"{value!r} was deleted (compss_delete_object) and cannot be "
                                  f"waited on")
        datums.append(datum_id)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_datums(session, item, datums)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_datums(session, item, datums)


# Values brought to the master at once by one compss_wait_on: waiting on 10^6 futures holds
# the serialized copies (and the bookkeeping) of one chunk, not of all of them.
FETCH_CHUNK = 10_000


def _fetch(session, datums: list) -> list:
    """The value of each datum, in order. A datum listed twice gives the same object twice,
    as one deserialization (found by sorting the ids: no set of 10^6 entries is built)."""
    ordered = sorted(datums)
    repeated = {a: _UNSET for a, b in zip(ordered, ordered[1:]) if a == b}
    del ordered
    current_key = session.registry.current_key
    values: list = []
    for start in range(0, len(datums), FETCH_CHUNK):
        chunk = datums[start:start + FETCH_CHUNK]
        keys = [current_key(datum) for datum in chunk]
        resolved = _fetch_chunk(session, [key for key, datum in zip(keys, chunk)
                                          if repeated.get(datum, _UNSET) is _UNSET])
        for key, datum in zip(keys, chunk):
            value = repeated.get(datum, _UNSET)
            if value is _UNSET:
                value = resolved[key]
                if datum in repeated:
                    repeated[datum] = value
            values.append(value)
    return values


def _fetch_chunk(session, keys: list) -> dict:
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    waiter = session.wait_keys(keys)
    for key in keys:
        if key in waiter.failures and not _is_none(waiter.failures[key]):
            raise_failure(waiter.failures[key])
    resolved = {key: deserialize(value.frames) for key, value in waiter.values.items()}
    resolved.update((key, None) for key in waiter.failures)      # CANCEL_SUCCESSORS
    del waiter
    session.discard_fetched(keys)
    return resolved


_UNSET = object()


def _rebuild(session, value, fetched):
    datum_id = _datum_of(session, value)
    if datum_id is not None:
        result = next(fetched)
        if type(value) is not Future:
            # The object is synchronised: the caller uses the returned value from now on.
            session.forget_datum(datum_id, value)
        return result
    if isinstance(value, list):
        return [_rebuild(session, item, fetched) for item in value]
    if isinstance(value, tuple):
        return tuple(_rebuild(session, item, fetched) for item in value)
    if isinstance(value, dict):
        return {key: _rebuild(session, item, fetched) for key, item in value.items()}
    return value


def _is_none(failure) -> bool:
    """A task cancelled by on_failure='CANCEL_SUCCESSORS' (or the failed task itself): its
    outputs are None at compss_wait_on, not an error."""
    return getattr(failure, "none_on_wait", False)


def raise_failure(failure) -> None:
    """Re-raise a task's failure as its original exception, with the remote traceback."""
    if isinstance(failure, str):
        raise TaskFailedError(failure)
    payload = failure.payload
    where = f"task '{failure.task_name}'"
    if failure.root_task_id != failure.task_id:
        where += " (cancelled: it needed the output of a failed task)"
    if isinstance(payload, tuple) and payload[0]:
        frames, traceback_text = payload
        try:
            exception = deserialize(frames)
        except Exception:
            exception = None
        if isinstance(exception, BaseException):
            raise exception from RemoteTraceback(f"{where} failed:\n{traceback_text}")
    if isinstance(payload, tuple):
        raise TaskFailedError(f"{where} failed: {failure.message}\n{payload[1]}")
    if isinstance(payload, BaseException):
        raise payload
    raise TaskFailedError(f"{where} failed: {failure.message}")


# ---- files and directories ------------------------------------------------------------------
def compss_wait_on_file(*paths):
    session = current_session()
    for path in paths:
        _sync_path(session, path)
    return paths[0] if len(paths) == 1 else paths


compss_wait_on_directory = compss_wait_on_file


def _sync_path(session, path) -> str:
    """Bring the newest version of a file/directory the runtime tracks to the user's path."""
    absolute = os.path.abspath(os.fspath(path))
    datum_id = session.files.get(absolute)
    if datum_id is None:
        return absolute
    key = session.registry.current_key(datum_id)
    if key is None:
        return absolute
    waiter = session.wait_keys([key])
    if key in waiter.failures:
        if _is_none(waiter.failures[key]):
            return absolute      # never written: the producer failed under CANCEL_SUCCESSORS
        raise_failure(waiter.failures[key])
    value = waiter.values[key]
    if value.path == absolute:
        return absolute          # already the user's own file
    # Older versions may live at this very path, still to be read by tasks not yet started:
    # snapshot them before the newest version overwrites the file.
    older = [version_key(datum_id, v) for v in range(1, int(key.rsplit("v", 1)[1]))]
    session.protect_master_file(older, absolute)
    _materialize(value, absolute)
    session.backend.store.put(key, MasterValue(value.kind, None, absolute))
    return absolute


def _materialize(value: MasterValue, target: str) -> None:
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if value.kind == "dir" and os.path.isdir(target):
        shutil.rmtree(target)
    if value.path is None:
        write_path_frames(value.kind, value.frames, target)
    elif value.kind == "file":
        shutil.copyfile(value.path, target)
    else:
        shutil.copytree(value.path, target)


def compss_open(path, mode: str = "r"):
    session = current_session()
    absolute = _sync_path(session, path)
    if any(flag in mode for flag in "wa+x"):
        # The application writes a new version: later tasks must read what it writes.
        datum_id = session.files.get(absolute)
        if datum_id is not None:
            session.protect_master_file([session.registry.current_key(datum_id)], absolute)
            access = session.registry.access(datum_id, Direction.OUT)
            kind = session.datum_kinds.get(datum_id, "file")
            session.add_master_value(access.write_key, MasterValue(kind, None, absolute), 0)
    return open(absolute, mode)


def compss_delete_file(*paths) -> bool:
    session = current_session()
    for path in paths:
        absolute = os.path.abspath(os.fspath(path))
        datum_id = session.files.pop(absolute, None)
        if datum_id is not None:
            session.barrier()     # tasks that still read or write it must finish first
            session.forget_datum(datum_id)
        if os.path.isdir(absolute):
            shutil.rmtree(absolute, ignore_errors=True)
        elif os.path.exists(absolute):
            os.remove(absolute)
    return True


def compss_file_exists(*paths):
    session = current_session()
    results = [os.path.abspath(os.fspath(p)) in session.files or os.path.exists(p) for p in paths]
    return results[0] if len(results) == 1 else results


def compss_delete_object(*objects) -> bool:
    session = current_session()
    for obj in objects:
        datum_id = _datum_of(session, obj)
        if datum_id is not None:
            session.forget_datum(datum_id, obj)
    return True


# ---- barriers and groups ---------------------------------------------------------------------
def compss_barrier(no_more_tasks: bool = False) -> None:
    current_session().barrier()


def compss_barrier_group(group_name: str) -> None:
    session = current_session()
    session.barrier(group_name)
    failure = session.group_failure(group_name)
    if failure is not None:
        raise_failure(failure)


def compss_cancel_group(group_name: str) -> None:
    current_session().cancel_group(group_name)


class TaskGroup:
    """`with TaskGroup("name"):` tasks called inside belong to the group."""

    def __init__(self, group_name: str, implicit_barrier: bool = True):
        self.group_name = group_name
        self.implicit_barrier = implicit_barrier

    def __enter__(self):
        current_session().group_stack.append(self.group_name)
        return self

    def __exit__(self, exc_type, exc, tb):
        session = current_session()
        session.group_stack.pop()
        if self.implicit_barrier and exc_type is None:
            compss_barrier_group(self.group_name)
        return False


def compss_snapshot() -> None:
    """Checkpoint the progress so far: every task reported finished is committed to the run's
    journal with its persisted outputs, so a run resumed later reuses them (COMPSs' snapshot).
    Without a journal (sequential mode, runcompss --no_journal) there is nothing to do."""
    session = current_session()
    if session.reuse is not None:
        session.reuse.snapshot()


def compss_get_number_of_resources() -> int:
    return current_session().number_of_resources()


def compss_start(*_args, **_kwargs) -> None:
    """Sessions start by themselves (runcompss, or the first task call)."""


def compss_stop(*_args, **_kwargs) -> None:
    from .lifecycle import finish_session
    finish_session()


__all__ = ["compss_wait_on", "compss_wait_on_file", "compss_wait_on_directory", "compss_open",
           "compss_delete_file", "compss_file_exists", "compss_delete_object", "compss_barrier",
           "compss_barrier_group", "compss_cancel_group", "TaskGroup",
           "compss_get_number_of_resources", "compss_snapshot", "compss_start", "compss_stop",
           "COMPSsException"]
