"""Sans-I/O connection state: who may send what, in which order, and sequence numbering.

``Connection.receive(message)`` takes one transport message and returns the frame (or
``None`` when late or duplicate media was counted and dropped), raising a ``ProtocolError``
for anything illegal. ``Connection.send(frame)`` stamps the per-stream sequence number and
returns bytes. The legal moves are data (``ALLOWED``), so tests can enumerate them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from presence.protocol.errors import UnexpectedFrame, WrongDirection
from presence.protocol.frames import FRAME_TYPE_OF, Frame, FrameType, decode, encode


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class State(Enum):
    AWAIT_HELLO = "await_hello"
    OPEN = "open"


SENT_BY: Final[dict[Role, frozenset[FrameType]]] = {
    Role.CLIENT: frozenset(
        {FrameType.CLIENT_HELLO, FrameType.AUDIO_IN, FrameType.EVENT, FrameType.PING, FrameType.PONG}
    ),
    Role.SERVER: frozenset(
        {
            FrameType.SERVER_HELLO,
            FrameType.AUDIO_OUT,
            FrameType.ANIMATION,
            FrameType.EVENT,
            FrameType.PING,
            FrameType.PONG,
        }
    ),
}

HELLO_OF: Final = {Role.CLIENT: FrameType.CLIENT_HELLO, Role.SERVER: FrameType.SERVER_HELLO}


#: (state, frame type received) → next state; a pair not in the table is an UnexpectedFrame.
#: Built for the receiving side: its peer's hello opens the connection.
def _allowed(peer: Role) -> dict[tuple[State, FrameType], State]:
    hello = HELLO_OF[peer]
    table = {(State.AWAIT_HELLO, hello): State.OPEN}
    for frame_type in SENT_BY[peer] - {hello}:
        table[(State.OPEN, frame_type)] = State.OPEN
    return table


ALLOWED: Final = {role: _allowed(peer) for role, peer in ((Role.SERVER, Role.CLIENT), (Role.CLIENT, Role.SERVER))}
MEDIA: Final = frozenset({FrameType.AUDIO_IN, FrameType.AUDIO_OUT, FrameType.ANIMATION})


@dataclass(slots=True)
class ReceiveStats:
    frames: int = 0
    bytes: int = 0
    late_or_duplicate: int = 0
    gaps: int = 0


class Connection:
    """One end of a presence connection. Not thread-safe; owned by one session."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.peer = Role.SERVER if role is Role.CLIENT else Role.CLIENT
        self.state = State.AWAIT_HELLO
        self.stats = ReceiveStats()
        self._table = ALLOWED[role]
        self._next_send_seq: dict[FrameType, int] = {}
        self._last_recv_seq: dict[FrameType, int] = {}

    def receive(self, message: bytes | bytearray | memoryview) -> Frame | None:
        frame = decode(message)
        frame_type = FRAME_TYPE_OF[type(frame)]
        if frame_type not in SENT_BY[self.peer]:
            raise WrongDirection(f"{frame_type.name} may not be sent by the {self.peer.value}")
        next_state = self._table.get((self.state, frame_type))
        if next_state is None:
            if self.state is State.AWAIT_HELLO:
                raise UnexpectedFrame(f"{frame_type.name} before the hello")
            raise UnexpectedFrame(f"{frame_type.name} after the connection was opened")
        self.state = next_state
        self.stats.frames += 1
        self.stats.bytes += len(message)
        if frame_type in MEDIA and not self._in_order(frame_type, frame.seq):
            self.stats.late_or_duplicate += 1
            return None
        return frame

    def _in_order(self, frame_type: FrameType, seq: int) -> bool:
        last = self._last_recv_seq.get(frame_type)
        if last is not None:
            # Sequence numbers are u32 and wrap; compare by serial-number arithmetic.
            delta = (seq - last) % 2**32
            if delta == 0 or delta >= 2**31:
                return False
            if delta > 1:
                self.stats.gaps += delta - 1
        self._last_recv_seq[frame_type] = seq
        return True

    def send(self, frame: Frame) -> bytes:
        """Stamp the next sequence number of the frame's stream and encode it."""
        frame_type = FRAME_TYPE_OF[type(frame)]
        if frame_type not in SENT_BY[self.role]:
            raise ValueError(f"a {self.role.value} never sends {frame_type.name}")
        seq = self._next_send_seq.get(frame_type, 0)
        self._next_send_seq[frame_type] = (seq + 1) % 2**32
        return encode(replace(frame, seq=seq))
