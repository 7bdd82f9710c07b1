"""The machine the master runs on: what it offers, and which host names mean "here".

With no resources.xml the runtime runs on this machine alone, sized from what the
process may actually use (CPU affinity, not the socket count). ``is_local_host`` lets
the deployer start a plain subprocess instead of ssh when a node name is this machine,
whichever of its names or addresses the user wrote.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import platform
import socket
from dataclasses import dataclass

from .model import ComputeNode, Processor, ResourceModel

LOCAL_NODE_NAME = "localhost"
AUTO_DETECTED = "<auto-detected local machine>"  # ComputeNode.source of the local node

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "localhost6", "ip6-localhost"})
_OS_NAMES = {  # platform.system() -> COMPSs OperatingSystem/Type
    "Linux": "Linux", "Darwin": "MacOS", "Windows": "Windows", "FreeBSD": "FreeBSD", "SunOS": "SunOS",
}
_KIB_PER_GIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LocalMachine:
    hostname: str
    cores: int  # usable by this process, always >= 1
    memory_gb: float | None  # None when neither /proc/meminfo nor psutil can tell
    architecture: str | None
    os_type: str | None  # COMPSs OperatingSystem/Type spelling
    os_version: str | None


def usable_cores() -> int:
    """Cores this process may run on; the affinity mask beats cpu_count under taskset/Slurm."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def total_memory_gb() -> float | None:
    """Physical memory in GB (GiB, as COMPSs counts it), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / _KIB_PER_GIB, 2)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.virtual_memory().total / (1024**3), 2)


def detect_local_machine() -> LocalMachine:
    system = platform.system()
    return LocalMachine(
        hostname=socket.gethostname(),
        cores=usable_cores(),
        memory_gb=total_memory_gb(),
        architecture=platform.machine() or None,
        os_type=_OS_NAMES.get(system, system or None),
        os_version=platform.release() or None,
    )


def local_machine_model() -> ResourceModel:
    """One node named "localhost" with every usable core and all the memory."""
    machine = detect_local_machine()
    processor = Processor(computing_units=machine.cores, architecture=machine.architecture)
    node = ComputeNode(
        name=LOCAL_NODE_NAME,
        processors=(processor,),
        memory_gb=machine.memory_gb,
        os_type=machine.os_type,
        os_version=machine.os_version,
        source=AUTO_DETECTED,
    )
    return ResourceModel(nodes=(node,))


# -- is this name the local machine? ---------------------------------------------------


def _normalise(name: str) -> str:
    host = name.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):  # "[::1]" as written in URLs
        host = host[1:-1]
    return host


def _as_address(text: str):
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@functools.cache
def _own_names() -> frozenset[str]:
    hostname = socket.gethostname()
    names = {hostname, hostname.split(".", 1)[0]}
    try:
        names.add(socket.getfqdn())
    except (OSError, UnicodeError):
        pass
    return frozenset(_normalise(n) for n in names if n)


@functools.cache
def _interface_addresses() -> frozenset[str] | None:
    """Addresses of the local interfaces, or None when psutil is unavailable."""
    try:
        import psutil
    except ImportError:
        return None
    found = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                address = _as_address(entry.address)
                if address is not None:
                    found.add(address)
    return frozenset(found)


def _can_bind(address) -> bool:
    """Stdlib fallback: the kernel lets us bind only to addresses of our own interfaces."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
        return True
    except OSError:
        return False


def _is_local_address(address) -> bool:
    if address.is_loopback:
        return True
    interfaces = _interface_addresses()
    return _can_bind(address) if interfaces is None else address in interfaces


def _resolve(host: str) -> list:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return []
    return [a for a in (_as_address(info[4][0]) for info in infos) if a is not None]


def is_local_host(name: str) -> bool:
    """True when ``name`` designates this machine; unresolvable or odd names give False."""
    return isinstance(name, str) and _is_local_host(_normalise(name))


@functools.lru_cache(maxsize=256)  # name resolution can be slow; a run asks about few hosts
def _is_local_host(host: str) -> bool:
    if not host:
        return False
    if host in _LOOPBACK_NAMES or host in _own_names():
        return True
    address = _as_address(host)
    if address is not None:
        return _is_local_address(address)
    return any(_is_local_address(a) for a in _resolve(host))
