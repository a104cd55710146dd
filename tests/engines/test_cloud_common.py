"""What the cloud engines share: the pre-roll, purging an interrupted reply, secrets, refusals."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from presence.engines import EngineUnavailable
from presence.engines.base import EngineError, EngineOutput, ReplyEnd
from presence.engines.cloud import (
    PreRoll,
    backoff_s,
    keep_secret,
    purge_turn,
    refused_handshake,
    require_sdk,
    scrub,
    version_tuple,
)
from presence.media import AudioChunk


def test_the_pre_roll_hands_over_at_least_its_length_of_the_latest_audio_in_order() -> None:
    roll = PreRoll(seconds=0.1)  # 1600 samples
    for index in range(20):
        roll.push(np.full(320, index, np.float32))
    held = roll.take()
    assert 1600 <= len(held) < 1600 + 320
    assert held[-1] == 19 and np.all(np.diff(held) >= 0)
    assert len(roll.take()) == 0, "taking empties it"


def test_purging_a_turn_drops_only_its_queued_outputs_and_keeps_the_order() -> None:
    queue: asyncio.Queue[EngineOutput | None] = asyncio.Queue()
    audio = np.zeros(10, np.float32)
    items: list[EngineOutput | None] = [
        AudioChunk(1, audio, 24_000),
        EngineError("x", None),
        AudioChunk(2, audio, 24_000),
        ReplyEnd(1),
        None,
    ]
    for item in items:
        queue.put_nowait(item)
    purge_turn(queue, 1)
    left = [queue.get_nowait() for _ in range(queue.qsize())]
    assert left == [items[1], items[2], None]


def test_backoff_doubles_and_stays_capped() -> None:
    assert [backoff_s(n) for n in range(8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_kept_secret_is_blanked_from_client_library_logs_and_messages(caplog: pytest.LogCaptureFixture) -> None:
    keep_secret("sk-unit-test-secret")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").debug("headers: %s", {"Authorization": "Bearer sk-unit-test-secret"})
    assert "sk-unit-test-secret" not in caplog.text and "Bearer ***" in caplog.text
    assert scrub("key=sk-unit-test-secret;") == "key=***;"


def _refused(status: int, body: bytes) -> InvalidStatus:
    return InvalidStatus(Response(status, "", Headers([("Content-Type", "application/json")]), body))


def test_a_handshake_refused_for_good_is_told_apart_from_one_worth_a_retry() -> None:
    body = b'{"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}'
    assert refused_handshake(_refused(401, body)) == "HTTP 401: Incorrect API key provided."
    assert refused_handshake(_refused(404, b"no such endpoint\n")) == "HTTP 404: no such endpoint"
    assert refused_handshake(_refused(403, b"")) == "HTTP 403"
    assert refused_handshake(_refused(503, b"overloaded")) is None, "overload: back off and retry"
    assert refused_handshake(_refused(429, b"slow down")) is None
    assert refused_handshake(ConnectionRefusedError()) is None


def test_sdk_versions_compare_as_numbers_and_an_old_sdk_is_refused_up_front() -> None:
    assert version_tuple("1.107.2") == (1, 107, 2) and version_tuple("2.0.0rc1") == (2, 0, 0)
    assert version_tuple("1.99.9") < (1, 107) <= version_tuple("1.107.0") < version_tuple("3.57.0")
    require_sdk("openai", (1, 107), "openai")  # the installed one is new enough
    with pytest.raises(EngineUnavailable, match=r"openai>=999\.0 \(installed: "):
        require_sdk("openai", (999, 0), "openai")
    with pytest.raises(EngineUnavailable, match="pip install 'presence\\[gemini\\]'"):
        require_sdk("no-such-sdk-for-presence", (1,), "gemini")
