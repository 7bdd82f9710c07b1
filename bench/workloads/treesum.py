"""Arrays made by tasks and summed pairwise in tasks: workload (c) of bench/run.py.

N tasks each make a 4 MiB float64 array; a tree of N - 1 `add` tasks sums them
down to one array, which alone comes back to the master. The figure is the
bytes made per second: N * 4 MiB / elapsed.

    runcompss bench/workloads/treesum.py [N]
"""
import json
import resource
import sys
import time

import numpy as np

from pycompss.api.api import compss_wait_on
from pycompss.api.task import task

ARRAY_LENGTH = 524288  # float64: 4 MiB
MIB = 1024 * 1024


@task(returns=1)
def warmup():
    return 0


@task(returns=1)
def make_array(i, length):
    return np.full(length, float(i))


@task(returns=1)
def add(a, b):
    return a + b


def tree_sum(partials):
    while len(partials) > 1:
        level = [add(partials[i], partials[i + 1]) for i in range(0, len(partials) - 1, 2)]
        if len(partials) % 2:
            level.append(partials[-1])
        partials = level
    return partials[0]


def emit(name, value, unit, elapsed, size):
    """The one line bench/run.py reads; ru_maxrss is in KiB on Linux."""
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"name": name, "value": value, "unit": unit, "size": size,
                                 "elapsed_s": elapsed, "peak_rss_mb": peak_rss_mb}), flush=True)


def main():
    arrays = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    compss_wait_on(warmup())
    start = time.perf_counter()
    total = compss_wait_on(tree_sum([make_array(i, ARRAY_LENGTH) for i in range(arrays)]))
    elapsed = time.perf_counter() - start
    expected = arrays * (arrays - 1) / 2
    if total.shape != (ARRAY_LENGTH,) or not np.all(total == expected):
        print(f"treesum: wrong sum, expected every element to be {expected}", file=sys.stderr)
        return 1
    emit("treesum", arrays * ARRAY_LENGTH * 8 / MIB / elapsed, "MiB/s", elapsed, arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
