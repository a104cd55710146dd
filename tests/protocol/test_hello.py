"""Negotiation: the client's preference among what the server supports, or a clear failure."""

from __future__ import annotations

from typing import Any

import pytest

from presence.protocol.errors import InvalidPayload, NegotiationFailed, UnsupportedVersion
from presence.protocol.hello import (
    AudioFormat,
    ServerCapabilities,
    negotiate,
    parse_client_hello,
    parse_server_hello,
)

CAPS = ServerCapabilities(
    audio_in=(AudioFormat("pcm_s16le", 16000), AudioFormat("opus", 48000)),
    audio_out=(AudioFormat("pcm_s16le", 24000),),
    weight_sets=("oculus15", "arkit"),
)


def hello(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol": 1,
        "audio_in": [{"codec": "opus", "sample_rate": 48000}, {"codec": "pcm_s16le", "sample_rate": 16000}],
        "audio_out": [{"codec": "pcm_s16le", "sample_rate": 24000}],
        "weight_sets": ["arkit", "oculus15"],
    }
    body.update(changes)
    return body


def test_the_clients_first_supported_choice_wins_and_round_trips() -> None:
    agreement = negotiate(parse_client_hello(hello()), CAPS, "s1", "scripted")
    assert agreement.audio_in == AudioFormat("opus", 48000)
    assert agreement.weight_set == "arkit"
    assert agreement.animation_fps == 60
    assert parse_server_hello(agreement.to_json()) == agreement


def test_features_are_agreed_only_when_asked_for_and_old_clients_see_no_new_key() -> None:
    old = negotiate(parse_client_hello(hello()), CAPS, "s1", "scripted")
    assert not old.expressions and "features" not in old.to_json()
    asked = negotiate(parse_client_hello(hello(features=["expressions", "telepathy"])), CAPS, "s1", "scripted")
    assert asked.expressions and asked.to_json()["features"] == ["expressions"]  # unknown ones dropped
    assert parse_server_hello(asked.to_json()) == asked
    none = ServerCapabilities(CAPS.audio_in, CAPS.audio_out, features=())
    assert not negotiate(parse_client_hello(hello(features=["expressions"])), none, "s", "e").expressions


def test_no_common_format_fails_negotiation_with_what_the_server_offers() -> None:
    offer = parse_client_hello(hello(audio_out=[{"codec": "opus", "sample_rate": 48000}]))
    with pytest.raises(NegotiationFailed, match="pcm_s16le@24000"):
        negotiate(offer, CAPS, "s", "e")
    with pytest.raises(NegotiationFailed, match="weight set"):
        negotiate(parse_client_hello(hello(weight_sets=["mine"])), CAPS, "s", "e")


@pytest.mark.parametrize(
    "body",
    [
        hello(audio_in=[]),
        hello(audio_in="pcm"),
        hello(audio_in=[{"codec": 5, "sample_rate": 16000}]),
        hello(audio_in=[{"codec": "pcm_s16le", "sample_rate": True}]),
        hello(weight_sets="oculus15"),
        hello(animation_fps=0),
        hello(animation_fps=500),
        hello(features="expressions"),
        hello(features=["x"] * 17),
        hello(features=[3]),
        hello(features=["x" * 65]),
        {"protocol": 1},
    ],
)
def test_malformed_hellos_are_invalid_payloads(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        parse_client_hello(body)


def test_another_protocol_version_is_unsupported() -> None:
    with pytest.raises(UnsupportedVersion):
        parse_client_hello(hello(protocol=2))
