"""The secured channel: when a run listens beyond loopback (or runcompss --secure), every TCP
socket is a CURVE endpoint and only the run's members complete a handshake. A peer without the
keys, even one holding the run key, cannot register as a worker, read a datum or get a task
run; it is refused and logged, and the run goes on unaffected."""
import json
from pathlib import Path

import pytest

from conftest import REPO, assert_same_as_sequential, run_program
from netns import localhost_and_node
from test_ssh_node import ssh_node  # noqa: F401 - a fixture

TESTS = Path(__file__).resolve().parent
PINNED_NODES = REPO / "tests" / "data" / "resources" / "two_nodes_software.xml"

PROGRAM_HEAD = f"""
import json, os, sys, time
sys.path.insert(0, {str(TESTS)!r})
import zmq
import hostile
from pycompss.api.task import task
from pycompss.api.constraint import constraint
from pycompss.api.api import compss_wait_on
from runtime.master.session import current_session
from runtime.transport import protocol

@constraint(app_software="producer")
@task(returns=1)
def produce(n):
    return list(range(n))

@constraint(app_software="consumer")
@task(returns=1)
def total(values):
    return sum(values)

@task(returns=1)
def secrets_seen():
    return [os.environ.get(name) for name in ("SUPERSCALAR_CURVE_KEYS", "SUPERSCALAR_RUN_KEY")]

def intrude(backend, targets, marker):
    '''Plain and wrong-key CURVE clients try to join, fetch and run: which got an answer.'''
    key, _ = hostile.key_held_by_a_worker(backend)
    server_public = backend.gatekeeper.keys.server_public
    context = zmq.Context()
    answered = []
    for kind, server_key in (("plain", None), ("wrong-key", server_public)):
        for name, address in targets.items():
            peer = hostile.connect(context, address, server_key)
            for parts in hostile.intrusions(backend.run_key, key, marker):
                peer.send_multipart(parts)
            if hostile.answered(peer):
                answered.append(kind + " -> " + name)
            peer.close()
    context.term()
    return answered

def member_controls(backend, targets, marker):
    '''The same requests with the member key: answered and accepted (the probes reach the
    right sockets; only the missing key stopped the intruders).'''
    keys = backend.gatekeeper.keys
    member = (keys.member_public, keys.member_secret)
    key, holder = hostile.key_held_by_a_worker(backend)
    context = zmq.Context()
    peer = hostile.connect(context, targets[holder], keys.server_public, member)
    peer.send_multipart(protocol.encode(protocol.Fetch(backend.run_key, [key])))
    read = False
    if hostile.answered(peer, 10000):
        reply, _ = protocol.decode(peer.recv_multipart())
        read = [entry[0] for entry in reply.entries] == [key]
    peer.close()
    peer = hostile.connect(context, targets["master"], keys.server_public, member)
    peer.send_multipart(hostile.intrusions(backend.run_key, key, marker)[0])
    joined = hostile.wait_for(lambda: hostile.spare_joined(backend))
    peer.close()
    context.term()
    return {{"member_read": read, "member_joined": joined}}
"""


def _checks(run) -> dict:
    lines = [line for line in run.stdout.splitlines() if line.startswith("CHECK ")]
    assert lines, f"no CHECK line\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    return json.loads(lines[-1][len("CHECK "):])


def _worker_logs(run) -> str:
    logs = Path(run.log_dir) / "workers"
    return "".join(p.read_text() for p in sorted(logs.glob("*.log")))


@pytest.mark.slow
def test_peers_without_the_keys_are_refused_logged_and_the_run_goes_on(program):
    path = program(PROGRAM_HEAD + """
if __name__ == "__main__":
    produced = produce(1000)
    first = compss_wait_on(total(produced))        # a worker-to-worker transfer over CURVE
    backend = current_session().backend
    check = {}
    if hasattr(backend, "gatekeeper"):
        marker = os.path.abspath("an-intruder-was-here")
        hostile.declare_spare(backend)
        targets = hostile.ports(backend)
        check["answered"] = intrude(backend, targets, marker)
        check["probes"] = 2 * len(targets)
        check["intruder_joined"] = hostile.spare_joined(backend)
    later = compss_wait_on([total(produce(n)) for n in range(1, 6)])
    if check:
        check.update(member_controls(backend, targets, marker))
        check["intruder_task_ran"] = os.path.exists(marker)
        secrets = [backend.run_key.encode(),
                   *backend.gatekeeper.keys.to_text().encode().split(b",")]
        command_lines = [open(f"/proc/{link.process.pid}/cmdline", "rb").read()
                         for link in backend.links.values() if link.process is not None]
        check["keys_on_a_command_line"] = any(secret in line for line in command_lines
                                              for secret in secrets)
    print("RESULT", json.dumps([first, later, compss_wait_on(secrets_seen())]))
    print("CHECK", json.dumps(check))
""")
    run = assert_same_as_sequential(path, resources=PINNED_NODES, extra=["--secure"], timeout=110)
    assert run.result == [sum(range(1000)), [sum(range(n)) for n in range(1, 6)], [None, None]]
    check = _checks(run)
    assert check["probes"] == 6 and check["answered"] == [], check
    assert check["intruder_joined"] is False and check["intruder_task_ran"] is False
    assert check["member_read"] is True and check["member_joined"] is True, check
    assert check["keys_on_a_command_line"] is False
    # Refused and logged, at the master and at the workers, for both kinds of intruder.
    assert "master refused a connection from 127.0.0.1: the peer does not hold this run's " \
           "CURVE key" in run.stderr, run.stderr
    assert "master refused a connection to tcp://127.0.0.1:" in run.stderr   # a plain peer
    workers = _worker_logs(run)
    for worker_id in ("w0", "w1"):
        assert f"worker {worker_id} refused a connection from 127.0.0.1: the peer does not " \
               f"hold this run's CURVE key" in workers, workers
        assert f"worker {worker_id} refused a connection to tcp://127.0.0.1:" in workers, workers


SWITCH_PROGRAM = """
import json
from pycompss.api.task import task
from pycompss.api.api import compss_wait_on
from runtime.master.session import current_session

@task(returns=1)
def double(x):
    return 2 * x

if __name__ == "__main__":
    value = compss_wait_on(double(21))
    backend = current_session().backend
    addresses = [backend.router.LAST_ENDPOINT.decode()]
    addresses += [link.data_address for link in backend.links.values()]
    print("RESULT", json.dumps([value, backend.gatekeeper is not None,
                                bool(backend.router.curve_server), addresses]))
"""


@pytest.mark.parametrize("switch, secured", [(None, False), ("--secure", True),
                                             ("SUPERSCALAR_SECURE=1", True)])
def test_loopback_runs_are_plain_unless_asked(program, monkeypatch, switch, secured):
    if switch and "=" in switch:
        monkeypatch.setenv(*switch.split("="))
    run = run_program(program(SWITCH_PROGRAM), extra=[switch] if switch == "--secure" else [])
    assert run.returncode == 0, run.stderr
    value, has_gatekeeper, curve_server, addresses = run.result
    assert value == 42 and has_gatekeeper is secured and curve_server is secured
    assert all(address.startswith("tcp://127.0.0.1:") for address in addresses), addresses


INTRUDER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import zmq, hostile
run_key, key, server_public, targets = json.loads(sys.stdin.read())
context = zmq.Context()
answered = []
for kind, server_key in (("plain", None), ("wrong-key", server_public.encode())):
    for name, address in targets.items():
        peer = hostile.connect(context, address, server_key)
        for parts in hostile.intrusions(run_key, key, "/tmp/an-intruder-was-here"):
            peer.send_multipart(parts)
        if hostile.answered(peer):
            answered.append(kind + " -> " + name)
        peer.close()
print(json.dumps(answered))
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_run_reaching_another_host_is_secured_by_default(ssh_node, program, tmp_path,
                                                          monkeypatch):
    """The master and workers listen on all interfaces: CURVE is on without asking, the ssh
    worker got its keys on stdin, and an intruder on that other host is refused."""
    NODE_ADDRESS, namespace = ssh_node.addresses[0], ssh_node.namespaces[0]
    HOST_ADDRESS = NODE_ADDRESS.rsplit(".", 1)[0] + ".1"        # the bridge on this side
    resources, project = localhost_and_node(tmp_path, NODE_ADDRESS, "consumer", "producer")
    (tmp_path / "intruder.py").write_text(INTRUDER)
    path = program(PROGRAM_HEAD + f"""
import subprocess
if __name__ == "__main__":
    produced = produce(1000)
    first = compss_wait_on(total(produced))        # remote producer -> local consumer
    backend = current_session().backend
    hostile.declare_spare(backend)
    targets = hostile.ports(backend, {HOST_ADDRESS!r})
    key, _ = hostile.key_held_by_a_worker(backend)
    request = json.dumps([backend.run_key, key,
                          backend.gatekeeper.keys.server_public.decode(), targets])
    intruder = subprocess.run(["ip", "netns", "exec", {namespace!r}, sys.executable,
                               {str(tmp_path / "intruder.py")!r}, {str(TESTS)!r}],
                              input=request, capture_output=True, text=True, timeout=60)
    answered = json.loads(intruder.stdout) if intruder.returncode == 0 else intruder.stderr
    later = compss_wait_on([total(produce(n)) for n in range(1, 4)])
    print("RESULT", json.dumps([first, later]))
    print("CHECK", json.dumps({{"answered": answered, "targets": sorted(targets.values()),
                               "intruder_joined": hostile.spare_joined(backend),
                               "curve_server": bool(backend.router.curve_server)}}))
""")
    monkeypatch.setenv("SUPERSCALAR_SSH", ssh_node.ssh)
    run = run_program(path, resources=resources, timeout=120,
                      extra=[f"--project={project}", f"--pythonpath={REPO}"])
    assert run.returncode == 0, run.stderr + _worker_logs(run)
    assert run.result == [sum(range(1000)), [sum(range(n)) for n in range(1, 4)]]
    check = _checks(run)
    assert check["curve_server"] is True and check["intruder_joined"] is False
    assert check["answered"] == [], check
    assert any(NODE_ADDRESS in target for target in check["targets"])   # the remote worker too
    assert f"master refused a connection from {NODE_ADDRESS}: the peer does not hold this " \
           f"run's CURVE key" in run.stderr, run.stderr


def test_keys_travel_as_one_word_and_never_show_in_a_repr(monkeypatch):
    from runtime.transport.curve import (CURVE_KEYS_ENV, CurveKeys, curve_keys_from_environment,
                                         new_curve_keys)
    keys = new_curve_keys()
    text = keys.to_text()
    assert len(text.split()) == 1 and CurveKeys.from_text(text) == keys
    assert keys.server_secret.decode() not in repr(keys) and "hidden" in repr(keys)
    other = new_curve_keys()
    with pytest.raises(ValueError, match="does not match"):
        CurveKeys.from_text(",".join([text.split(",")[0], other.to_text().split(",")[1],
                                      *text.split(",")[2:]]))
    with pytest.raises(ValueError, match="four Z85 keys"):
        CurveKeys.from_text(text[:-1])
    monkeypatch.setenv(CURVE_KEYS_ENV, text)
    assert curve_keys_from_environment() == keys
    assert curve_keys_from_environment() is None          # taken out of the environment
