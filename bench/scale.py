"""Scale (issue 3, target 4): no-op tasks at growing counts, master memory and throughput.

    python bench/scale.py [--sizes 20000,200000,1000000] [--smoke] [--no_journal]

    for each size N:  runcompss bench/workloads/noop.py N       (one fresh process)
        -> tasks/s (submission to all results), the master's peak RSS, the ratio of tasks/s
           to the smallest size's, and late/early: the submission rate of the ninth tenth of
           the tasks against the second (back-pressure paces submission by completion, so
           a run that slows as its graph grows shows < 1)
    targets: 200,000 tasks <= 400 MB; 1,000,000 tasks <= 1 GB and >= 0.8x the 20,000 figure

The program holds all N futures, then all N results (~40 MB of its own at 10^6). Exits
non-zero if a run fails (not if a target is missed: figures depend on the machine).
"""
import argparse
import sys

import run as core          # bench/run.py: process handling, BENCH records

FULL_SIZES = (20_000, 1_000_000)
SMOKE_SIZES = (2_000, 20_000)
RSS_TARGETS_MB = {200_000: 400, 1_000_000: 1024}
THROUGHPUT_TARGET = 0.8      # at 10^6 tasks, against the 20,000-task figure
RUN_TIMEOUT_S = 3600


def parse_args(argv):
    parser = argparse.ArgumentParser(description="no-op tasks at growing counts")
    parser.add_argument("--sizes", default="", help="task counts, e.g. 20000,200000,1000000")
    parser.add_argument("--smoke", action="store_true", help=f"sizes {SMOKE_SIZES} (for CI)")
    parser.add_argument("--no_journal", action="store_true", help="runs without the journal")
    return parser.parse_args(argv)


def measure(size: int, no_journal: bool) -> dict:
    command = core.runcompss_command() + (["--no_journal"] if no_journal else []) + \
        ["bench/workloads/noop.py", str(size)]
    completed = core.run_process(command, RUN_TIMEOUT_S)
    records = core.bench_records(completed.stdout) if completed.returncode == 0 else []
    if not records:
        summary, detail = core.failure_of(completed, RUN_TIMEOUT_S)
        return {"size": size, "failed": summary, "detail": detail}
    return records[-1]


def late_over_early(record: dict) -> float | None:
    tenths = record.get("tenths_tasks_per_s") or []
    return tenths[8] / tenths[1] if len(tenths) >= 9 and tenths[1] else None


def verdicts(record: dict, base: float | None) -> list:
    size, rss = record["size"], record["peak_rss_mb"]
    out = []
    if size in RSS_TARGETS_MB:
        limit = RSS_TARGETS_MB[size]
        out.append(f"RSS {'ok' if rss <= limit else 'MISSED'} (<= {limit} MB)")
    if size == 1_000_000 and base:
        ratio = record["value"] / base
        out.append(f"throughput {'ok' if ratio >= THROUGHPUT_TARGET else 'MISSED'} "
                   f"(>= {THROUGHPUT_TARGET}x)")
    return out


def render(records: list) -> str:
    base = next((r["value"] for r in records if "failed" not in r), None)
    lines = ["| tasks | tasks/s | master peak RSS (MB) | vs smallest | late/early | targets |",
             "|---:|---:|---:|---:|---:|---|"]
    for record in records:
        if "failed" in record:
            lines.append(f"| {record['size']:,} | FAILED: {record['failed']} | | | | |")
            continue
        ratio = f"{record['value'] / base:.2f}x" if base else ""
        trend = late_over_early(record)
        lines.append(f"| {record['size']:,} | {record['value']:,.0f} | "
                     f"{record['peak_rss_mb']:,.0f} | {ratio} | "
                     f"{'' if trend is None else f'{trend:.2f}'} | "
                     f"{'; '.join(verdicts(record, base))} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] if args.sizes else \
        list(SMOKE_SIZES if args.smoke else FULL_SIZES)
    records = []
    for size in sizes:
        record = measure(size, args.no_journal)
        records.append(record)
        print(f"{size:,} tasks: " + (f"FAILED {record['failed']}\n{record['detail']}"
                                     if "failed" in record else
                                     f"{record['value']:,.0f} tasks/s, peak RSS "
                                     f"{record['peak_rss_mb']:,.0f} MB"), flush=True)
    print(render(records))
    return 1 if any("failed" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
