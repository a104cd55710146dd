"""The browser modules' own tests (node:test) run under pytest, and the JS codec's golden frames
are checked against the Python reference codec, so the two implementations cannot drift."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from presence.protocol.frames import decode, encode

WEB_TESTS = Path(__file__).resolve().parent
REPO = WEB_TESTS.parents[1]


def test_the_js_golden_frames_are_the_python_codec_s_bytes() -> None:
    source = (WEB_TESTS / "protocol.test.js").read_text()
    goldens = re.findall(r'"([0-9a-f]{48,})"\]', source)
    assert len(goldens) == 7, "one golden frame per frame type"
    for text in goldens:
        data = bytes.fromhex(text)
        assert encode(decode(data)) == data


def test_the_node_test_suite_passes() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install it with `apt-get install nodejs` to test the web client")
    result = subprocess.run([node, "--test", "tests/web/"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
