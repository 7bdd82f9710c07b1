"""What a task failure leads to: the @on_failure policies of PyCOMPSs as a table.

    policy              attempt  the task        its outputs at wait_on  its successors      the run
    RETRY               1, 2     FAILED -> READY still to come           keep waiting        -
    RETRY               3        FAILED          the task's error        CANCELLED (error)   exit 1
    CANCEL_SUCCESSORS   any      FAILED          None                    CANCELLED (None)    exit 1
    FAIL                any      FAILED          the task's error        every task CANCELLED; the
                                                                         application is stopped
    IGNORE              any      FAILED          the given defaults      run                 exit 0

RETRY runs a task at most three times, as COMPSs does: the first attempt, again on the same
worker (a transient fault), then on another worker (a bad node); the last attempt avoids the
workers it failed on when any other worker can run it. A `time_out` expiry is a failure like
any other. A task that was running each time one of its last MAX_WORKER_KILLS workers was
lost is taken to be killing them: it fails for good, whatever the policy, instead of being
retried until no worker is left.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class FailurePolicy(enum.Enum):
    RETRY = "RETRY"
    CANCEL_SUCCESSORS = "CANCEL_SUCCESSORS"
    FAIL = "FAIL"
    IGNORE = "IGNORE"


class Outputs(enum.Enum):
    PENDING = "pending"         # a retry will produce them
    ERROR = "error"             # waiting on them raises the task's error
    NONE = "none"               # waiting on them gives None
    DEFAULTS = "defaults"       # the values given to @on_failure (None where none was given)


class Successors(enum.Enum):
    WAIT = "wait"
    CANCEL = "cancel"
    RUN = "run"


@dataclass(frozen=True, slots=True)
class Consequence:
    retry: bool
    outputs: Outputs
    successors: Successors
    counts_as_failure: bool     # makes the run exit non-zero
    stops_application: bool


MAX_ATTEMPTS = 3
MAX_WORKER_KILLS = 3

_RETRY = Consequence(True, Outputs.PENDING, Successors.WAIT, False, False)
_FINAL = {
    FailurePolicy.RETRY: Consequence(False, Outputs.ERROR, Successors.CANCEL, True, False),
    FailurePolicy.CANCEL_SUCCESSORS: Consequence(False, Outputs.NONE, Successors.CANCEL, True,
                                                 False),
    FailurePolicy.FAIL: Consequence(False, Outputs.ERROR, Successors.CANCEL, True, True),
    FailurePolicy.IGNORE: Consequence(False, Outputs.DEFAULTS, Successors.RUN, False, False),
}


def consequence(policy: FailurePolicy, attempts: int, retriable: bool = True) -> Consequence:
    """`attempts`: failed attempts so far, this one included."""
    if policy is FailurePolicy.RETRY and retriable and attempts < MAX_ATTEMPTS:
        return _RETRY
    return _FINAL[policy]


def parse_policy(value, where: str) -> FailurePolicy:
    name = getattr(value, "value", value)
    try:
        return FailurePolicy(str(name).upper())
    except ValueError:
        raise ValueError(f"{where}: on_failure={value!r} is not one of "
                         f"{[p.value for p in FailurePolicy]}") from None


def retry_candidates(failed_on: tuple, attempts: int, eligible, another_may_join: bool) -> list:
    """The workers a retry may run on, out of the live workers able to run the task.

    Attempt 2 stays on the worker that failed (if it is alive); the last attempt avoids every
    worker the task failed on, unless no other worker is able to run it (nor may join: then
    it waits for one)."""
    if not failed_on:
        return list(eligible)
    if attempts == 1:
        same = [worker for worker in eligible if worker.worker_id == failed_on[-1]]
        return same or list(eligible)
    others = [worker for worker in eligible if worker.worker_id not in failed_on]
    return others or ([] if another_may_join else list(eligible))
