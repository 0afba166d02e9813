"""The comparison table's content: one row per case, metrics with units, fastest marked, ratios to a baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchharness.plan import AXES, matches
from benchharness.results import CaseResult, RunResults
from benchharness.suite import Selector

ALWAYS_SHOWN = ("model", "backend")


@dataclass
class Column:
    """A column: its key in row values, its header, and the number format."""

    key: str
    header: str
    fmt: str = ""


@dataclass
class Comparison:
    """Rows ready to be formatted; values are raw numbers or strings."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    baseline: str
    notes: list[str] = field(default_factory=list)


def case_axes(result: CaseResult) -> dict[str, Any]:
    """A result's value on each axis, read back from its recorded configuration."""
    cfg = result.config
    return {
        "model": cfg["model"]["label"],
        "variant": cfg["variant"],
        "backend": cfg["backend"]["label"],
        "target": cfg["target"]["label"],
        "scenario": cfg["scenario"],
        "batch": cfg["batch"],
    }


def baseline_selector(results: RunResults) -> Selector:
    """The suite's ``baseline``, else its first backend."""
    data = results.suite.data
    if data.get("baseline"):
        return Selector.model_validate(data["baseline"])
    first = data["backends"][0]
    return Selector(backend=str(first.get("label") or first["name"]))


def _latency(result: CaseResult) -> float | None:
    metric = result.metrics.get("latency")
    return metric.value if result.status == "ok" and metric is not None else None


def build(results: RunResults) -> Comparison:
    """Turn a run's results into the comparison table."""
    cases = results.cases
    axes = [case_axes(c) for c in cases]
    shown_axes = [a for a in AXES if a in ALWAYS_SHOWN or len({ax[a] for ax in axes}) > 1]
    selector = baseline_selector(results)
    set_axes = [a for a in AXES if getattr(selector, a) is not None]
    baseline_text = ", ".join(f"{a}={getattr(selector, a)}" for a in set_axes)

    metric_names: list[str] = []
    for c in cases:
        for name in c.metrics:
            if name not in metric_names:
                metric_names.append(name)

    columns = [Column(a, a) for a in shown_axes] + [Column("status", "status")]
    units = {name: next(c.metrics[name].unit for c in cases if name in c.metrics) for name in metric_names}
    for name in metric_names:
        if name == "latency":
            columns += [
                Column("latency", f"latency median ({units[name]})", ".4g"),
                Column("latency_p95", f"p95 ({units[name]})", ".4g"),
                Column("latency_ci", "CI95 ±%", ".2f"),
            ]
        else:
            columns.append(Column(name, f"{name} ({units[name]})", ".4g"))
    columns += [Column("speedup", f"speedup vs {baseline_text}", ".2f"), Column("note", "note")]

    # Fastest per model, batch and scenario: the axes a user varies to pick a framework, target or variant.
    fastest: dict[tuple[Any, ...], int] = {}
    for i, (c, ax) in enumerate(zip(cases, axes)):
        lat = _latency(c)
        if lat is None:
            continue
        key = (ax["model"], ax["batch"], ax["scenario"])
        if key not in fastest or lat < _latency(cases[fastest[key]]):  # type: ignore[operator]
            fastest[key] = i

    rows = []
    for i, (c, ax) in enumerate(zip(cases, axes)):
        row: dict[str, Any] = {a: ax[a] for a in shown_axes}
        row["status"] = c.status
        notes = []
        for name in metric_names:
            metric = c.metrics.get(name)
            row[name] = metric.value if metric is not None else None
        lat_metric = c.metrics.get("latency")
        if lat_metric is not None and lat_metric.summary:
            row["latency_p95"] = lat_metric.summary["p95"] / 1e6
            ci = lat_metric.details.get("ci_rel_halfwidth")
            row["latency_ci"] = 100 * ci if ci is not None and math.isfinite(ci) else None
            if lat_metric.details.get("noisy"):
                notes.append(f"noisy (IQR {100 * lat_metric.details['rel_iqr']:.0f}% of median)")
        base = _find_baseline(selector, set_axes, ax, cases, axes)
        lat = _latency(c)
        row["speedup"] = _latency(base) / lat if base is not None and lat and _latency(base) else None
        if fastest.get((ax["model"], ax["batch"], ax["scenario"])) == i and len(cases) > 1:
            notes.insert(0, "fastest")
        if c.status != "ok":
            notes.append(_short(c.error or c.status))
        row["note"] = "; ".join(notes)
        rows.append(row)
    return Comparison(columns=columns, rows=rows, baseline=baseline_text)


def _find_baseline(
    selector: Selector, set_axes: list[str], ax: dict[str, Any], cases: list[CaseResult], axes: list[dict[str, Any]]
) -> CaseResult | None:
    for other, other_ax in zip(cases, axes):
        if matches(selector, other_ax) and all(other_ax[a] == ax[a] for a in AXES if a not in set_axes):
            return other
    return None


def _short(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 1] + "…"
