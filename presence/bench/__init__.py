"""Benchmarks, run as ``presence bench SUITE [--quick] [--json PATH]``.

Each suite is a module here exposing ``main(argv: list[str]) -> int``. Benchmarks report
numbers (p50/p95/p99, ratios measured in one run); they never pass or fail on speed.
"""

from __future__ import annotations

import importlib
import pkgutil


def suites() -> list[str]:
    import presence.bench as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def run(suite: str, argv: list[str]) -> int:
    if suite not in suites():
        raise SystemExit(f"unknown benchmark suite {suite!r}; choose one of: {', '.join(suites())}")
    module = importlib.import_module(f"presence.bench.{suite}")
    code: int = module.main(argv)
    return code
