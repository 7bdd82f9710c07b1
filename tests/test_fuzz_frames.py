"""Random, truncated and malformed frames sent to every listening socket of a real run, while
its tasks run: nothing crashes, the drops are logged, the results are right.

The fuzzing peers use the run's keys when it is secured (a stranger would not get past the
CURVE handshake, see test_secure_channel.py), and one of them joins as a (task-less) worker
first, so the master's handlers for members' messages are fuzzed too, not only its door."""
from pathlib import Path

import pytest

from conftest import REPO, run_program

TESTS = Path(__file__).resolve().parent
PINNED_NODES = REPO / "tests" / "data" / "resources" / "two_nodes_software.xml"
MESSAGES_PER_PEER = 240

PROGRAM = """
import json, os, random, sys, time
sys.path.insert(0, {tests!r})
import zmq
import hostile
from pycompss.api.task import task
from pycompss.api.constraint import constraint
from pycompss.api.api import compss_wait_on
from runtime.master.session import current_session
from runtime.transport import protocol

@constraint(app_software="producer")
@task(returns=1)
def step_here(x):
    time.sleep(0.01)
    return x + 1

@constraint(app_software="consumer")
@task(returns=1)
def step_there(x):
    time.sleep(0.01)
    return x + 1

@task(returns=1)
def square(i):
    time.sleep(0.01)
    return i * i

def drained(peer, sentinel):
    '''Read replies until the one naming `sentinel`: everything sent before it was handled.'''
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not peer.poll(200):
            continue
        try:
            reply, _ = protocol.decode(peer.recv_multipart())
        except protocol.ProtocolError:
            continue
        if isinstance(reply, protocol.Values) and sentinel in reply.missing:
            return True
    return False

def fuzz(backend, seed):
    generator = random.Random(seed)
    keys = backend.gatekeeper.keys if backend.gatekeeper else None
    server = keys.server_public if keys else None
    member = (keys.member_public, keys.member_secret) if keys else None
    hostile.wait_for(lambda: all(link.data_address for link in backend.links.values()), 60)
    hostile.declare_spare(backend)
    targets = hostile.ports(backend)
    context = zmq.Context()
    joined = hostile.connect(context, targets["master"], server, member)
    joined.send_multipart(protocol.encode(protocol.Hello(
        backend.run_key, hostile.SPARE_WORKER, "spare", 0, "tcp://127.0.0.1:9", os.getpid())))
    report = {{"member_joined": hostile.wait_for(lambda: hostile.spare_joined(backend)),
              "sent": 0, "workers_answered_after": []}}
    for name, address in targets.items():
        peers = [hostile.connect(context, address, server, member)]
        if name == "master":
            peers.append(joined)
        for peer in peers:
            for parts in hostile.malformed_messages(generator, backend.run_key, {count}):
                peer.send_multipart(parts)
                report["sent"] += 1
        if name != "master":                   # more than a data request may be: cut off
            oversized = hostile.connect(context, address, server, member)
            oversized.send_multipart([os.urandom(17 * 1024 * 1024)])
            report["sent"] += 1
            sentinel = "d999999999v1"
            peers[0].send_multipart(protocol.encode(protocol.Fetch(backend.run_key, [sentinel])))
            if drained(peers[0], sentinel):
                report["workers_answered_after"].append(name)
        hostile.send_raw_garbage(address, generator)
    report["master_alive"] = backend.call(lambda: True)
    report["workers_alive"] = [link.process.poll() is None for link in backend.links.values()
                               if link.process is not None]
    context.destroy(linger=0)
    return report

if __name__ == "__main__":
    value = 0
    for i in range(40):                         # alternating workers: 40 transfers
        value = (step_here if i % 2 else step_there)(value)
    squares = [square(i) for i in range(40)]
    report = fuzz(current_session().backend, {seed})   # while those tasks run
    print("RESULT", json.dumps([compss_wait_on(value), compss_wait_on(squares)]))
    print("REPORT", json.dumps(report))
"""


@pytest.mark.slow
@pytest.mark.parametrize("secured, seed", [(False, 1), (True, 2)], ids=["plain", "secured"])
def test_malformed_frames_to_every_socket_crash_nothing(program, secured, seed):
    import json
    path = program(PROGRAM.format(tests=str(TESTS), count=MESSAGES_PER_PEER, seed=seed))
    run = run_program(path, resources=PINNED_NODES, extra=["--secure"] if secured else [],
                      timeout=110)
    assert run.returncode == 0, run.stderr
    assert run.result == [40, [i * i for i in range(40)]]
    report = json.loads(next(line for line in run.stdout.splitlines()
                             if line.startswith("REPORT "))[len("REPORT "):])
    assert report["member_joined"] is True
    assert report["sent"] == 4 * MESSAGES_PER_PEER + 2
    assert report["master_alive"] is True and report["workers_alive"] == [True, True]
    assert report["workers_answered_after"] == ["w0", "w1"], report
    # Dropped and logged, never fatal.
    assert "I/O thread failed" not in run.stderr
    for logged in ("master dropped a malformed message", "master refused a ",
                   "master dropped a message it could not handle"):
        assert logged in run.stderr, logged
    workers = "".join(p.read_text() for p in sorted((Path(run.log_dir) / "workers").glob("*.log")))
    for worker_id in ("w0", "w1"):
        assert f"worker {worker_id} dropped a malformed message" in workers, workers
        assert f"worker {worker_id} refused a data request without the run key" in workers
