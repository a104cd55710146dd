"""Settings: every knob has a CLI flag and a ``PRESENCE_*`` environment variable.

Engine-specific settings live here too, so ``presence serve --help`` documents everything.
Secrets (API keys) are read from the environment only and never printed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from presence.session import defaults as turn_defaults

EngineName = Literal["local", "scripted", "gemini", "openai"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRESENCE_", extra="ignore")

    # server
    host: str = "127.0.0.1"
    port: int = 8080
    engine: EngineName = "local"
    max_sessions: int = Field(200, description="refuse new sessions past this (close 1013)")
    send_queue_frames: int = Field(512, description="per-session bounded send queue; overflow closes with 4008")
    idle_timeout_s: float = Field(120.0, description="close a session that sends nothing for this long")
    output_sample_rate: int = 24_000
    animation_fps: int = 60
    max_lead_ms: int = Field(1000, description="how far ahead of real time reply audio may be sent")
    webrtc_netem: Literal["", "loopback", "wifi", "4g"] = Field(
        "", description="benchmarks only: WebRTC sessions' UDP through this emulated network (bench g2g)"
    )
    reply_timeout_s: float = Field(30.0, description="a confirmed turn whose reply has not ended by then fails")
    log_level: str = "info"
    workers: int = Field(1, ge=1, le=64, description="worker processes on the one port (deploy/README.md)")
    drain_timeout_s: float = Field(
        10.0, ge=0, description="on SIGTERM, how long turns in flight may finish before sessions close 1001"
    )
    lipsync: Literal["auto", "phonemes", "transcript", "audio", "audio-causal", "audio-mlp", "energy"] = Field(
        "auto",
        description="how lips move: auto = phonemes, transcript or audio-causal by engine (docs/lipsync.md)",
    )
    avatar_glb: str | None = Field(
        None, description="a GLB head with Oculus viseme or ARKit morph targets, shown by the page in 3D"
    )

    # security (docs/security.md)
    auth_secret: SecretStr | None = Field(
        None, description="HS256 secret that signs session tokens; unset on loopback: a per-process one"
    )
    insecure_no_auth: bool = Field(
        False, description="serve a non-loopback host without session tokens (not for production)"
    )
    token_ttl_s: int = Field(300, description="lifetime of tokens minted by `presence token` and the loopback page")
    allowed_origins: str = Field("", description="comma-separated page origins allowed besides the server's own")
    max_sessions_per_client: int = Field(16, description="sessions (and pending hellos) per client address")
    max_pending_hellos: int = Field(64, description="connections still owing their hello, in total")
    max_connections_per_client: int = Field(64, description="open TCP connections per client address")
    max_connections: int = Field(4096, description="open TCP connections in total (kept below the descriptor limit)")
    header_timeout_s: float = Field(10.0, description="a request's headers must arrive within this")
    trusted_proxies: str = Field("", description="comma-separated proxy addresses whose X-Forwarded-For is believed")
    metrics_allow: str = Field(
        "127.0.0.1/32,::1/128", description="comma-separated addresses or networks that may read /metrics"
    )
    tls_cert: str | None = Field(None, description="PEM certificate: serve https/wss directly")
    tls_key: str | None = Field(None, description="PEM private key for --tls-cert")

    # turn-taking
    vad: Literal["silero", "energy"] = Field("silero", description="voice activity detector")
    speculate_ms: int = Field(turn_defaults.SPECULATE_MS, description="silence after which the reply starts, held back")
    confirm_rule: Literal["fixed", "adaptive", "predictor"] = Field(
        "fixed", description="how much silence ends a turn (docs/turn-taking.md)"
    )
    confirm_ms: int = Field(
        turn_defaults.CONFIRM_MS,
        description="silence that ends a turn (fixed rule; mid-sentence wait for adaptive; fallback for predictor)",
    )
    final_ms: int = Field(
        turn_defaults.FINAL_MS, description="adaptive rule: silence after a sentence-final pitch fall"
    )
    predictor_threshold: float | None = Field(
        None, description="predictor rule: end-of-turn probability that releases the reply (default: trained)"
    )
    min_barge_in_ms: int = Field(
        turn_defaults.MIN_BARGE_IN_MS, description="user speech must last this long to interrupt the agent"
    )
    yield_window_ms: int | None = Field(
        None,
        description="speech this soon after a release means it was early: the agent yields, same turn "
        "(unset: 1500 with the predictor rule, else off; 0 = off)",
    )

    # conversation
    persona: str = Field(
        "You are a friendly concierge. Answer in one or two short sentences.",
        description="system prompt for engines that take one",
    )

    # scripted engine
    scripted_think_ms: int = 0
    scripted_reply: str = "Hello! This is a scripted reply."
    scripted_reply_ms: int = 1200
    scripted_chunk_ms: int = 20

    # local engine
    asr: Literal["whisper", "pocketsphinx"] = Field(
        "whisper",
        description="local engine speech recognition: Whisper tiny.en, or pocketsphinx (docs/local-engine.md)",
    )
    asr_threads: int = Field(2, description="CPU threads for Whisper's decoder")
    knowledge: str | None = Field(
        None, description="Markdown or YAML file of facts for the local engine's system prompt (examples/concierge.md)"
    )
    reply_max_sentences: int = Field(2, description="local engine: stop a spoken reply after this many sentences")
    llm_threads: int = Field(1, description="CPU threads for the embedded LLM (more spin and slow down a busy machine)")
    llm_url: str | None = Field(None, description="OpenAI-compatible chat endpoint instead of the embedded LLM")
    llm_model: str = "smollm2"
    llm_api_key: SecretStr | None = None
    tts: Literal["espeak", "piper"] = Field(
        "espeak",
        description="local engine voice: eSpeak NG, or Piper en_US-joe (non-commercial caveat: docs/local-engine.md)",
    )
    voice: str = "en-us"
    tts_rate_wpm: int = 175
    tts_pitch: int = 50

    # cloud engines (keys come from GEMINI_API_KEY / GOOGLE_API_KEY / OPENAI_API_KEY)
    gemini_model: str = Field("gemini-3.8-live", description="a Live API model (docs/engines/gemini.md)")
    gemini_voice: str = "Puck"
    gemini_turns: Literal["presence", "model"] = Field(
        "presence", description="who ends the user's turn: presence's endpointing, or the model's own detection"
    )
    gemini_silence_ms: int | None = Field(None, description="model turns: the model's end-of-speech silence")
    gemini_base_url: str | None = None
    openai_model: str = Field("gpt-realtime-2.1", description="a Realtime model (docs/engines/openai.md)")
    openai_voice: str = "alloy"
    openai_transcription_model: str = Field(
        "gpt-live-transcribe", description="transcribes the user's side of the conversation for the client"
    )
    openai_base_url: str | None = None

    @property
    def effective_yield_window_ms(self) -> int:
        """The yield window in force: only a rule that releases early needs one by default."""
        if self.yield_window_ms is not None:
            return self.yield_window_ms
        return 1500 if self.confirm_rule == "predictor" else 0


def settings_table() -> str:
    """The README's configuration table, generated so that it cannot drift from the code."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        flag = "—" if info.annotation in (SecretStr, SecretStr | None) else f"`--{name.replace('_', '-')}`"
        default = "unset" if info.default is None else f"`{info.default}`"
        rows.append(f"| {flag} | `PRESENCE_{name.upper()}` | {default} | {info.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
