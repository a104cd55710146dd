"""The page in Chromium, through nginx in front of two real backends: when its backend drains
(SIGTERM), the page reconnects on the reconnect hint and goes on listening on the other
backend, without a reload."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from presence.server.auth import mint_token
from presence.testing.nginx import nginx_in_front
from tests.server.test_load_balancing import SECRET, backends, wait_until
from tests.web.browser import chromium, compose, write_wav
from tests.web.test_browser import open_page
from tests.web.test_browser import wait_for as wait_in_page

pytestmark = pytest.mark.browser


def test_the_page_moves_to_the_other_backend_when_its_backend_drains(tmp_path: Path, timit_dir: Path) -> None:
    audio, _ = compose(timit_dir, [("dr1-fvmh0/sa1", 1.0)])
    wav = write_wav(tmp_path / "q.wav", audio)
    flags = ("--drain-timeout-s", "5")
    with backends(tmp_path, 2, *flags) as (a, b), nginx_in_front([a.port, b.port]) as port, chromium(wav) as context:
        token = mint_token(SECRET.encode(), time.time(), 300)
        page = open_page(context, f"http://127.0.0.1:{port}/", f"&token={token}")
        wait_in_page(page, "() => presence.state.connection === 'open'", 30, "the session to open")
        page.evaluate("() => { window.sameDocument = true; }")
        wait_until(lambda: a.sessions() + b.sessions() == 1, 10, "the session on a backend")
        holder, other = (a, b) if a.sessions() == 1 else (b, a)
        holder.process.send_signal(signal.SIGTERM)
        wait_until(lambda: other.sessions() == 1, 30, "the page's new session on the other backend")
        wait_in_page(page, "() => presence.state.connection === 'open'", 15, "the page to be open again")
        assert page.evaluate("() => window.sameDocument === true"), "no reload"
        assert holder.process.wait(15) in (0, -signal.SIGTERM)
        assert page.errors == []
