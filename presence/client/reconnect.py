"""When and how soon a client opens a new session after one ended: the same table as the web
client's (presence/web/protocol.js ``shouldReconnect``, session.js ``BACKOFF_MS``).

A draining server closes with 1001 and the reconnect hint (docs/protocol.md): another
backend is ready now, so the client comes back at once, spread over a short jitter so a
drained server's clients do not all arrive in the same millisecond. Other reconnectable
closes back off. ``connect_with_retry`` is the loop; the decisions are pure.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Final

import websockets

from presence.client.connection import PresenceClient

log = logging.getLogger(__name__)

#: Closes worth another attempt: drops, shutdowns, overload, timeouts. 4xxx protocol errors,
#: 1002/1007/1009 would repeat and are not.
RECONNECT_CODES: Final = frozenset({1001, 1006, 1011, 1013, 4008, 4009})
BACKOFF_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
HINT_JITTER_S: Final = 0.25
HINT: Final = "reconnect"  # in a 1001's reason: the server asks for an immediate reconnect


def should_reconnect(code: int | None) -> bool:
    return code in RECONNECT_CODES


def is_drain_hint(code: int | None, reason: str) -> bool:
    return code == 1001 and HINT in reason


def reconnect_delay_s(attempt: int, code: int | None, reason: str, unit_random: float) -> float:
    """Seconds to wait before attempt ``attempt`` (0 first) after a close with ``code``/``reason``;
    ``unit_random`` in [0, 1) spreads clients."""
    if attempt == 0 and is_drain_hint(code, reason):
        return HINT_JITTER_S * unit_random
    return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)] * (0.75 + 0.5 * unit_random)


async def connect_with_retry(
    make_client: Callable[[], PresenceClient],
    code: int | None = None,
    reason: str = "",
    attempts: int = 6,
    rng: Callable[[], float] = random.random,
) -> PresenceClient:
    """A connected client, after the close ``code``/``reason`` that ended the previous one (None
    for a first connection: no wait). Failed attempts (refused, 503 from a draining server,
    a reconnectable close at the hello) back off; the last failure is raised."""
    for attempt in range(attempts):
        if code is not None:
            await asyncio.sleep(reconnect_delay_s(attempt, code, reason, rng()))
        client = make_client()
        try:
            await client.connect()
            return client
        except websockets.ConnectionClosed as exc:
            received = exc.rcvd
            code, reason = (received.code, received.reason) if received is not None else (1006, "")
            if not should_reconnect(code) or attempt == attempts - 1:
                raise
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            code, reason = 1006, str(exc)
            if attempt == attempts - 1:
                raise
        log.info("session attempt %d failed (%s %s); retrying", attempt + 1, code, reason)
    raise AssertionError("unreachable: the last attempt returns or raises")
