"""The cloud engines' defaults are current models the services (as their fakes list them)
accept, and the SDK pins in pyproject.toml are the versions the engines check for."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import pytest

from presence.config import Settings
from presence.engines import create_engine
from presence.engines.cloud import version_tuple
from presence.engines.gemini import SDK_MINIMUM as GEMINI_SDK
from presence.engines.gemini import GeminiLiveEngine
from presence.engines.openai_realtime import SDK_MINIMUM as OPENAI_SDK
from presence.engines.openai_realtime import OpenAIRealtimeEngine
from presence.testing.fakes.gemini_live_server import LIVE_MODELS
from presence.testing.fakes.openai_realtime_server import REALTIME_MODELS, TRANSCRIPTION_MODELS
from tests.conftest import REPO


def test_the_default_models_are_the_current_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-defaults-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-defaults-test")
    gemini = create_engine(Settings(engine="gemini"))
    openai = create_engine(Settings(engine="openai"))
    assert isinstance(gemini, GeminiLiveEngine) and isinstance(openai, OpenAIRealtimeEngine)
    assert gemini.model == "gemini-3.8-live" and gemini.model in LIVE_MODELS
    assert openai.model == "gpt-realtime-2.1" and openai.model in REALTIME_MODELS
    assert openai.transcription_model == "gpt-live-transcribe" and openai.transcription_model in TRANSCRIPTION_MODELS


@pytest.mark.parametrize(("extra", "minimum"), [("gemini", GEMINI_SDK), ("openai", OPENAI_SDK)])
def test_the_sdk_pins_are_the_versions_the_engines_require(extra: str, minimum: tuple[str, tuple[int, ...]]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    package, wanted = minimum
    pins = [d for d in project["optional-dependencies"][extra] if d.startswith(package + ">=")]
    assert len(pins) == 1, f"pyproject.toml pins {package} for [{extra}]"
    pinned = re.sub(r"\s*#.*", "", pins[0]).split(">=")[1]
    assert version_tuple(pinned) == wanted
    assert version_tuple(version(package)) >= wanted, "the installed SDK is new enough"
