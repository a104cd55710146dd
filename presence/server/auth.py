"""Who may open a session: short-lived signed tokens, the Origin allowlist, loopback rules.

Pure: the current time and the request's headers are arguments. Tokens are JWTs signed with
HMAC-SHA256 (HS256) under a secret shared by presence and the operator's backend, so any JWT
library can mint them; ``presence token`` mints one from the command line. Claims: ``aud``
must be ``"presence"``, ``exp`` must be in the future and at most ``MAX_TTL_S`` after ``iat``;
``sub`` (optional) names the user in logs. docs/security.md has the threat model.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt

AUDIENCE: Final = "presence"
ALGORITHM: Final = "HS256"
MAX_TTL_S: Final = 24 * 3600  # a token that lives longer is refused: leaked tokens must expire
MIN_SECRET_BYTES: Final = 32
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


class AuthError(Exception):
    """The request may not open a session; the message is safe to send to the client."""


def mint_token(secret: bytes, now_s: float, ttl_s: float, subject: str | None = None) -> str:
    """A token valid from ``now_s`` for ``ttl_s`` seconds."""
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"token lifetime must be in (0, {MAX_TTL_S}] seconds")
    claims: dict[str, Any] = {"aud": AUDIENCE, "iat": int(now_s), "exp": int(now_s + ttl_s)}
    if subject:
        claims["sub"] = subject
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: bytes, now_s: float, leeway_s: float = 5.0) -> dict[str, Any]:
    """The token's claims if it is genuine and current; raises ``AuthError`` saying why not."""
    try:
        # Expiry is checked below against ``now_s`` (time is an argument here, not read).
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "aud"]},
        )
    except jwt.InvalidAudienceError:
        raise AuthError("token is not for presence") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise AuthError("token signature is not valid") from None
    except jwt.PyJWTError:
        raise AuthError("token is malformed") from None
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise AuthError("token times must be numbers")
    if exp - iat > MAX_TTL_S:
        raise AuthError("token lives longer than 24 h")
    if now_s > exp + leeway_s:
        raise AuthError("token has expired")
    if now_s < iat - leeway_s:
        raise AuthError("token is not valid yet")
    return claims


def new_secret() -> bytes:
    """A per-process secret for loopback servers started without one."""
    return secrets.token_bytes(MIN_SECRET_BYTES)


def is_loopback_host(host: str) -> bool:
    """Whether a bind address or a Host header's name is this machine only."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header (``[::1]:8080`` → ``::1``)."""
    return urlsplit(f"//{host_header}").hostname or ""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """What the server demands of a session request.

    ``secret`` None means tokens are not required (only with ``--insecure-no-auth``).
    ``loopback_only`` (a loopback server that minted its own secret) also demands a loopback
    Host header, so a DNS-rebinding page that reaches 127.0.0.1 under its own name gets nothing.
    """

    secret: bytes | None
    allowed_origins: frozenset[str] = frozenset()
    loopback_only: bool = False
    token_ttl_s: float = 300.0

    def check_host(self, host_header: str | None) -> None:
        if self.loopback_only and not is_loopback_host(host_name(host_header or "")):
            raise AuthError("this server answers only to loopback names (localhost, 127.0.0.1)")

    def check_origin(self, origin: str | None, host_header: str | None) -> None:
        """Browsers send Origin; a page may open sessions only from an allowed origin.

        Allowed: the server's own origin (same host and port as the Host header) and the
        configured list. No Origin header at all is a non-browser client, which the token
        (not the Origin) has to vouch for.
        """
        if origin is None:
            return
        if origin in self.allowed_origins:
            return
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and host_header and parts.netloc.lower() == host_header.lower():
            return
        raise AuthError(f"origin {origin[:60]!r} is not allowed")

    def check_token(self, token: str | None, now_s: float) -> dict[str, Any]:
        if self.secret is None:
            return {}
        if not token:
            raise AuthError("a session token is required (?token=… or Authorization: Bearer …)")
        return verify_token(token, self.secret, now_s)


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token from ``Authorization: Bearer …`` (non-browser clients) or ``?token=``
    (browsers cannot set headers on a WebSocket)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None
