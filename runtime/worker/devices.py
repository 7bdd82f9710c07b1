"""Binding tasks to the node's devices: executor slots to CPU cores, GPU tasks to GPU ids.

    planner: --core-offset (workers sharing a host get disjoint cores), --gpus N
    worker:  slot i -> core allowed[offset + i]; a task holding k slots runs on their k cores
    executor: sched_setaffinity(cores) and CUDA_VISIBLE_DEVICES=<its GPU ids> around the task,
              and the COMPSs task variables COMPSS_NUM_THREADS/COMPSS_HOSTNAMES/COMPSS_NUM_NODES
A task asking for 4 computing units then really gets 4 cores, and two GPU tasks never share a
device. When the declared units do not fit the CPUs this process may use (an oversubscribed
resources.xml), nothing is bound: pinning two slots to one core would only slow both.
"""
from __future__ import annotations

import os

GPU_ENVIRONMENT = "CUDA_VISIBLE_DEVICES"


def bound_cores(units: int, offset: int | None) -> list[int] | None:
    """One core per executor slot, or None (no binding)."""
    if offset is None or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if offset < 0 or offset + units > len(allowed):
        return None
    return allowed[offset:offset + units]


def gpu_ids(count: int) -> list[int]:
    """The node's GPU ids: those this worker was given (its CUDA_VISIBLE_DEVICES), else 0..N-1."""
    visible = os.environ.get(GPU_ENVIRONMENT, "").strip()
    if visible:
        ids = [item.strip() for item in visible.split(",") if item.strip()]
        return [int(item) if item.isdigit() else item for item in ids][:count]
    return list(range(count))


class TaskBinding:
    """Applies a task's cores and GPUs in its executor; system calls only when they change."""

    def __init__(self, home_core: int | None, node: str):
        self._home = [home_core] if home_core is not None else None
        self._current = None
        self._single_node = ((node, 1),)
        self._hosts = None
        self._units = None
        self._inherited_gpus = os.environ.get(GPU_ENVIRONMENT)
        self._gpus = None
        if self._home:
            self._set_cores(self._home)

    def apply(self, entry: dict) -> None:
        hosts = entry.get("hosts") or self._single_node      # only multi-node tasks carry it
        if hosts != self._hosts:
            self._hosts = hosts
            os.environ["COMPSS_HOSTNAMES"] = ",".join(str(host) for host, _ in hosts)
            os.environ["COMPSS_NUM_NODES"] = str(len(hosts))
        units = entry.get("units", 1)
        if units != self._units:
            self._units = units
            os.environ["COMPSS_NUM_THREADS"] = str(units)
        cores = entry.get("cores") or self._home
        if cores and cores != self._current:
            self._set_cores(cores)
        gpus = entry.get("gpus") or None
        if gpus != self._gpus:
            self._gpus = gpus
            if gpus:
                os.environ[GPU_ENVIRONMENT] = ",".join(map(str, gpus))
            elif self._inherited_gpus is None:
                os.environ.pop(GPU_ENVIRONMENT, None)
            else:
                os.environ[GPU_ENVIRONMENT] = self._inherited_gpus

    def _set_cores(self, cores: list) -> None:
        try:
            os.sched_setaffinity(0, cores)
            self._current = list(cores)
        except OSError:        # a core went away (cgroup change): run unbound
            self._current = None
