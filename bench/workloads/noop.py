"""Independent no-op tasks: workloads (a) and (d) of bench/run.py.

Times submission of N tasks through the return of all N results, after one
warm-up task so that the runtime's start-up stays out of the figure.

    runcompss bench/workloads/noop.py [N]
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
def noop(i):
    return i


def emit(name, value, unit, elapsed, size):
    """The one line bench/run.py reads; ru_maxrss is in KiB on Linux."""
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"name": name, "value": value, "unit": unit, "size": size,
                                 "elapsed_s": elapsed, "peak_rss_mb": peak_rss_mb}), flush=True)


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    compss_wait_on(warmup())
    start = time.perf_counter()
    results = compss_wait_on([noop(i) for i in range(tasks)])
    elapsed = time.perf_counter() - start
    if results != list(range(tasks)):
        print("noop: wrong results", file=sys.stderr)
        return 1
    emit("noop", tasks / elapsed, "tasks/s", elapsed, tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
