"""runcompss flags for the journal, resuming and memoization, and COMPSs' checkpoint flags.

    (default)                 journal in <log_dir>/journal; outputs kept only if the run fails
    --resume                  reuse the journal of the newest run of this same command
    --resume=<log_dir>        ... of that run
    --no_journal              no journal, no resume, no cache: the runtime alone
    --keep_outputs            keep the journal's persisted outputs after a successful run too
    --cache [--cache_dir D]   memoize every task (@task(cache=True) memoizes one task)
    --checkpoint=<policy>     COMPSs: journal in --checkpoint_folder, kept, and every run of
    --checkpoint_params=...   the command resumes from it. The policies map onto how often the
    --checkpoint_folder=...   journal commits (period.time, finished.tasks, instantiated.group);
                              avoid.checkpoint names tasks whose outputs are never persisted.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from ..master.journal import find_resumable, journal_folder, last_run
from ..master.reuse import ReuseOptions

POLICIES = {
    "es.bsc.compss.checkpoint.policies.CheckpointPolicyPeriodicTime": "PT",
    "es.bsc.compss.checkpoint.policies.CheckpointPolicyFinishedTasks": "FT",
    "es.bsc.compss.checkpoint.policies.CheckpointPolicyInstantiatedGroup": "ITG",
}
_SHORT_POLICIES = {"PT", "FT", "ITG"}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


class FlagError(ValueError):
    """A flag value runcompss cannot honour; the message names the flag."""


def add_flags(parser) -> None:
    parser.add_argument("--resume", action="store_true", help="resume the newest run of this "
                        "same command (or --resume=<log_dir>): tasks whose code and inputs are "
                        "unchanged and whose outputs were persisted are not run again")
    parser.add_argument("--resume_from", metavar="LOG_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--no_journal", action="store_true", help="keep no journal: no "
                        "--resume, no memoization (the runtime's bare speed)")
    parser.add_argument("--keep_outputs", action="store_true", help="keep the journal's "
                        "persisted outputs after a successful run too (a later --resume then "
                        "reuses every task still persisted)")
    parser.add_argument("--cache", action="store_true", help="memoize every task: a task "
                        "whose code and inputs were seen before is not run again")
    parser.add_argument("--cache_dir", default=None, help="the memoization cache (default: "
                        "$SUPERSCALAR_CACHE_DIR or ~/.COMPSs/cache)")
    parser.add_argument("--checkpoint", "--checkpoint_policy", dest="checkpoint", default=None,
                        help="COMPSs checkpoint policy class (PeriodicTime, FinishedTasks, "
                        "InstantiatedGroup): keep a journal in --checkpoint_folder and resume "
                        "from it on every run")
    parser.add_argument("--checkpoint_params", default="", help="COMPSs checkpoint params: "
                        "period.time:10s, finished.tasks:N, instantiated.group:N, "
                        "avoid.checkpoint:[module.task,...]")
    parser.add_argument("--checkpoint_folder", default=None, help="where the checkpoint "
                        "journal lives (default: ~/.COMPSs/checkpoint/<app>)")


def rewrite_argv(argv: list[str]) -> list[str]:
    """`--resume=<dir>` takes a value only in the = form, so `--resume app.py` stays
    unambiguous; the application's own arguments (after its .py file) are left alone."""
    rewritten = list(argv)
    for index, argument in enumerate(argv):
        if argument.endswith(".py") and not argument.startswith("-"):
            break
        if argument.startswith("--resume="):
            rewritten[index] = "--resume_from=" + argument[len("--resume="):]
    return rewritten


def resolve_log_dir(options, application: str, default_log_dir) -> str:
    """--resume without a folder continues in the log folder of the newest run of the same
    command (application path and arguments) under ~/.COMPSs."""
    if options.resume_from:
        return os.path.abspath(options.resume_from)
    if options.log_dir:
        return os.path.abspath(options.log_dir)
    if options.resume and not options.checkpoint:
        base = os.path.join(os.path.expanduser("~"), ".COMPSs")
        found = find_resumable(base, application, options.arguments)
        if found:
            return found
    return os.path.abspath(default_log_dir(application))


def reuse_options(options, application: str, log_dir: str) -> ReuseOptions | None:
    if options.no_journal and (options.resume or options.resume_from or options.checkpoint):
        raise FlagError("--no_journal cannot be combined with --resume or --checkpoint")
    cache_dir = os.path.abspath(options.cache_dir) if options.cache_dir else None
    if options.no_journal:
        return ReuseOptions(cache_dir=cache_dir, cache_all=True) if options.cache else None
    reuse = ReuseOptions(journal_dir=journal_folder(log_dir),
                         resume=bool(options.resume or options.resume_from),
                         keep_outputs=options.keep_outputs,
                         cache_dir=cache_dir, cache_all=options.cache,
                         application=application, arguments=tuple(options.arguments))
    if options.checkpoint:
        _apply_checkpoint(options, application, reuse)
    elif reuse.resume and last_run(reuse.journal_dir) is None:
        print(f"[superscalar] --resume: no earlier run of this command in {log_dir}; every "
              f"task runs", file=sys.stderr)
    return reuse


def _apply_checkpoint(options, application: str, reuse: ReuseOptions) -> None:
    if options.checkpoint not in POLICIES and options.checkpoint not in _SHORT_POLICIES:
        raise FlagError(f"--checkpoint={options.checkpoint}: superscalar implements the COMPSs "
                        f"policies {', '.join(sorted(POLICIES))}, not custom Java policies")
    folder = options.checkpoint_folder or os.path.join(
        os.path.expanduser("~"), ".COMPSs", "checkpoint", os.path.basename(application))
    reuse.journal_dir = os.path.abspath(folder)
    reuse.resume = True               # COMPSs: later executions resume from the checkpoint
    reuse.keep_outputs = True
    for name, value in _parameters(options.checkpoint_params):
        if name == "period.time":
            reuse.commit_seconds = _period(value)
        elif name in ("finished.tasks", "instantiated.group"):
            if not value.isdigit() or int(value) < 1:
                raise FlagError(f"--checkpoint_params: {name}:{value} must be a positive count")
            reuse.commit_events = int(value)
        elif name == "avoid.checkpoint":
            reuse.avoid = frozenset(n.strip() for n in value.strip("[]").split(",") if n.strip())
        else:
            raise FlagError(f"--checkpoint_params: unknown parameter {name!r}; expected "
                            f"period.time, finished.tasks, instantiated.group, avoid.checkpoint")


def _parameters(text: str) -> list[tuple[str, str]]:
    """'a:1,b:[x,y]' -> [('a', '1'), ('b', '[x,y]')]: commas inside brackets stay."""
    items = [item for item in re.split(r",(?![^\[]*\])", text) if item.strip()]
    pairs = []
    for item in items:
        name, separator, value = item.partition(":")
        if not separator:
            raise FlagError(f"--checkpoint_params: {item!r} is not name:value")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _period(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)?\s*([smh])?", value)
    if not match or not (match.group(1) or match.group(2)):
        raise FlagError(f"--checkpoint_params: period.time:{value} must look like 30s, 5m or 1h")
    return float(match.group(1) or 1) * _UNITS[match.group(2) or "s"]
