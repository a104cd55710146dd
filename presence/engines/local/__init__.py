"""The embedded local engine (offline, no key): pocketsphinx → SmolLM2 via llama.cpp → eSpeak NG."""

from presence.engines.local.engine import LocalEngine, LocalSession, create_engine

__all__ = ["LocalEngine", "LocalSession", "create_engine"]
