"""The traceback budget keeps a client from flooding the log (issue 12)."""

from __future__ import annotations

import logging
import sys

from presence.server.logs import RedactTokens, TracebackBudget


def record_with_traceback() -> logging.LogRecord:
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    return logging.LogRecord("presence", logging.ERROR, __file__, 1, "failed", None, info)


def test_tracebacks_past_the_budget_are_dropped_and_counted_but_messages_go_through() -> None:
    now = [0.0]
    budget = TracebackBudget(per_minute=3, clock=lambda: now[0])
    records = [record_with_traceback() for _ in range(10)]
    assert all(budget.filter(r) for r in records), "every message is still logged"
    assert [r.exc_info is not None for r in records] == [True] * 3 + [False] * 7
    now[0] = 61.0
    plain = logging.LogRecord("presence", logging.INFO, __file__, 1, "next", None, None)
    budget.filter(plain)
    assert "7 earlier tracebacks" in str(plain.msg)
    fresh = record_with_traceback()
    budget.filter(fresh)
    assert fresh.exc_info is not None, "a new minute has a new budget"


def test_session_tokens_never_reach_the_log() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/session?token=eyJhbGciOi.secret.part&x=1"),
        None,
    )
    RedactTokens().filter(record)
    assert "eyJhbGciOi" not in record.getMessage()
    assert "/v1/session?token=…&x=1" in record.getMessage()
