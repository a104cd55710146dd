"""Turn-taking defaults, in one place: ``TurnConfig``, ``FixedSilence`` and the server's
settings (``presence serve``) all read them, so a library user and the server agree.

A leaf module (no imports), so that ``presence.config`` can read it without loading the turn
machine. docs/turn-taking.md explains each trade-off; ``presence bench endpointing`` measures it.
"""

from __future__ import annotations

from typing import Final

MIN_SPEECH_MS: Final = 64  # speech must last this long to start a turn (clicks, coughs)
SPECULATE_MS: Final = 96  # silence after which the reply starts, held back
# Silence that ends a turn with the fixed rule (docs/turn-taking.md, "Defaults and why").
CONFIRM_MS: Final = 800
FINAL_MS: Final = 480  # the adaptive rule's silence after a sentence-final pitch fall
MIN_BARGE_IN_MS: Final = 200  # agent speech is interrupted only by user speech this long
