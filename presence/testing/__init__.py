"""The harness the benchmarks and the tests share, importable from an installed package.

Service fakes (``fakes``), audio files and corpora (``audio``, ``corpus``), running a
presence server and waiting for it (``servers``), the browser harness (``browser``), a
throwaway TLS certificate (``tls``) and the jitter-buffer traces (``jitter/``). ``presence
bench`` suites and ``tests/`` import from here; nothing here imports from ``tests``.
"""
