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
10% slower), of the medians and of the best runs (the least disturbed by other work).
"""
import argparse
import statistics
import sys
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


def measure_pair(workload, size, repeats):
    """(plain, secured) Outcomes, alternating one run of each per repeat."""
    plain, secured = bench.Outcome(), bench.Outcome()
    script = [f"bench/workloads/{workload.script}.py", str(size)]
    sides = ((plain, bench.runcompss_command() + script),
             (secured, bench.runcompss_command() + ["--secure"] + script))
    for _ in range(repeats):
        for outcome, command in sides:
            if outcome.ok or not outcome.failure:
                bench.collect(outcome, bench.run_process(command, bench.RUN_TIMEOUT_S),
                              bench.RUN_TIMEOUT_S)
    return plain, secured


def slowdown(workload, plain, secured, summary=statistics.median) -> float:
    """Secured elapsed time over plain elapsed time, whichever way the figure points."""
    ours, theirs = summary(secured.values), summary(plain.values)
    return theirs / ours if workload.higher_is_better else ours / theirs


def best(workload):
    """The least disturbed run: on a shared machine, other work only ever slows a run down."""
    return max if workload.higher_is_better else min


def cell(outcome):
    if not outcome.ok:
        return "FAILED: " + outcome.failure.replace("|", "\\|")
    return f"{bench.format_number(statistics.median(outcome.values))} {outcome.unit}"


def render(rows):
    lines = ["| workload | size | plain | secured (CURVE) | ratio (secured time / plain) "
             "| ratio of best runs |", "|---|---|---|---|---|---|"]
    details = []
    for workload, size, plain, secured in rows:
        ratios = [f"{slowdown(workload, plain, secured, summary):.3f}"
                  if plain.ok and secured.ok else "n/a"
                  for summary in (statistics.median, best(workload))]
        lines.append(f"| ({workload.key}) {workload.title} | {size:,} {workload.size_unit} | "
                     f"{cell(plain)} | {cell(secured)} | {' | '.join(ratios)} |")
        for side, outcome in (("plain", plain), ("secured", secured)):
            runs = ", ".join(bench.format_number(value) for value in outcome.values)
            details.append(f"- ({workload.key}) {side}: {runs or 'none'} {outcome.unit}")
            if outcome.failure_detail:
                details.append(f"  ```\n{outcome.failure_detail}\n  ```")
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
    return 0 if all(plain.ok and secured.ok for *_, plain, secured in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
