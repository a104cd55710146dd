"""The decoder under fuzzing: it returns a frame or raises ProtocolError, nothing else (issue #12).

CI runs a few thousand seeded inputs; ``presence bench soak --fuzz 1000000`` runs the full count.
"""

from __future__ import annotations

import json

import pytest

from presence.protocol import errors
from presence.protocol.frames import HEADER, FrameType, decode
from presence.protocol.hello import parse_client_hello
from presence.testing.fuzz import fuzz_decoder

pytestmark = pytest.mark.reliability

CI_INPUTS = 20_000


def test_fuzzed_and_mutated_frames_only_ever_decode_or_raise_protocol_errors() -> None:
    report = fuzz_decoder(CI_INPUTS, seed=12)
    assert report.inputs == CI_INPUTS
    assert report.ok, json.dumps(report.to_json()["examples"], indent=1)


def test_the_fuzzer_reaches_every_outcome_of_the_decoder() -> None:
    report = fuzz_decoder(CI_INPUTS, seed=12)
    assert report.frames > CI_INPUTS // 20
    assert set(report.protocol_errors) >= {
        "BadMagic",
        "ReservedBitsSet",
        "UnsupportedVersion",
        "UnknownFrameType",
        "TruncatedFrame",
        "LengthMismatch",
        "PayloadTooLarge",
        "InvalidPayload",
    }
    assert fuzz_decoder(500, seed=3).to_json() == fuzz_decoder(500, seed=3).to_json(), "seeded: replayable"


@pytest.mark.parametrize(
    ("frame_type", "body"),
    [
        (FrameType.EVENT, '{"type":"x","n":' + "7" * 5000 + "}"),
        (FrameType.CLIENT_HELLO, '{"protocol":1,"audio_in":[{"codec":"pcm_s16le","sample_rate":' + "7" * 5000 + "}]}"),
    ],
    ids=["event", "hello"],
)
def test_an_integer_past_pythons_digit_limit_is_invalid_payload(frame_type: FrameType, body: str) -> None:
    payload = body.encode()
    with pytest.raises(errors.ProtocolError) as caught:
        frame = decode(HEADER.pack(b"PV", 1, frame_type, 0, 0, 0, 0, len(payload)) + payload)
        if frame_type is FrameType.CLIENT_HELLO:
            parse_client_hello(frame.body)  # type: ignore[union-attr]
    assert caught.value.close_code == 1007
