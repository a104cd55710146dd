"""Who gets a session slot: counts per client address, hellos still owed, sessions open.

Pure bookkeeping, no I/O. A connection enters as *pending* (it owes its hello); it becomes a
*session* when its hello is accepted, and only sessions count toward ``max_sessions``: so
sockets that never say hello cannot lock real users out (they hold at most
``max_pending`` slots, ``per_client`` of them from one address, for the hello deadline).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_sessions: int = 200
    max_pending: int = 64
    per_client: int = 16  # sessions plus pending hellos from one address


class Admission:
    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.pending = 0
        self.sessions = 0
        self._per_client: Counter[str] = Counter()

    def connect(self, client: str) -> str | None:
        """A new connection: ``None`` if admitted as pending, else the refusal's reason."""
        if self._per_client[client] >= self.limits.per_client:
            return "too many sessions from this address"
        if self.pending >= self.limits.max_pending:
            return "too many connections are still owing their hello"
        self.pending += 1
        self._per_client[client] += 1
        return None

    def hello(self) -> str | None:
        """The pending connection said hello: ``None`` if it may open a session."""
        if self.sessions >= self.limits.max_sessions:
            return "server is at its session limit"
        self.pending -= 1
        self.sessions += 1
        return None

    def disconnect(self, client: str, *, had_session: bool) -> None:
        if had_session:
            self.sessions -= 1
        else:
            self.pending -= 1
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]
