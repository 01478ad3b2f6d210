"""What every figure shares: samples summarised as min/median/max, ratios taken pair by pair, and a table
with its target, printed and kept for the JSON report.

The machine is shared and noisy, so ours and the baseline are measured interleaved in one run (A B A B …)
and compared by the median of the per-pair ratios, never by absolute times from different runs.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Summary:
    min: float
    median: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no samples")
        return cls(min(values), statistics.median(values), max(values), len(values))

    def show(self, unit: str = "", digits: int = 1) -> str:
        return f"{self.min:.{digits}f} / {self.median:.{digits}f} / {self.max:.{digits}f}{unit}"


def pair_ratios(ours: Sequence[float], base: Sequence[float]) -> list[float]:
    """Run i of ours over run i of the baseline: a drifting machine slows both of a pair alike."""
    return [a / b for a, b in zip(ours, base, strict=False) if b]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    """One line of a figure's table."""

    label: str
    ours: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None  # None: informative row, no target
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Figure:
    name: str
    title: str
    columns: tuple[str, str] = ("ours", "baseline")
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def render(self) -> str:
        head = f"| {self.title} | {self.columns[0]} | {self.columns[1]} | ratio | target | met |"
        lines = [f"## {self.name}", "", head, "|---|---|---|---|---|---|"]
        for r in self.rows:
            met = "" if r.met is None else ("yes" if r.met else "NO")
            lines.append(f"| {r.label} | {r.ours} | {r.baseline} | {r.ratio} | {r.target} | {met} |")
        lines += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines)


def write_json(figures: Sequence[Figure], path: Path, meta: dict[str, Any]) -> None:
    payload = {"meta": meta, "figures": [asdict(f) for f in figures]}
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
