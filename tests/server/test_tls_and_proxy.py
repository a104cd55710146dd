"""TLS: presence's own (--tls-cert/--tls-key), and Debian's nginx in front of it with the
repo's deploy/nginx/presence.conf, holding real sessions through the proxy."""

from __future__ import annotations

import asyncio
import ssl
import time

import numpy as np
import pytest
import websockets

from presence.client.auth import with_token
from presence.client.connection import PresenceClient, client_hello
from presence.protocol.frames import ClientHello, encode
from presence.server.auth import mint_token
from presence.testing.nginx import PROXY_CONF, nginx_in_front
from presence.testing.tls import throwaway_certificate
from tests.conftest import ServerFactory, silence, speech_like

SECRET = "an operator secret that is long enough"
HELLO = encode(ClientHello(client_hello()))


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


async def test_sessions_through_nginx_with_tls_tokens_and_forwarded_addresses(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESENCE_AUTH_SECRET", SECRET)
    cert, key = throwaway_certificate()
    trust = ssl.create_default_context(cafile=str(cert))
    async with server_factory(trusted_proxies="127.0.0.1", max_sessions_per_client=1) as srv:
        with nginx_in_front([srv.port], PROXY_CONF, (cert, key)) as port:
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
