"""Prometheus metrics for one app instance, on its own registry (so tests can run many apps).

With ``--workers N`` each worker writes its series to PROMETHEUS_MULTIPROC_DIR and any
worker's /metrics merges them (app.metrics_registry): counters and histograms summed, the
active-session gauge one series per live worker (a ``pid`` label; sum it for the total).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from presence.protocol.errors import CloseCode
from presence.session.records import TurnRecord
from presence.session.turn_metrics import TurnHistograms

#: Close codes a label may carry: ours and the standard ones a peer may send (RFC 6455 §7.4.1).
_KNOWN_CLOSE_CODES = frozenset({int(c) for c in CloseCode} | {1000, 1001, 1005, 1006, 1012})


def close_code_label(code: int) -> str:
    """The ``code`` label: a client picks any number it likes, which would mint a series each."""
    return str(int(code)) if int(code) in _KNOWN_CLOSE_CODES else "other"


_LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge(
            "presence_sessions_active", "Open sessions", registry=r, multiprocess_mode="liveall"
        )
        self.connections_refused = Counter(
            "presence_connections_refused", "Session requests refused before a session opened", ["reason"], registry=r
        )
        self.sessions_closed = Counter(
            "presence_sessions_closed", "Closed sessions by close code", ["code"], registry=r
        )
        self.frames_in = Counter("presence_frames_in", "Frames received", ["type"], registry=r)
        self.frames_out = Counter("presence_frames_out", "Frames sent", ["type"], registry=r)
        self.bytes_in = Counter("presence_bytes_in", "Bytes received", registry=r)
        self.bytes_out = Counter("presence_bytes_out", "Bytes sent", registry=r)
        self.turns = Counter("presence_turns", "Finished turns by outcome", ["outcome"], registry=r)
        self.abandoned_speculations = Counter(
            "presence_abandoned_speculations", "Speculative replies dropped because the user went on", registry=r
        )
        self.confirm_delay = Histogram(
            "presence_turn_confirm_delay_seconds",
            "Last user speech received → turn confirmed",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.first_audio = Histogram(
            "presence_turn_first_audio_seconds",
            "Last user speech received → first reply audio frame sent",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.endpointing = TurnHistograms(r)
        self.overhead = Histogram(
            "presence_turn_overhead_seconds",
            "Reply releasable (confirmed and engine audio ready) → first audio frame sent",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=r,
        )

    def observe_turn(self, record: TurnRecord) -> None:
        outcome = record.outcome or ("interrupted" if record.interrupted else "error" if record.error else "done")
        self.turns.labels(outcome=outcome).inc()
        self.abandoned_speculations.inc(record.abandoned_speculations)
        origin = record.last_speech_received_s
        if origin is not None and record.turn_confirmed_s is not None:
            self.confirm_delay.observe(max(0.0, record.turn_confirmed_s - origin))
        if origin is not None and record.first_audio_sent_s is not None:
            self.first_audio.observe(max(0.0, record.first_audio_sent_s - origin))
        if record.marks is not None:
            self.endpointing.observe(record.marks)
        release = record.release_s()
        if release is not None and record.first_audio_sent_s is not None:
            self.overhead.observe(max(0.0, record.first_audio_sent_s - release))
