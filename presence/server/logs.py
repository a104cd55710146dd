"""A budget for tracebacks in the server log: clients must not be able to flood it.

A client that finds a way to make the server fail (a bug, an engine that crashes on some input)
could repeat it in a loop and fill the disk with tracebacks. ``TracebackBudget`` lets through
``per_minute`` records that carry a traceback; past that it drops their traceback (the message
itself still goes through) and says how many it dropped when the next minute begins.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class TracebackBudget(logging.Filter):
    def __init__(self, per_minute: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.clock = clock
        self._window_start = clock()
        self._used = 0
        self._stripped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now - self._window_start >= 60:
            if self._stripped:
                record.msg = f"{record.msg} [{self._stripped} earlier tracebacks were left out of the log]"
            self._window_start, self._used, self._stripped = now, 0, 0
        if record.exc_info is None and record.exc_text is None:
            return True
        self._used += 1
        if self._used > self.per_minute:
            self._stripped += 1
            record.exc_info, record.exc_text = None, None
        return True


class RedactTokens(logging.Filter):
    """Session tokens travel in the WebSocket URL (``?token=``), which uvicorn logs when it
    accepts a connection: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN.sub(r"\1…", message), None
        return True


def guard_server_logs(per_minute: int = 20) -> None:
    """On every handler of the root and uvicorn loggers: no tokens, and a traceback budget."""
    budget, redact = TracebackBudget(per_minute), RedactTokens()
    for name in (None, "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(redact)
            handler.addFilter(budget)
