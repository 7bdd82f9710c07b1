"""Other "hosts" for tests: network namespaces, each with its own address and a real sshd.

    root namespace: bridge <prefix>b 10.X.Y.1/24 (the master's side)
        ├── veth <prefix>h0 ══ <prefix>n0 10.X.Y.2 in namespace <prefix>s0, sshd on :22
        └── veth <prefix>h1 ══ <prefix>n1 10.X.Y.3 in namespace <prefix>s1, sshd on :22
The hosts reach the master and each other through the bridge; `ip link set <prefix>hN down`
cuts host N off. Names and the subnet derive from this process's id, so concurrent test runs
do not collide. Needs root; `cannot_use_namespaces()` says why not, for pytest.skip.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def _sh(*command: str) -> None:
    completed = subprocess.run(command, capture_output=True)
    if completed.returncode:
        raise RuntimeError(f"{' '.join(command)}: {completed.stderr.decode().strip()}")


def cannot_use_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server (sshd) is not installed"
    probe = f"ssprobe{os.getpid()}"
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if created.returncode:
        return f"cannot create network namespaces: {created.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class Hosts:
    prefix: str
    addresses: list = field(default_factory=list)     # one per host, for resources.xml
    links: list = field(default_factory=list)         # root-side veth ends: down = cut off
    interfaces: list = field(default_factory=list)    # the interface name inside each host
    namespaces: list = field(default_factory=list)
    ssh: str = ""                                     # for SUPERSCALAR_SSH


@contextlib.contextmanager
def ssh_hosts(folder: Path, count: int):
    tag = os.getpid() % 100000
    prefix = f"ss{tag}"
    subnet = f"10.{200 + tag % 50}.{tag // 50 % 250}"
    hosts = Hosts(prefix)
    sshds: list = []
    try:
        _sh("ip", "link", "add", f"{prefix}b", "type", "bridge")
        _sh("ip", "addr", "add", f"{subnet}.1/24", "dev", f"{prefix}b")
        _sh("ip", "link", "set", f"{prefix}b", "up")
        key = _keys(folder)
        for index in range(count):
            address = _add_host(hosts, prefix, index, f"{subnet}.{index + 2}")
            sshds.append(_start_sshd(folder, hosts.namespaces[-1], address, index))
        hosts.ssh = (f"ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                     f"-o LogLevel=ERROR -o ConnectTimeout=5")
        for address in hosts.addresses:
            _wait_for_ssh(hosts.ssh, address)
        yield hosts
    finally:
        for sshd in sshds:
            sshd.terminate()
            sshd.wait(timeout=10)
        _tear_down(hosts)


def localhost_and_node(folder: Path, node_address: str, local_software: str,
                       node_software: str) -> tuple[Path, Path]:
    """resources.xml and project.xml of a run on this host and one namespaced host (reached as
    root over ssh), one core each; a task's @constraint(app_software=...) picks its host."""
    resources = folder / "resources.xml"
    resources.write_text(f"""<ResourcesList>
  <ComputeNode Name="localhost">
    <Processor Name="P"><ComputingUnits>1</ComputingUnits></Processor>
    <Software><Application>{local_software}</Application></Software>
  </ComputeNode>
  <ComputeNode Name="{node_address}">
    <Processor Name="P"><ComputingUnits>1</ComputingUnits></Processor>
    <Software><Application>{node_software}</Application></Software>
  </ComputeNode>
</ResourcesList>""")
    project = folder / "project.xml"
    project.write_text(f"""<Project>
  <MasterNode/>
  <ComputeNode Name="localhost"><InstallDir>/</InstallDir><WorkingDir>/tmp</WorkingDir></ComputeNode>
  <ComputeNode Name="{node_address}"><InstallDir>/</InstallDir><WorkingDir>/tmp</WorkingDir>
    <User>root</User></ComputeNode>
</Project>""")
    return resources, project


def _keys(folder: Path) -> Path:
    key = folder / "id_ed25519"
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key"))
    (folder / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    return key


def _add_host(hosts: Hosts, prefix: str, index: int, address: str) -> str:
    namespace, outside, inside = f"{prefix}s{index}", f"{prefix}h{index}", f"{prefix}n{index}"
    _sh("ip", "netns", "add", namespace)
    hosts.namespaces.append(namespace)
    _sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
    hosts.links.append(outside)
    _sh("ip", "link", "set", inside, "netns", namespace)
    _sh("ip", "link", "set", outside, "master", f"{prefix}b")
    _sh("ip", "link", "set", outside, "up")
    run_inside = ["ip", "netns", "exec", namespace]
    _sh(*run_inside, "ip", "addr", "add", f"{address}/24", "dev", inside)
    _sh(*run_inside, "ip", "link", "set", inside, "up")
    _sh(*run_inside, "ip", "link", "set", "lo", "up")
    hosts.addresses.append(address)
    hosts.interfaces.append(inside)
    return address


def _start_sshd(folder: Path, namespace: str, address: str, index: int) -> subprocess.Popen:
    config = folder / f"sshd_config{index}"
    config.write_text(f"ListenAddress {address}\nPort 22\nHostKey {folder}/host_key\n"
                      f"AuthorizedKeysFile {folder}/authorized_keys\nPermitRootLogin yes\n"
                      f"StrictModes no\nUsePAM no\nPidFile {folder}/sshd{index}.pid\n")
    os.makedirs("/run/sshd", exist_ok=True)
    return subprocess.Popen(["ip", "netns", "exec", namespace, "/usr/sbin/sshd", "-D", "-e",
                             "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait_for_ssh(ssh: str, address: str) -> None:
    deadline = time.monotonic() + 15
    while subprocess.run([*ssh.split(), "-o", "BatchMode=yes", f"root@{address}", "true"],
                         capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd at {address} did not come up")
        time.sleep(0.2)


def _tear_down(hosts: Hosts) -> None:
    """Processes left in a namespace (a worker cut off from its master) are killed: deleting
    a namespace does not end them."""
    for namespace in hosts.namespaces:
        listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                text=True)
        for pid in listed.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for link in hosts.links:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    subprocess.run(["ip", "link", "del", f"{hosts.prefix}b"], capture_output=True)
    for namespace in hosts.namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
