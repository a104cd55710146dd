"""Agreement of the scorer with the hand-labelled clause set (``labelled.tsv``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from presence.expression.scorer import EXPRESSIONS, score

LABELLED = Path(__file__).with_name("labelled.tsv")


@dataclass(frozen=True, slots=True)
class Agreement:
    n: int
    accuracy: float  # share of clauses where the scorer picks the labelled expression
    kappa: float  # Cohen's kappa: agreement beyond what the two label distributions give by chance
    misses: tuple[tuple[str, str, str], ...]  # (label, predicted, clause)


def load(path: Path = LABELLED) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, clause = line.split("\t", 1)
            if label not in EXPRESSIONS:
                raise ValueError(f"unknown label {label!r} in {path}")
            rows.append((label, clause))
    return rows


def measure(rows: list[tuple[str, str]]) -> Agreement:
    predicted = [score(clause).name for _, clause in rows]
    labels = [label for label, _ in rows]
    n = len(rows)
    agree = sum(p == t for p, t in zip(predicted, labels, strict=True)) / n
    pl, tl = Counter(predicted), Counter(labels)
    chance = sum(pl[k] * tl[k] for k in EXPRESSIONS) / (n * n)
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    misses = tuple((t, p, c) for (t, c), p in zip(rows, predicted, strict=True) if p != t)
    return Agreement(n, agree, kappa, misses)


def main() -> None:
    result = measure(load())
    print(f"{result.n} labelled clauses: agreement {result.accuracy:.1%}, Cohen's kappa {result.kappa:.2f}")
    for label, predicted, clause in result.misses:
        print(f"  labelled {label:<9} scored {predicted:<9} {clause}")


if __name__ == "__main__":
    main()
