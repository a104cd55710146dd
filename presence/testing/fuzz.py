"""A seeded fuzzer for the frame decoder: random and mutated frames, counted by outcome.

The contract under test (docs/STYLE.md §13): ``decode`` returns a frame or raises a
``ProtocolError``; a CLIENT_HELLO that decodes is also put through ``parse_client_hello``,
which must keep the same contract. Anything else escaping is a bug that would reach the
transport as an unmapped exception (a 1000 or 1011 close and a traceback in the log).
Mutations aim at what parsers get wrong: header fields, lengths, and hostile JSON (integers
past Python's 4300-digit limit, deep nesting, lone surrogates, huge floats).
"""

from __future__ import annotations

import json
import random
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from presence.client.connection import client_hello
from presence.protocol.errors import ProtocolError
from presence.protocol.frames import (
    HEADER,
    HEADER_BYTES,
    Animation,
    AudioIn,
    AudioOut,
    ClientHello,
    Event,
    FrameType,
    Ping,
    Pong,
    ServerHello,
    decode,
    encode,
)
from presence.protocol.hello import parse_client_hello

_TYPE_OFFSET = 3
_LENGTH_OFFSET = 20
# Python refuses to convert integers of more than 4300 digits (a ValueError, not a JSON error).
_DIGITS = {n: ("9876543210" * 600)[:n] for n in (10, 4299, 4301, 5000)}


@dataclass(slots=True)
class FuzzReport:
    """How ``inputs`` fuzzed messages fared; ``escapes`` keeps the first few contract breaches."""

    seed: int
    inputs: int = 0
    frames: int = 0
    protocol_errors: Counter[str] = field(default_factory=Counter)
    escaped: Counter[str] = field(default_factory=Counter)
    escapes: list[tuple[bytes, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.escaped

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "inputs": self.inputs,
            "frames": self.frames,
            "protocol_errors": dict(self.protocol_errors),
            "escaped": dict(self.escaped),
            "examples": [{"input_hex": data[:96].hex(), "error": error} for data, error in self.escapes],
        }


def _hostile_json(rng: random.Random) -> bytes:
    """JSON texts that are valid, or nearly so, and hard on a parser."""
    digits = _DIGITS[rng.choice(tuple(_DIGITS))]
    depth = rng.choice((10, 900, 5000))
    choices: list[Callable[[], str]] = [
        lambda: '{"type":"x","n":' + digits + "}",
        lambda: '{"protocol":1,"audio_in":[{"codec":"pcm_s16le","sample_rate":' + digits + "}]}",
        lambda: '{"type":"x","f":1e' + str(rng.randint(300, 100000)) + "}",
        lambda: '{"type":"x","v":' + "[" * depth + "]" * depth + "}",
        lambda: '{"type":"\\ud800"}',
        lambda: '{"type":"x","type":1}',
        lambda: '{"type":' + rng.choice(("1", "null", "true", "[]", "{}", '"x"')) + "}",
        lambda: rng.choice(("NaN", "Infinity", "-Infinity", '{"type":"x","v":NaN}', "[]", '""', "0")),
        lambda: json.dumps({**client_hello(), "protocol": rng.choice((1, 2, None, "1", 1.0, True))}),
        lambda: json.dumps({**client_hello(), "animation_fps": rng.choice((0, 60, 121, 1e9, -1, "60", None))}),
        lambda: json.dumps({**client_hello(), "audio_in": rng.choice(([], [1], [{}] * 17, None, "x"))}),
        lambda: json.dumps(
            {
                **client_hello(),
                "audio_out": [{"codec": "pcm_s16le", "sample_rate": rng.choice((0, -1, 2**70, 24000.0, "24000"))}],
            }
        ),
    ]
    return rng.choice(choices)().encode("utf-8", errors="surrogatepass")


def _valid_frame(rng: random.Random) -> bytes:
    seq, stamp = rng.getrandbits(32), rng.randint(-(2**63), 2**63 - 1)
    flags = rng.choice((0, 1, 2, 3))
    common = {"seq": seq, "timestamp": stamp, "flags": flags}
    kind = rng.randrange(8)
    if kind == 0:
        return encode(ClientHello(client_hello(), **common))
    if kind == 1:
        return encode(ServerHello({"protocol": 1, "session_id": "x"}, **common))
    if kind == 2:
        return encode(AudioIn(rng.randbytes(2 * rng.randint(0, 400)), **common))
    if kind == 3:
        return encode(AudioOut(rng.randbytes(2 * rng.randint(0, 400)), **common))
    if kind == 4:
        per, count = rng.randint(1, 20), rng.randint(1, 8)
        return encode(Animation(rng.randrange(2), per, rng.randint(0, 800), rng.randbytes(per * count), **common))
    if kind == 5:
        return encode(Event({"type": rng.choice(("turn", "playback", "x")), "n": rng.randint(0, 9)}, **common))
    if kind == 6:
        return encode(Ping(**common))
    return encode(Pong(rng.randint(0, 2**40), rng.randint(0, 2**40), **common))


def _with_payload(rng: random.Random, payload: bytes) -> bytes:
    frame_type = rng.choice((FrameType.CLIENT_HELLO, FrameType.EVENT, FrameType.SERVER_HELLO))
    return HEADER.pack(b"PV", 1, frame_type, 0, 0, 0, 0, len(payload)) + payload


def _mutate(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    how = rng.randrange(7)
    if how == 0 and raw:  # flip a few bytes anywhere
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif how == 1:  # truncate
        del raw[rng.randint(0, len(raw)) :]
    elif how == 2:  # trailing data
        raw += rng.randbytes(rng.randint(1, 64))
    elif how == 3 and len(raw) >= HEADER_BYTES:  # any declared length
        struct.pack_into("<I", raw, _LENGTH_OFFSET, rng.choice((0, 1, len(raw), 2**16, 2**16 + 1, 2**32 - 1)))
    elif how == 4 and len(raw) >= HEADER_BYTES:  # any type byte
        raw[_TYPE_OFFSET] = rng.randrange(256)
    elif how == 5 and len(raw) > HEADER_BYTES:  # the payload of another type under this header
        raw[_TYPE_OFFSET] = rng.choice(list(FrameType))
    else:
        return _with_payload(rng, _hostile_json(rng))
    return bytes(raw)


def fuzz_input(rng: random.Random) -> bytes:
    """One fuzzed message: random bytes, a hostile JSON frame, or a mutated valid frame."""
    pick = rng.random()
    if pick < 0.1:
        return rng.randbytes(rng.randint(0, 64))
    if pick < 0.2:
        return _with_payload(rng, _hostile_json(rng))
    if pick < 0.3:
        return _valid_frame(rng)
    return _mutate(rng, _valid_frame(rng))


def check(data: bytes, report: FuzzReport, keep: int = 5) -> None:
    """Run one input through the decoder (and the hello parser); record the outcome."""
    report.inputs += 1
    try:
        frame = decode(data)
        if isinstance(frame, ClientHello):
            parse_client_hello(frame.body)
        report.frames += 1
    except ProtocolError as exc:
        report.protocol_errors[type(exc).__name__] += 1
    except Exception as exc:  # the contract breach being hunted: record it, go on
        report.escaped[type(exc).__name__] += 1
        if len(report.escapes) < keep:
            report.escapes.append((data, f"{type(exc).__name__}: {exc}"[:200]))


def fuzz_decoder(count: int, seed: int = 0) -> FuzzReport:
    """``count`` fuzzed inputs from ``seed``; the same arguments always give the same inputs."""
    rng = random.Random(seed)
    report = FuzzReport(seed)
    for _ in range(count):
        check(fuzz_input(rng), report)
    return report
