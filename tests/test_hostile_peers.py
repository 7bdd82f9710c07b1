"""Sockets face peers that have not proven they belong to the run: garbage, truncated frames
and well-formed requests without the run key are dropped, and the run is unaffected."""
from conftest import run_program


def test_garbage_and_keyless_requests_do_not_disturb_the_run(program):
    path = program("""
        import json, os, time
        import msgpack, zmq
        from pycompss.api.task import task
        from pycompss.api.api import compss_wait_on
        from runtime.master.session import current_session
        from runtime.transport import protocol

        @task(returns=1)
        def square(x):
            return x * x

        if __name__ == "__main__":
            first = compss_wait_on(square(3))            # workers are up
            backend = current_session().backend
            targets = [f"tcp://127.0.0.1:{backend.port}"]
            targets += [link.data_address for link in backend.links.values()]
            context = zmq.Context()
            attempts = 0
            for address in targets:
                peer = context.socket(zmq.DEALER)
                peer.setsockopt(zmq.LINGER, 0)
                peer.connect(address)
                bad_messages = [
                    [os.urandom(64)], [b""], [b"\\x93"],                       # junk, truncated
                    [msgpack.packb([protocol.PROTOCOL_VERSION, 999])],         # unknown type
                    [msgpack.packb([protocol.PROTOCOL_VERSION, 2, "not-a-list"])],
                    protocol.encode(protocol.Hello("wrong-key", "w0", "x", 1, "tcp://x:1", 1)),
                    protocol.encode(protocol.Fetch("wrong-key", ["d1v1"])),
                    protocol.encode(protocol.TasksDone([[1, [], 0.0]])),      # not authenticated
                ]
                for parts in bad_messages:
                    peer.send_multipart(parts)
                    attempts += 1
                answered = peer.poll(300)                # nothing must answer a keyless peer
                print("ANSWERED" if answered else "SILENT", address)
                peer.close()
            context.term()
            results = compss_wait_on([square(i) for i in range(20)])
            print("RESULT", json.dumps([first, results, attempts]))
    """)
    run = run_program(path, extra=["--log_level=warning"], timeout=90)
    assert run.returncode == 0, run.stderr
    first, results, attempts = run.result
    assert first == 9 and results == [i * i for i in range(20)] and attempts >= 16
    assert "ANSWERED" not in run.stdout
    assert run.stdout.count("SILENT") >= 2
    assert "refused" in run.stderr or "malformed" in run.stderr   # logged by the master


def test_a_transferred_value_never_lands_outside_the_data_directory(tmp_path):
    """A peer's reply names the key its value is stored under, and a file's key becomes its
    file name: a key like ../x must be refused, not written next to the data directory."""
    import pytest
    from runtime.worker.store import DataStore
    store = DataStore(str(tmp_path / "data"))
    for key in ("../escaped", "/tmp/escaped", "d1v1/../../escaped"):
        with pytest.raises(ValueError, match="malformed key"):
            store.put_transferred(key, "file", [b"payload"])
    assert not (tmp_path / "escaped").exists()
    store.put_transferred("d1v2", "file", [b"payload"])
    assert (tmp_path / "data" / "d1v2").read_bytes() == b"payload"
