"""Several ComputeNodes on localhost: separate worker processes, data moving between them."""
import re
from pathlib import Path

from conftest import REPO, TWO_NODES, assert_same_as_sequential, run_program

PINNED_NODES = REPO / "tests" / "data" / "resources" / "two_nodes_software.xml"


def test_two_nodes_both_used_and_results_match(program):
    path = program("""
        import json, os, time
        from pycompss.api.task import task
        from pycompss.api.api import compss_wait_on, compss_get_number_of_resources

        @task(returns=1)
        def where(i):
            time.sleep(0.2)
            return [i * i, os.getppid()]

        if __name__ == "__main__":
            results = compss_wait_on([where(i) for i in range(8)])
            print("RESULT", json.dumps([r[0] for r in results]))
            print("WORKER_PIDS", len({r[1] for r in results}), compss_get_number_of_resources())
    """)
    run = assert_same_as_sequential(path, resources=TWO_NODES)
    assert run.result == [i * i for i in range(8)]
    assert "WORKER_PIDS 2 2" in run.stdout, "tasks must have run on both worker processes"


def test_large_array_moves_worker_to_worker_not_through_master(program):
    path = program("""
        import json
        import numpy as np
        from pycompss.api.task import task
        from pycompss.api.constraint import constraint
        from pycompss.api.api import compss_wait_on

        @constraint(app_software="producer")
        @task(returns=1)
        def produce(n):
            return np.arange(n, dtype=np.float64)

        @constraint(app_software="consumer")
        @task(returns=1)
        def checksum(array):
            return [float(array.sum()), int(array.size)]

        if __name__ == "__main__":
            n = 8 * 1024 * 1024          # 64 MiB
            print("RESULT", json.dumps(compss_wait_on(checksum(produce(n)))))
    """)
    run = run_program(path, resources=PINNED_NODES, extra=["--summary"])
    assert run.returncode == 0, run.stderr
    n = 8 * 1024 * 1024
    assert run.result == [float(n * (n - 1) / 2), n]
    traffic = re.search(r"master traffic: sent (\d+) bytes, received (\d+) bytes", run.stderr)
    assert traffic, run.stderr
    sent, received = map(int, traffic.groups())
    array_bytes = n * 8
    assert sent < array_bytes / 100 and received < array_bytes / 100, (sent, received)
