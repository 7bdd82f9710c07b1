"""CURVE on the run's TCP sockets: only peers holding this run's keys complete a handshake.

A worker unpickles and runs what reaches it, so when a run listens beyond loopback (or is
asked to be secure), every TCP connection is authenticated and encrypted:

    master ROUTER (CURVE server) ◄──────── worker control DEALER (CURVE client)
    worker data ROUTER (CURVE server) ◄─── peer workers' Fetch DEALERs (CURVE clients)
    each such context: Gatekeeper ── ZAP (inproc://zeromq.zap.01): accept only the member key
                                  └─ handshake monitor: log refused connections

The master draws two keypairs per run: the servers' (every listening socket of the run uses
it) and the members' (every connecting socket). A worker is both a client and a server, so it
receives all four keys, through the environment (local) or the ssh session's stdin, like the
run key and never on a command line. ZAP is answered from the owner's poll loop (no thread):
a handshake waits at most one loop turn. A peer without the member key is refused before any
frame of it reaches protocol.decode; the run key is still checked after that.
"""
from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass

import zmq
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

CURVE_KEYS_ENV = "SUPERSCALAR_CURVE_KEYS"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"   # fixed by the ZAP specification (RFC 27)
ZAP_DOMAIN = b"superscalar"
_KEY_TEXT_LENGTH = 40                      # a Z85-encoded 32-byte key

# Failures before any key is checked (a peer speaking NULL or garbage to a CURVE socket);
# refusals by the key check are logged by the ZAP answer, which knows the peer's address.
_HANDSHAKE_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


@dataclass(frozen=True, slots=True, repr=False)
class CurveKeys:
    """Z85 keys (bytes). repr hides them: records holding keys may end up in logs."""
    server_public: bytes
    server_secret: bytes
    member_public: bytes
    member_secret: bytes

    def __repr__(self) -> str:
        return "CurveKeys(<hidden>)"

    def to_text(self) -> str:
        """One word (no whitespace): fits one `read -r` on the ssh session's stdin."""
        return ",".join(key.decode("ascii") for key in (
            self.server_public, self.server_secret, self.member_public, self.member_secret))

    @classmethod
    def from_text(cls, text: str) -> "CurveKeys":
        parts = [part.encode("ascii") for part in text.strip().split(",")]
        if len(parts) != 4 or any(len(part) != _KEY_TEXT_LENGTH for part in parts):
            raise ValueError(f"{CURVE_KEYS_ENV} does not hold four Z85 keys")
        keys = cls(*parts)
        if zmq.curve_public(keys.server_secret) != keys.server_public or \
                zmq.curve_public(keys.member_secret) != keys.member_public:
            raise ValueError(f"{CURVE_KEYS_ENV}: a public key does not match its secret key")
        return keys


def new_curve_keys() -> CurveKeys:
    server_public, server_secret = zmq.curve_keypair()
    member_public, member_secret = zmq.curve_keypair()
    return CurveKeys(server_public, server_secret, member_public, member_secret)


def curve_keys_from_environment() -> CurveKeys | None:
    """The run's keys, removed from the environment so tasks and executors never see them."""
    text = os.environ.pop(CURVE_KEYS_ENV, "")
    return CurveKeys.from_text(text) if text else None


def secure_client(socket: zmq.Socket, keys: CurveKeys) -> None:
    """Before connect: the handshake proves the member key and checks the server's."""
    socket.curve_serverkey = keys.server_public
    socket.curve_publickey = keys.member_public
    socket.curve_secretkey = keys.member_secret


class Gatekeeper:
    """The ZAP handler of one ZeroMQ context; create it before any CURVE server socket binds
    (libzmq lets every CURVE client in when no ZAP handler is bound)."""

    def __init__(self, context: zmq.Context, keys: CurveKeys, owner: str,
                 logger: logging.Logger) -> None:
        self.keys = keys
        self._member = z85.decode(keys.member_public)     # ZAP carries the raw 32 bytes
        self._owner = owner
        self._log = logger
        self._zap = context.socket(zmq.ROUTER)
        self._zap.setsockopt(zmq.LINGER, 0)
        self._zap.bind(ZAP_ENDPOINT)
        self._monitors: list[zmq.Socket] = []
        self._refusals: dict[str, int] = {}                 # what was refused -> count

    @property
    def sockets(self) -> list:
        return [self._zap, *self._monitors]

    def secure_server(self, socket: zmq.Socket) -> None:
        """Before bind: CURVE server with the run's server key, every handshake asks ZAP."""
        socket.curve_server = True
        socket.curve_secretkey = self.keys.server_secret
        socket.zap_domain = ZAP_DOMAIN
        self._monitors.append(socket.get_monitor_socket(_HANDSHAKE_FAILURES))

    def register(self, poller: zmq.Poller) -> None:
        for socket in self.sockets:
            poller.register(socket, zmq.POLLIN)

    def serve_ready(self, events: dict) -> dict:
        """Answer what is waiting on the gatekeeper's sockets; return the other events."""
        for socket in self.sockets:
            if events.pop(socket, None):
                self._drain(socket)
        return events

    def _drain(self, socket: zmq.Socket) -> None:
        while True:
            try:
                parts = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if socket is self._zap:
                self._answer(parts)
            else:
                self._on_handshake_failure(parts)

    def _answer(self, parts: list) -> None:
        # [peer, b"", version, request_id, domain, address, identity, mechanism, *credentials]
        if len(parts) < 8 or parts[1] != b"":
            self._log.warning("%s: ignored a malformed ZAP request", self._owner)
            return
        peer, _, version, request_id, domain, address, _, mechanism, *credentials = parts
        accepted = (version == b"1.0" and domain == ZAP_DOMAIN and mechanism == b"CURVE"
                    and len(credentials) == 1
                    and hmac.compare_digest(credentials[0], self._member))
        if not accepted:
            self._refused(f"a connection from {address.decode(errors='replace') or '?'}: "
                          f"the peer does not hold this run's CURVE key")
        status = (b"200", b"OK") if accepted else (b"400", b"not a member of this run")
        self._zap.send_multipart([peer, b"", b"1.0", request_id, *status,
                                  b"member" if accepted else b"", b""])

    def _on_handshake_failure(self, parts: list) -> None:
        try:
            event = parse_monitor_message(parts)
        except Exception:                    # noqa: BLE001 - a monitor message libzmq garbled
            return
        endpoint = event["endpoint"].decode(errors="replace")
        value = event["value"]
        detail = _protocol_error_name(value) if event["event"] == \
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL else os.strerror(value).lower()
        self._refused(f"a connection to {endpoint}: its handshake failed ({detail}); the peer "
                      f"does not speak CURVE with this run's keys")

    def _refused(self, what: str) -> None:
        """Log the 1st, 10th, 100th... refusal of a kind: a retrying peer cannot flood logs."""
        if what not in self._refusals and len(self._refusals) >= 10_000:
            what = "connections from yet more peers"
        count = self._refusals[what] = self._refusals.get(what, 0) + 1
        if str(count).rstrip("0") == "1":
            self._log.warning("%s refused %s (%d so far)", self._owner, what, count)


_PROTOCOL_ERRORS: dict[int, str] = {}


def _protocol_error_name(code: int) -> str:
    if not _PROTOCOL_ERRORS:
        _PROTOCOL_ERRORS.update({getattr(zmq, name): name[len("PROTOCOL_ERROR_"):].lower()
                                 for name in dir(zmq) if name.startswith("PROTOCOL_ERROR_")})
    return _PROTOCOL_ERRORS.get(code, f"code {code}")
