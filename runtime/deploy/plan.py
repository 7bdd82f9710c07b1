"""Which worker to start where, and with which addresses, from the resource model.

    one ComputeNode -> one worker process (several on one host: several processes)
    local nodes     -> subprocess, sockets on 127.0.0.1 (nothing listens beyond loopback)
    remote nodes    -> ssh; the master and the local workers then listen on all interfaces and
                       advertise the address this machine routes to that node from; every TCP
                       socket of the run then uses CURVE (transport/curve.py).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from ..resources import ComputeNode, ResourceModel, is_local_host
from ..transport.curve import CurveKeys
from .launch import WorkerLaunch


@dataclass(slots=True)
class PlannedWorker:
    launch: WorkerLaunch
    is_local: bool


def route_address(host: str) -> str:
    """The local address packets to `host` leave from (no packet is sent: UDP connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((socket.gethostbyname(host), 9))
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def master_bind_host(model: ResourceModel) -> str:
    return "0.0.0.0" if any(not is_local_host(n.name) for n in model.nodes) else "127.0.0.1"


def needs_secure_channel(model: ResourceModel, forced: bool = False) -> bool:
    """Whenever a socket of the run listens beyond loopback; `forced` for loopback-only runs."""
    return forced or master_bind_host(model) != "127.0.0.1"


def plan_workers(model: ResourceModel, master_port: int, work_root: str, log_dir: str,
                 jobs_dir: str | None, pythonpath: list, python: str | None,
                 log_level: str, curve_keys: CurveKeys | None = None) -> list[PlannedWorker]:
    remote = [node for node in model.nodes if not is_local_host(node.name)]
    # With remote nodes every worker must be reachable from them: one address towards them.
    outward = route_address(remote[0].name) if remote else "127.0.0.1"
    planned = []
    cores_used: dict[str, int] = {}     # host -> units of the workers already planned there
    for index, node in enumerate(model.nodes):
        is_local = node not in remote
        host = "" if is_local else node.name
        core_offset = cores_used.get(host, 0)
        cores_used[host] = core_offset + node.computing_units
        worker_id = f"w{index}"
        master_host = "127.0.0.1" if is_local else route_address(node.name)
        planned.append(PlannedWorker(WorkerLaunch(
            worker_id=worker_id, node=node,
            master_address=f"tcp://{master_host}:{master_port}",
            work_dir=_work_dir(node, is_local, work_root, worker_id),
            jobs_dir=jobs_dir if is_local else None,
            log_path=os.path.join(log_dir, f"{worker_id}.log"),
            computing_units=node.computing_units, pythonpath=list(pythonpath),
            python=python, log_level=log_level,
            bind_host="0.0.0.0" if remote else "127.0.0.1",
            advertise_host=(outward if is_local else node.name) if remote else "127.0.0.1",
            core_offset=core_offset, curve_keys=curve_keys),
            is_local))
    return planned


def _work_dir(node: ComputeNode, is_local: bool, work_root: str, worker_id: str) -> str:
    base = work_root if is_local else (node.working_dir or "/tmp")
    return os.path.join(base, f"superscalar-{os.getpid()}-{worker_id}" if not is_local
                        else f"worker-{worker_id}")
