"""Benchmark: the same workloads on superscalar and on Dask distributed.

    python bench/run.py [--quick] [--repeats R] [--only a,b,...] [--no-superscalar] [--no-dask]

    run.py --+-- runcompss bench/workloads/<w>.py SIZE          (one process per repeat)
             |      '-> "BENCH {json}" on stdout, or a failure: exit code + stderr tail
             +-- python bench/dask_workloads.py <w> SIZE                (one process per repeat)
             |      '-> "BENCH {json}" on stdout
             +-- start-up: wall time of `runcompss bench/workloads/hello.py`, and of the
             |   Dask equivalent (cluster start, one task, shutdown), each end to end
             '-> a markdown table on stdout and in its mode's section of bench/RESULTS.md

Both sides time only submission -> results, after start-up and a warm-up task;
a figure is the median of the repeats. A superscalar run that fails or times
out becomes a FAILED cell with its stderr tail: the table is always written.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
RUN_TIMEOUT_S = 1500  # one run of one workload, on either side
STARTUP_TIMEOUT_S = 120
LEFTOVER_GRACE_S = 3.0  # a child may outlive its parent briefly (e.g. a resource tracker)
STDERR_TAIL_LINES = 15


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    title: str
    script: str            # bench/workloads/<script>.py and dask_workloads.py's name for it
    full_size: int
    quick_size: int
    size_unit: str
    higher_is_better: bool


WORKLOADS = (
    Workload("a", "independent no-op tasks", "noop", 20_000, 2_000, "tasks", True),
    Workload("b", "dependency chain", "chain", 2_000, 200, "tasks", False),
    Workload("c", "4 MiB arrays, pairwise tree sum", "treesum", 64, 8, "arrays", True),
    Workload("d", "many no-op tasks in one program", "noop", 200_000, 5_000, "tasks", True),
)


@dataclass(slots=True)
class Outcome:
    """What one side measured for one workload: values per repeat, or why it failed."""
    values: list = field(default_factory=list)
    peak_rss_mb: list = field(default_factory=list)
    unit: str = ""
    failure: str = ""          # one line for the table cell
    failure_detail: str = ""   # the stderr tail, for the Failures section
    skipped: bool = False      # not measured on purpose (--no-dask, --no-superscalar)
    notes: list = field(default_factory=list)

    @property
    def ok(self):
        return bool(self.values) and not self.failure

    def fail(self, summary, detail=""):
        self.failure, self.failure_detail = summary, detail


# ---------------------------------------------------------------- processes

@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int        # None when the run timed out
    stdout: str
    stderr: str
    wall_s: float
    leftovers: bool        # processes of its session were still alive after it exited


def run_process(command, timeout):
    """Run a command in its own session so that, whatever it starts, one killpg ends it.

    Output goes to files, not pipes: a child that outlives the command would
    hold a pipe open and make a finished run look hung.
    """
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=child_environment(),
                                   stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            returncode = None
        wall_s = time.perf_counter() - start
        leftovers = _wait_group_empty(process.pid, LEFTOVER_GRACE_S)
        if leftovers:
            _kill_group(process.pid)
        stdout.seek(0)
        stderr.seek(0)
        return Completed(returncode, stdout.read(), stderr.read(), wall_s, leftovers)


def child_environment():
    """The repository first on the path, so that an uninstalled checkout runs too."""
    environment = dict(os.environ)
    paths = [str(REPO_ROOT)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def _kill_group(group):
    """SIGKILL what is left of the process group (= session) we started."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_empty(group, grace_s):
    """True if live processes of the group outlast the grace period."""
    deadline = time.monotonic() + grace_s
    while _live_members(group):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def _live_members(group):
    """Pids of the group's processes that are not zombies, from /proc (Linux)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        state, _parent, process_group = stat[stat.rfind(")") + 2:].split()[:3]
        if int(process_group) == group and state != "Z":
            members.append(int(entry))
    return members


def bench_records(stdout):
    """The well-formed BENCH lines; a garbled one counts as missing, not as a crash."""
    records = []
    for line in stdout.splitlines():
        if not line.startswith("BENCH "):
            continue
        try:
            record = json.loads(line[len("BENCH "):])
            float(record["value"]), float(record["peak_rss_mb"]), str(record["unit"])
        except (ValueError, KeyError, TypeError):
            continue
        records.append(record)
    return records


def failure_of(completed, timeout):
    """(one line, output tail) for a run that gave no usable BENCH line."""
    tail_lines = completed.stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
    if completed.returncode is None:
        summary = f"timed out after {timeout} s"
    elif completed.returncode != 0:
        last = tail_lines[-1].strip() if tail_lines else "(no stderr)"
        summary = f"exit {completed.returncode}: {last}"
    else:
        summary = "exit 0 but no BENCH line on stdout"
        tail_lines = completed.stdout.strip().splitlines()[-STDERR_TAIL_LINES:] + tail_lines
    return summary, "\n".join(tail_lines) or "(no output)"


def collect(outcome, completed, timeout):
    """Add a process's BENCH record(s) to an outcome; False if it failed."""
    if completed.leftovers:
        outcome.notes.append("processes were left running after exit (killed by run.py)")
    records = bench_records(completed.stdout) if completed.returncode == 0 else []
    if not records:
        outcome.fail(*failure_of(completed, timeout))
        return False
    for record in records:
        outcome.values.append(record["value"])
        outcome.peak_rss_mb.append(record["peak_rss_mb"])
        outcome.unit = record["unit"]
    return True


# ---------------------------------------------------------------- the two sides

def runcompss_command():
    """The runcompss installed beside this interpreter, else on PATH, else the module."""
    beside = Path(sys.executable).with_name("runcompss")
    if beside.exists():
        return [str(beside)]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "runcompss"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    return [sys.executable, "-m", "runtime.cli.runcompss"]


def measure_superscalar(workload, size, repeats):
    command = runcompss_command() + [f"bench/workloads/{workload.script}.py", str(size)]
    return measure_runs(command, repeats)


def measure_dask(workload, size, repeats):
    command = [sys.executable, "bench/dask_workloads.py", workload.script, str(size)]
    return measure_runs(command, repeats)


def measure_runs(command, repeats):
    """One fresh process per repeat on both sides: no repeat inherits another's state."""
    outcome = Outcome()
    for _ in range(repeats):
        if not collect(outcome, run_process(command, RUN_TIMEOUT_S), RUN_TIMEOUT_S):
            break  # it would fail the same way again: spare the time
    return outcome


def measure_startup(command, repeats):
    """Wall time of a whole program that runs one task."""
    outcome = Outcome(unit="s")
    for _ in range(repeats):
        completed = run_process(command, STARTUP_TIMEOUT_S)
        if completed.leftovers:
            outcome.notes.append("processes were left running after exit (killed by run.py)")
        if completed.returncode != 0:
            outcome.fail(*failure_of(completed, STARTUP_TIMEOUT_S))
            break
        outcome.values.append(completed.wall_s)
    return outcome


# ---------------------------------------------------------------- the table

@dataclass(frozen=True, slots=True)
class Row:
    label: str
    size: str
    superscalar: Outcome
    dask: Outcome
    higher_is_better: bool
    figure: str = "value"  # or "peak_rss_mb"


def figure_of(outcome, figure):
    if figure == "peak_rss_mb":
        return max(outcome.peak_rss_mb)
    return statistics.median(outcome.values)


def unit_of(row):
    return "MiB" if row.figure == "peak_rss_mb" else (row.superscalar.unit or row.dask.unit)


def format_number(value):
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(outcome, row):
    if outcome.skipped:
        return "skipped"
    if not outcome.ok:
        return "FAILED: " + outcome.failure.replace("|", "\\|")
    return f"{format_number(figure_of(outcome, row.figure))} {unit_of(row)}"


def ratio_cell(row):
    """> 1 means superscalar is better, whichever way the unit points."""
    if not (row.superscalar.ok and row.dask.ok):
        return "n/a"
    ours, theirs = figure_of(row.superscalar, row.figure), figure_of(row.dask, row.figure)
    ratio = ours / theirs if row.higher_is_better else theirs / ours
    return f"{ratio:.2f}x"


def build_rows(results, startup, sizes):
    rows = []
    for workload in WORKLOADS:
        if workload.key not in results:
            continue
        superscalar, dask = results[workload.key]
        size = f"{sizes[workload.key]:,} {workload.size_unit}"
        rows.append(Row(f"({workload.key}) {workload.title}", size, superscalar, dask,
                        workload.higher_is_better))
        if workload.key == "d":
            rows.append(Row("(d) master peak RSS", size, superscalar, dask, False, "peak_rss_mb"))
    if startup:
        rows.append(Row("start-up: one-task program, end to end", "1 task", *startup, False))
    return rows


def render_table(rows):
    lines = ["| workload | size | superscalar | Dask | ratio (>1: superscalar better) |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.label} | {row.size} | {cell(row.superscalar, row)} | "
                     f"{cell(row.dask, row)} | {ratio_cell(row)} |")
    return "\n".join(lines)


def render_details(rows):
    """Every repeat's figure, the notes, and each failure's stderr tail."""
    lines, failures = [], []
    for row in rows:
        if row.figure != "value":
            continue
        for side, outcome in (("superscalar", row.superscalar), ("Dask", row.dask)):
            if outcome.values:
                runs = ", ".join(format_number(value) for value in outcome.values)
                lines.append(f"- {row.label}, {side}: {runs} {outcome.unit}")
            for note in dict.fromkeys(outcome.notes):
                lines.append(f"- {row.label}, {side}: {note}")
            if outcome.failure_detail:
                failures.append((f"{row.label}, {side}: {outcome.failure}", outcome.failure_detail))
    text = "Runs (each repeat):\n\n" + ("\n".join(lines) or "- none")
    if failures:
        text += "\n\nFailures (stderr tail):\n\n" + render_failures(failures)
    return text


def render_failures(failures):
    """Each distinct stderr tail once, under the runs that printed it."""
    by_tail = {}
    for title, tail in failures:
        by_tail.setdefault(tail, []).append(title)
    return "\n\n".join("\n".join(f"- {title}" for title in titles) + f"\n\n```\n{tail}\n```"
                       for tail, titles in by_tail.items())


# ---------------------------------------------------------------- the environment

def version_of(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit():
    try:
        completed = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() or "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        return float("nan")


def load_average():
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def environment_lines(mode, repeats, load_before):
    versions = ", ".join(f"{name} {version_of(name)}" for name in
                         ("dask", "distributed", "numpy", "cloudpickle", "pyzmq"))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- date: {now}",
        f"- machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, "
        f"{memory_gib():.0f} GiB RAM, {platform.system()} {platform.release()}",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
        f"- superscalar: {version_of('superscalar')} (git {git_commit()}), "
        f"run with `{' '.join(Path(part).name for part in runcompss_command())}`, no --resources",
        f"- libraries: {versions}",
        f"- Dask cluster: LocalCluster(n_workers=2, threads_per_worker=1, processes=True)",
        f"- figures: median of {repeats} run(s); peak RSS is the largest seen; mode: {mode}",
        f"- load average (1/5/15 min) before: {load_before}, after: {load_average()} "
        f"(other work on the machine skews the figures)",
    ]


# ---------------------------------------------------------------- RESULTS.md

RESULTS_HEADER = """# Benchmark results

Written by `python bench/run.py` (section "full") and `python bench/run.py --quick`
(section "quick"); each run replaces only its own section.

How it measures: each workload is a PyCOMPSs program in `bench/workloads/`, run with
`runcompss`, and the same workload on Dask distributed in `bench/dask_workloads.py`;
each repeat is a fresh process on both sides. Both sides start their runtime
and run a warm-up task before the clock starts, and stop it when all results are
back in the main program. (a) and (d) submit independent no-op tasks (Dask:
`client.map`), (b) a chain where each task adds one to the previous result, (c) 4 MiB
float64 arrays made by tasks and summed pairwise by tasks (figure: arrays x 4 MiB /
elapsed). Peak RSS is `ru_maxrss` of the application process (superscalar) or of the
client process, which also hosts the LocalCluster scheduler (Dask). Start-up is the
wall time of a whole one-task program, process start to exit, on each side.
"""


def section_markers(mode):
    return f"<!-- BEGIN {mode} -->", f"<!-- END {mode} -->"


SECTION = re.compile(r"<!-- BEGIN (\w+) -->.*?<!-- END \1 -->", re.S)


def existing_sections(text):
    """Every marked section, in file order: the overheads and profile write-ups that other
    scripts or people keep in the same file survive a benchmark run."""
    return {match.group(1): match.group(0) for match in SECTION.finditer(text)}


def write_results(path, mode, body):
    sections = existing_sections(path.read_text()) if path.exists() else {}
    begin, end = section_markers(mode)
    sections[mode] = f"{begin}\n{body}\n{end}"
    order = ["full", "quick"] + [name for name in sections if name not in ("full", "quick")]
    parts = [RESULTS_HEADER] + [sections[name] for name in order if name in sections]
    path.write_text("\n".join(parts) + "\n")


# ---------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description="superscalar vs Dask distributed")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 3, 1 with --quick)")
    parser.add_argument("--only", default="a,b,c,d,startup",
                        help="comma-separated subset of a,b,c,d,startup")
    parser.add_argument("--no-superscalar", action="store_true", help="skip the superscalar side")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask side")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH,
                        help="markdown file to update (default bench/RESULTS.md)")
    return parser.parse_args(argv)


def skipped(reason):
    outcome = Outcome(skipped=True)
    outcome.fail(reason)
    return outcome


def measure(workload, size, repeats, args):
    print(f"[bench] ({workload.key}) {workload.title}, {size:,} {workload.size_unit}", flush=True)
    superscalar = (skipped("skipped (--no-superscalar)") if args.no_superscalar
                   else measure_superscalar(workload, size, repeats))
    dask = skipped("skipped (--no-dask)") if args.no_dask else measure_dask(workload, size, repeats)
    return superscalar, dask


def measure_startups(repeats, args):
    print("[bench] start-up: one-task program", flush=True)
    superscalar = (skipped("skipped (--no-superscalar)") if args.no_superscalar else
                   measure_startup(runcompss_command() + ["bench/workloads/hello.py"], repeats))
    dask = (skipped("skipped (--no-dask)") if args.no_dask else
            measure_startup([sys.executable, "bench/dask_workloads.py", "hello"], repeats))
    return superscalar, dask


def main(argv=None):
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    repeats = args.repeats or (1 if args.quick else 3)
    selected = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = selected - {w.key for w in WORKLOADS} - {"startup"}
    if unknown:
        print(f"run.py: --only: unknown {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    sizes = {w.key: (w.quick_size if args.quick else w.full_size) for w in WORKLOADS}

    load_before = load_average()
    results = {w.key: measure(w, sizes[w.key], repeats, args) for w in WORKLOADS if w.key in selected}
    startup = measure_startups(repeats, args) if "startup" in selected else None
    rows = build_rows(results, startup, sizes)

    table = render_table(rows)
    body = "\n".join([f"## {mode} (`python bench/run.py{' --quick' if args.quick else ''}`)", "",
                      *environment_lines(mode, repeats, load_before), "", table, "", render_details(rows)])
    print("\n" + table)
    write_results(args.output, mode, body)
    print(f"\n[bench] written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
