"""Connection state: the direction table, hello first, sequence numbers, late media."""

from __future__ import annotations

import itertools

import pytest

from presence.protocol.connection import ALLOWED, SENT_BY, Connection, Role, State
from presence.protocol.errors import UnexpectedFrame, WrongDirection
from presence.protocol.frames import (
    Animation,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    Frame,
    FrameType,
    Ping,
    Pong,
    ServerHello,
    decode,
    encode,
)

EXAMPLES: dict[FrameType, Frame] = {
    FrameType.CLIENT_HELLO: ClientHello({"protocol": 1}),
    FrameType.SERVER_HELLO: ServerHello({"protocol": 1}),
    FrameType.AUDIO_IN: AudioIn(b"\x00\x00"),
    FrameType.AUDIO_OUT: AudioOut(b"\x00\x00"),
    FrameType.ANIMATION: Animation(0, 1, 400, b"\x10"),
    FrameType.EVENT: Event({"type": "x"}),
    FrameType.PING: Ping(),
    FrameType.PONG: Pong(1, 2),
}


@pytest.mark.parametrize(("role", "state", "frame_type"), list(itertools.product(Role, State, FrameType)))
def test_every_state_and_frame_type_pair_follows_the_table(role: Role, state: State, frame_type: FrameType) -> None:
    connection = Connection(role)
    connection.state = state
    peer = Role.SERVER if role is Role.CLIENT else Role.CLIENT
    data = encode(EXAMPLES[frame_type])
    if frame_type not in SENT_BY[peer]:
        with pytest.raises(WrongDirection):
            connection.receive(data)
    elif (state, frame_type) not in ALLOWED[role]:
        with pytest.raises(UnexpectedFrame):
            connection.receive(data)
    else:
        assert connection.receive(data) == EXAMPLES[frame_type]
        assert connection.state is ALLOWED[role][(state, frame_type)]


def test_server_requires_the_hello_first_and_only_once() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(UnexpectedFrame, match="before the hello"):
        server.receive(encode(AudioIn(b"")))
    server = Connection(Role.SERVER)
    server.receive(encode(ClientHello({})))
    with pytest.raises(UnexpectedFrame, match="after"):
        server.receive(encode(ClientHello({})))


def test_send_numbers_each_stream_from_zero() -> None:
    client = Connection(Role.CLIENT)
    sent = [decode(client.send(f)) for f in (ClientHello({}), AudioIn(b""), AudioIn(b""), Ping(), AudioIn(b""))]
    assert [f.seq for f in sent] == [0, 0, 1, 0, 2]


def test_late_and_duplicate_media_is_counted_and_dropped_not_an_error() -> None:
    server = Connection(Role.SERVER)
    server.receive(encode(ClientHello({})))
    got = [server.receive(encode(AudioIn(b"", seq=s))) for s in (0, 1, 1, 0, 4, 2**32 - 1)]
    assert [f.seq if f else None for f in got] == [0, 1, None, None, 4, None]
    assert server.stats.late_or_duplicate == 3
    assert server.stats.gaps == 2


def test_sequence_numbers_wrap_around() -> None:
    server = Connection(Role.SERVER)
    server.receive(encode(ClientHello({})))
    assert server.receive(encode(AudioIn(b"", seq=2**32 - 1))) is not None
    assert server.receive(encode(AudioIn(b"", seq=0))) is not None


def test_a_side_cannot_send_the_other_sides_frames() -> None:
    with pytest.raises(ValueError):
        Connection(Role.CLIENT).send(AudioOut(b""))
