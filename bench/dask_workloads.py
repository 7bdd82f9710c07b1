"""The Dask side of bench/run.py: the same workloads as bench/workloads/, on Dask distributed.

    run.py --subprocess--> python bench/dask_workloads.py WORKLOAD SIZE [--repeats R]
                             |  LocalCluster(2 worker processes x 1 thread)   [not timed]
                             |  warm-up task on every worker                  [not timed]
                             |  R x (submit ... gather)                       [timed]
                             '-> one "BENCH {json}" line per repeat on stdout

run.py starts one process per repeat (R = 1), as it does for superscalar, so that
ru_maxrss (client and scheduler: with a LocalCluster the scheduler runs in the
client's process) is one run's peak alone, and no repeat runs on a scheduler that
still carries the previous repeat's history (its throughput drops from repeat to
repeat at 200,000 tasks).

Independent tasks go through `client.map`, Dask's fastest way to submit many
tasks; chains and trees through `client.submit`. Every key is impure
(pure=False), so a repeat never finds the previous repeat's results cached.
"""
import argparse
import json
import logging
import resource
import sys
import time

import numpy as np
from distributed import Client, LocalCluster

ARRAY_LENGTH = 524288  # float64: 4 MiB, as in bench/workloads/treesum.py
MIB = 1024 * 1024


def noop(i):
    return i


def inc(x):
    return x + 1


def make_array(i, length):
    return np.full(length, float(i))


def add(a, b):
    return a + b


def run_noop(client, tasks):
    start = time.perf_counter()
    results = client.gather(client.map(noop, range(tasks), pure=False))
    elapsed = time.perf_counter() - start
    if results != list(range(tasks)):
        raise AssertionError("noop: wrong results")
    return tasks / elapsed, "tasks/s", elapsed


def run_chain(client, length):
    start = time.perf_counter()
    value = 0
    for _ in range(length):
        value = client.submit(inc, value, pure=False)
    value = value.result()
    elapsed = time.perf_counter() - start
    if value != length:
        raise AssertionError(f"chain: got {value}, expected {length}")
    return elapsed * 1000 / length, "ms/task", elapsed


def run_treesum(client, arrays):
    start = time.perf_counter()
    partials = [client.submit(make_array, i, ARRAY_LENGTH, pure=False) for i in range(arrays)]
    while len(partials) > 1:
        level = [client.submit(add, partials[i], partials[i + 1], pure=False)
                 for i in range(0, len(partials) - 1, 2)]
        if len(partials) % 2:
            level.append(partials[-1])
        partials = level
    total = partials[0].result()
    elapsed = time.perf_counter() - start
    expected = arrays * (arrays - 1) / 2
    if total.shape != (ARRAY_LENGTH,) or not np.all(total == expected):
        raise AssertionError(f"treesum: wrong sum, expected every element to be {expected}")
    return arrays * ARRAY_LENGTH * 8 / MIB / elapsed, "MiB/s", elapsed


RUNNERS = {"noop": run_noop, "chain": run_chain, "treesum": run_treesum}


def start_cluster():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(2)
    return cluster, client


def warm_up(client):
    """One task on each worker: the first task a worker runs pays for imports."""
    workers = list(client.scheduler_info()["workers"])
    client.gather([client.submit(noop, -1, workers=[worker], pure=False) for worker in workers])


def emit(name, value, unit, elapsed, size):
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"name": name, "value": value, "unit": unit, "size": size,
                                 "elapsed_s": elapsed, "peak_rss_mb": peak_rss_mb}), flush=True)


def hello():
    """Start-up, end to end: the caller times this whole process."""
    cluster, client = start_cluster()
    with cluster, client:
        greeting = client.submit(lambda name: f"Hello, {name}!", "dask").result()
    print(greeting)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Dask side of bench/run.py")
    parser.add_argument("workload", choices=sorted(RUNNERS) + ["hello"])
    parser.add_argument("size", nargs="?", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workload == "hello":
        return hello()
    cluster, client = start_cluster()
    with cluster, client:
        warm_up(client)
        for _ in range(args.repeats):
            value, unit, elapsed = RUNNERS[args.workload](client, args.size)
            emit(args.workload, value, unit, elapsed, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
