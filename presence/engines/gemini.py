"""Gemini Live (native audio) as a presence engine, through the official ``google-genai`` SDK.

The model hears the user's 16 kHz audio itself and answers with 24 kHz speech; transcripts of
both sides come from the service. Who decides that the user is done is a choice:

* ``turns="presence"`` (default): the model's automatic activity detection is off. presence
  sends ``activity_start`` at the VAD's speech onset (with a short pre-roll), streams the audio
  as it arrives, and ``activity_end`` the moment its own rule confirms the turn. Every
  presence feature (adaptive endpointing, back-channel filtering, one barge-in rule) applies.
* ``turns="model"``: the model's own activity detection runs on the continuous audio stream.
  When it starts answering, the engine tells the session (``TurnTaken``), which confirms the
  turn then instead of waiting for its own rule.

``docs/engines/gemini.md`` compares the two, measured with ``presence bench cloud-turns``.

Speculation is not used: a finished activity cannot be taken back, so the reply starts at
confirmation. A barge-in reaches the model as a new ``activity_start`` (in model mode its own
detector hears it), which interrupts the generation. The service has no way to be told how
much of its reply was heard, so its context keeps the whole generated reply; the session's
record of what the user heard is still exact. Tool calls are out of scope: each is answered
with an error result so the conversation goes on.

Long conversations: context window compression is on (without it an audio session ends
after about 15 minutes), and the conversation moves across connections (each lasts about 10
minutes) with the latest session resumption handle. A ``goAway`` announces the end of a
connection: the reply in flight finishes on it, and the engine moves as soon as no reply is
pending. The audio of the user's current turn is kept, so a turn under way when a
connection ends is replayed whole on the next one.

The connection is made in the background with capped exponential backoff and remade after a
drop. While there is no connection (and no planned move), a confirmed turn ends at once with
``engine_unavailable``. A refused model, key or setup (close 1007/1008 at setup, HTTP
401/403/404) fails the session with ``engine_misconfigured`` and is not retried; ``check``
asks the models endpoint at start-up. The API key is only ever in the SDK's request header;
every message reported is scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from typing import Any, Final

from presence.config import Settings
from presence.engines.base import Engine, SessionOptions
from presence.engines.cloud import EngineMisconfigured, describe, keep_secret, require_sdk, scrub
from presence.engines.gemini_session import MODEL_RATE, GeminiLiveSession, TurnMode

__all__ = ["DEFAULT_MODEL", "MODEL_RATE", "GeminiLiveEngine", "GeminiLiveSession", "TurnMode", "create_engine"]

log = logging.getLogger(__name__)

DEFAULT_MODEL: Final = "gemini-3.8-live"
#: The oldest SDK with every type and call this engine uses (pyproject.toml pins the same).
SDK_MINIMUM: Final = ("google-genai", (2, 0))
DEFAULT_PERSONA: Final = "You are a friendly concierge. Answer in one or two short spoken sentences."


class GeminiLiveEngine(Engine):
    name = "gemini"
    hears_audio = True
    phoneme_timings = False

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        voice: str = "Puck",
        persona: str | None = None,
        turns: TurnMode = "presence",
        model_silence_ms: int | None = None,
        base_url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError("the Gemini Live engine needs an API key (GEMINI_API_KEY or GOOGLE_API_KEY)")
        self._api_key = api_key
        keep_secret(api_key)
        self.model = model
        self.voice = voice
        self.persona = persona or DEFAULT_PERSONA
        self.turns: TurnMode = turns
        self.model_silence_ms = model_silence_ms
        self.base_url = base_url
        self.ssl_context = ssl_context
        self.connect_timeout_s = connect_timeout_s
        self.sessions: list[GeminiLiveSession] = []

    def client(self) -> Any:
        from google import genai
        from google.genai import types

        options: dict[str, Any] = {"api_version": "v1beta"}
        if self.base_url:
            options["base_url"] = self.base_url
        if self.ssl_context is not None:  # "ssl" for the live socket, "verify" for REST (httpx)
            options["async_client_args"] = {"ssl": self.ssl_context, "verify": self.ssl_context}
        return genai.Client(api_key=self._api_key, http_options=types.HttpOptions(**options))

    def connect_config(self, persona: str, resume_handle: str | None) -> Any:
        from google.genai import types

        detection = types.AutomaticActivityDetection(disabled=self.turns == "presence")
        if self.turns == "model" and self.model_silence_ms is not None:
            detection.silence_duration_ms = self.model_silence_ms
        voice = types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice))
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            speech_config=types.SpeechConfig(voice_config=voice),
            system_instruction=types.Content(parts=[types.Part(text=persona)]),
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=detection),
            session_resumption=types.SessionResumptionConfig(handle=resume_handle),
            # Without it an audio session ends after about 15 minutes.
            context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
        )

    async def check(self) -> None:
        """Ask the models endpoint once whether the configured model exists and is a Live model.

        Raises ``EngineMisconfigured`` when the service says no; a service out of reach is
        only logged (the sessions retry by themselves)."""
        from google.genai import errors

        client = self.client()
        try:
            model = await asyncio.wait_for(client.aio.models.get(model=self.model), self.connect_timeout_s)
        except errors.ClientError as exc:
            if exc.code in (400, 401, 403, 404):
                raise EngineMisconfigured(
                    f"Gemini model {self.model!r}: the service refused it: {scrub(str(exc.message or exc))}"
                ) from None
            log.warning("could not check Gemini model %r: %s", self.model, describe(exc))
            return
        except Exception as exc:
            log.warning("could not check Gemini model %r: %s", self.model, describe(exc))
            return
        finally:
            with contextlib.suppress(Exception):
                await client.aio.aclose()
        actions = model.supported_actions or []
        if actions and "bidiGenerateContent" not in actions:
            raise EngineMisconfigured(
                f"Gemini model {self.model!r} exists but is not a Live API model (it does not support "
                "bidiGenerateContent); choose one from docs/engines/gemini.md"
            )

    async def open_session(self, options: SessionOptions) -> GeminiLiveSession:
        session = GeminiLiveSession(self, options.persona or self.persona)
        session.start()
        return session


def create_engine(settings: Settings) -> GeminiLiveEngine:
    from presence.engines import EngineUnavailable

    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or ""
    if not key:
        raise EngineUnavailable("the gemini engine needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
    require_sdk(*SDK_MINIMUM, "gemini")
    return GeminiLiveEngine(
        key,
        model=settings.gemini_model,
        voice=settings.gemini_voice,
        persona=settings.persona,
        turns=settings.gemini_turns,
        model_silence_ms=settings.gemini_silence_ms,
        base_url=settings.gemini_base_url,
    )
