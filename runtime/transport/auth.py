"""Per-run keys: a socket only accepts work from peers that prove they belong to this run.

The master draws a fresh random key per run and hands it to the workers it starts through the
environment (never the command line, which `ps` shows to every user). Every peer's first
message carries it; the comparison is constant-time. Loopback-only runs bind to 127.0.0.1, so
the key is the barrier against other local users; runs reaching other hosts (or started with
`runcompss --secure`) add CURVE authentication and encryption underneath (curve.py), and the
key is still checked.
"""
from __future__ import annotations

import hmac
import os
import secrets

RUN_KEY_ENV = "SUPERSCALAR_RUN_KEY"


def new_run_key() -> str:
    return secrets.token_hex(32)


def run_key_from_environment() -> str:
    key = os.environ.pop(RUN_KEY_ENV, "")
    if not key:
        raise RuntimeError(f"{RUN_KEY_ENV} is not set: workers are started by the master")
    return key


def is_valid(presented: object, expected: str) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(presented.encode(), expected.encode())
