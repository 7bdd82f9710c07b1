"""Shared helpers: run a PyCOMPSs program for real, sequentially and under runcompss.

Programs print `RESULT <json>` lines; a test compares the distributed run against the
sequential one (`python prog.py`), which goes through no worker at all.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TWO_NODES = REPO / "tests" / "data" / "resources" / "two_nodes.xml"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    log_dir: Path | None

    @property
    def results(self) -> list:
        return [json.loads(line[len("RESULT "):]) for line in self.stdout.splitlines()
                if line.startswith("RESULT ")]

    @property
    def result(self):
        results = self.results
        assert results, f"no RESULT line\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return results[-1]


def run_program(path: Path, mode: str = "runcompss", args=(), resources=None, extra=(),
                timeout: float = 90, cwd=None) -> Run:
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    log_dir = None
    if mode == "python":
        command = [sys.executable, str(path), *map(str, args)]
    else:
        log_dir = Path(cwd or Path(path).parent) / f"logs-{Path(path).stem}"
        command = [sys.executable, "-m", "runtime.cli.runcompss", f"--log_dir={log_dir}"]
        if resources:
            command.append(f"--resources={resources}")
        command += [*extra, str(path), *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment, cwd=cwd or Path(path).parent)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if mode != "python":
            process.send_signal(signal.SIGUSR1)     # runcompss prints its threads' stacks
            time.sleep(1)
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)} did not finish in {timeout} s\nstdout:\n"
                    f"{stdout[-4000:]}\nstderr (stacks at the end):\n{stderr[-12000:]}")
    return Run(process.returncode, stdout, stderr, log_dir)


@pytest.fixture
def program(tmp_path):
    """program(source) -> path of a file holding the dedented source."""
    counter = iter(range(1000))

    def write(source: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"prog{next(counter)}.py")
        path.write_text(textwrap.dedent(source))
        return path
    return write


def assert_same_as_sequential(path: Path, **kwargs) -> Run:
    sequential = run_program(path, mode="python", timeout=kwargs.get("timeout", 90))
    assert sequential.returncode == 0, sequential.stderr
    distributed = run_program(path, **kwargs)
    assert distributed.returncode == 0, distributed.stderr
    assert distributed.results == sequential.results
    return distributed
