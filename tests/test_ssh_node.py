"""A ComputeNode on another host is started over ssh. The other host is a network namespace
with its own address and a real sshd (as root; skipped with the reason where that is
impossible)."""
from pathlib import Path

import pytest

from conftest import REPO, run_program
from netns import cannot_use_namespaces, localhost_and_node, ssh_hosts


@pytest.fixture
def ssh_node(tmp_path):
    reason = cannot_use_namespaces()
    if reason:
        pytest.skip(reason)
    with ssh_hosts(tmp_path, 1) as hosts:
        yield hosts


@pytest.mark.slow
def test_remote_node_started_over_ssh_runs_tasks_and_exchanges_data(ssh_node, program,
                                                                    tmp_path, monkeypatch):
    node_address, node_interface = ssh_node.addresses[0], ssh_node.interfaces[0]
    resources, project = localhost_and_node(tmp_path, node_address, "here", "there")
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
            return [np.arange(200_000) * sum(values), interfaces(),
                    os.environ.get("SUPERSCALAR_PERSIST_DELAY")]

        @constraint(app_software="here")
        @task(returns=1)
        def local_sum(pair):
            return [float(pair[0].sum()), pair[1], interfaces(), pair[2]]

        if __name__ == "__main__":
            import sys
            print("RESULT", json.dumps(compss_wait_on(local_sum(remote_read(sys.argv[1])))))
    """)
    monkeypatch.setenv("SUPERSCALAR_SSH", ssh_node.ssh)
    monkeypatch.setenv("SUPERSCALAR_PERSIST_DELAY", "1.5")    # forwarded to the remote worker
    # --pythonpath: the remote worker runs this checkout, not whatever is installed there.
    run = run_program(path, args=[data], resources=resources,
                      extra=[f"--project={project}", f"--pythonpath={REPO}"], timeout=120)
    assert run.returncode == 0, run.stderr + _worker_logs(run)
    total, remote_interfaces, local_interfaces, remote_delay = run.result
    assert total == float(sum(range(200_000)) * 10)
    assert node_interface in remote_interfaces, "the remote task must run inside the namespace"
    assert node_interface not in local_interfaces
    assert remote_delay == "1.5", "the runtime's settings reach a worker started over ssh"


def _worker_logs(run) -> str:
    logs = Path(run.log_dir) / "workers"
    return "".join(f"\n--- {p}\n{p.read_text()}" for p in sorted(logs.glob("*.log"))) \
        if logs.exists() else ""
