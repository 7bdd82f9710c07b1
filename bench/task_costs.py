"""CPU time per task by process role, for the profile write-up in bench/RESULTS.md.

    python bench/task_costs.py [--tasks N] [--repeats R] [--before PATH] [--flags=--no_journal]
                               [--also=--no_journal]

Runs bench/workloads/task_costs.py under runcompss R times (medians), with this checkout and,
with --before, with another checkout of the project (e.g. `git worktree add /tmp/before <rev>`),
alternating the two so load drifts hit both alike. CPU time, unlike wall time, hardly depends
on what else the machine runs, so the table says where the work goes even on a shared machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ("submit", "master", "worker", "executor", "other", "tasks_per_s")


def run_once(tree: str, tasks: int, flags: list) -> dict:
    environment = dict(os.environ, PYTHONPATH=tree)
    command = [sys.executable, "-m", "runtime.cli.runcompss", *flags,
               os.path.join(HERE, "bench", "workloads", "task_costs.py"), str(tasks)]
    output = subprocess.run(command, env=environment, cwd=tree, capture_output=True, text=True,
                            timeout=600)
    for line in output.stdout.splitlines():
        if line.startswith("COSTS "):
            return json.loads(line[6:])
    raise RuntimeError(f"no COSTS line from {tree}: {output.stderr[-2000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", help="another checkout to compare with")
    parser.add_argument("--flags", default="", help="runcompss flags for both sides")
    parser.add_argument("--also", default="", help="flags of one more side, this checkout "
                        "(e.g. --also=--no_journal: what the journal costs)")
    options = parser.parse_args(argv)
    flags = options.flags.split()
    sides = {"now": (HERE, flags)}
    if options.before:
        sides = {"before": (options.before, flags), **sides}
    if options.also:
        sides[f"now {options.also}"] = (HERE, flags + options.also.split())
    runs = {name: [] for name in sides}
    for _ in range(options.repeats):
        for name, (tree, side_flags) in sides.items():
            runs[name].append(run_once(tree, options.tasks, side_flags))
    print(f"{options.tasks:,} no-op tasks, median of {options.repeats}; CPU us per task")
    print("| checkout | submit (app thread) | master total | worker | executor | "
          "other (journal writer) | sum | tasks/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, results in runs.items():
        median = {role: statistics.median(r[role] for r in results) for role in ROLES}
        total = median["master"] + median["worker"] + median["executor"] + median["other"]
        print(f"| {name} | {median['submit']:.0f} | {median['master']:.0f} | "
              f"{median['worker']:.0f} | {median['executor']:.0f} | {median['other']:.0f} | "
              f"{total:.0f} | "
              f"{median['tasks_per_s']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
