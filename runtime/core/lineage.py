"""What the engine keeps of a DONE task while an output it made may still be needed: enough to
make that output again if it only lived on a lost worker (runtime.core.recovery).

A program holding 10^6 futures holds 10^6 of these, so the usual one is a single immutable
bytes object (marshal, stdlib) of the task id, the task's name and rarely set fields as indexes
in per-process tables, its read and written keys (one key as a plain string), and the shell's
packed call: ~130 bytes where a record kept as it was cost ~700 and a slotted copy plus the
packed call ~220. A payload that is not bytes (large buffers, IGNORE defaults, tests) is kept
in a Lineage object instead. Nothing in it changes once kept: whether any output of the task
is still needed is read from the engine's versions (runtime.core.engine._release_lineage).
"""
from __future__ import annotations

import marshal

from .failures import FailurePolicy
from .records import DEFAULT_REQUIREMENTS, TaskRecord
from .states import TaskState

# The story a re-entered task starts from (its own was not kept).
KEPT_STORY = ((TaskState.WAITING, "submitted"),
              (TaskState.DONE, "finished; kept as the lineage of its outputs"))
_DEFAULT_EXTRAS = (DEFAULT_REQUIREMENTS, False, None, None, FailurePolicy.RETRY)
_TABLE_LIMIT = 100_000        # distinct names or extras; beyond, lineages are Lineage objects


class Lineage:
    """The general form, and what open_lineage gives for either form."""

    __slots__ = ("task_id", "name", "reads", "writes", "payload", "extras")

    def __init__(self, task_id: int, name: str, reads: tuple, writes: tuple, payload,
                 extras: tuple) -> None:
        self.task_id = task_id
        self.name = name
        self.reads = reads
        self.writes = writes
        self.payload = payload          # the shell's compact form of the call
        self.extras = extras            # (requirements, priority, group, alternatives, on_failure)

    def task(self) -> TaskRecord:
        """A DONE record of the task again, to be re-entered (its story starts as kept)."""
        requirements, priority, group, alternatives, on_failure = self.extras
        return TaskRecord(self.task_id, self.name, self.reads, self.writes, self.payload,
                          requirements, priority, group, state=TaskState.DONE,
                          history=list(KEPT_STORY), alternatives=alternatives,
                          on_failure=on_failure)


class _Table:
    """Values by index, and indexes by value: the names and extras of packed lineages."""

    __slots__ = ("values", "indexes")

    def __init__(self, first) -> None:
        self.values = [first]
        self.indexes = {first: 0}

    def index(self, value) -> int | None:
        index = self.indexes.get(value)
        if index is None and len(self.values) < _TABLE_LIMIT:
            index = self.indexes[value] = len(self.values)
            self.values.append(value)
        return index


_NAMES = _Table("")
_EXTRAS = _Table(_DEFAULT_EXTRAS)


def keep(task: TaskRecord, payload) -> "bytes | Lineage":
    """The lineage of a task that just finished, with `payload` (the shell's compact call)."""
    extras = _extras_of(task)
    if type(payload) is bytes:
        name_index = _NAMES.index(task.name)
        try:
            extras_index = 0 if extras is _DEFAULT_EXTRAS else _EXTRAS.index(extras)
        except TypeError:              # something unhashable among them
            extras_index = None
        if name_index is not None and extras_index is not None:
            return marshal.dumps((task.task_id, name_index, _one_or_all(task.reads),
                                  _one_or_all(task.writes), extras_index, payload))
    return Lineage(task.task_id, task.name, task.reads, task.writes, payload, extras)


def open_lineage(kept) -> Lineage:
    if type(kept) is not bytes:
        return kept
    task_id, name_index, reads, writes, extras_index, payload = marshal.loads(kept)
    return Lineage(task_id, _NAMES.values[name_index], _all(reads), _all(writes), payload,
                   _EXTRAS.values[extras_index])


def _extras_of(task: TaskRecord) -> tuple:
    requirements, on_failure = task.requirements, task.on_failure
    if requirements is DEFAULT_REQUIREMENTS and on_failure is FailurePolicy.RETRY and \
            not task.priority and task.group is None and task.alternatives is None:
        return _DEFAULT_EXTRAS
    return (requirements, task.priority, task.group, task.alternatives, on_failure)


def _one_or_all(keys: tuple):
    return keys[0] if len(keys) == 1 and type(keys[0]) is str else tuple(keys)


def _all(keys) -> tuple:
    return (keys,) if type(keys) is str else keys
