"""The worker <-> executor channel (runtime/transport/framed.py) against real sockets: every
message arrives whole and in order, whatever its frame sizes, whichever side blocks, however
the kernel splits the bytes; a closed end is reported, never a hang."""
import os
import select
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.transport.framed import LARGE_FRAME, ChannelClosed, FramedChannel, WouldBlock, pair

frame_sizes = st.one_of(st.integers(0, 300), st.integers(LARGE_FRAME - 2, LARGE_FRAME + 2),
                        st.integers(200_000, 3_000_000))
messages = st.lists(st.lists(frame_sizes, min_size=1, max_size=5), min_size=1, max_size=12)


def make_frames(sizes, seed):
    return [bytes((seed + index + offset) % 251 for offset in range(min(size, 64))) * (size // 64)
            + bytes(size % 64) for index, size in enumerate(sizes)]


def receive_all(channel, count, poll=False):
    received = []
    while len(received) < count:
        try:
            received.append([bytes(frame) for frame in channel.recv_multipart()])
        except WouldBlock:
            assert poll
            select.select([channel], [], [], 5)
    return received


@settings(max_examples=25, deadline=None)
@given(messages)
def test_blocking_sender_nonblocking_receiver(sizes_per_message):
    worker_end, executor_end = pair()
    worker, executor = FramedChannel(worker_end, blocking=False), FramedChannel(executor_end)
    sent = [make_frames(sizes, seed) for seed, sizes in enumerate(sizes_per_message)]
    writer = threading.Thread(target=lambda: [executor.send_multipart(m) for m in sent])
    writer.start()
    try:
        assert receive_all(worker, len(sent), poll=True) == sent
    finally:
        writer.join()
        worker.close()
        executor.close()


@settings(max_examples=25, deadline=None)
@given(messages)
def test_nonblocking_sender_never_blocks_and_delivers_everything(sizes_per_message):
    worker_end, executor_end = pair()
    worker, executor = FramedChannel(worker_end, blocking=False), FramedChannel(executor_end)
    sent = [make_frames(sizes, seed) for seed, sizes in enumerate(sizes_per_message)]
    for message in sent:                 # nobody reads yet: must queue, not block
        worker.send_multipart(message)
    received = []
    reader = threading.Thread(target=lambda: received.extend(receive_all(executor, len(sent))))
    reader.start()
    while worker.wants_to_write:
        select.select([], [worker], [], 5)
        worker.flush()
    reader.join(timeout=60)
    assert received == sent
    worker.close()
    executor.close()


def test_closed_end_is_reported_on_both_sides():
    worker_end, executor_end = pair()
    worker, executor = FramedChannel(worker_end, blocking=False), FramedChannel(executor_end)
    executor.send_multipart([b"last words"])
    executor.close()
    assert worker.recv_multipart() == [b"last words"]
    with pytest.raises(ChannelClosed):
        worker.recv_multipart()
    with pytest.raises(ChannelClosed):
        worker.send_multipart([b"x" * 10_000_000])
        while worker.wants_to_write:
            worker.flush()


def test_a_child_process_gets_its_end_by_fork():
    worker_end, executor_end = pair()
    pid = os.fork()
    if pid == 0:
        worker_end.close()
        child = FramedChannel(executor_end)
        try:
            while True:
                frames = child.recv_multipart()
                child.send_multipart([frame[::-1] for frame in frames])
        except ChannelClosed:
            os._exit(0)
        os._exit(1)
    executor_end.close()
    worker = FramedChannel(worker_end, blocking=False)
    big = bytes(range(256)) * 20_000
    worker.send_multipart([b"abc", big])
    while worker.wants_to_write:
        worker.flush()
    assert [bytes(f) for f in receive_all(worker, 1, poll=True)[0]] == [b"cba", big[::-1]]
    worker.close()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_two_nonblocking_ends_exchanging_big_messages_never_deadlock():
    """Master and worker both non-blocking, each in the middle of writing a big message to the
    other: a receive must return WouldBlock instead of waiting for the rest, or each would
    wait forever for bytes the other can only write once it returns to its loop."""
    left_end, right_end = pair()
    left, right = FramedChannel(left_end, blocking=False), FramedChannel(right_end, blocking=False)
    to_right = [b"head", bytes(range(256)) * 40_000, b"tail"]
    to_left = [bytes(range(255, -1, -1)) * 30_000]
    left.send_multipart(to_right)
    right.send_multipart(to_left)
    assert left.wants_to_write and right.wants_to_write       # both too big for the buffers
    got = {}
    for _ in range(10_000):
        for name, channel in (("left", left), ("right", right)):
            if name not in got:
                try:
                    got[name] = [bytes(frame) for frame in channel.recv_multipart()]
                except WouldBlock:
                    pass
            channel.flush()
        if len(got) == 2:
            break
    assert got == {"left": to_left, "right": to_right}
    left.close()
    right.close()
