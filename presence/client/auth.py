"""Getting a session token for a client: given, from ``PRESENCE_TOKEN``, or asked of a
loopback server (which hands its own page tokens at ``/v1/token``, docs/security.md)."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def token_endpoint(ws_url: str) -> str:
    """``ws://host:port/v1/session`` → ``http://host:port/v1/token``."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "/v1/token", "", ""))


def with_token(ws_url: str, token: str) -> str:
    """The session URL carrying ``token`` as its ``?token=`` query parameter."""
    parts = urlsplit(ws_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + [("token", token)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _fetch_token(endpoint: str, ssl_context: ssl.SSLContext | None) -> str | None:
    request = urllib.request.Request(endpoint, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=ssl_context) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # the server hands out no tokens: it needs none, or the operator mints them
            return None
        raise ConnectionError(f"{endpoint} refused a token: HTTP {exc.code}") from None
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


async def authorised_url(ws_url: str, token: str | None = None, ssl_context: ssl.SSLContext | None = None) -> str:
    """The URL to open a session with: the given token, ``$PRESENCE_TOKEN``, or one asked of
    the server; unchanged when the server hands out none."""
    token = token or os.environ.get("PRESENCE_TOKEN")
    if token is None and urlsplit(ws_url).scheme in ("ws", "wss"):
        token = await asyncio.to_thread(_fetch_token, token_endpoint(ws_url), ssl_context)
    return with_token(ws_url, token) if token else ws_url
