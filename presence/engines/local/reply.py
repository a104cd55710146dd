"""A spoken reply's text: the model's tokens cut into clauses, stopped after a sentence or two.

Spoken answers must be short: after ``max_sentences`` sentences the model is stopped (its
stream closed, so llama.cpp stops at the next token), whatever its token budget says.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Final

from presence.engines.local.clauses import ClauseChunker
from presence.engines.local.llm import LanguageModel, Message

MAX_SENTENCES: Final = 2
_ENDS_SENTENCE: Final = re.compile(r"[.!?][\"')\]]*$")


class ReplyText:
    """Iterate ``clauses()`` once; ``generated`` then holds the model's own text so far."""

    def __init__(
        self, model: LanguageModel, messages: list[Message], cancel: threading.Event, max_sentences: int = MAX_SENTENCES
    ) -> None:
        self.model = model
        self.messages = messages
        self.cancel = cancel
        self.max_sentences = max_sentences
        self.generated = ""
        self.stopped_early = False  # the sentence limit ended it, not the model
        self.first_token_at: float | None = None  # perf_counter() of the model's first piece

    async def clauses(self) -> AsyncIterator[str]:
        chunker = ClauseChunker()
        sentences = 0
        pieces = self.model.stream(self.messages, self.cancel)
        try:
            async for piece in pieces:
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                self.generated += piece
                for clause in chunker.push(piece):
                    yield clause
                    if _ENDS_SENTENCE.search(clause):
                        sentences += 1
                        if sentences >= self.max_sentences:
                            self.stopped_early = True
                            return
        finally:
            # Close the model's stream now (not whenever it is collected): it stops generating.
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
        for clause in chunker.flush():
            yield clause
