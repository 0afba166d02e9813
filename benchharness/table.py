"""The comparison table's content: one row per case, figures with units, fastest marked, ratios to a baseline."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from benchharness.case import AXES, CaseAxes, Selector, matches, selector_text
from benchharness.results import FAILED_STATUSES, CaseResult, MetricValue, RunResults

ALWAYS_SHOWN = ("model", "backend")


@dataclass
class Column:
    """A column: its key in row values, its header, and the number format."""

    key: str
    header: str
    fmt: str = ""


@dataclass
class Table:
    """Rows ready to be formatted; values are raw numbers or strings."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    baseline: str
    notes: list[str] = field(default_factory=list)


def baseline_selector(results: RunResults) -> tuple[BaseModel, bool]:
    """The suite's ``baseline`` and ``True``, else its first backend and ``False`` (the default).

    ``suite.data`` is the suite as its author wrote it, kept free-form: where an edited file's
    ``baseline`` or ``backends`` cannot be read, the default is the first case's backend.
    """
    selector, explicit, _ = _baseline(results)
    return selector, explicit


def _baseline(results: RunResults) -> tuple[BaseModel, bool, str | None]:
    """:func:`baseline_selector`, plus a note when the file's ``baseline`` was unreadable and ignored."""
    data = results.suite.data
    wanted = data.get("baseline")
    note = None
    if wanted:
        try:
            return Selector.model_validate(wanted), True, None
        except ValidationError:
            note = "the file's baseline is not a valid selector; speedups are against the default"
    backends = data.get("backends")
    first = backends[0] if isinstance(backends, list) and backends else None
    label = (first.get("label") or first.get("name")) if isinstance(first, dict) else first
    if isinstance(label, (str, int, float)) and not isinstance(label, bool) and str(label):
        return Selector(backend=str(label)), False, note
    if results.cases:
        return Selector(backend=results.cases[0].config.backend.label), False, note
    return Selector(), False, note


#: How the latency scenario words its derived throughput (``MetricValue.method``).
SINGLE_STREAM = "batch / median latency"


def _single_stream(result: CaseResult) -> bool:
    """Whether the case's throughput is derived from one stream's latency rather than measured under load."""
    metric = result.metrics.get("throughput")
    return metric is not None and (metric.method or "").startswith(SINGLE_STREAM)


def _single_stream_only(cases: list[CaseResult]) -> bool:
    """Every throughput figure in ``cases`` is single-stream-derived (and there is at least one)."""
    with_figure = [c for c in cases if "throughput" in c.metrics]
    return bool(with_figure) and all(map(_single_stream, with_figure))


def _latency(result: CaseResult) -> float | None:
    metric = result.metrics.get("latency")
    return metric.value if result.status == "ok" and metric is not None and metric.value else None


def build(results: RunResults) -> Table:
    """Turn a run's results into the comparison table."""
    cases = results.cases
    axes = [c.config.axes() for c in cases]
    shown_axes = [a for a in AXES if a in ALWAYS_SHOWN or len({getattr(ax, a) for ax in axes}) > 1]
    selector, explicit, baseline_note = _baseline(results)
    set_axes = [a for a in AXES if getattr(selector, a) is not None]
    baseline_text = selector_text(selector)

    metric_names: list[str] = []
    units: dict[str, str] = {}
    for c in cases:
        for name, metric in c.metrics.items():
            if name not in metric_names:
                metric_names.append(name)
                units[name] = metric.unit
        for name in c.metric_errors:
            if name not in metric_names:
                metric_names.append(name)
                units[name] = "?"
    metric_names = _beside_latency(_suite_order(metric_names, cases))
    estimated = {name: _estimates(cases, name) for name in metric_names}

    columns = [Column(a, a) for a in shown_axes] + [Column("status", "status")]
    ci_header, ci_note = _ci_kind(cases)
    for name in metric_names:
        if name == "latency":
            columns += [
                Column("latency", f"latency median ({units[name]})", ".4g"),
                Column("latency_p95", f"p95 ({units[name]})", ".4g"),
                Column("latency_ci", ci_header, ".2f"),
            ]
        elif name == "throughput" and _single_stream_only(cases):
            columns.append(Column(name, f"throughput, 1 stream ({units[name]})", ".4g"))
        else:
            kind = estimated[name]
            header = (
                f"{name} ({units[name]}, {kind[0]} estimate)"
                if kind and kind[1] == "all"
                else f"{name} ({units[name]})"
            )
            columns.append(Column(name, header, ".4g"))
    columns += [Column("speedup", f"speedup vs {baseline_text}", ".2f"), Column("note", "note")]

    # Fastest per model, batch and scenario: the axes a user varies to pick a framework, target or variant.
    fastest: dict[tuple[Any, ...], int] = {}
    for i, (c, ax) in enumerate(zip(cases, axes)):
        lat = _latency(c)
        if lat is None:
            continue
        key = (ax.model, ax.batch, ax.scenario)
        if key not in fastest or lat < _latency(cases[fastest[key]]):  # type: ignore[operator]
            fastest[key] = i

    rows = []
    for i, (c, ax) in enumerate(zip(cases, axes)):
        row: dict[str, Any] = {a: getattr(ax, a) for a in shown_axes}
        row["status"] = c.status
        notes = []
        for name in metric_names:
            metric = c.metrics.get(name)
            row[name] = metric.value if metric is not None else None
        notes += _latency_cells(c, row, mark_single=ci_header == "CI95 ±%" and ci_note is not None)
        base, base_note = _find_baseline(selector, set_axes, explicit, ax, cases, axes)
        lat = _latency(c)
        base_lat = _latency(base) if base is not None else None
        row["speedup"] = base_lat / lat if base_lat and lat else None
        if base_note and c.status == "ok":
            notes.append(base_note)
        if fastest.get((ax.model, ax.batch, ax.scenario)) == i and len(cases) > 1:
            notes.insert(0, "fastest")
        for name in metric_names:
            kind = estimated[name]
            metric = c.metrics.get(name)
            if kind and kind[1] == "some" and metric is not None and _is_estimate(metric):
                notes.append(f"{name}: {_meter(metric)} estimate")
        for name, error in c.metric_errors.items():
            notes.append(f"{name}: {_short(error, 60)}")
        if c.status != "ok":
            notes.append(_short(c.error or c.status))
        row["note"] = "; ".join(notes)
        rows.append(row)
    table_notes = [baseline_note] if baseline_note else []
    if "latency" in metric_names and ci_note:
        table_notes.append(ci_note)
    if "throughput" in metric_names and not _single_stream_only(cases) and any(map(_single_stream, cases)):
        table_notes.append(
            "throughput: rows of the latency scenario give batch / median latency of one stream; "
            "rows of the throughput scenario give items/s measured with requests in flight"
        )
    for name in metric_names:
        if estimated[name]:
            methods, extent = estimated[name]
            which = "every figure is an estimate" if extent == "all" else "rows noted 'estimate' are estimates"
            table_notes.append(f"{name}: {which} ({methods}), not a measurement; the results give the method")
    skipped = sum(c.status == "skipped" for c in cases)
    if skipped:
        table_notes.append(f"{_plural(skipped, 'case')} skipped: this machine lacks the target (not a failure)")
    return Table(columns=columns, rows=rows, baseline=baseline_text, notes=table_notes)


#: Figures shown right after latency, so speed and what it costs are read together.
NEXT_TO_LATENCY = ("accuracy",)


def _beside_latency(names: list[str]) -> list[str]:
    """``names`` with the accuracy figures moved right after latency (and its single-stream throughput)."""
    moved = [n for n in names if n in NEXT_TO_LATENCY]
    rest = [n for n in names if n not in NEXT_TO_LATENCY]
    anchor = next((i + 1 for i in range(len(rest) - 1, -1, -1) if rest[i] in ("latency", "throughput")), None)
    if anchor is None or not moved:
        return names
    return rest[:anchor] + moved + rest[anchor:]


def _suite_order(names: list[str], cases: list[CaseResult]) -> list[str]:
    """``names`` in the order the suite lists its metrics; a figure it does not list (a scenario's second output,
    such as ``throughput``) stays right after the one it followed."""
    listed = {spec.name: i for i, spec in enumerate(cases[0].config.metrics)} if cases else {}
    keys: dict[str, float] = {}
    last = -1.0
    for name in names:
        last = float(listed[name]) if name in listed else last + 0.001
        keys[name] = last
    return sorted(names, key=keys.__getitem__)


def _is_estimate(metric: MetricValue) -> bool:
    return metric.details.get("estimate") is True


def _meter(metric: MetricValue) -> str:
    """The method's first word (``cpu-time-model``), which names how an estimate was made."""
    return (metric.method or "unknown method").split()[0].rstrip(":,;")


def _estimates(cases: list[CaseResult], name: str) -> tuple[str, str] | None:
    """``(methods, "all" | "some")`` when figure ``name`` is an estimate in all or some of the rows; else ``None``."""
    values = [c.metrics[name] for c in cases if name in c.metrics and c.metrics[name].value is not None]
    marked = [m for m in values if _is_estimate(m)]
    if not marked:
        return None
    methods = ", ".join(dict.fromkeys(_meter(m) for m in marked))
    return methods, "all" if len(marked) == len(values) else "some"


def completeness_note(results: RunResults, path: str | Path) -> str | None:
    """One line for a run that did not finish (``complete`` is false): what ``path`` holds and how to go on.

    ``None`` for a finished run.  How many cases the run planned is not in the file, so the
    line says how many it holds; ``--resume`` runs the rest and retries the failed ones.
    """
    if results.complete:
        return None
    failed = sum(c.status in FAILED_STATUSES for c in results.cases)
    held = _plural(len(results.cases), "case") + " saved" + (f" ({failed} failed)" if failed else "")
    return (
        f"incomplete run: it stopped with {held}; continue with: "
        f"benchharness run {_shell_word(results.suite.path)} --resume {_shell_word(str(path))}"
    )


def _shell_word(text: str) -> str:
    # A newline or control character in a path would break the one line: show it escaped.
    return shlex.quote(text if text.isprintable() else text.encode("unicode_escape").decode("ascii"))


def _ci_kind(cases: list[CaseResult]) -> tuple[str, str | None]:
    """The latency CI column's header, and a table note that says which kind of CI it holds.

    A case run in several processes (``--repeat``) carries a CI from the spread between them; a case run
    in one carries the CI of its median within that process, which says nothing about the larger noise
    between runs.  The header names the kind when every row has the same one.
    """
    timed = [c.metrics["latency"] for c in cases if "latency" in c.metrics and c.metrics["latency"].value is not None]
    between = [m.between.processes for m in timed if m.between is not None and m.between.processes > 1]
    if not timed:
        return "CI95 ±%", None
    within_note = (
        "within one process only: it leaves out the noise between runs, which on a shared machine is "
        "far larger; run with --repeat 3 or more for a CI between processes"
    )
    if not between:
        return "CI95 ±% (1 process)", f"CI95: {within_note}"
    counts = sorted(set(between))
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    if len(between) == len(timed):
        return f"CI95 ±% ({n} processes)", (
            f"CI95: from the spread between {n} worker processes per case (Student t on the log of their "
            "medians); the latency is the median of the processes' medians"
        )
    return "CI95 ±%", (
        f"CI95: rows run in {n} processes give the CI between them; rows noted 'one process' give the CI {within_note}"
    )


def _latency_cells(result: CaseResult, row: dict[str, Any], mark_single: bool = False) -> list[str]:
    """Fill the p95 and CI cells; return the notes latency asks for (few samples, noise, unsettled warm-up)."""
    metric = result.metrics.get("latency")
    if metric is None or metric.summary is None:
        return []
    notes = []
    summary = metric.summary
    row["latency_p95"] = summary.p95 / 1e6
    min_samples = result.config.measure.min_samples
    if metric.between is not None and metric.between.processes > 1:
        spread = metric.between.ci_rel_halfwidth
        row["latency_ci"] = 100 * spread if math.isfinite(spread) else "unknown"
        counts = [r.metrics["latency"].summary.count for r in result.processes
                  if "latency" in r.metrics and r.metrics["latency"].summary is not None]  # fmt: skip
        if counts and min(counts) < min_samples:
            notes.append(f"a process took only {min(counts)} of {min_samples} samples")
    else:
        notes += _within_ci_cell(summary, min_samples, row)
        if mark_single:
            notes.append("one process")
    if metric.details.get("noisy"):
        notes.append(f"noisy (IQR {100 * summary.rel_iqr:.0f}% of median)")
    warmup = metric.details.get("warmup")  # details are free-form: a plugin's, or an edited file's
    if isinstance(warmup, dict) and warmup.get("settled") is False:
        notes.append("warm-up did not settle")
    return notes


def _within_ci_cell(summary: Any, min_samples: int, row: dict[str, Any]) -> list[str]:
    """The CI cell of a case run in one process: its median's CI within that process."""
    notes = []
    ci = summary.ci_rel_halfwidth
    if not summary.ci_known or not math.isfinite(ci):
        row["latency_ci"] = "unknown"
        notes.append(f"{_plural(summary.count, 'sample')}, CI unknown")
    else:
        row["latency_ci"] = 100 * ci
        if summary.count < min_samples:
            notes.append(f"only {summary.count} of {min_samples} samples")
    return notes


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _find_baseline(
    selector: BaseModel,
    set_axes: list[str],
    explicit: bool,
    ax: CaseAxes,
    cases: list[CaseResult],
    axes: list[CaseAxes],
) -> tuple[CaseResult | None, str]:
    """The case a row is compared with, never a failed one; and a note when that needs saying.

    An explicit ``baseline`` whose case failed gives no ratio ("baseline
    failed").  The default baseline, the first backend, falls back to the
    next backend (in suite order) whose case in the same group ran.
    """
    twins = [
        (other, other_ax)
        for other, other_ax in zip(cases, axes)
        if all(getattr(other_ax, a) == getattr(ax, a) for a in AXES if a not in set_axes)
    ]
    chosen = next((other for other, other_ax in twins if matches(selector, other_ax)), None)
    if chosen is None or chosen.status == "ok":
        return chosen, ""
    failed_label = chosen.config.axes().backend if not explicit else selector_text(selector)
    if explicit:
        return None, f"baseline ({failed_label}) {chosen.status}"
    fallback = next((other for other, _ in twins if other.status == "ok"), None)
    if fallback is None:
        return None, f"baseline ({failed_label}) {chosen.status}"
    return fallback, f"speedup vs {fallback.config.axes().backend} ({failed_label} {chosen.status})"


def _short(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 1] + "…"
