"""Overhead of the secured channel (CURVE, `runcompss --secure`) on the core benchmark's
workloads (a) independent no-op tasks and (b) a dependency chain.

    python bench/overhead_secure.py [--quick] [--repeats R] [--noop N] [--chain N]
                                    [--only a,b,...] [--output PATH]

    overhead_secure.py --+-- runcompss          bench/workloads/<w>.py SIZE   } alternating, R times
                         +-- runcompss --secure bench/workloads/<w>.py SIZE   } per workload
                         '-> a markdown table on stdout, and in PATH with --output

Runs and timing are bench/run.py's (fresh process per repeat, clock after start-up and a warm-up
task). The two sides alternate so that drifting load on the machine hits both alike; a figure
is the median of the repeats; the ratio is secured elapsed time / plain elapsed time (1.10 =
10% slower), of the medians and of the best runs (the least disturbed by other work), and the
ratio of the CPU seconds all of a run's processes used (start-up included).
"""
import argparse
import resource
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import run as bench

WORKLOADS = {workload.key: workload for workload in bench.WORKLOADS}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="cost of runcompss --secure (CURVE)")
    parser.add_argument("--quick", action="store_true", help="bench/run.py's quick sizes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--noop", type=int, help="tasks in (a) (default: run.py's full size)")
    parser.add_argument("--chain", type=int, help="tasks in (b) (default: run.py's full size)")
    parser.add_argument("--only", default="a,b", help="comma-separated workloads of "
                        "bench/run.py to measure (default a,b)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    return parser.parse_args(argv)


@dataclass(slots=True)
class Side:
    """One side's runs: bench/run.py's Outcome, and the CPU seconds each run used in all its
    processes (master, workers, executors), a figure other work on the machine disturbs less
    than elapsed time."""
    outcome: bench.Outcome = field(default_factory=bench.Outcome)
    cpu_seconds: list = field(default_factory=list)

    def run(self, command) -> None:
        if self.outcome.failure:
            return                       # it would fail the same way again
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        completed = bench.run_process(command, bench.RUN_TIMEOUT_S)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if bench.collect(self.outcome, completed, bench.RUN_TIMEOUT_S):
            self.cpu_seconds.append(after.ru_utime - before.ru_utime
                                    + after.ru_stime - before.ru_stime)


def measure_pair(workload, size, repeats):
    """(plain, secured) Sides, alternating one run of each per repeat."""
    plain, secured = Side(), Side()
    script = [f"bench/workloads/{workload.script}.py", str(size)]
    for _ in range(repeats):
        plain.run(bench.runcompss_command() + script)
        secured.run(bench.runcompss_command() + ["--secure"] + script)
    return plain, secured


def slowdown(workload, plain, secured, summary=statistics.median) -> float:
    """Secured elapsed time over plain elapsed time, whichever way the figure points."""
    ours, theirs = summary(secured.outcome.values), summary(plain.outcome.values)
    return theirs / ours if workload.higher_is_better else ours / theirs


def best(workload):
    """The least disturbed run: on a shared machine, other work only ever slows a run down."""
    return max if workload.higher_is_better else min


def cell(side):
    if not side.outcome.ok:
        return "FAILED: " + side.outcome.failure.replace("|", "\\|")
    figure = bench.format_number(statistics.median(side.outcome.values))
    return f"{figure} {side.outcome.unit} ({statistics.median(side.cpu_seconds):.2f} s CPU)"


def render(rows):
    lines = ["| workload | size | plain | secured (CURVE) | ratio: secured time / plain "
             "(medians) | ratio of best runs | ratio of CPU seconds (medians) |",
             "|---|---|---|---|---|---|---|"]
    details = []
    for workload, size, plain, secured in rows:
        both = plain.outcome.ok and secured.outcome.ok
        ratios = [f"{slowdown(workload, plain, secured, summary):.3f}" if both else "n/a"
                  for summary in (statistics.median, best(workload))]
        cpu = statistics.median(secured.cpu_seconds) / statistics.median(plain.cpu_seconds) \
            if both else None
        ratios.append(f"{cpu:.3f}" if both else "n/a")
        lines.append(f"| ({workload.key}) {workload.title} | {size:,} {workload.size_unit} | "
                     f"{cell(plain)} | {cell(secured)} | {' | '.join(ratios)} |")
        for name, side in (("plain", plain), ("secured", secured)):
            runs = ", ".join(bench.format_number(value) for value in side.outcome.values)
            cpu = ", ".join(f"{value:.2f}" for value in side.cpu_seconds)
            details.append(f"- ({workload.key}) {name}: {runs or 'none'} {side.outcome.unit}; "
                           f"CPU s: {cpu or 'none'}")
            if side.outcome.failure_detail:
                details.append(f"  ```\n{side.outcome.failure_detail}\n  ```")
    return "\n".join(lines), "\n".join(["Runs (each repeat, plain and secured alternating):",
                                         "", *details])


def main(argv=None):
    args = parse_args(argv)
    sizes = {key: (workload.quick_size if args.quick else workload.full_size)
             for key, workload in WORKLOADS.items()}
    sizes["a"] = args.noop or sizes["a"]
    sizes["b"] = args.chain or sizes["b"]
    load_before = bench.load_average()
    rows = []
    selected = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(selected) - set(WORKLOADS)
    if unknown:
        print(f"overhead_secure.py: --only: unknown {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for key in selected:
        workload = WORKLOADS[key]
        print(f"[bench] ({key}) {workload.title}, {sizes[key]:,} {workload.size_unit}, "
              f"plain and --secure x {args.repeats}", flush=True)
        rows.append((workload, sizes[key], *measure_pair(workload, sizes[key], args.repeats)))
    table, details = render(rows)
    environment = [line for line in bench.environment_lines("overhead_secure", args.repeats,
                                                            load_before) if "Dask" not in line]
    print("\n" + "\n".join(environment) + "\n\n" + table + "\n\n" + details)
    if args.output:
        args.output.write_text("\n".join(["## Secured channel overhead "
                                          "(`python bench/overhead_secure.py`)", "",
                                          *environment, "", table, "", details]) + "\n")
        print(f"\n[bench] written to {args.output}")
    return 0 if all(plain.outcome.ok and secured.outcome.ok for *_, plain, secured in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
