"""TLS: presence's own (--tls-cert/--tls-key), and Debian's nginx in front of it with the
repo's deploy/nginx/presence.conf, holding real sessions through the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import websockets

from presence.client.auth import with_token
from presence.client.connection import PresenceClient, client_hello
from presence.protocol.frames import ClientHello, encode
from presence.server.auth import mint_token
from presence.testing.tls import throwaway_certificate
from tests.conftest import REPO, ServerFactory, silence, speech_like

SECRET = "an operator secret that is long enough"
HELLO = encode(ClientHello(client_hello()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one_turn(client: PresenceClient) -> dict[str, object]:
    audio = np.concatenate([speech_like(0.5), silence(0.8)])
    for offset in range(0, len(audio), 320):
        await client.send_audio(audio[offset : offset + 320])
        await asyncio.sleep(0.02)
    return await client.wait_for_event(lambda b: b.get("type") == "metrics", 10)


async def test_presence_serves_wss_with_its_own_certificate(server_factory: ServerFactory) -> None:
    cert, key = throwaway_certificate()
    trust = ssl.create_default_context(cafile=str(cert))
    async with server_factory(tls_cert=str(cert), tls_key=str(key)) as srv:
        client = PresenceClient(f"wss://127.0.0.1:{srv.port}/v1/session", ssl_context=trust)
        await client.connect()
        record = await one_turn(client)
        assert record["first_audio_sent_ms"] is not None
        await client.close()


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.fail("nginx is missing: `make test` installs Debian's nginx as root (apt-get install nginx)")
    return found


@contextlib.contextmanager
def nginx_in_front(upstream_port: int, cert: Path, key: Path) -> Iterator[int]:
    """deploy/nginx/presence.conf with this test's ports and certificate, in a private prefix."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="presence-nginx-"))
    site = (REPO / "deploy" / "nginx" / "presence.conf").read_text()
    site = (
        site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
        .replace("server 127.0.0.1:8080", f"server 127.0.0.1:{upstream_port}")
        .replace("/etc/ssl/presence/fullchain.pem", str(cert))
        .replace("/etc/ssl/presence/privkey.pem", str(key))
    )
    (folder / "presence.conf").write_text(site)
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {folder}/body;\n proxy_temp_path {folder}/proxy;\n"
        f" fastcgi_temp_path {folder}/fcgi;\n uwsgi_temp_path {folder}/uwsgi;\n scgi_temp_path {folder}/scgi;\n"
        f" include {folder}/presence.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"nginx did not start: {output}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


async def test_sessions_through_nginx_with_tls_tokens_and_forwarded_addresses(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESENCE_AUTH_SECRET", SECRET)
    cert, key = throwaway_certificate()
    trust = ssl.create_default_context(cafile=str(cert))
    async with server_factory(trusted_proxies="127.0.0.1", max_sessions_per_client=1) as srv:
        with nginx_in_front(srv.port, cert, key) as port:
            url = f"wss://127.0.0.1:{port}/v1/session"
            token = mint_token(SECRET.encode(), time.time(), 60)
            client = PresenceClient(url, token=token, ssl_context=trust)
            await client.connect()
            # A second session from the same address is over the per-address limit (1 here)...
            with pytest.raises(websockets.ConnectionClosed, match=r"1013"):
                await PresenceClient(url, token=token, ssl_context=trust).connect()
            # ...but one from another address is not, though nginx connects to presence from
            # 127.0.0.1 for both: presence counts the X-Forwarded-For address of its proxy.
            async with websockets.connect(with_token(url, token), ssl=trust, local_addr=("127.0.0.2", 0)) as other:
                await other.send(HELLO)
                assert isinstance(await other.recv(), bytes), "the other address got its session"
            record = await one_turn(client)
            assert record["first_audio_sent_ms"] is not None, "a whole turn through the proxy"
            await client.close()
            unauthorised = PresenceClient(url, token="forged", ssl_context=trust)
            with pytest.raises(websockets.ConnectionClosed, match=r"4401"):
                await unauthorised.connect()
