"""Reasoning engines behind one interface (``base.Engine``), loaded by name on demand.

Each engine module exposes ``create_engine(settings) -> Engine``; heavy imports (models,
cloud SDKs) happen only when that engine is chosen.
"""

from __future__ import annotations

import importlib
from typing import Final

from presence.config import Settings
from presence.engines.base import Engine

ENGINES: Final = {
    "scripted": "presence.engines.scripted",
    "local": "presence.engines.local",
    "gemini": "presence.engines.gemini",
    "openai": "presence.engines.openai_realtime",
}


class UnknownEngine(ValueError):
    """The configured engine name is not one of ``ENGINES``."""


class EngineUnavailable(RuntimeError):
    """The engine exists but something it needs is not installed; the message says what."""


INSTALL_HINTS: Final = {
    "local": "pip install 'presence[local]' (make run does this)",
    "gemini": "pip install 'presence[gemini]'",
    "openai": "pip install 'presence[openai]'",
}


def create_engine(settings: Settings) -> Engine:
    module_name = ENGINES.get(settings.engine)
    if module_name is None:
        raise UnknownEngine(f"unknown engine {settings.engine!r}; choose one of {', '.join(ENGINES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise EngineUnavailable(f"the {settings.engine} engine is not part of this build of presence") from exc
        hint = INSTALL_HINTS.get(settings.engine, "reinstall presence")
        raise EngineUnavailable(f"the {settings.engine} engine needs the {exc.name!r} package: {hint}") from exc
    engine: Engine = module.create_engine(settings)
    return engine
