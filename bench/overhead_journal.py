"""Overhead of the journal on the core benchmark's workloads: journaled runs against plain ones.

    python bench/overhead_journal.py [--quick] [--repeats R] [--only a,b] [--output PATH]

    for each workload (bench/run.py's (a) independent no-op tasks, (b) dependency chain):
        repeat R times, alternating so that load drifts hit both sides:
            runcompss --no_journal bench/workloads/<w>.py SIZE    plain: no keys, no journal
            runcompss              bench/workloads/<w>.py SIZE    journaled (the default):
                                   content keys, SQLite journal, outputs persisted in packs
    -> workload, plain, journaled, ratios = journaled time / plain time (1.10: 10% slower):
       of the medians, of the best runs, the median of the R alternated pairs' own ratios, and
       the ratio of the CPU seconds all of a run's processes used (start-up included)

Each run gets a fresh --log_dir on the same disk as ~/.COMPSs, as a real run would. The timed
region is bench/run.py's (submission to results, after a warm-up task), so the journal's start
(opening SQLite) and end (final commit) are outside it; they are inside the CPU seconds. On a
shared machine other work only ever slows a run down: the best run of each side is the least
disturbed estimate, the median the typical one. The paired ratio compares each journaled run
with the plain run just before it, so load that drifts over minutes cancels out; CPU seconds
hardly depend on other work at all.
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import run as core          # bench/run.py: workloads, process handling, BENCH records
from overhead_secure import Side   # one side's runs and their CPU seconds

TARGET = 1.10


def parse_args(argv):
    parser = argparse.ArgumentParser(description="journal overhead on workloads (a) and (b)")
    parser.add_argument("--quick", action="store_true", help="bench/run.py's quick sizes")
    parser.add_argument("--sizes", default="", help="override sizes, e.g. a=20000,b=2000")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--only", default="a,b", help="workloads to run (a, b, c, d)")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    return parser.parse_args(argv)


def measure_pair(workload, size, repeats):
    plain, journaled = Side(), Side()
    script = [f"bench/workloads/{workload.script}.py", str(size)]
    for _ in range(repeats):
        for side, flags in ((plain, ["--no_journal"]), (journaled, [])):
            with tempfile.TemporaryDirectory(prefix="overhead-journal-") as logs:
                side.run(core.runcompss_command() + flags + [f"--log_dir={logs}"] + script)
    return plain, journaled


def paired_ratio(workload, plain: Side, journaled: Side) -> float:
    """The median over repeats of journaled time / plain time of the same repeat."""
    pairs = zip(plain.outcome.values, journaled.outcome.values)
    return statistics.median(time_ratio(workload, before, after) for before, after in pairs)


def best(workload, outcome):
    return max(outcome.values) if workload.higher_is_better else min(outcome.values)


def time_ratio(workload, plain: float, journaled: float) -> float:
    """journaled time / plain time, whichever way the workload's unit points."""
    return plain / journaled if workload.higher_is_better else journaled / plain


def render(rows):
    lines = ["| workload | size | plain (--no_journal), median / best | journaled, median / best "
             "| time ratio, medians | time ratio, best runs | time ratio, median of pairs "
             "| CPU seconds ratio, medians |", "|---|---|---|---|---|---|---|---|"]
    for workload, size, plain, journaled in rows:
        cells = []
        for side in (plain, journaled):
            outcome = side.outcome
            cells.append(f"{core.format_number(statistics.median(outcome.values))} / "
                         f"{core.format_number(best(workload, outcome))} {outcome.unit}"
                         if outcome.ok else f"FAILED: {outcome.failure}")
        ratios = ["n/a"] * 4
        if plain.outcome.ok and journaled.outcome.ok:
            medians = (statistics.median(plain.outcome.values),
                       statistics.median(journaled.outcome.values))
            bests = (best(workload, plain.outcome), best(workload, journaled.outcome))
            cpu = statistics.median(journaled.cpu_seconds) / statistics.median(plain.cpu_seconds)
            ratios = [f"{time_ratio(workload, *medians):.3f}",
                      f"{time_ratio(workload, *bests):.3f}",
                      f"{paired_ratio(workload, plain, journaled):.3f}", f"{cpu:.3f}"]
        lines.append(f"| ({workload.key}) {workload.title} | {size:,} {workload.size_unit} | "
                     f"{cells[0]} | {cells[1]} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def render_runs(rows):
    lines = []
    for workload, _, plain, journaled in rows:
        for name, side in (("plain", plain), ("journaled", journaled)):
            outcome = side.outcome
            runs = ", ".join(core.format_number(value) for value in outcome.values)
            cpu = ", ".join(f"{value:.2f}" for value in side.cpu_seconds)
            lines.append(f"- ({workload.key}) {name}: {runs} {outcome.unit}; CPU s: {cpu}")
            if outcome.failure_detail:
                lines.append(f"  failure: {outcome.failure}\n```\n{outcome.failure_detail}\n```")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    sizes = {w.key: (w.quick_size if args.quick else w.full_size) for w in core.WORKLOADS}
    for item in filter(None, args.sizes.split(",")):
        key, _, value = item.partition("=")
        sizes[key.strip()] = int(value)
    selected = [w for w in core.WORKLOADS if w.key in {k.strip() for k in args.only.split(",")}]
    load_before = core.load_average()
    rows = []
    for workload in selected:
        size = sizes[workload.key]
        print(f"[overhead] ({workload.key}) {workload.title}, {size:,} {workload.size_unit}, "
              f"{args.repeats} repeats per side", flush=True)
        rows.append((workload, size, *measure_pair(workload, size, args.repeats)))
    table = render(rows)
    print("\n" + table)
    if args.output:
        text = "\n".join([
            "## Journal overhead (`python bench/overhead_journal.py`)", "",
            f"- machine: {core.cpu_model()}, nproc {len(core.os.sched_getaffinity(0))}; "
            f"git {core.git_commit()}",
            f"- {args.repeats} run(s) per side, sides alternated; target: time ratio <= "
            f"{TARGET:.2f}",
            f"- load average before: {load_before}, after: {core.load_average()} (the machine "
            f"is shared: other work skews the figures)", "", table, "", render_runs(rows), ""])
        args.output.write_text(text)
        print(f"\n[overhead] written to {args.output}")
    failed = any(not (plain.outcome.ok and journaled.outcome.ok)
                 for _, _, plain, journaled in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
