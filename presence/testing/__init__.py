"""The harness the benchmarks and the tests share, importable from an installed package.

- ``fakes``: local fakes of the cloud services (Gemini Live, OpenAI Realtime) and helpers that
  drive an engine session as the presence session would;
- ``corpus``: TIMIT-style folders (utterances, speech bounds, fake-microphone recordings, the
  endpointing corpus); files are read by ``presence.audio.wavfile``;
- ``servers``: start a presence server (or any HTTP server) and wait until it answers;
- ``browser``: Debian's Chromium with a fake microphone;
- ``tls``: a throwaway certificate; ``jitter/``: the jitter-buffer traces and their benchmark.

``presence bench`` suites and ``tests/`` import from here; nothing here imports from ``tests``.
"""
