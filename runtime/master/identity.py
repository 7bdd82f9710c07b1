"""Content keys: a task is named by what it is made of, so a result is reused only when the
same code ran on the same data (Merkle-style, computed on the master at submit time).

    task key       = H(function identity, argument descriptors, captured frames,
                       identities of the versions it reads, in order)
    version        = H(producer's task key, output index)     an output of a task
                   = H(its serialized bytes)                  a value the application handed
                   = H(content) / H(tree)                     one of the application's files
    function       = H(qualified name, bytecode, constants, names, defaults, closure values,
                       the globals it uses: user functions and classes by their own identity
                       (recursively), user modules by their source, libraries by name+version)

An edited function, an edited helper it calls, or changed input data changes the key of the
task and of everything downstream; keying on the function's name alone (Parsl's cache) would
serve stale results after an edit. Anything the key cannot describe deterministically (an
unpicklable global, a set's iteration order) can only cause a miss, never a wrong hit.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import sysconfig
import types

import msgpack

from ..transport.payload import frame_size

DIGEST_SIZE = 16
_blake2b = hashlib.blake2b
# task_key runs on the application thread only; msgpack.packb would build a Packer per call
_SHAPE_PACKER = msgpack.Packer(use_bin_type=True)
_LIBRARY_ROOTS = tuple({os.path.realpath(p) for p in sysconfig.get_paths().values() if p})
_RUNTIME_PACKAGES = ("runtime", "pycompss")


def digest(*parts) -> bytes:
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for part in parts:
        view = memoryview(part) if not isinstance(part, str) else memoryview(part.encode())
        hasher.update(view.nbytes.to_bytes(8, "little"))
        hasher.update(view)
    return hasher.digest()


def output_identity(task_key: bytes, index: int) -> bytes:
    """A task's first output is named by the task's key itself (no hashing on the submit path
    of the usual one-result task); the others by a hash of key and index. Keys, value digests
    and these hashes are all DIGEST_SIZE bytes and domain-separated, so none can stand for
    another except by a hash collision."""
    if index == 0:
        return task_key
    return _OUTPUT_HASHER(task_key + index.to_bytes(4, "little"),
                          digest_size=DIGEST_SIZE).digest()


_OUTPUT_HASHER = _blake2b


# ---- data --------------------------------------------------------------------------------------

def frames_identity(frames: list) -> bytes:
    return digest(b"value", *_stable_frames(frames))


def path_identity(kind: str, path: str) -> bytes:
    hasher = hashlib.blake2b(digest_size=DIGEST_SIZE)
    hasher.update(kind.encode())
    if kind == "dir":
        for root, directories, names in os.walk(path):
            directories.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                hasher.update(os.path.relpath(full, path).encode() + b"\0")
                _hash_file(hasher, full)
    else:
        _hash_file(hasher, path)
    return hasher.digest()


def _hash_file(hasher, path: str) -> None:
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            hasher.update(chunk)
    hasher.update(b"\0eof")


_TRACKER_SCAN_LIMIT = 1 << 20             # larger frames are raw array buffers
_tracker_cache: dict = {"size": -1, "map": {}}
try:
    from cloudpickle import cloudpickle as _cloudpickle_internals
    _TRACKERS_BY_CLASS = _cloudpickle_internals._DYNAMIC_CLASS_TRACKER_BY_CLASS
    # the WeakKeyDictionary's own dict: an emptiness test without a Python-level __len__
    _TRACKERS_BY_CLASS_DATA = getattr(_TRACKERS_BY_CLASS, "data", _TRACKERS_BY_CLASS)
except (ImportError, AttributeError):      # another cloudpickle: such values only miss
    _TRACKERS_BY_CLASS = _TRACKERS_BY_CLASS_DATA = {}


def _stable_frames(frames: list) -> list:
    """cloudpickle names each class defined in __main__ with a random id (uuid4) per process;
    replace those ids by the class's own identity, or every run would key such values anew."""
    trackers = _class_trackers()
    if not trackers:
        return frames
    stable = []
    for frame in frames:
        if memoryview(frame).nbytes <= _TRACKER_SCAN_LIMIT:
            frame = bytes(frame)
            for tracker, replacement in trackers.items():
                if tracker in frame:
                    frame = frame.replace(tracker, replacement)
        stable.append(frame)
    return stable


def _class_trackers() -> dict:
    by_class = _TRACKERS_BY_CLASS
    if len(by_class) != _tracker_cache["size"]:
        mapping = {}
        for cls, tracker in list(by_class.items()):
            mapping[tracker.encode()] = f"{cls.__module__}.{cls.__qualname__}:".encode() + \
                DEFAULT_FUNCTIONS.of_class(cls).hex().encode()
        _tracker_cache["size"], _tracker_cache["map"] = len(by_class), mapping
    return _tracker_cache["map"]


# ---- tasks -------------------------------------------------------------------------------------

def function_hasher(function_identity: bytes):
    """The start of the key of every task of one function (copied per task: cheaper)."""
    return _blake2b(b"task-v2" + function_identity, digest_size=DIGEST_SIZE)


def task_key(call, seeded_hasher, read_identities: list) -> bytes:
    """The content key of one TaskCall. Read keys in descriptors become their position in
    `call.reads`, whose identities (all DIGEST_SIZE bytes) are hashed in order: run-local
    names (d3v1, write keys) never matter. Runs once per task: kept to a few C calls."""
    entry = call.entry
    args, kwargs = entry["args"], entry["kwargs"]
    reads = call.reads
    if reads or not _all_captured(args) or (kwargs and not _all_captured(kwargs.values())):
        positions = _Positions(reads)
        canonical = []
        for descriptor in args:            # a loop: comprehensions are calls in Python 3.11
            tag = descriptor[0]
            if tag == "v":
                canonical.append(descriptor)
            elif tag == "r":
                canonical.append(["r", positions[descriptor[1]]])
            else:
                canonical.append(_canonical(descriptor, positions))
        args = canonical
        kwargs = [[name, _canonical(d, positions)] for name, d in kwargs.items()] \
            if kwargs else _NO_KWARGS
    else:                                  # only captured values: nothing run-local to replace
        kwargs = list(kwargs.items()) if kwargs else _NO_KWARGS
    frames = call.frames
    if frames and _TRACKERS_BY_CLASS_DATA:
        frames = _stable_frames(frames)
    if len(frames) == 1:                   # the usual call: one captured frame
        sizes = [frame_size(frames[0])]
    else:
        sizes = [frame_size(f) for f in frames]
    hasher = seeded_hasher.copy()
    hasher.update(_SHAPE_PACKER.pack([args, kwargs, len(entry["returns"]), len(read_identities),
                                      sizes]))
    if read_identities:
        hasher.update(b"".join(read_identities))
    for frame in frames:
        hasher.update(frame)
    return hasher.digest()


_NO_KWARGS: list = []


class _Positions:
    """Read key -> its position in call.reads: a tuple search for the usual few reads, a
    dict only for many (a collection of thousands)."""

    __slots__ = ("_reads", "_index")

    def __init__(self, reads):
        self._reads = reads
        self._index = {key: index for index, key in enumerate(reads)} if len(reads) > 8 else None

    def __getitem__(self, key: str) -> int:
        if self._index is None:
            return self._reads.index(key)
        return self._index[key]


def _all_captured(descriptors) -> bool:
    for descriptor in descriptors:
        if descriptor[0] != "v":
            return False
    return True


def _canonical(descriptor: list, positions: dict) -> list:
    tag = descriptor[0]
    if tag == "v":
        return descriptor
    if tag == "r":
        return ["r", positions[descriptor[1]]]
    if tag == "o":
        source = descriptor[1]
        return ["o", None if source is None else _canonical(source, positions)]
    if tag == "f":
        _, source, basename, write_key, kind, prefix = descriptor
        if source is not None and source[0] == "r":
            source = ["r", positions[source[1]]]
        return ["f", source, basename, write_key is not None, kind, prefix]
    if tag == "c":
        return ["c", descriptor[1], [_canonical(d, positions) for d in descriptor[2]]]
    if tag == "d":
        return ["d", [[_canonical(k, positions), _canonical(v, positions)]
                      for k, v in descriptor[1]]]
    return descriptor


# ---- code --------------------------------------------------------------------------------------

class _Identified:
    """What a function, class or module becomes inside a value being hashed."""

    def __init__(self, identity: bytes):
        self.identity = identity


class FunctionIdentities:
    """Identities of functions and classes, memoized per object for the life of a run."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[object, bytes]] = {}
        self._modules: dict[str, bytes] = {}
        self._in_progress: set[int] = set()

    def of(self, function) -> bytes:
        known = self._known.get(id(function))
        if known is not None and known[0] is function:
            return known[1]
        if id(function) in self._in_progress:      # recursion: named, not expanded again
            return digest(b"recursive", _qualified_name(function))
        self._in_progress.add(id(function))
        try:
            identity = self._compute(function)
        finally:
            self._in_progress.discard(id(function))
        self._known[id(function)] = (function, identity)
        return identity

    def _compute(self, function) -> bytes:
        wrapped = getattr(function, "__wrapped__", None)
        if wrapped is not None and not isinstance(function, types.FunctionType):
            return digest(b"wrapper", type(function).__qualname__, self.of(wrapped),
                          self.value(getattr(function, "runner", None)))
        if not isinstance(function, types.FunctionType):
            return self.value(function)
        if not _is_user_module(function.__module__):
            return _library_identity(function)
        code = function.__code__
        names = _global_names(code)
        namespace = function.__globals__
        used = [[name, self.value(namespace[name])] for name in sorted(names)
                if name in namespace and namespace[name] is not function]
        closure = [self.value(_cell_value(cell)) for cell in function.__closure__ or ()]
        return digest(b"function", _qualified_name(function), code_identity(code),
                      self.value(function.__defaults__), self.value(function.__kwdefaults__),
                      *closure, msgpack.packb(used, use_bin_type=True))

    def of_class(self, cls) -> bytes:
        known = self._known.get(id(cls))
        if known is not None and known[0] is cls:
            return known[1]
        if not _is_user_module(cls.__module__):
            return _library_identity(cls)
        if id(cls) in self._in_progress:
            return digest(b"recursive", _qualified_name(cls))
        self._in_progress.add(id(cls))
        try:
            parts = [self.of_class(base) for base in cls.__bases__]
            for name in sorted(vars(cls)):
                if name not in ("__dict__", "__weakref__", "__module__", "__doc__"):
                    parts.append(name.encode() + self.value(_unwrap_member(vars(cls)[name])))
            identity = digest(b"class", _qualified_name(cls), *parts)
        finally:
            self._in_progress.discard(id(cls))
        self._known[id(cls)] = (cls, identity)
        return identity

    def of_module(self, module) -> bytes:
        name = module.__name__
        known = self._modules.get(name)
        if known is None:
            known = self._modules[name] = _module_identity(module)
        return known

    def value(self, value) -> bytes:
        """Identity of any value a function uses (a global, a default, a closure cell)."""
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            return digest(b"atom", repr(value))
        if isinstance(value, types.FunctionType) or \
                "__wrapped__" in getattr(value, "__dict__", ()):    # a @task, a functools.wraps
            return self.of(value)
        if isinstance(value, type):
            return self.of_class(value)
        if isinstance(value, types.ModuleType):
            return self.of_module(value)
        if isinstance(value, (types.BuiltinFunctionType, types.MethodDescriptorType)):
            return digest(b"builtin", getattr(value, "__module__", "") or "",
                          getattr(value, "__qualname__", repr(value)))
        return self._pickled(value)

    def _pickled(self, value) -> bytes:
        """Streamed into the hash: a large global (a model, an array) is never copied."""
        hasher = _blake2b(b"pickled", digest_size=DIGEST_SIZE)
        buffers: list = []
        try:
            _StablePickler(_HashingFile(hasher), self, buffers).dump(value)
        except Exception:
            return digest(b"unpicklable", _qualified_name(type(value)))
        for buffer in buffers:
            raw = buffer.raw()
            hasher.update(raw.nbytes.to_bytes(8, "little"))
            hasher.update(raw)
        return hasher.digest()


class _HashingFile:
    __slots__ = ("write",)

    def __init__(self, hasher):
        self.write = hasher.update


class _StablePickler(pickle._Pickler):
    """The pure-Python pickler: unlike the C one it asks reducer_override about every object,
    sets included, whose iteration order changes with each process's hash seed. (Slower, but
    it only runs once per function per run, on the globals the function uses.)"""

    def __init__(self, stream, identities: FunctionIdentities, buffers: list):
        super().__init__(stream, protocol=5, buffer_callback=buffers.append)
        self._identities = identities

    def reducer_override(self, obj):
        if isinstance(obj, (types.FunctionType, type, types.ModuleType)):
            return _Identified, (self._identities.value(obj),)
        if isinstance(obj, (set, frozenset)):
            members = sorted(self._identities.value(member) for member in obj)
            return _Identified, (digest(type(obj).__name__, *members),)
        return NotImplemented


def code_identity(code: types.CodeType) -> bytes:
    """Bytecode and what it refers to; not file names or line numbers, so moving a function
    within its file keeps its results."""
    constants = [code_identity(c) if isinstance(c, types.CodeType) else _constant(c)
                 for c in code.co_consts]
    return digest(b"code", code.co_code, *constants, "\0".join(code.co_names),
                  "\0".join(code.co_varnames), "\0".join(code.co_freevars),
                  "\0".join(code.co_cellvars),
                  msgpack.packb([code.co_argcount, code.co_posonlyargcount,
                                 code.co_kwonlyargcount, code.co_flags]))


def _constant(value) -> bytes:
    if isinstance(value, frozenset):
        return digest(b"frozenset", *sorted(_constant(item) for item in value))
    if isinstance(value, tuple):
        return digest(b"tuple", *[_constant(item) for item in value])
    return digest(type(value).__name__, repr(value))


def _global_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:          # an empty cell (a name assigned later in the enclosing scope)
        return None


def _unwrap_member(member):
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return (member.fget, member.fset, member.fdel)
    return member


def _qualified_name(obj) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _library_identity(obj) -> bytes:
    module = getattr(obj, "__module__", "") or ""
    return digest(b"library", _qualified_name(obj), _version_of(module))


def _module_identity(module) -> bytes:
    name = module.__name__
    if not _is_user_module(name):
        return digest(b"module", name, _version_of(name))
    path = getattr(module, "__file__", None)
    try:
        with open(path, "rb") as handle:
            return digest(b"user module", name, handle.read())
    except (OSError, TypeError):
        return digest(b"module", name)


def _version_of(module_name: str) -> str:
    top = sys.modules.get(module_name.split(".", 1)[0])
    version = getattr(top, "__version__", "")
    return version if isinstance(version, str) else ""


_user_modules: dict[str, bool] = {}


def _is_user_module(name: str | None) -> bool:
    """The application's own code (hashed by content) versus installed libraries, the
    standard library and this runtime (named with their version)."""
    if not name:
        return False
    known = _user_modules.get(name)
    if known is None:
        known = _user_modules[name] = _decide_user_module(name)
    return known


def _decide_user_module(name: str) -> bool:
    if name == "__main__":
        return True
    if name.split(".", 1)[0] in _RUNTIME_PACKAGES:
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path:
        return False
    path = os.path.realpath(path)
    return not any(path.startswith(root + os.sep) for root in _LIBRARY_ROOTS)


DEFAULT_FUNCTIONS = FunctionIdentities()
