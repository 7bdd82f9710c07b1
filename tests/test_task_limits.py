"""Bad output and resource limits: a task whose result cannot be sent back, one that runs out
of memory (a MemoryError, or its process killed as the kernel's OOM killer does), one that
fills the sandbox's disk. Each error names the task, and the other tasks finish."""
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_program
from helpers_api import api_program, describe, named

pytestmark = pytest.mark.timeout(300)

CHECKS = """
import resource
import signal
import threading


@task(returns=1)
def inc(x):
    return x + 1


def outcome(future):
    try:
        return ["value", compss_wait_on(future)]
    except BaseException as error:   # noqa - the test reports what reached the application
        return [type(error).__name__, str(error)]
"""


def test_unpicklable_result_names_the_task_and_type(program):
    path = api_program(program, CHECKS, """
        @task(returns=1)
        def make_lock():
            return threading.Lock()

        @task(returns=2)
        def pair():
            return 1, (x for x in range(3))

        if __name__ == "__main__":
            report("lock", outcome(make_lock()))
            report("pair", outcome(pair()[1]))
            report("others", compss_wait_on([inc(i) for i in range(5)]))
    """)
    run = run_program(path)
    results = named(run)
    assert results["others"] == [1, 2, 3, 4, 5], describe(run)
    kind, message = results["lock"]
    assert kind == "SerializationError" and ("task make_lock: its return value, of type lock, "
                                             "cannot be sent back") in message, message
    kind, message = results["pair"]
    assert "task pair: its return value #1, of type generator, cannot be sent back" in message
    assert run.returncode != 0 and "task 'make_lock'" in run.stderr


def test_memory_limit_and_oom_kill_name_the_task(program):
    path = api_program(program, CHECKS, """
        @task(returns=1)
        def hog(megabytes):
            # A memory limit for this process, as a batch system sets one: the allocation
            # past it fails.
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            with open("/proc/self/statm") as statm:
                in_use = int(statm.read().split()[0]) * resource.getpagesize()
            resource.setrlimit(resource.RLIMIT_AS, (in_use + 64 * 2**20, hard))
            try:
                return len(bytearray(megabytes * 2**20))
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

        @task(returns=1)
        def oom_killed(x):
            os.kill(os.getpid(), signal.SIGKILL)   # what the kernel's OOM killer does

        if __name__ == "__main__":
            report("hog", outcome(hog(512)))
            report("small_hog", outcome(hog(1)))
            report("killed", outcome(oom_killed(1)))
            report("others", compss_wait_on([inc(i) for i in range(5)]))
    """)
    run = run_program(path)
    results = named(run)
    assert results["others"] == [1, 2, 3, 4, 5] and results["small_hog"] == ["value", 2**20], \
        describe(run)
    assert results["hog"][0] == "MemoryError", results["hog"]
    assert "task 'hog'" in run.stderr and "MemoryError" in run.stderr
    kind, message = results["killed"]
    assert ("task oom_killed: the executor process running it was killed by SIGKILL (out of "
            "memory?") in message, message
    assert run.returncode != 0


@pytest.fixture
def small_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    # A short path: the workers' ipc socket paths under it must fit in 107 characters.
    mount_point = Path(tempfile.mkdtemp(prefix="ssdisk", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
    mount_point.rmdir()


def test_full_sandbox_disk_names_the_task_and_others_finish(program, tmp_path, small_disk,
                                                           monkeypatch):
    """The workers' directories (sandboxes, data) are on a 24 MB tmpfs (TMPDIR): a task
    writing 64 MB fails, and its sandbox is cleaned (else the next file task finds the disk
    still full)."""
    path = api_program(program, CHECKS, """
        @task(path=FILE_OUT)
        def write(path, megabytes):
            with open(path, "wb") as handle:
                for _ in range(megabytes):
                    handle.write(b"x" * 2**20)

        @task(returns=1, path=FILE_IN)
        def size(path):
            return os.path.getsize(path)

        if __name__ == "__main__":
            folder = sys.argv[1]
            big, small = os.path.join(folder, "big.bin"), os.path.join(folder, "small.bin")
            write(big, 64)
            report("big", outcome(size(big)))
            write(small, 2)
            report("small", outcome(size(small)))
            report("others", compss_wait_on([inc(i) for i in range(3)]))
    """)
    monkeypatch.setenv("TMPDIR", str(small_disk))
    output = tmp_path / "output"
    output.mkdir()
    run = run_program(path, args=[output])
    results = named(run)
    assert results["small"] == ["value", 2 * 2**20] and results["others"] == [1, 2, 3], \
        describe(run)
    kind, message = results["big"]
    assert kind == "OSError" and "No space left on device" in message, results["big"]
    assert "task 'write'" in run.stderr and "No space left on device" in run.stderr
    assert run.returncode != 0
