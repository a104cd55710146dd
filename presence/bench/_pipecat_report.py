"""``presence bench pipecat``'s numbers and report: per system percentiles and presence/Pipecat
ratios; the Markdown report (its prose is the template pipecat_report.md) and the plot."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from presence.bench._microphone import TurnResult
from presence.bench._stats import summary, table

SYSTEMS = ("presence", "pipecat")
TEMPLATE = Path(__file__).with_name("pipecat_report.md")  # the report's prose, with $placeholders


@dataclass(frozen=True, slots=True)
class Setup:
    """One comparison: each system's flags, and what to subtract from first audio."""

    name: str
    presence_flags: tuple[str, ...]
    pipecat_flags: tuple[str, ...]
    subtract_ms: float  # endpointing wait + think time, taken off to leave overhead


def summarise(setup: Setup, results: dict[str, list[TurnResult]]) -> dict[str, Any]:
    systems: dict[str, Any] = {}
    for name, turns in results.items():
        first = [t.first_audio_ms for t in turns if t.first_audio_ms is not None]
        systems[name] = {
            "turns": len(turns),
            "answered": sum(t.answered for t in turns),
            "cut_ins": sum(t.cut_in for t in turns),
            "first_audio_ms": summary(first),
            "overhead_ms": summary([f - setup.subtract_ms for f in first]),
            "endpoint_ms": summary([t.endpoint_ms for t in turns if t.endpoint_ms is not None]),
            "decided_to_audio_ms": summary([t.decided_to_audio_ms for t in turns if t.decided_to_audio_ms is not None]),
            "reply_gap_ms": summary([g for t in turns for g in t.gaps_ms]),
            "reply_lateness_ms": summary([t.lateness_ms for t in turns if t.lateness_ms is not None]),
            "reply_chunk_ms": summary([t.chunk_ms for t in turns if t.chunk_ms is not None]),
        }
    measure = "first_audio_ms" if setup.subtract_ms == 0 else "overhead_ms"
    return {
        "setup": setup.name,
        "presence_flags": list(setup.presence_flags),
        "pipecat_flags": list(setup.pipecat_flags),
        "subtracted_ms": setup.subtract_ms,
        "ratio_measure": measure,
        "ratio_presence_over_pipecat": ratios(systems, measure),
        "decided_to_audio_ratio_presence_over_pipecat": ratios(systems, "decided_to_audio_ms"),
        "systems": systems,
    }


def ratios(systems: dict[str, Any], measure: str) -> dict[str, float | None]:
    """presence / Pipecat of ``measure`` at each percentile (None when either is missing or 0)."""
    out: dict[str, float | None] = {}
    for pct in ("p50", "p95", "p99"):
        mine, theirs = systems["presence"][measure][pct], systems["pipecat"][measure][pct]
        out[pct] = round(mine / theirs, 3) if mine is not None and theirs else None
    return out


def render(results: dict[str, Any], command: str) -> str:
    defaults, equalised = results["comparisons"]
    columns = [("system", "system"), ("answered", "answered"), ("cut_ins", "cut-ins"), ("n", "n")]
    columns += [("p50", "p50"), ("p95", "p95"), ("p99", "p99")]

    def rows(comparison: dict[str, Any], measure: str) -> list[dict[str, Any]]:
        out = []
        for name in SYSTEMS:
            system = comparison["systems"][name]
            out.append(
                {"system": name, "answered": f"{system['answered']}/{system['turns']}", **system[measure]}
                | {"cut_ins": system["cut_ins"]}
            )
        return out

    jitter = []
    for comparison in results["comparisons"]:
        for name in SYSTEMS:
            system = comparison["systems"][name]
            jitter.append(
                {
                    "what": f"{name}, {comparison['setup']}",
                    "chunk": system["reply_chunk_ms"]["p50"],
                    "gap50": system["reply_gap_ms"]["p50"],
                    "gap99": system["reply_gap_ms"]["p99"],
                    "late50": system["reply_lateness_ms"]["p50"],
                    "late99": system["reply_lateness_ms"]["p99"],
                }
            )
    a = defaults["ratio_presence_over_pipecat"]
    b = equalised["ratio_presence_over_pipecat"]
    c = equalised["decided_to_audio_ratio_presence_over_pipecat"]

    def lag(system: dict[str, Any]) -> dict[str, float | None]:
        endpoint = system["endpoint_ms"]
        return {
            pct: None if endpoint[pct] is None else round(endpoint[pct] - results["silence_ms"], 1)
            for pct in ("p50", "p95")
        }

    machine = results["machine"]
    split = [
        {
            "system": name,
            **{f"lag{k}": v for k, v in lag(equalised["systems"][name]).items()},
            **{f"dec{k}": v for k, v in equalised["systems"][name]["decided_to_audio_ms"].items()},
        }
        for name in SYSTEMS
    ]
    split_columns = [
        ("system", "system"),
        ("lagp50", "endpoint lag p50"),
        ("lagp95", "lag p95"),
        ("decn", "n"),
        ("decp50", "decision → audio p50"),
        ("decp95", "p95"),
        ("decp99", "p99"),
    ]
    jitter_columns = [
        ("what", "system, setup"),
        ("chunk", "chunk"),
        ("gap50", "gap p50"),
        ("gap99", "gap p99"),
        ("late50", "late p50"),
        ("late99", "late p99"),
    ]
    values = {
        **{f"a_{pct}": a[pct] for pct in ("p50", "p95")},
        **{f"b_{pct}": b[pct] for pct in ("p50", "p95")},
        **{f"c_{pct}": c[pct] for pct in ("p50", "p95")},
        **{key: machine[key] for key in ("cpu", "cores", "python")},
        **{key: results[key] for key in ("pipecat_version", "revision", "presence_lipsync", "reply_ms", "think_ms")},
        "silence_ms": results["silence_ms"],
        "command": command,
        "table_defaults": table(rows(defaults, "first_audio_ms"), columns),
        "table_equalised": table(rows(equalised, "overhead_ms"), columns),
        "table_split": table(split, split_columns),
        "table_jitter": table(jitter, jitter_columns),
    }
    return string.Template(TEMPLATE.read_text()).substitute(values).rstrip("\n")


def plot(results: dict[str, Any], samples: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4), dpi=120)
    titles = {"defaults": "(a) first audio, defaults", "equalised": "(b) overhead, equalised"}
    for ax, comparison in zip(axes, results["comparisons"], strict=True):
        name = comparison["setup"]
        data = [samples[name][system] for system in SYSTEMS]
        ax.boxplot(data, whis=(1, 99))
        ax.set_xticks([1, 2], list(SYSTEMS))
        for x, values in enumerate(data, start=1):
            ax.plot(np.full(len(values), x) + np.linspace(-0.08, 0.08, len(values)), values, ".", alpha=0.5)
        ax.set_title(titles[name])
        ax.set_ylabel("ms")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
