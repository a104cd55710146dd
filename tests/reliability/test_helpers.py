"""The suite's own instruments, checked against fixed references before they judge the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from presence.audio.wavfile import read_wav16
from presence.testing.corpus import write_wav
from presence.testing.probes import documented_close_codes
from presence.testing.wire import OP_PING, client_frame, upgrade_request
from tests.conftest import REPO

pytestmark = pytest.mark.reliability


def test_client_frames_are_masked_as_rfc_6455_shows() -> None:
    # RFC 6455 §5.7: a masked text frame holding "Hello" with mask 37 fa 21 3d.
    frame = client_frame(0x1, b"Hello", mask=bytes.fromhex("37fa213d"))
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")
    assert client_frame(OP_PING, b"p" * 200, mask=bytes(4))[:4] == bytes([0x89, 0x80 | 126, 0, 200])


def test_the_upgrade_request_is_a_websocket_handshake_for_the_session_path() -> None:
    request = upgrade_request("ws://127.0.0.1:8080/v1/session", {"X-Probe": "1"}).decode()
    assert request.startswith("GET /v1/session HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert "Upgrade: websocket\r\n" in request and "Sec-WebSocket-Version: 13\r\n" in request
    assert request.endswith("X-Probe: 1\r\n\r\n")


def test_documented_close_codes_are_read_from_the_protocol_table() -> None:
    codes = documented_close_codes(REPO / "docs" / "protocol.md")
    assert {1000, 1002, 1007, 1009, 1011, 1013, 4000, 4001, 4002, 4003, 4004, 4005, 4008, 4009} <= codes
    assert all(1000 <= code < 5000 for code in codes)


def test_timit_audio_reads_from_riff_and_from_nist_sphere_alike(tmp_path: Path) -> None:
    samples = np.array([0, 1, -2, 32767, -32768], dtype=np.int16)
    header = b"NIST_1A\n   1024\nsample_rate -i 16000\nsample_byte_format -s2 01\nend_head\n"
    sphere = tmp_path / "a.wav"
    sphere.write_bytes(header.ljust(1024, b" ") + samples.astype("<i2").tobytes())
    assert read_wav16(sphere).tolist() == samples.tolist()
    riff = write_wav(tmp_path / "b.wav", samples)
    assert read_wav16(riff).tolist() == samples.tolist()
