"""Debian's Chromium with a fake microphone (a WAV from ``corpus.compose``).

Shared by the browser tests and ``presence bench g2g``. Never downloads a browser: it drives
/usr/bin/chromium through Playwright's Python package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


class BrowserMissing(RuntimeError):
    """Chromium is not installed; the message says how to install it."""


def require_chromium() -> None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        raise BrowserMissing(
            "Chromium is missing: install it with `apt-get install chromium chromium-driver` (Makefile: browser-deps)"
        )


@contextlib.contextmanager
def chromium(wav: Path, grant_microphone: bool = True, extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """A fresh headless Chromium whose fake microphone plays `wav` once; yields the context."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="presence-chromium-")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream" if grant_microphone else "--deny-permission-prompts",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        *extra_args,
    ]
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=args,
                ignore_default_args=["--mute-audio"],
                env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
