"""runcompss: run a PyCOMPSs application on superscalar.

    runcompss [options] app.py [app arguments]

The master runs inside this process, as in COMPSs; workers start in the background while the
application begins, so its first tasks queue instead of waiting for start-up. The exit code is
the application's, or 1 if any task failed.
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import runpy
import signal
import sys
import threading
import time
import traceback

from .reuse_flags import FlagError, add_flags, resolve_log_dir, reuse_options, rewrite_argv

# COMPSs flags recognised but not implemented yet: refused with a clear message, never ignored.
NOT_YET = {
    "-g": "task graph generation", "--graph": "task graph generation",
    "-t": "tracing", "--tracing": "tracing", "-m": "the monitor", "--monitoring": "the monitor",
    "--provenance": "provenance", "-p": "provenance",
    "--streaming": "streaming", "--storage_conf": "storage back-ends",
    "--storage_impl": "storage back-ends", "--scheduler": "choosing the scheduler",
    "--master_name": "setting the master name", "--master_port": "setting the master port",
    "--cpu_affinity": "CPU affinity", "--gpu_affinity": "GPU affinity",
    "--jvm_master_opts": "JVM options (there is no JVM)",
    "--jvm_workers_opts": "JVM options (there is no JVM)",
    "--external_adaptation": "elasticity", "--enable_external_adaptation": "elasticity",
    "--python_mpi_worker": "MPI workers", "--persistent_worker_c": "C workers",
    "--agents": "agents", "--reuse_resources_on_block": "resource reuse",
    "--wall_clock_limit": "wall clock limits",
}


SECURE_ENV = "SUPERSCALAR_SECURE"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runcompss",
        description="Run a PyCOMPSs application in parallel on superscalar workers.",
        epilog="Flags of COMPSs that superscalar does not implement yet (" +
               ", ".join(sorted(NOT_YET)) + ") are refused with a message, never ignored.")
    parser.add_argument("--resources", help="resources.xml (COMPSs format); default: this "
                        "machine, all cores and memory, auto-detected")
    parser.add_argument("--project", help="project.xml (COMPSs format): user, install and "
                        "working dirs per node")
    parser.add_argument("-d", "--debug", action="store_true", help="debug logging")
    parser.add_argument("--log_level", default=None, choices=["off", "info", "debug", "warning",
                        "error"], help="runtime log level (default: off = warnings only)")
    parser.add_argument("--summary", action="store_true", help="print a summary of the run")
    parser.add_argument("--log_dir", default=None, help="where logs go (default: "
                        "~/.COMPSs/<app>_NN/); task output lands in <log_dir>/jobs/")
    parser.add_argument("--pythonpath", default="", help="extra paths for the application's "
                        "imports on workers (':'-separated)")
    parser.add_argument("--python_interpreter", default=None, help="python for the workers "
                        "(default: this interpreter)")
    parser.add_argument("--lang", default="python", choices=["python"], help="only python")
    parser.add_argument("--secure", action="store_true", default=os.environ.get(SECURE_ENV) == "1",
                        help="authenticate and encrypt the workers' channels (ZeroMQ CURVE) "
                        "on a run that stays on this machine too; always on when nodes on "
                        f"other hosts are declared (or set {SECURE_ENV}=1)")
    add_flags(parser)
    parser.add_argument("application", help="the application's main .py file")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def _refuse_unimplemented(argv: list[str]) -> str | None:
    for argument in argv:
        if not argument.startswith("-"):
            return None             # options end at the application
        flag = argument.split("=", 1)[0]
        if flag in NOT_YET:
            return f"runcompss: {flag} ({NOT_YET[flag]}) is not implemented yet in superscalar"
    return None


def default_log_dir(application: str) -> str:
    base = os.path.join(os.path.expanduser("~"), ".COMPSs")
    name = os.path.basename(application)
    for number in range(1, 10000):
        candidate = os.path.join(base, f"{name}_{number:02d}")
        if not os.path.exists(candidate):
            return candidate
    return os.path.join(base, f"{name}_{int(time.time())}")


def main(argv: list[str] | None = None) -> int:
    argv = rewrite_argv(list(sys.argv[1:] if argv is None else argv))
    refusal = _refuse_unimplemented(argv)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    options = build_parser().parse_args(argv)
    application = os.path.abspath(options.application)
    if not os.path.isfile(application):
        print(f"runcompss: application file {options.application} not found", file=sys.stderr)
        return 2
    log_dir = resolve_log_dir(options, application, default_log_dir)
    try:
        reuse = reuse_options(options, application, log_dir)
    except FlagError as error:
        print(f"runcompss: {error}", file=sys.stderr)
        return 2
    os.makedirs(os.path.join(log_dir, "jobs"), exist_ok=True)
    level = "DEBUG" if options.debug else {None: "WARNING", "off": "WARNING"}.get(
        options.log_level, (options.log_level or "WARNING").upper())
    logging.basicConfig(level=level, format="[superscalar %(name)s] %(levelname)s %(message)s")
    # `kill -USR1 <pid>` prints every thread's stack: what a run that seems stuck is waiting on
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return run(application, options.arguments, options, log_dir, level, reuse)


def run(application: str, arguments: list, options, log_dir: str, level: str,
        reuse=None) -> int:
    from ..api.lifecycle import finish_session
    from ..master.reuse import JournalError
    from ..master.session import SessionOptions, start_session
    from ..resources import ResourceFileError
    app_dir = os.path.dirname(application)
    pythonpath = [app_dir, os.getcwd(), *[p for p in options.pythonpath.split(":") if p]]
    started = time.perf_counter()
    try:
        session = start_session(SessionOptions(
            distributed=True, resources=options.resources, project=options.project,
            log_dir=log_dir, log_level=level, pythonpath=pythonpath,
            python=options.python_interpreter, secure=options.secure, reuse=reuse))
    except (ResourceFileError, JournalError) as error:
        print(f"runcompss: {error}", file=sys.stderr)
        return 2
    sys.argv = [application, *arguments]
    sys.path.insert(0, app_dir)
    exit_code = 0
    application_running = _stop_on_fail_policy(session.backend)
    try:
        runpy.run_path(application, run_name="__main__")
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)      # as Python does (ApplicationStopped too)
        exit_code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - the application's error, shown as Python would
        traceback.print_exc()
        exit_code = 1
    application_running.clear()
    if session.reuse is not None:
        session.reuse.exit_code = exit_code      # a failed application keeps its outputs
    failed = finish_session()
    if options.summary:
        backend = session.backend
        print(f"[superscalar] summary: {backend.engine.completed} tasks completed, "
              f"{failed} failed, {time.perf_counter() - started:.2f} s, logs in {log_dir}\n"
              f"[superscalar] master traffic: sent {backend.outbox.bytes_sent} bytes, "
              f"received {backend.bytes_received} bytes", file=sys.stderr)
    if failed:
        print(f"[superscalar] {failed} task(s) failed; see above and {log_dir}", file=sys.stderr)
        return exit_code or 1
    return exit_code


def _stop_on_fail_policy(backend) -> threading.Event:
    """A task failing under on_failure='FAIL' stops the application at once, even in the
    middle of its own computation: the I/O thread sends SIGINT to this (main) thread, which
    raises ApplicationStopped instead of KeyboardInterrupt. Returns the flag to clear once
    the application has returned."""
    from ..master.shell import ApplicationStopped, stop_message
    running = threading.Event()
    running.set()
    if threading.current_thread() is not threading.main_thread():
        return running

    def on_interrupt(signum, frame):
        if backend.stop_failure is None:
            raise KeyboardInterrupt
        if running.is_set():
            raise ApplicationStopped(stop_message(backend.stop_failure))

    signal.signal(signal.SIGINT, on_interrupt)
    backend.interrupt_thread = threading.main_thread().ident
    return running


if __name__ == "__main__":
    sys.exit(main())
