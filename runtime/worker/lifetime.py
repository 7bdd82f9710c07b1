"""A child process must not outlive the process that started it (no orphans after a kill -9).

Linux delivers SIGKILL to us when our parent dies (PR_SET_PDEATHSIG); elsewhere, and as a
fallback, the loops also notice that their parent pid changed.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> int:
    """Arrange to be killed when the parent exits; return the parent pid to watch."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent or parent == 1:
        os._exit(1)          # the parent died before we could arrange it
    return parent


def parent_is_gone(parent: int) -> bool:
    return os.getppid() != parent


def exit_description(code: int | None, kill_hint: str) -> str:
    """How a child process ended, for an error message: 'was killed by SIGKILL (<hint>)' or
    'exited with code 3'. `kill_hint` says what a SIGKILL most likely means to the reader."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = f" ({kill_hint})" if code == -signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"
