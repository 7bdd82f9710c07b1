"""A dependency chain: workload (b) of bench/run.py.

Each task takes the previous task's future and returns it plus one, so no two
tasks can run at once: the figure is the runtime's per-task latency.

    runcompss bench/workloads/chain.py [N]
"""
import json
import resource
import sys
import time

from pycompss.api.api import compss_wait_on
from pycompss.api.task import task


@task(returns=1)
def warmup():
    return 0


@task(returns=1)
def inc(x):
    return x + 1


def emit(name, value, unit, elapsed, size):
    """The one line bench/run.py reads; ru_maxrss is in KiB on Linux."""
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"name": name, "value": value, "unit": unit, "size": size,
                                 "elapsed_s": elapsed, "peak_rss_mb": peak_rss_mb}), flush=True)


def main():
    length = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    compss_wait_on(warmup())
    start = time.perf_counter()
    value = 0
    for _ in range(length):
        value = inc(value)
    value = compss_wait_on(value)
    elapsed = time.perf_counter() - start
    if value != length:
        print(f"chain: got {value}, expected {length}", file=sys.stderr)
        return 1
    emit("chain", elapsed * 1000 / length, "ms/task", elapsed, length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
