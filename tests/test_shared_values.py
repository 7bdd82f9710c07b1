"""Large values through shared memory (runtime/worker/shared_values.py), with real processes.

Values of >= 1 MiB live in memfds that executors map copy-on-write: results must equal the
sequential program's, an IN array a task modifies must not change the stored value, INOUT
changes must reach successors, and no memfd may outlive the values it holds.
"""
import pytest

from conftest import TWO_NODES, assert_same_as_sequential, run_program
from helpers_api import api_program, describe, named

pytestmark = pytest.mark.timeout(300)

LENGTH = 2 ** 18          # float64: 2 MiB, above the shared-memory threshold


def test_large_values_in_out_inout_across_two_workers(program):
    path = api_program(program, f"""
        LENGTH = {LENGTH}

        @task(returns=1)
        def make(i):
            return np.full(LENGTH, float(i))

        @task(returns=1)
        def make_bytes(i):
            return bytes([i % 256]) * (2 * LENGTH)

        @task(returns=1)
        def scribble_then_sum(a):
            total = float(a.sum())
            a[:] = -1.0              # an IN array: the change stays inside this task
            return total

        @task(returns=1)
        def add(a, b):
            return a + b

        @task(a=INOUT)
        def increment(a):
            a += 1.0

        @task(returns=2)
        def split(a):
            return a[: LENGTH // 2].copy(), a[LENGTH // 2:] * 2.0

        @task(returns=1)
        def checksum(data):
            return [len(data), data[:3].hex(), data[-1]]

        if __name__ == "__main__":
            arrays = [make(i) for i in range(6)]
            sums = [scribble_then_sum(a) for a in arrays]
            total = add(add(arrays[0], arrays[1]), add(arrays[2], arrays[3]))
            increment(arrays[4])
            increment(arrays[4])
            after = add(arrays[4], arrays[5])
            low, high = split(total)
            report("sums", compss_wait_on(sums))
            report("total", compss_wait_on(total)[:4].tolist())
            report("after_inout", compss_wait_on(after)[-3:].tolist())
            report("inout_value", float(compss_wait_on(arrays[4]).sum()))
            report("split", [float(compss_wait_on(low).sum()), float(compss_wait_on(high).sum())])
            report("unchanged", [float(a.sum()) for a in compss_wait_on(arrays[:4])])
            blob = make_bytes(7)
            report("bytes", compss_wait_on(checksum(blob)))
            report("bytes_back", len(compss_wait_on(blob)))
            mine = np.arange(LENGTH, dtype=float)     # from the master, inline, to a worker
            report("from_master", float(compss_wait_on(add(mine, mine)).sum()))
            report("master_copy_unchanged", float(mine.sum()))
    """)
    run = assert_same_as_sequential(path, resources=TWO_NODES, timeout=180)
    results = named(run)
    assert results["sums"] == [float(i * LENGTH) for i in range(6)]
    assert results["unchanged"] == [float(i * LENGTH) for i in range(4)]
    assert results["total"] == [6.0] * 4
    assert results["after_inout"] == [11.0] * 3
    assert results["inout_value"] == 6.0 * LENGTH
    assert results["bytes"] == [2 * LENGTH, "070707", 7]


def test_no_memfd_outlives_its_value(program):
    """The worker holds one memfd per large value while it lives and none after deletes;
    executors keep none once the worker has opened their outputs. (Distinct memfds: the
    worker may hold a second fd on one, inside the mapping it persists the value from.)"""
    path = api_program(program, f"""
        LENGTH = {LENGTH}

        def shared_fds(pid):
            names = []
            for fd in os.listdir(f"/proc/{{pid}}/fd"):
                try:
                    names.append(os.readlink(f"/proc/{{pid}}/fd/{{fd}}"))
                except OSError:
                    pass
            return len(set(name for name in names if name.startswith("/memfd:ss:")))

        @task(returns=1)
        def make(i):
            return np.full(LENGTH, float(i))

        @task(returns=1)
        def count_held(waits_for, expected, deadline_seconds):
            # the worker is this executor's parent; deletes arrive asynchronously: poll
            deadline = time.monotonic() + deadline_seconds
            while True:
                worker, executor = shared_fds(os.getppid()), shared_fds(os.getpid())
                if worker == expected or time.monotonic() > deadline:
                    return [worker, executor]
                time.sleep(0.05)

        if __name__ == "__main__":
            arrays = [make(i) for i in range(4)]
            compss_barrier()
            report("during", compss_wait_on(count_held(None, 4, 10)))
            for array in arrays:
                compss_delete_object(array)
            compss_barrier()
            report("after", compss_wait_on(count_held(None, 0, 10)))
    """)
    run = run_program(path, timeout=120)
    assert run.returncode == 0, describe(run)
    results = named(run)
    assert results["during"][0] == 4, results     # the values are shared: one memfd each
    assert results["after"] == [0, 0], results


def test_a_description_must_name_a_live_sealed_memfd_of_the_value():
    """A stale or reused fd number never hands a task another value's bytes."""
    import os

    import numpy as np

    from runtime.transport.payload import deserialize, serialize
    from runtime.worker.shared_values import SharedValue, SharedValueError, private_frames

    value = SharedValue.write("d1v1", serialize(np.arange(LENGTH, dtype=float)))
    description = value.describe()
    copy = deserialize(private_frames(description), writable=False)
    copy[:] = -1.0                                    # copy-on-write: the stored value stays
    assert deserialize(value.frames(), writable=False)[-1] == LENGTH - 1
    pid, fd, name, layout = description
    unsealed = os.memfd_create("not-a-value")
    try:
        os.ftruncate(unsealed, layout[-1][0] + layout[-1][1])
        with pytest.raises(SharedValueError, match="is gone"):
            private_frames([pid, unsealed, name, layout])
        with pytest.raises(SharedValueError, match="not sealed"):
            private_frames([pid, unsealed, "not-a-value", layout])
    finally:
        os.close(unsealed)
    value.close()
    with pytest.raises(SharedValueError):
        private_frames(description)
