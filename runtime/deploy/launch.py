"""Starting worker processes: on this machine as a subprocess, on another over ssh.

    master ──spawn/ssh──► python -m runtime.worker.main --master tcp://HOST:PORT ...
A local worker also gets one end of a socketpair (--control-fd) and talks to the master over it
instead of ZeroMQ: a round trip costs a tenth (runtime.transport.framed), and nothing else can
connect to it. The master's end travels on the Popen object as `control_channel`.
The run key, and the CURVE keys when the run is secured, travel in the environment (local) or
on the ssh session's stdin (remote), never on a command line. srun (the Slurm issue) plugs in
here as one more way to build the command.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, replace

from ..core.collector import THRESHOLDS_ENV
from ..resources import ComputeNode
from ..transport.auth import RUN_KEY_ENV
from ..transport.curve import CURVE_KEYS_ENV, CurveKeys
from ..transport.framed import FramedChannel, pair
from ..worker.delayed_persist import PERSIST_DELAY_ENV


@dataclass(slots=True)
class WorkerLaunch:
    worker_id: str
    node: ComputeNode
    master_address: str
    work_dir: str
    jobs_dir: str | None
    log_path: str
    computing_units: int
    pythonpath: list
    python: str | None = None
    log_level: str = "WARNING"
    advertise_host: str = "127.0.0.1"
    bind_host: str = "127.0.0.1"
    core_offset: int | None = None      # first core of this worker among its host's cores
    # The run's CURVE keys when it is secured (transport/curve.py); a restarted worker gets
    # them again from here.
    curve_keys: CurveKeys | None = field(default=None, repr=False)


def _secrets_line(launch: WorkerLaunch, run_key: str) -> str:
    """Run key, then CURVE keys if any: one line of words, read by the worker's shell."""
    return " ".join([run_key, *([launch.curve_keys.to_text()] if launch.curve_keys else [])])


def relaunched(launch: WorkerLaunch, worker_id: str) -> WorkerLaunch:
    """The launch of a worker taking a lost one's place: same node, fresh id, dir and log."""
    return replace(launch, worker_id=worker_id,
                   work_dir=os.path.join(os.path.dirname(launch.work_dir), f"worker-{worker_id}"),
                   log_path=os.path.join(os.path.dirname(launch.log_path), f"{worker_id}.log"))


def _worker_arguments(launch: WorkerLaunch) -> list[str]:
    arguments = ["-m", "runtime.worker.main", "--master", launch.master_address,
                 "--worker-id", launch.worker_id, "--node-name", launch.node.name,
                 "--computing-units", str(launch.computing_units),
                 "--work-dir", launch.work_dir, "--bind-host", launch.bind_host,
                 "--advertise-host", launch.advertise_host, "--log-level", launch.log_level]
    if launch.jobs_dir:
        arguments += ["--jobs-dir", launch.jobs_dir]
    if launch.core_offset is not None:
        arguments += ["--core-offset", str(launch.core_offset)]
    if launch.node.gpus:
        arguments += ["--gpus", str(launch.node.gpus)]
    return arguments


def start_local_worker(launch: WorkerLaunch, run_key: str) -> subprocess.Popen:
    environment = dict(os.environ)
    environment[RUN_KEY_ENV] = run_key
    environment.pop(CURVE_KEYS_ENV, None)
    if launch.curve_keys:
        environment[CURVE_KEYS_ENV] = launch.curve_keys.to_text()
    paths = [*launch.pythonpath, environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    log = open(launch.log_path, "ab")
    master_end, worker_end = pair()
    try:
        command = [launch.python or sys.executable, *_worker_arguments(launch), "--die-with-parent",
                   "--control-fd", str(worker_end.fileno())]
        process = subprocess.Popen(command,
                                   env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, pass_fds=(worker_end.fileno(),))
    except BaseException:
        master_end.close()
        raise
    finally:
        worker_end.close()
        log.close()
    process.control_channel = FramedChannel(master_end, blocking=False)
    return process


SSH_ENV = "SUPERSCALAR_SSH"
# The runtime's own settings a worker reads from its environment: a local worker inherits the
# master's, a remote one gets them exported by its ssh command.
FORWARDED_ENV = (PERSIST_DELAY_ENV, THRESHOLDS_ENV)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the ssh command with its options, e.g. "ssh -i key -p 2222"


def start_ssh_worker(launch: WorkerLaunch, run_key: str) -> subprocess.Popen:
    """Start a worker on launch.node over ssh; the keys are written to the remote stdin.

    The remote python defaults to this interpreter's path (clusters share the install); set
    --python_interpreter otherwise. Likewise the worker imports the runtime from where the
    master imported it, if that folder exists there (a shared install, or a checkout run with
    PYTHONPATH): master and workers then speak the same protocol. The node's User comes from
    project.xml (or resources.xml).
    """
    node = launch.node
    destination = f"{node.user}@{node.name}" if node.user else node.name
    python = launch.python or sys.executable
    remote_paths = [p for p in (*launch.pythonpath, node.pythonpath or "", _PACKAGE_ROOT) if p]
    exports = f"export PYTHONPATH={shlex.quote(os.pathsep.join(remote_paths))}; " if remote_paths else ""
    exports += "".join(f"export {name}={shlex.quote(os.environ[name])}; "
                       for name in FORWARDED_ENV if name in os.environ)
    if node.working_dir:
        exports += f"cd {shlex.quote(node.working_dir)}; "
    command = (f"{exports}read -r {RUN_KEY_ENV} {CURVE_KEYS_ENV}; "
               f"export {RUN_KEY_ENV} {CURVE_KEYS_ENV}; exec "
               + " ".join(shlex.quote(part) for part in [python, *_worker_arguments(launch)]))
    log = open(launch.log_path, "ab")
    try:
        ssh = shlex.split(os.environ.get(SSH_ENV, "ssh"))
        process = subprocess.Popen([*ssh, "-o", "BatchMode=yes", destination, command],
                                   stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    process.stdin.write((_secrets_line(launch, run_key) + "\n").encode())
    process.stdin.flush()
    return process
