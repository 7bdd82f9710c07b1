"""Run one task from its entry: rebuild the arguments, stage files, call, collect outputs.

Shared by the executor processes and by the sequential (in-process) backend, so `python app.py`
exercises exactly the argument handling the workers use.

Argument descriptors (made by runtime.api.analysis) are small lists:
    ["v", start, count]               a value captured at call time (frames of this task)
    ["r", key]                        a stored version, read
    ["o", source, write_key]          an object the task may modify (INOUT/OUT); the value it
                                      holds after the call becomes version `write_key`
    ["f", source, basename, write_key, kind, prefix]   a file or directory, staged in a sandbox;
                                      source is ["r", key], ["p", path] or None (OUT)
    ["c", container_type, [descriptor, ...]]           a collection, element-wise
    ["d", [[key_descriptor, value_descriptor], ...]]   a dictionary, element-wise
"""
from __future__ import annotations

import os
import pickle
import shutil
import time
import traceback as traceback_module
from dataclasses import dataclass

from ..transport.payload import SerializationError, deserialize, frames_nbytes, serialize
from .shared_values import private_frames
from .worker_context import set_running_task


@dataclass(slots=True)
class StoredInput:
    kind: str               # "obj" | "file" | "dir"
    frames: list | None     # for objects
    path: str | None        # for files and directories (a path on this host)
    shared: list | None = None   # an object in another process's memfd (shared_values.py)


@dataclass(slots=True)
class Output:
    key: str
    kind: str
    frames: list | None
    path: str | None
    nbytes: int


class TaskError(Exception):
    """The user's code raised: carries the original exception and the formatted traceback."""

    def __init__(self, exception: BaseException, traceback_text: str, is_group_exception: bool):
        super().__init__(f"{type(exception).__name__}: {exception}")
        self.exception = exception
        self.traceback_text = traceback_text
        self.is_group_exception = is_group_exception


def run_task(entry: dict, frames: list, inputs: dict, function, sandbox_root: str,
             data_dir: str) -> tuple[list, float]:
    """Execute `function` for `entry`; return (outputs, seconds). Raises TaskError."""
    started = time.perf_counter()
    sandbox = os.path.join(sandbox_root, f"job{entry['id']}")
    resolver = _Resolver(frames, inputs, sandbox)
    set_running_task(entry, sandbox)
    try:                    # the sandbox goes whatever happens: a full disk must not stay full
        try:
            args = [resolver.value(descriptor) for descriptor in entry["args"]]
            kwargs = {name: resolver.value(d) for name, d in entry["kwargs"].items()}
        except Exception as error:
            raise _task_error(error) from None
        try:
            result = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - any user failure is reported
            raise _task_error(error) from None
        try:
            outputs = resolver.collect_outputs(entry, args, kwargs, result, data_dir)
        except Exception as error:
            raise _task_error(error) from None
    finally:
        set_running_task(None)
        if resolver.staged_any:
            shutil.rmtree(sandbox, ignore_errors=True)
    return outputs, time.perf_counter() - started


def _task_error(error: BaseException) -> TaskError:
    trace = error.__traceback__
    if trace is not None and trace.tb_frame.f_code is run_task.__code__ and trace.tb_next:
        trace = trace.tb_next          # start at the user's frame, not the runtime's
    text = "".join(traceback_module.format_exception(type(error), error, trace))
    is_group = type(error).__name__ == "COMPSsException"
    return TaskError(error, text, is_group)


class _Resolver:
    def __init__(self, frames: list, inputs: dict, sandbox: str):
        self._frames = frames
        self._inputs = inputs
        self._sandbox = sandbox
        self._staged: dict[str, str] = {}       # write key -> sandbox path of the file output
        self._dict_keys: dict[int, list] = {}   # id(descriptor) -> resolved keys
        self.staged_any = False
        self._entry: dict | None = None

    # ---- before the call ----------------------------------------------------------------
    def value(self, descriptor: list, writable: bool = True):
        tag = descriptor[0]
        if tag == "v":
            start, count = descriptor[1], descriptor[2]
            return deserialize(self._frames[start:start + count], self.lookup, writable)
        if tag == "r":
            return self.lookup(descriptor[1], writable)
        if tag == "o":
            source = descriptor[1]
            return None if source is None else self.value(source, writable=True)
        if tag == "f":
            return self._stage(descriptor)
        if tag == "c":
            items = [self.value(element) for element in descriptor[2]]
            return tuple(items) if descriptor[1] == "tuple" else items
        if tag == "d":
            keys = [self.value(pair[0]) for pair in descriptor[1]]
            self._dict_keys[id(descriptor)] = keys
            return {key: self.value(pair[1]) for key, pair in zip(keys, descriptor[1])}
        raise ValueError(f"unknown argument descriptor {tag!r}")

    def lookup(self, key: str, writable: bool = True):
        stored = self._inputs.get(key)
        if stored is None:
            raise LookupError(f"input {key} was not delivered to this worker")
        if stored.kind != "obj":
            return stored.path
        if stored.shared is not None:     # a private copy-on-write mapping: writable as is
            return deserialize(private_frames(stored.shared), self.lookup, writable=False)
        return deserialize(stored.frames, self.lookup, writable)

    def _stage(self, descriptor: list) -> str:
        _, source, basename, write_key, kind, prefix = descriptor
        os.makedirs(self._sandbox, exist_ok=True)
        self.staged_any = True
        target = os.path.join(self._sandbox, basename)
        if source is not None:
            origin = self.lookup(source[1]) if source[0] == "r" else source[1]
            if kind == "dir":
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(origin, target)
        elif kind == "dir":
            os.makedirs(target, exist_ok=True)
        if write_key is not None:
            self._staged[write_key] = target
        return target

    # ---- after the call -----------------------------------------------------------------
    def collect_outputs(self, entry: dict, args: list, kwargs: dict, result,
                        data_dir: str) -> list:
        outputs: list = []
        self._entry = entry
        for descriptor, value in zip(entry["args"], args):
            self._collect(descriptor, value, outputs, data_dir)
        for name, descriptor in entry["kwargs"].items():
            self._collect(descriptor, kwargs[name], outputs, data_dir)
        returns = entry["returns"]
        if len(returns) == 1:
            outputs.append(_object_output(returns[0], result, entry, "its return value"))
        elif returns:
            if not isinstance(result, (tuple, list)) or len(result) != len(returns):
                got = f"a {type(result).__name__}" + (
                    f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
                raise ValueError(f"task {entry['name']} declares returns={len(returns)} but "
                                 f"returned {got}")
            outputs.extend(_object_output(key, item, entry, f"its return value #{index}")
                           for index, (key, item) in enumerate(zip(returns, result)))
        return outputs

    def _collect(self, descriptor: list, value, outputs: list, data_dir: str) -> None:
        tag = descriptor[0]
        if tag == "o":
            outputs.append(_object_output(descriptor[2], value, self._entry,
                                          "a parameter it writes"))
        elif tag == "f" and descriptor[3] is not None:
            outputs.append(self._file_output(descriptor[3], descriptor[4], data_dir))
        elif tag == "c":
            elements = descriptor[2]
            if not isinstance(value, (list, tuple)) or len(value) < len(elements):
                if any(_writes(element) for element in elements):
                    raise ValueError(f"collection changed length during the task: expected "
                                     f"{len(elements)} elements")
                return
            for element, item in zip(elements, value):
                self._collect(element, item, outputs, data_dir)
        elif tag == "d":
            keys = self._dict_keys.get(id(descriptor), [])
            for key, pair in zip(keys, descriptor[1]):
                if _writes(pair[1]):
                    self._collect(pair[1], value[key], outputs, data_dir)

    def _file_output(self, key: str, kind: str, data_dir: str) -> Output:
        staged = self._staged[key]
        final = os.path.join(data_dir, key)
        if kind == "dir":
            if not os.path.isdir(staged):
                os.makedirs(staged, exist_ok=True)
            shutil.move(staged, final)
            size = sum(os.path.getsize(os.path.join(root, name))
                       for root, _, names in os.walk(final) for name in names)
        else:
            if not os.path.exists(staged):
                raise FileNotFoundError(f"the task did not create its output file "
                                        f"{os.path.basename(staged)}")
            shutil.move(staged, final)
            size = os.path.getsize(final)
        return Output(key, kind, None, final, size)


def _writes(descriptor: list) -> bool:
    tag = descriptor[0]
    if tag == "o":
        return True
    if tag == "f":
        return descriptor[3] is not None
    if tag == "c":
        return any(_writes(element) for element in descriptor[2])
    if tag == "d":
        return any(_writes(pair[1]) for pair in descriptor[1])
    return False


_PLAIN = (type(None), bool, int, float, str, bytes)


def _object_output(key: str, value, entry: dict | None, what: str) -> Output:
    if type(value) in _PLAIN:         # the common tiny result: skip the cloudpickle machinery
        data = pickle.dumps(value, protocol=5)
        return Output(key, "obj", [data], None, len(data))
    try:
        frames = serialize(value)
    except SerializationError as error:
        task = f"task {entry['name']}: " if entry else ""
        raise SerializationError(f"{task}{what}, of type {type(value).__name__}, cannot be "
                                 f"sent back: {error}") from None
    return Output(key, "obj", frames, None, frames_nbytes(frames))
