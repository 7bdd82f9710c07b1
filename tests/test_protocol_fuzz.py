"""protocol.decode is the only parser of frames: whatever arrives, it returns a message whose
fields have their declared types, or raises ProtocolError; nothing else escapes it."""
import struct

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.transport import protocol

MESSAGE_TYPES = sorted(protocol._BY_TYPE)

wire_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5) | st.integers(-2**63, 2**63 - 1), children,
                      max_size=4),
    max_leaves=12)

# Raw msgpack prefixes that declare far more bytes or items than follow.
HUGE_DECLARATIONS = [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
                     b"\xc6\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01", b"\xdc\xff\xff"]


def check(parts):
    try:
        message, frames = protocol.decode(parts)
    except protocol.ProtocolError:
        return None
    for name, expected in zip(message.FIELD_NAMES, message.FIELD_TYPES):
        assert isinstance(getattr(message, name), expected), (message, name)
    assert frames == parts[1:]
    return message


@settings(database=None, max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_random_frames_are_decoded_or_refused(parts):
    check(parts)


@settings(database=None, max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([protocol.PROTOCOL_VERSION]) | wire_values,
       type_code=st.sampled_from(MESSAGE_TYPES) | wire_values,
       fields=st.lists(wire_values, max_size=8), data=st.lists(st.binary(max_size=8), max_size=3))
def test_headers_with_wrong_versions_types_and_fields(version, type_code, fields, data):
    header = msgpack.packb([version, type_code, *fields], use_bin_type=True)
    message = check([header, *data])
    if message is not None:
        assert type(version) is int and version == protocol.PROTOCOL_VERSION
        assert message.TYPE == type_code and len(fields) == message.FIELD_COUNT


VALID = [protocol.Hello("k", "w0", "node", 2, "tcp://127.0.0.1:1", 7),
         protocol.TasksDone([[1, [["d1v1", 8]], 0.5]]),
         protocol.TaskFailed(3, "ValueError: x", "tb", False, 0),
         protocol.Values([["d1v1", 0, 1, "obj"]], []), protocol.Fetch("k", ["d1v1"]),
         protocol.RunTasks([{"id": 1}]), protocol.Exec({"id": 1}, {}), protocol.Shutdown("x")]


@settings(database=None, max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_truncated_and_corrupted_valid_messages(message, data):
    header = protocol.encode(message)[0]
    assert check([header]) == message
    cut = data.draw(st.integers(min_value=0, max_value=len(header) - 1))
    check([header[:cut]])
    position = data.draw(st.integers(min_value=0, max_value=len(header) - 1))
    flipped = bytes([header[position] ^ data.draw(st.integers(min_value=1, max_value=255))])
    check([header[:position] + flipped + header[position + 1:]])


@given(st.sampled_from(HUGE_DECLARATIONS), st.binary(max_size=16))
@settings(database=None, max_examples=100, deadline=None)
def test_huge_declared_lengths_are_refused_without_allocating(prefix, tail):
    header = msgpack.packb([protocol.PROTOCOL_VERSION, protocol.Fetch.TYPE, "k"])
    assert check([prefix + tail]) is None
    assert check([header[:-1] + prefix + tail]) is None
    assert check([b"\x93\x01\x14" + b"\xdb" + struct.pack(">I", 2**31) + b"abc"]) is None
