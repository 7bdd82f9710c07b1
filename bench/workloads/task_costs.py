"""Where a task's CPU time goes, by process role: the program measured by bench/task_costs.py.

    runcompss bench/workloads/task_costs.py [N]

Runs N independent no-op tasks (workload (a)) and prints one COSTS line: CPU microseconds per
task spent in the master (the application process: its application and I/O threads), in the
workers and in the executors, read from /proc through psutil before and after the timed
region, and the application thread's own share (submission: parameter analysis, keys).
"""
import json
import sys
import time

import psutil

from pycompss.api.api import compss_wait_on
from pycompss.api.task import task


@task(returns=1)
def noop(i):
    return i


def cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def snapshot() -> dict:
    """CPU seconds so far per role; workers are the master's children running worker.main."""
    master = psutil.Process()
    roles = {"master": cpu_seconds(master), "worker": 0.0, "executor": 0.0, "other": 0.0}
    for child in master.children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            role = "worker" if "runtime.worker.main" in command and child.ppid() == master.pid \
                else "executor" if "runtime.worker" in command else "other"
            roles[role] += cpu_seconds(child)
        except psutil.Error:
            continue
    return roles


def main():
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    compss_wait_on(noop(-1))
    before = snapshot()
    start, submit_cpu = time.perf_counter(), time.thread_time()
    futures = [noop(i) for i in range(tasks)]
    submit_cpu = time.thread_time() - submit_cpu
    results = compss_wait_on(futures)
    elapsed = time.perf_counter() - start
    after = snapshot()
    if results != list(range(tasks)):
        print("task_costs: wrong results", file=sys.stderr)
        return 1
    costs = {role: (after[role] - before[role]) / tasks * 1e6 for role in before}
    costs["submit"] = submit_cpu / tasks * 1e6
    costs["tasks_per_s"] = tasks / elapsed
    print("COSTS " + json.dumps(costs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
