"""Helpers for the API tests: a common program prelude and named results.

Programs built with `api_program` report each check on its own line,
`RESULT ["name", value]`, so a test can read `named(run)["name"]` and a failure says which
check differed. The prelude imports only the PyCOMPSs surface (plus numpy), as a user would.
"""
from __future__ import annotations

import textwrap

from conftest import Run, run_program

PRELUDE = '''\
import json
import os
import sys
import time

import numpy as np

from pycompss.api.task import task
from pycompss.api.parameter import *
from pycompss.api.api import (TaskGroup, compss_barrier, compss_barrier_group,
                              compss_cancel_group, compss_delete_file, compss_delete_object,
                              compss_file_exists, compss_get_number_of_resources, compss_open,
                              compss_wait_on, compss_wait_on_directory, compss_wait_on_file)
from pycompss.api.exceptions import COMPSsException


def report(name, value):
    print("RESULT", json.dumps([name, value]), flush=True)


def describe_error(error):
    """What a test checks about an exception: its type name and message."""
    return [type(error).__name__, str(error)]

'''


def api_program(program, *sources: str, name: str | None = None):
    """Write PRELUDE + the sources (each dedented) through the `program` fixture."""
    return program(PRELUDE + "".join(textwrap.dedent(source) for source in sources), name)


def named(run: Run) -> dict:
    """{name: value} of the `RESULT [name, value]` lines; a repeated name keeps the last."""
    results = {}
    for item in run.results:
        assert isinstance(item, list) and len(item) == 2, f"unexpected RESULT line {item!r}"
        results[item[0]] = item[1]
    return results


def run_both(path, **kwargs) -> tuple[Run, Run]:
    """(sequential, distributed) runs, without judging their exit codes."""
    sequential = run_program(path, mode="python", timeout=kwargs.get("timeout", 90))
    distributed = run_program(path, **kwargs)
    return sequential, distributed


def describe(run: Run) -> str:
    return f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"


def same_in_fresh_folders(path, tmp_path, **kwargs) -> tuple[Run, Run]:
    """Run sequentially with argv[1] = tmp_path/seq and under runcompss with tmp_path/dist (each
    run gets its own files), require success and equal RESULT lines; return both runs."""
    folders = []
    for name in ("seq", "dist"):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        folders.append(folder)
    timeout = kwargs.pop("timeout", 90)
    sequential = run_program(path, mode="python", args=[folders[0]], timeout=timeout)
    assert sequential.returncode == 0, describe(sequential)
    distributed = run_program(path, args=[folders[1]], timeout=timeout, **kwargs)
    assert distributed.returncode == 0, describe(distributed)
    assert distributed.results == sequential.results
    return sequential, distributed
