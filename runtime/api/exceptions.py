"""Exceptions the PyCOMPSs API exposes (pycompss.api.exceptions)."""
from __future__ import annotations


class COMPSsException(Exception):
    """Raised by a task in a TaskGroup: the group's other tasks are cancelled and the exception
    is re-raised in the main program at the group's barrier."""

    def __init__(self, message: str = "", target_direction=None):
        super().__init__(message)
        self.message = message
        self.target_direction = target_direction


class RemoteTraceback(Exception):
    """Carries a task's traceback text as the __cause__ of the re-raised exception."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.text}\"\"\""


class TaskFailedError(RuntimeError):
    """A task failed with an exception that could not be rebuilt here (or was cancelled)."""


class FutureUsedBeforeSync(RuntimeError):
    """A task's future was used as a value without compss_wait_on."""
