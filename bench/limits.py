"""The floor on this machine: what no Python task runtime can beat here.

    python bench/limits.py

Prints (and returns as a dict) the ZeroMQ round trip between two processes (tcp loopback and
ipc) against a plain socketpair's (the worker <-> executor channel), the cost of pickling and
unpickling a small task call, memory copy bandwidth and the cost of touching fresh pages (what
a new 4 MiB array costs before any work is done on it); and the per-task cost of the master's
pure engine. bench/RESULTS.md compares the runtime against these.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import socket
import sys
import time

import numpy as np
import zmq


def _echo(address: str, count: int) -> None:
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.connect(address)
    for _ in range(count):
        socket.send_multipart(socket.recv_multipart())
    context.destroy(linger=0)


def round_trip_us(address: str, count: int = 20000) -> float:
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.bind(address)
    child = multiprocessing.get_context("fork").Process(target=_echo, args=(address, count + 100))
    child.start()
    for _ in range(100):                          # warm-up
        socket.send_multipart([b"x" * 64])
        socket.recv_multipart()
    start = time.perf_counter()
    for _ in range(count):
        socket.send_multipart([b"x" * 64])
        socket.recv_multipart()
    elapsed = time.perf_counter() - start
    child.join()
    context.destroy(linger=0)
    return elapsed / count * 1e6


def socketpair_round_trip_us(count: int = 20000) -> float:
    """What runtime.transport.framed costs at the bottom: one send and one receive each way."""
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        here.close()
        for _ in range(count + 100):
            there.sendall(there.recv(4096))
        os._exit(0)
    there.close()
    for _ in range(100):
        here.sendall(b"x" * 64)
        here.recv(4096)
    start = time.perf_counter()
    for _ in range(count):
        here.sendall(b"x" * 64)
        here.recv(4096)
    elapsed = time.perf_counter() - start
    os.waitpid(pid, 0)
    here.close()
    return elapsed / count * 1e6


def fresh_pages_gb_s(size: int = 4 * 1024 * 1024, repeat: int = 50) -> float:
    """Writing into newly allocated memory: page faults and zeroing, per byte."""
    start = time.perf_counter()
    for _ in range(repeat):
        np.ones(size // 8)
    return size * repeat / (time.perf_counter() - start) / 1e9


def pickle_call_us(count: int = 100000) -> float:
    call = ("module.function", (1, 2.0, "three"), {"returns": 1})
    start = time.perf_counter()
    for _ in range(count):
        pickle.loads(pickle.dumps(call, protocol=5))
    return (time.perf_counter() - start) / count * 1e6


def memcpy_gb_s(size: int = 64 * 1024 * 1024, repeat: int = 10) -> float:
    source = np.ones(size // 8)
    target = np.empty_like(source)
    start = time.perf_counter()
    for _ in range(repeat):
        np.copyto(target, source)
    return size * repeat / (time.perf_counter() - start) / 1e9


def engine_us_per_task(count: int = 50000) -> float:
    sys.path.insert(0, ".")
    from runtime.core.engine import Engine
    from runtime.core.records import Dispatch, TaskRecord, WorkerSlots
    engine = Engine()
    engine.add_worker(WorkerSlots("w0", "n", 2, 0.0))
    engine.add_worker(WorkerSlots("w1", "n", 2, 0.0))
    running: list = []
    start = time.perf_counter()
    for task_id in range(count):
        record = TaskRecord(task_id, "noop", (), (f"d{task_id}v1",), None)
        running += [i.task.task_id for i in engine.submit(record) if isinstance(i, Dispatch)]
        while len(running) > 4:
            done = running.pop(0)
            running += [i.task.task_id for i in engine.task_done(done, {}, 0.001)
                        if isinstance(i, Dispatch)]
    return (time.perf_counter() - start) / count * 1e6


def main() -> dict:
    figures = {
        "zmq_round_trip_tcp_us": round_trip_us("tcp://127.0.0.1:45871"),
        "zmq_round_trip_ipc_us": round_trip_us("ipc:///tmp/superscalar-limits.sock"),
        "socketpair_round_trip_us": socketpair_round_trip_us(),
        "pickle_small_call_us": pickle_call_us(),
        "memcpy_gb_s": memcpy_gb_s(),
        "fresh_pages_gb_s": fresh_pages_gb_s(),
        "engine_us_per_task": engine_us_per_task(),
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
