"""Task life cycle as data: the legal moves are a table, anything else is a bug that says so.

    WAITING --inputs produced--> READY --placed--> RUNNING --ok--> DONE
       +-------pipelined behind its producers' worker----^
       |                           |                  |---error--> FAILED --retry--> READY
       +------predecessor failed / group cancelled----+---lost worker---> READY
                              CANCELLED
    Back to WAITING: a DONE task whose output was lost with its worker runs again; a READY or
    RUNNING task whose input was lost (or whose producer is retried elsewhere) waits for it.
"""
from __future__ import annotations

import enum


class TaskState(enum.Enum):
    WAITING = "WAITING"
    READY = "READY"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# Members are singletons: identity hashing is correct and, unlike Enum's name hashing, runs in C
# (the transition check runs three times per task).
TaskState.__hash__ = object.__hash__

W, R, X, D, F, C = (TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.DONE,
                    TaskState.FAILED, TaskState.CANCELLED)

LEGAL_TRANSITIONS = frozenset({
    (W, R), (R, X), (X, D), (X, F),
    (W, X),                          # pipelined: sent to the worker running all its producers
    (W, C), (R, C), (X, C),          # a failed predecessor, a cancelled group
    (X, R),                          # the worker running it was lost: run it elsewhere
    (F, R),                          # retry after a failure
    (D, W),                          # recompute: an output only lived on a lost worker
    (R, W), (X, W),                  # an input is being made again
})

FINISHED = frozenset({D, F, C})


class IllegalTransition(RuntimeError):
    pass


def check_transition(task_name: str, history: list, old: TaskState, new: TaskState) -> None:
    if (old, new) not in LEGAL_TRANSITIONS:
        story = "; ".join(f"{state.value} ({cause})" for state, cause in history)
        raise IllegalTransition(f"task {task_name}: illegal move {old.value} -> {new.value}; "
                                f"story: {story}")
