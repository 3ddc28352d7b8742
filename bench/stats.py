"""Figures: one value per round, summarised as median [min..max], with a paired ratio to a baseline.

The ratio is computed per round (localbox and its baseline measured back to back) and then summarised, rather
than dividing two medians: on the project machine the same upload can run at 0.4 or 4 GB/s between runs, and
pairing cancels much of that drift.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    name: str
    unit: str
    higher_is_better: bool = True
    values: list[float] = field(default_factory=list)
    baseline: str | None = None
    ratios: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        return {
            "median": _median(self.values),
            "min": min(self.values, default=None),
            "max": max(self.values, default=None),
            "ratio_median": _median(self.ratios),
            "ratio_min": min(self.ratios, default=None),
            "ratio_max": max(self.ratios, default=None),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self.summary()}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    """Three significant figures, without scientific notation for the magnitudes we print."""
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


@dataclass
class Recorder:
    """Collects the figures of one benchmark, in the order they are first recorded."""

    benchmark: str
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, name: str, value: float, unit: str, higher_is_better: bool = True) -> Figure:
        figure = self.figures.get(name)
        if figure is None:
            figure = self.figures[name] = Figure(name, unit, higher_is_better)
        figure.values.append(value)
        return figure

    def ratio(self, name: str, value: float, baseline_value: float, baseline: str) -> None:
        """Records this round's ``value / baseline_value`` on figure ``name`` (already added this round)."""
        figure = self.figures[name]
        figure.baseline = baseline
        if baseline_value > 0:
            figure.ratios.append(value / baseline_value)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "seconds": round(self.seconds, 2),
            "figures": [figure.to_json() for figure in self.figures.values()],
            "notes": self.notes,
            "errors": self.errors,
        }


def _cells(figure: Figure) -> tuple[str, str, str]:
    """(median, "min..max", ratio text) as printed."""
    s = figure.summary()
    ratio = ""
    if figure.baseline is not None and figure.ratios:
        ratio = (
            f"x{fmt(s['ratio_median'])} [{fmt(s['ratio_min'])}..{fmt(s['ratio_max'])}] vs {figure.baseline}"
        )
    return fmt(s["median"]), f"{fmt(s['min'])}..{fmt(s['max'])}", ratio


def figure_line(figure: Figure, width: int = 44) -> str:
    median, spread, ratio = _cells(figure)
    n = f"n={len(figure.values)}"
    return (
        f"{figure.name:<{width}} {median:>8} {figure.unit:<8} [{spread}]".ljust(width + 40)
        + f"{n:<5} {ratio}"
    )


def summary_table(recorders: list[Recorder]) -> str:
    """The final table: one row per figure; the ratio column is the paired median ratio."""
    header = f"{'benchmark':<15} {'figure':<44} {'median':>8} {'unit':<8} {'min..max':<19} ratio (paired)"
    rows = [header, "-" * len(header)]
    for rec in recorders:
        for figure in rec.figures.values():
            median, spread, ratio = _cells(figure)
            rows.append(
                f"{rec.benchmark:<15} {figure.name:<44} {median:>8} {figure.unit:<8} {spread:<19} {ratio}"
            )
        for error in rec.errors:
            rows.append(f"{rec.benchmark:<15} ERROR: {error.splitlines()[0][:200]}")
    return "\n".join(rows)
