"""Hostile peers for the security and fuzz tests: ZeroMQ clients that do not belong to a run,
members that send garbage, and raw TCP junk. Imported by test programs (inside the master's
process, which knows the run's ports and, for positive controls, its keys) and by an intruder
process in another network namespace; it uses only public pieces of the runtime."""
from __future__ import annotations

import os
import random
import socket
import struct
import time
from urllib.parse import urlsplit

import msgpack
import zmq

from runtime.transport import protocol

SPARE_WORKER = "spare"         # a worker id the master expects: a Hello for it would be accepted


def connect(context: zmq.Context, address: str, server_public: bytes | None = None,
            client_keys: tuple | None = None) -> zmq.Socket:
    """A DEALER to `address`: plain, or a CURVE client (a fresh keypair unless given one)."""
    peer = context.socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    if server_public is not None:
        public, secret = client_keys or zmq.curve_keypair()
        peer.curve_serverkey = server_public
        peer.curve_publickey = public
        peer.curve_secretkey = secret
    peer.connect(address)
    return peer


def answered(peer: zmq.Socket, timeout_ms: int = 500) -> bool:
    return bool(peer.poll(timeout_ms))


def intrusions(run_key: str, key: str, marker_path: str) -> list:
    """Register as a worker, read a datum, get a task run: all with the real run key, so only
    the transport's authentication stands in the way."""
    def leave_a_mark():
        with open(marker_path, "w") as handle:
            handle.write("an intruder's task ran")
    import cloudpickle
    function = cloudpickle.dumps(leave_a_mark)
    entry = {"id": 10**6, "name": "intruder", "fn": 10**6, "fn_frames": [0, 1],
             "frames": [1, 0], "sources": [], "reads": [], "units": 1}
    return [
        protocol.encode(protocol.Hello(run_key, SPARE_WORKER, "intruder", 1,
                                       "tcp://127.0.0.1:9", os.getpid())),
        protocol.encode(protocol.Fetch(run_key, [key])),
        protocol.encode(protocol.RunTasks([entry]), [function]),
        protocol.encode(protocol.Exec(dict(entry, fn_frames=[0, 1], frames=[1, 0]), {}),
                        [function]),
    ]


def send_raw_garbage(address: str, generator: random.Random, connections: int = 5) -> None:
    """Bytes that are not ZMTP at all, then a hang-up (some mid-greeting)."""
    parts = urlsplit(address)
    for _ in range(connections):
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw:
            greeting = b"\xff" + bytes(8) + b"\x7f\x03\x00NULL" if generator.random() < 0.5 else b""
            raw.sendall(greeting + generator.randbytes(generator.randint(0, 300)))


# ---- malformed messages ---------------------------------------------------------------------

def _junk_value(generator: random.Random, depth: int = 0):
    choices = [None, True, -1, 2**64 - 1, -2**63, 0.5, "", "x" * generator.randint(0, 300),
               b"\x00\xff", [], {}, {"a": 1}, [[1, 2], "x"]]
    if depth < 2:
        choices.append([_junk_value(generator, depth + 1) for _ in range(generator.randint(1, 4))])
        choices.append({str(i): _junk_value(generator, depth + 1) for i in range(2)})
    return generator.choice(choices)


def _valid_messages(run_key: str) -> list:
    return [protocol.Hello(run_key, "w0", "node", 1, "tcp://127.0.0.1:1", 1),
            protocol.TasksDone([[1, [["d1v1", 8]], 0.1]]),
            protocol.TaskFailed(1, "E: x", "tb", False, 0),
            protocol.Values([["d1v1", 0, 1, "obj"]], ["d2v1"]),
            protocol.Fetch(run_key, ["d1v1", "d2v1"]), protocol.Heartbeat("w0"),
            protocol.RunTasks([{"id": 1}]), protocol.Stop("x")]


def _random_frames(generator, run_key):
    return [generator.randbytes(generator.randint(0, 200)) for _ in range(generator.randint(1, 4))]


def _truncated(generator, run_key):
    header = protocol.encode(generator.choice(_valid_messages(run_key)))[0]
    return [header[:generator.randint(0, len(header) - 1)]]


def _wrong_version(generator, run_key):
    version = generator.choice([0, 2, -1, 255, 2**40, "1", None, 1.0, [1]])
    return [msgpack.packb([version, protocol.Fetch.TYPE, run_key, ["d1v1"]])]


def _unknown_type(generator, run_key):
    return [msgpack.packb([protocol.PROTOCOL_VERSION, generator.choice([0, 99, -5, 2**63, "1",
                                                                        [20], {"t": 20}])])]


def _wrong_field_types(generator, run_key):
    cls = generator.choice(list(protocol._BY_TYPE.values()))
    fields = [_junk_value(generator) for _ in range(cls.FIELD_COUNT)]
    return [msgpack.packb([protocol.PROTOCOL_VERSION, cls.TYPE, *fields], use_bin_type=True)]


def _wrong_field_count(generator, run_key):
    cls = generator.choice(list(protocol._BY_TYPE.values()))
    count = max(0, cls.FIELD_COUNT + generator.choice([-2, -1, 1, 5]))
    return [msgpack.packb([protocol.PROTOCOL_VERSION, cls.TYPE, *[run_key] * count])]


def _huge_declared_length(generator, run_key):
    prefix = generator.choice([b"\xdd", b"\xdf", b"\xdb", b"\xc6", b"\xc9"])
    header = msgpack.packb([protocol.PROTOCOL_VERSION, protocol.Fetch.TYPE, run_key])
    claim = prefix + struct.pack(">I", generator.choice([2**32 - 1, 2**31, 10**9]))
    return [generator.choice([claim, header[:3] + claim]) + generator.randbytes(8)]


def _well_typed_bad_shapes(generator, run_key):
    """Valid headers whose lists and dicts hold the wrong things, and frame ranges that point
    nowhere: what only a member could send, reached by the fuzz run's authenticated peer."""
    junk = _junk_value
    message = generator.choice([
        protocol.TasksDone([junk(generator) for _ in range(3)]),
        protocol.TasksDone([[10**9 + generator.randint(0, 99), junk(generator), 0.1]]),
        protocol.TaskFailed(10**9, "E", "tb", generator.random() < 0.5, 2**31),
        protocol.Values([[f"d{10**9}v1", 2**40, 2**40, "obj"]], [f"d{10**9}v2"]),
        protocol.Values([junk(generator)], [junk(generator)]),
        protocol.Values([[f"d{10**9}v3", -5, 3, junk(generator)]], []),
        protocol.Fetch(run_key, [junk(generator) for _ in range(3)]),
        protocol.Fetch(run_key, [f"d{10**9}v{i}" for i in range(50)]),
        protocol.Fetch(run_key, ["../../../etc/passwd", "", "x" * 10_000]),
        protocol.Heartbeat("nobody"),
    ])
    extra = [generator.randbytes(generator.randint(0, 64)) for _ in range(generator.randint(0, 2))]
    return protocol.encode(message, extra)


GENERATORS = (_random_frames, _truncated, _wrong_version, _unknown_type, _wrong_field_types,
              _wrong_field_count, _huge_declared_length, _well_typed_bad_shapes)


def malformed_messages(generator: random.Random, run_key: str, count: int) -> list:
    """`count` messages, every kind represented; bounded in size (a few KiB each)."""
    messages = []
    for index in range(count):
        kind = GENERATORS[index % len(GENERATORS)]
        messages.append([bytes(part) for part in kind(generator, run_key)])
    return messages


# ---- looking at the run from inside the master's process (test programs only) ---------------

def wait_for(condition, seconds: float = 10.0) -> bool:
    """Polls `condition` until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def declare_spare(backend) -> None:
    """Make the master expect one more worker, with no computing units (no task ever fits it):
    a Hello for it is accepted only from a peer that really belongs to the run."""
    from runtime.core.records import WorkerSlots
    node = next(iter(backend.links.values())).node
    backend.call(backend.expect_worker, WorkerSlots(SPARE_WORKER, "spare", 0, 0.0), None, node,
                 os.devnull)


def spare_joined(backend) -> bool:
    return backend.call(lambda: backend.links[SPARE_WORKER].routing_id is not None)


def key_held_by_a_worker(backend) -> tuple[str, str]:
    """(key, worker_id) of a datum a worker holds."""
    held = backend.call(lambda: [(key, version.locations[0])
                                 for key, version in backend.engine.versions.items()
                                 if version.locations and version.locations[0] in backend.links])
    return held[0]


def ports(backend, master_host: str = "127.0.0.1") -> dict:
    """name -> address of every TCP socket of the run that listens."""
    found = {"master": f"tcp://{master_host}:{backend.port}"}
    found.update({worker_id: link.data_address for worker_id, link in backend.links.items()
                  if link.data_address})
    return found
