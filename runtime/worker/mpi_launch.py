"""How an @mpi task's processes are launched on the cores the scheduler reserved for it.

    Assignment.hosts  ((host, cores), ...)          from the scheduler (first = this host)
          │  place_processes: cores ÷ cores-per-process = MPI slots per host; never more
          │  processes than slots (no silent oversubscription)
          ▼
    hostfile in the sandbox       Open MPI a line per slot | MPICH/Intel "host:N" | srun: none
          ▼
    launcher argv                 mpirun --hostfile F -n P [flags] | srun --nodelist=... [flags]

The MPI flavour of `runner` is told by COMPSS_MPIRUN_TYPE (ompi, mpich, impi, as in COMPSs), by
the runner's name (srun), or else by asking `runner --version` once per runner.
"""
from __future__ import annotations

import functools
import os
import socket
import subprocess
from dataclasses import dataclass

from .command_line import CommandError

OPEN_MPI, MPICH, INTEL_MPI, SLURM = "ompi", "mpich", "impi", "slurm"
GENERIC = "generic"         # an unknown mpirun on one host: `-n P` and no hostfile
_FLAVOR_NAMES = {"ompi": OPEN_MPI, "openmpi": OPEN_MPI, "mpich": MPICH, "hydra": MPICH,
                 "impi": INTEL_MPI, "intel": INTEL_MPI, "srun": SLURM, "slurm": SLURM}
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the processes go: [(host, processes)], and the cores each process may use."""

    hosts: tuple[tuple[str, int], ...]
    cores_per_process: int

    @property
    def processes(self) -> int:
        return sum(count for _, count in self.hosts)


def place_processes(hosts: tuple, processes: int, processes_per_node: int | None,
                    where: str) -> Placement:
    """Spread `processes` over the reserved hosts: `processes_per_node` on each host when given,
    else as many as each host's cores hold (cores ÷ cores per process)."""
    total_cores = sum(cores for _, cores in hosts)
    reserved = ", ".join(f"{host}:{cores}" for host, cores in hosts)
    if processes_per_node:
        needed = -(-processes // processes_per_node)
        if len(hosts) < needed:
            raise CommandError(
                f"{where}: {processes} processes at {processes_per_node} per node need {needed} "
                f"nodes, but the task was given {len(hosts)} ({reserved}); refusing to "
                f"oversubscribe")
        per_host, left = [], processes
        for host, cores in hosts[:needed]:
            count = min(processes_per_node, left)
            if cores < count:
                raise CommandError(f"{where}: {count} processes on {host} but only {cores} "
                                   f"cores were reserved there; refusing to oversubscribe")
            per_host.append((host, count))
            left -= count
        cores_per_process = max(1, min(cores // count for (_, cores), (_, count)
                                       in zip(hosts, per_host)))
        return Placement(tuple(per_host), cores_per_process)
    if total_cores < processes:
        raise CommandError(f"{where}: {processes} MPI processes but only {total_cores} cores "
                           f"were reserved ({reserved}); refusing to oversubscribe")
    cores_per_process = max(1, hosts[0][1] // processes) if len(hosts) == 1 else max(
        1, total_cores // processes)
    per_host, left = [], processes
    for host, cores in hosts:
        if left <= 0:
            break
        count = min(left, max(1, cores // cores_per_process))
        per_host.append((host, count))
        left -= count
    if left > 0:
        raise CommandError(f"{where}: cannot place {processes} processes of {cores_per_process} "
                           f"cores each on {reserved}; refusing to oversubscribe")
    return Placement(tuple(per_host), cores_per_process)


def hostfile_text(flavor: str, placement: Placement) -> str | None:
    if flavor in (SLURM, GENERIC):
        return None
    if flavor == OPEN_MPI:
        # One line per slot, not "host slots=N": two names of one machine (localhost and
        # 127.0.0.1, two nodes declared on one host) then add up instead of being refused.
        return "".join(f"{host}\n" * count for host, count in placement.hosts)
    return "".join(f"{host}:{count}\n" for host, count in placement.hosts)


def launcher_arguments(flavor: str, runner: str, placement: Placement, hostfile: str | None,
                       processes_per_node: int | None, flags: list[str],
                       exported: tuple[str, ...] = ()) -> list[str]:
    """The launcher part of the command, up to (not including) the program."""
    processes = str(placement.processes)
    if flavor == SLURM:
        nodes = [_slurm_name(host) for host, _ in placement.hosts]
        arguments = [runner, f"--nodes={len(nodes)}", f"--ntasks={processes}",
                     f"--cpus-per-task={placement.cores_per_process}",
                     f"--nodelist={','.join(nodes)}"]
        if processes_per_node:
            arguments.append(f"--ntasks-per-node={processes_per_node}")
        return arguments + flags
    if flavor == OPEN_MPI:
        # --bind-to none: the processes keep the cores of the task's executor (its binding, if
        # any) instead of Open MPI's default pinning to cores 0..n-1 shared by all tasks.
        arguments = [runner, "--hostfile", hostfile, "-n", processes, "--bind-to", "none"]
        for name in exported:
            arguments += ["-x", name]
        return arguments + flags
    if flavor == GENERIC:
        return [runner, "-n", processes] + flags
    option = "-machinefile" if flavor == INTEL_MPI else "-f"
    return [runner, option, hostfile, "-n", processes] + flags


def _slurm_name(host: str) -> str:
    if host in _LOCAL_NAMES:
        return os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    return host


def launcher_environment(environment: dict) -> dict:
    """Open MPI refuses to start as root unless told twice; the runtime is often root in
    containers and CI, so the launcher says it (any other MPI ignores these)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return environment


def flavor_of(runner_path: str, where: str, multi_host: bool) -> str:
    declared = os.environ.get("COMPSS_MPIRUN_TYPE", "").strip().lower()
    if declared:
        if declared not in _FLAVOR_NAMES:
            raise CommandError(f"{where}: COMPSS_MPIRUN_TYPE={declared!r} is not one of "
                               f"ompi, mpich, impi")
        return _FLAVOR_NAMES[declared]
    if os.path.basename(runner_path).startswith("srun"):
        return SLURM
    flavor = _detected_flavor(runner_path)
    if flavor is None:
        if multi_host:
            raise CommandError(f"{where}: cannot tell which MPI '{runner_path}' belongs to, so "
                               f"no hostfile can be written for several hosts; set "
                               f"COMPSS_MPIRUN_TYPE=ompi|mpich|impi")
        return GENERIC
    return flavor


@functools.lru_cache(maxsize=16)
def _detected_flavor(runner_path: str) -> str | None:
    try:
        completed = subprocess.run([runner_path, "--version"], capture_output=True, text=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = completed.stdout + completed.stderr
    if "Open MPI" in text or "OpenRTE" in text or "PRRTE" in text or "prterun" in text:
        return OPEN_MPI
    if "Intel(R) MPI" in text:
        return INTEL_MPI
    if "HYDRA" in text or "MPICH" in text:
        return MPICH
    return None
