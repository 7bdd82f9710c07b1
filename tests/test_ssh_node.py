"""A ComputeNode on another host is started over ssh. The other host is a network namespace
with its own address and a real sshd (as root; skipped with the reason where that is
impossible)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, run_program

NAMESPACE = "ssnode"
HOST_ADDRESS, NODE_ADDRESS = "10.231.0.1", "10.231.0.2"


def _sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server (sshd) is not installed"
    probe = subprocess.run(["ip", "netns", "add", "ssprobe"], capture_output=True)
    if probe.returncode:
        return f"cannot create network namespaces: {probe.stderr.decode().strip()}"
    _sh("ip", "netns", "del", "ssprobe")
    return None


@pytest.fixture
def ssh_node(tmp_path):
    reason = _cannot_run()
    if reason:
        pytest.skip(reason)
    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)
    subprocess.run(["ip", "link", "del", "ss-host"], capture_output=True)
    _sh("ip", "netns", "add", NAMESPACE)
    _sh("ip", "link", "add", "ss-host", "type", "veth", "peer", "name", "ss-node")
    _sh("ip", "link", "set", "ss-node", "netns", NAMESPACE)
    _sh("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", "ss-host")
    _sh("ip", "link", "set", "ss-host", "up")
    inside = ["ip", "netns", "exec", NAMESPACE]
    _sh(*inside, "ip", "addr", "add", f"{NODE_ADDRESS}/24", "dev", "ss-node")
    _sh(*inside, "ip", "link", "set", "ss-node", "up")
    _sh(*inside, "ip", "link", "set", "lo", "up")
    key = tmp_path / "id_ed25519"
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_key"))
    (tmp_path / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    config = tmp_path / "sshd_config"
    config.write_text(f"ListenAddress {NODE_ADDRESS}\nPort 22\nHostKey {tmp_path}/host_key\n"
                      f"AuthorizedKeysFile {tmp_path}/authorized_keys\nPermitRootLogin yes\n"
                      f"StrictModes no\nUsePAM no\nPidFile {tmp_path}/sshd.pid\n")
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = subprocess.Popen([*inside, "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ssh = (f"ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           f"-o LogLevel=ERROR")
    deadline = time.monotonic() + 15
    while subprocess.run([*ssh.split(), "-o", "BatchMode=yes", f"root@{NODE_ADDRESS}", "true"],
                         capture_output=True).returncode:
        assert time.monotonic() < deadline, "sshd in the namespace did not come up"
        time.sleep(0.2)
    yield ssh
    sshd.terminate()
    sshd.wait(timeout=10)
    subprocess.run(["ip", "netns", "pids", NAMESPACE], capture_output=True)
    subprocess.run(["ip", "link", "del", "ss-host"], capture_output=True)
    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)


@pytest.mark.slow
def test_remote_node_started_over_ssh_runs_tasks_and_exchanges_data(ssh_node, program,
                                                                    tmp_path, monkeypatch):
    resources = tmp_path / "resources.xml"
    resources.write_text(f"""<ResourcesList>
  <ComputeNode Name="localhost">
    <Processor Name="P"><ComputingUnits>1</ComputingUnits></Processor>
    <Software><Application>here</Application></Software>
  </ComputeNode>
  <ComputeNode Name="{NODE_ADDRESS}">
    <Processor Name="P"><ComputingUnits>1</ComputingUnits></Processor>
    <Software><Application>there</Application></Software>
  </ComputeNode>
</ResourcesList>""")
    project = tmp_path / "project.xml"
    project.write_text(f"""<Project>
  <MasterNode/>
  <ComputeNode Name="localhost"><InstallDir>/</InstallDir><WorkingDir>/tmp</WorkingDir></ComputeNode>
  <ComputeNode Name="{NODE_ADDRESS}"><InstallDir>/</InstallDir><WorkingDir>/tmp</WorkingDir>
    <User>root</User></ComputeNode>
</Project>""")
    data = tmp_path / "numbers.txt"
    data.write_text("1 2 3 4\n")
    path = program("""
        import json, os
        import numpy as np
        from pycompss.api.task import task
        from pycompss.api.constraint import constraint
        from pycompss.api.parameter import FILE_IN
        from pycompss.api.api import compss_wait_on

        def interfaces():
            return sorted(os.listdir("/sys/class/net"))

        @constraint(app_software="there")
        @task(returns=1, path=FILE_IN)
        def remote_read(path):
            with open(path) as handle:
                values = [int(v) for v in handle.read().split()]
            return [np.arange(200_000) * sum(values), interfaces()]

        @constraint(app_software="here")
        @task(returns=1)
        def local_sum(pair):
            return [float(pair[0].sum()), pair[1], interfaces()]

        if __name__ == "__main__":
            import sys
            print("RESULT", json.dumps(compss_wait_on(local_sum(remote_read(sys.argv[1])))))
    """)
    monkeypatch.setenv("SUPERSCALAR_SSH", ssh_node)
    # --pythonpath: the remote worker runs this checkout, not whatever is installed there.
    run = run_program(path, args=[data], resources=resources,
                      extra=[f"--project={project}", f"--pythonpath={REPO}"], timeout=120)
    assert run.returncode == 0, run.stderr + _worker_logs(run)
    total, remote_interfaces, local_interfaces = run.result
    assert total == float(sum(range(200_000)) * 10)
    assert "ss-node" in remote_interfaces, "the remote task must run inside the namespace"
    assert "ss-node" not in local_interfaces


def _worker_logs(run) -> str:
    logs = Path(run.log_dir) / "workers"
    return "".join(f"\n--- {p}\n{p.read_text()}" for p in sorted(logs.glob("*.log"))) \
        if logs.exists() else ""
