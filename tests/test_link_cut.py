"""Multi-host: two worker hosts (network namespaces, workers started over ssh); the link of
one is cut mid-run. The master hears nothing from that worker, gives up on it after
SUPERSCALAR_WORKER_TIMEOUT seconds, and redoes its work (and the values only it held) on the
other host: the run finishes with the right answer."""
import pytest

from conftest import run_program
from helpers_api import api_program, describe, named
from netns import cannot_use_namespaces, ssh_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def two_hosts(tmp_path):
    reason = cannot_use_namespaces()
    if reason:
        pytest.skip(f"network namespaces are not available here: {reason}")
    keys = tmp_path / "keys"
    keys.mkdir()
    with ssh_hosts(keys, 2) as hosts:
        yield hosts


def test_cut_link_mid_run_recovers_on_the_other_host(two_hosts, program, tmp_path,
                                                      monkeypatch):
    first, second = two_hosts.addresses
    resources, project = tmp_path / "resources.xml", tmp_path / "project.xml"
    resources.write_text("<ResourcesList>" + "".join(
        f'<ComputeNode Name="{address}"><Processor Name="P"><ComputingUnits>1</ComputingUnits>'
        f'</Processor></ComputeNode>' for address in (first, second)) + "</ResourcesList>")
    project.write_text("<Project><MasterNode/>" + "".join(
        f'<ComputeNode Name="{address}"><InstallDir>/</InstallDir><WorkingDir>/tmp</WorkingDir>'
        f'<User>root</User></ComputeNode>' for address in (first, second)) + "</Project>")
    path = api_program(program, """
        import subprocess

        def host():
            return sorted(n for n in os.listdir("/sys/class/net") if n != "lo")[0]

        @task(returns=1)
        def work(i):
            time.sleep(0.1)
            return [i * i, host()]

        @task(returns=1)
        def combine(a, b):
            return [a[0] + b[0], host()]

        if __name__ == "__main__":
            link = sys.argv[1]
            first, deadline = [], time.time() + 60
            while time.time() < deadline:          # until both hosts have made values
                first += [work(i) for i in range(len(first), len(first) + 10)]
                seen = compss_wait_on(first)       # fetched, then only the workers hold them
                if len({where for _, where in seen}) == 2:
                    break
            report("hosts_before", len({where for _, where in seen}))
            subprocess.run(["ip", "link", "set", link, "down"], check=True)
            count = len(first)
            pairs = [combine(first[i], first[i + 1]) for i in range(0, count, 2)]
            second = [work(i) for i in range(count, 2 * count)]
            again = compss_wait_on(first + second)
            report("count", count)
            report("total", sum(value for value, _ in again))
            report("pairs", sum(value for value, _ in compss_wait_on(pairs)))
            report("hosts_after", sorted({where for _, where in compss_wait_on(second)}))
    """)
    monkeypatch.setenv("SUPERSCALAR_SSH", two_hosts.ssh)
    monkeypatch.setenv("SUPERSCALAR_WORKER_TIMEOUT", "3")
    run = run_program(path, args=[two_hosts.links[1]], resources=resources,
                      extra=[f"--project={project}"], timeout=180)
    assert run.returncode == 0, describe(run) + _worker_logs(run)
    count = named(run).get("count", 0)
    assert named(run) == {"hosts_before": 2, "count": count,
                          "total": sum(i * i for i in range(2 * count)),
                          "pairs": sum(i * i for i in range(count)),
                          "hosts_after": [two_hosts.interfaces[0]]}, describe(run)
    assert "sent nothing for" in run.stderr, run.stderr


def _worker_logs(run) -> str:
    logs = run.log_dir / "workers"
    return "".join(f"\n--- {p}\n{p.read_text()}" for p in sorted(logs.glob("*.log"))) \
        if logs.exists() else ""
