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


def emit(name, value, unit, elapsed, size, **more):
    """The one line bench/run.py reads; ru_maxrss is in KiB on Linux."""
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"name": name, "value": value, "unit": unit, "size": size,
                                 "elapsed_s": elapsed, "peak_rss_mb": peak_rss_mb, **more}),
          flush=True)


def submit(tasks):
    """The futures, and the submission time of each tenth of them. Once more tasks are pending
    than back-pressure allows, submission goes at the pace tasks finish: the rate of the
    second tenth against the ninth (bench/scale.py) tells whether the run slows as it grows."""
    futures, marks = [], [time.perf_counter()]
    tenth = max(1, tasks // 10)
    for i in range(tasks):
        futures.append(noop(i))
        if (i + 1) % tenth == 0:
            marks.append(time.perf_counter())
    return futures, marks


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    compss_wait_on(warmup())
    start = time.perf_counter()
    futures, marks = submit(tasks)
    results = compss_wait_on(futures)
    del futures
    elapsed = time.perf_counter() - start
    if results != list(range(tasks)):
        print("noop: wrong results", file=sys.stderr)
        return 1
    tenth = max(1, tasks // 10)
    rates = [tenth / (b - a) for a, b in zip(marks, marks[1:])]
    emit("noop", tasks / elapsed, "tasks/s", elapsed, tasks,
         tenths_tasks_per_s=[round(rate, 1) for rate in rates])
    return 0


if __name__ == "__main__":
    sys.exit(main())
