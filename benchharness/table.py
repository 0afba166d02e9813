"""The comparison table's content: one row per case, figures with units, fastest marked, ratios to a baseline.

A run of several variants (compressions) also gets the variant columns of :func:`variant_view`: each
variant against its uncompressed twin (speed-up, size reduction, accuracy delta), its fidelity, what
its compression did, and the Pareto marks of :func:`pareto_optimal`; its rows are grouped so that a
model's variants sit together.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from benchharness.case import AXES, CaseAxes, Selector, matches, selector_text
from benchharness.machine import Node
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

    variants = variant_view(cases) if len({ax.variant for ax in axes}) > 1 else None
    columns = [Column(a, a) for a in shown_axes] + [Column("status", "status")]
    kinds = {c.node.kind() for c in cases if c.node is not None}
    if len(kinds) > 1:  # the node is shown once cases ran on more than one kind of machine
        columns.append(Column("node", "node"))
    ci_header, ci_note = _ci_kind(cases)
    for name in metric_names:
        if variants is not None and name in VARIANT_FIGURES:
            continue  # shown in the variant columns
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
    if variants is not None:
        columns += variants.columns
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
        if len(kinds) > 1:
            row["node"] = node_text(c.node) if c.node is not None else None
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
        if variants is not None:
            row.update(variants.cells[i])
            notes += variants.row_notes[i]
        row["note"] = "; ".join(notes)
        rows.append(row)
    if variants is not None:
        rows = [rows[i] for i in variants.order]
    table_notes = [baseline_note] if baseline_note else []
    if variants is not None:
        table_notes += variants.notes
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
    blocked = sum(c.status == "skipped" and _variant_skip(c) for c in cases)
    skipped = sum(c.status == "skipped" for c in cases) - blocked
    if len(kinds) > 1:
        table_notes.append(
            f"cases ran on {len(kinds)} kinds of machine (the node column): a ratio between rows of different "
            "nodes compares the hardware too"
        )
    table_notes += differing_models(cases)
    if skipped:
        where = "no node of the cluster has" if kinds else "this machine lacks"
        table_notes.append(f"{_plural(skipped, 'case')} skipped: {where} the target (not a failure)")
    if blocked:
        table_notes.append(
            f"{_plural(blocked, 'case')} skipped: the variant's model cannot run on that backend "
            "(the row's note says why; not a failure)"
        )
    return Table(columns=columns, rows=rows, baseline=baseline_text, notes=table_notes)


def differing_models(cases: list[CaseResult]) -> list[str]:
    """A note for each model whose bytes differ between the cluster nodes that ran it, per variant and backend.

    A model built from code (a zoo model, its weights trained there) is built on each node; two
    machines may round differently, and rows of one model would then compare different weights.
    """
    hashes: dict[tuple[str, str, str, int], set[str]] = {}
    for case in cases:
        if case.node is None or case.status != "ok" or case.runtime.model is None:
            continue
        ax = case.config.axes()
        hashes.setdefault((ax.model, ax.variant, ax.backend, ax.batch), set()).add(case.runtime.model.content_hash)
    return [
        f"model {model} ({variant}, {backend}, batch {batch}) differs between nodes ({len(found)} content hashes): "
        "it was built on each node, so its rows compare different weights"
        for (model, variant, backend, batch), found in hashes.items()
        if len(found) > 1
    ]


def node_text(node: Node) -> str:
    """``gpu-box-1 [hw:h200]``: a node's hostname and its ``hw:`` labels."""
    hardware = [label for label in node.labels if label.startswith("hw:")]
    return f"{node.hostname} [{', '.join(hardware)}]" if hardware else node.hostname


def _variant_skip(case: CaseResult) -> bool:
    """Whether a skipped case was skipped for its variant (``benchharness.models.variant_blocker``'s reasons)."""
    return not is_uncompressed(case) and (case.error or "").startswith(("variant ", "compression "))


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


# ----------------------------------------------------------------------------- variants

#: Figures a run of several variants shows in its variant columns rather than as plain metric columns.
VARIANT_FIGURES = ("fidelity",)
#: Axes that make a variant's group: its uncompressed twin and its Pareto rivals share them.
GROUP_AXES = ("model", "backend", "target", "scenario", "batch")
#: A step's keys in ``info["compressions"]`` that are bookkeeping, not what the compression did.
STEP_BOOKKEEPING = ("name", "compression", "seconds", "cache_hit")


@dataclass
class VariantView:
    """The variant columns of a run of several variants: their cells per case, the row order and the notes."""

    columns: list[Column]
    #: Per case (in ``results.cases`` order): the variant cells, keyed by column key.
    cells: list[dict[str, Any]]
    #: Per case: what its row's note should add (a baseline that failed or is missing).
    row_notes: list[list[str]]
    #: Case indices in display order: by model, then backend, target, scenario and batch, then variant (none first).
    order: list[int]
    notes: list[str]


def pareto_optimal(points: list[tuple[float, float]], x_lower: bool = True, y_higher: bool = True) -> list[bool]:
    """Whether each (x, y) point is Pareto-optimal: no other point is as good on both and better on one.

    By default lower x (latency) and higher y (accuracy) are better.  Ties are not domination: two
    equal points are both optimal.  Quadratic in the number of points, which is a table's rows.
    """
    sx = 1.0 if x_lower else -1.0
    sy = -1.0 if y_higher else 1.0
    keys = [(sx * x, sy * y) for x, y in points]  # now lower is better on both
    return [
        not any(j != i and ox <= x and oy <= y and (ox < x or oy < y) for j, (ox, oy) in enumerate(keys))
        for i, (x, y) in enumerate(keys)
    ]


def is_uncompressed(case: CaseResult) -> bool:
    """Whether the case runs the model as its source gives it (every step of its variant is ``none``)."""
    return all(step.name == "none" for step in case.config.compressions)


def variant_view(cases: list[CaseResult]) -> VariantView:
    """Each variant against its uncompressed twin, its fidelity, what its compression did, and its Pareto mark.

    The twin is the case with the same model, backend, target, scenario and batch whose variant is
    uncompressed (``none``).  Columns, each shown when some case has its figures:

    - speedup: twin's latency / this latency (``1.62x``; ``0.07x (slower)`` below 1);
    - size reduction: twin's ``model_size`` / this one, else ``parameters`` (the header or cell says which);
    - accuracy delta, in points (``-0.4 pt``);
    - fidelity: top-1 agreement with the uncompressed model / the largest absolute output difference;
    - Pareto: ``*`` when no variant of the same group is faster and at least as accurate, or more accurate
      and at least as fast; ``**`` when that also holds against the model's cases on every backend and
      target (same scenario and batch); only where accuracy was measured;

    What each variant did, each step of ``runtime.model.info["compressions"]`` with the facts it
    noted, is a note below the table, once per model and variant (a column would make the table too
    wide to read); a variant whose cases noted different facts gets a note for each.

    A figure that is missing, or whose case or twin did not end ok, leaves its cell empty (``None``).
    """
    axes = [c.config.axes() for c in cases]
    order = _variant_order(cases, axes)
    twins: dict[tuple[Any, ...], CaseResult] = {}
    for c, ax in zip(cases, axes):
        if is_uncompressed(c):
            twins.setdefault(_group(ax), c)
    has_baseline = bool(twins)
    size_basis = [_size_basis(c, twins.get(_group(ax))) for c, ax in zip(cases, axes)]
    bases = {b for b in size_basis if b is not None}
    cells: list[dict[str, Any]] = [{} for _ in cases]
    row_notes: list[list[str]] = [[] for _ in cases]
    for i, (c, ax) in enumerate(zip(cases, axes)):
        cell = cells[i]
        cell["fidelity_text"] = _fidelity_text(c)
        if is_uncompressed(c):
            cell["vs_none"] = "baseline" if c.status == "ok" else None
            continue
        twin = twins.get(_group(ax))
        if c.status != "ok":
            continue  # the row's note says why it has no figures; its baseline is beside the point
        if twin is None:
            if has_baseline:
                row_notes[i].append("no uncompressed (none) twin to compare with")
            continue
        if twin.status != "ok":
            row_notes[i].append(f"baseline none {twin.status}")
            continue
        lat, base_lat = _latency(c), _latency(twin)
        if lat and base_lat:
            ratio = base_lat / lat
            cell["vs_none"] = f"{ratio:.2f}x" + (" (slower)" if ratio < 1 else "")
        basis = size_basis[i]
        if basis is not None:
            ratio = _ok_value(twin, basis) / _ok_value(c, basis)  # type: ignore[operator]
            text = f"{ratio:.2f}x" + (" (larger)" if ratio < 1 else "")
            cell["size_reduction"] = text if len(bases) == 1 else f"{text} ({basis})"
        acc, base_acc = _ok_value(c, "accuracy"), _ok_value(twin, "accuracy")
        if acc is not None and base_acc is not None:
            cell["accuracy_delta"] = f"{acc - base_acc:+.1f} pt"
    pareto = _pareto_marks(cases, axes)
    for i, mark in pareto.items():
        cells[i]["pareto"] = mark

    def shown(key: str) -> bool:
        return any(cell.get(key) is not None for cell in cells)

    def measured(*names: str) -> bool:  # a delta column is shown once a case has its figure, blank where missing
        return has_baseline and any(name in c.metrics for c in cases for name in names)

    columns = []
    notes = []
    if not has_baseline:
        notes.append("variants: this run has no uncompressed variant (none), so no speedup, size or accuracy deltas")
    if measured("latency"):
        columns.append(Column("vs_none", "speedup vs none"))
    if measured("model_size", "parameters"):
        which = f" ({next(iter(bases))})" if len(bases) == 1 else ""
        columns.append(Column("size_reduction", f"size reduction vs none{which}"))
    if measured("accuracy"):
        columns.append(Column("accuracy_delta", "accuracy Δ vs none"))
    if shown("fidelity_text"):
        columns.append(Column("fidelity_text", "fidelity (top-1 / max abs diff)"))
    if pareto:
        columns.append(Column("pareto", "Pareto"))
    if measured("latency", "model_size", "parameters", "accuracy"):
        notes.append(
            "vs none: against the uncompressed variant of the same model, backend, target, scenario and batch; "
            "speedup is its latency / the variant's, size reduction its size / the variant's (below 1x: slower, "
            "larger), accuracy Δ the variant's accuracy minus its, in points"
        )
    if shown("fidelity_text"):
        notes.append(
            "fidelity: top-1 agreement of the outputs with the uncompressed model's / the largest absolute "
            "difference of any output value (the results name the reference backend)"
        )
    if pareto:
        notes.append(_pareto_legend(any(mark == "**" for mark in pareto.values())))
    whats = {(axes[i].model, axes[i].variant, what): None for i in order if (what := _what(cases[i])) is not None}
    notes += [f"what {model}/{variant} did: {what}" for model, variant, what in whats]
    return VariantView(columns=columns, cells=cells, row_notes=row_notes, order=order, notes=notes)


def _group(ax: CaseAxes) -> tuple[Any, ...]:
    return tuple(getattr(ax, a) for a in GROUP_AXES)


def _variant_order(cases: list[CaseResult], axes: list[CaseAxes]) -> list[int]:
    """Case indices grouped: model, backend, target, scenario, batch (each in the run's order), then variant,
    uncompressed first."""
    first_seen: dict[str, dict[Any, int]] = {a: {} for a in AXES}
    for ax in axes:
        for a in AXES:
            first_seen[a].setdefault(getattr(ax, a), len(first_seen[a]))

    def key(i: int) -> tuple[Any, ...]:
        ax = axes[i]
        return (
            *(first_seen[a][getattr(ax, a)] for a in GROUP_AXES),
            not is_uncompressed(cases[i]),
            first_seen["variant"][ax.variant],
            i,
        )

    return sorted(range(len(cases)), key=key)


def _ok_value(case: CaseResult | None, name: str) -> float | None:
    """Figure ``name`` of a case that ended ok, when it is a finite number."""
    if case is None or case.status != "ok":
        return None
    metric = case.metrics.get(name)
    if metric is None or metric.value is None or not math.isfinite(metric.value):
        return None
    return float(metric.value)


def _size_basis(case: CaseResult, twin: CaseResult | None) -> str | None:
    """The figure a size reduction of ``case`` uses: ``model_size`` when both have it, else ``parameters``."""
    if twin is None or is_uncompressed(case):
        return None
    for name in ("model_size", "parameters"):
        if (_ok_value(case, name) or 0) > 0 and (_ok_value(twin, name) or 0) > 0:
            return name
    return None


def _fidelity_text(case: CaseResult) -> str | None:
    """``99.2% / 0.0031``: the fidelity figure's top-1 agreement and largest absolute difference (``-`` if none)."""
    metric = case.metrics.get("fidelity")
    if metric is None or case.status != "ok":
        return None
    top1 = f"{metric.value:.1f}{metric.unit}" if metric.value is not None else "-"
    largest = metric.details.get("max_abs_diff")
    diff = f"{largest:.2g}" if isinstance(largest, (int, float)) and not isinstance(largest, bool) else "-"
    return f"{top1} / {diff}"


def _what(case: CaseResult) -> str | None:
    """``prune-channels: channels_removed=48, sparsity=0.5; int8: layers_quantized=12``, from the case's record."""
    model = case.runtime.model
    steps = model.info.get("compressions") if model is not None else None
    if not isinstance(steps, list) or not steps:
        return None
    parts, noted = [], False
    for step in steps:
        if not isinstance(step, dict):
            continue
        facts = [
            f"{key}={_fact(value)}"
            for key, value in step.items()
            if key not in STEP_BOOKKEEPING and isinstance(value, (str, int, float, bool)) and value is not None
        ]
        name = str(step.get("name", "?"))
        parts.append(f"{name}: {', '.join(facts)}" if facts else name)
        noted = noted or bool(facts)
    return _short("; ".join(parts), 600) if noted else None  # steps that noted nothing say no more than the variant


def _fact(value: str | int | float | bool) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _pareto_marks(cases: list[CaseResult], axes: list[CaseAxes]) -> dict[int, str]:
    """``{case index: "*" or "**"}`` for the Pareto-optimal cases on latency and accuracy (see :func:`variant_view`).

    Only cases that ended ok with both figures take part.  A group of one such case is not marked (it
    has no rival), unless the case is optimal across the model's groups.  ``**`` is given only where
    the model has several groups of one scenario and batch (several backends or targets).
    """
    points = {}
    for i, c in enumerate(cases):
        lat, acc = _latency(c), _ok_value(c, "accuracy")
        if lat is not None and acc is not None:
            points[i] = (lat, acc)
    marks: dict[int, str] = {}
    for members in _groups(points, axes, GROUP_AXES).values():
        if len(members) > 1:
            for i, best in zip(members, pareto_optimal([points[i] for i in members])):
                if best:
                    marks[i] = "*"
    for members in _groups(points, axes, ("model", "scenario", "batch")).values():
        if len({_group(axes[i]) for i in members}) > 1:
            for i, best in zip(members, pareto_optimal([points[i] for i in members])):
                if best:  # optimal among more cases, hence in its own group too
                    marks[i] = "**"
    return marks


def _groups(points: dict[int, Any], axes: list[CaseAxes], by: tuple[str, ...]) -> dict[tuple[Any, ...], list[int]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in points:
        groups.setdefault(tuple(getattr(axes[i], a) for a in by), []).append(i)
    return groups


def _pareto_legend(model_wide: bool) -> str:
    text = (
        "Pareto: * no other variant of the same model, backend, target, scenario and batch is faster and at least "
        "as accurate, or more accurate and at least as fast (equal figures do not dominate)"
    )
    if model_wide:
        text += "; ** neither is any case of the model on another backend or target (same scenario and batch)"
    return text
