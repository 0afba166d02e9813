"""The HTML report: one self-contained file with a run's table and plots of its raw samples.

``benchharness report RESULTS... --html OUT.html`` writes a single file that needs nothing else: the
CSS is inline, every plot is a PNG embedded as a base64 ``data:`` URI, and a Content-Security-Policy
forbids the page to load anything from anywhere.  It holds, for the newest run (and each run, when
there are few):

- the comparison table of :func:`benchharness.table.build`, with its notes;
- the distribution of each case's figure (latency by default), pooled over its worker processes,
  with each process's median as a dot, since the noise between processes is the larger one;
- accuracy against that figure, one point per case, the Pareto-optimal ones of each model circled,
  labelled and joined by a step line, once a case has an accuracy figure (the table then carries each
  variant's deltas against its uncompressed twin and its Pareto mark: :func:`benchharness.table.variant_view`);

and, given two runs or more, each case's figure over the runs with its CI and the steps that
:mod:`benchharness.history` detects.

matplotlib draws the plots through its Agg canvas, imported inside the functions that draw, so the
CLI starts without it; each figure is built with :class:`matplotlib.figure.Figure` rather than
pyplot, so none is kept in a global registry and memory is freed as each PNG is done.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchharness.case import AXES
from benchharness.errors import BenchError
from benchharness.fileio import atomic_write_bytes, atomic_write_text
from benchharness.repeats import process_runs
from benchharness.results import CaseResult, MetricValue, RunResults, load_results
from benchharness.table import Table, build, completeness_note, pareto_optimal

#: With this many runs or fewer, every run gets its table and plots; with more, only the newest does.
DETAILED_RUNS = 3
#: Cases in one distribution figure; more cases are split over several figures (of one shared scale).
CASES_PER_FIGURE = 20
#: Above this many points a scatter labels only the Pareto-optimal ones, so the labels stay legible.
LABELLED_POINTS = 20
#: Each tail's share of a case's samples left out of its violin (when that is one sample or more), so a
#: single stall does not stretch every violin into a line; the caption says so.
TRIM = 0.005
#: When the largest figure is this many times the smallest, the distributions use a log scale.
LOG_SPAN = 20.0
#: The accuracy figure's name, as the built-in accuracy metric reports it.
ACCURACY = "accuracy"
DPI = 100
REPORT_EXTRA_HINT = "pip install 'benchharness[report]'"


@dataclass
class Plot:
    """One plot of the report: its PNG, the file name it gets in ``--png-dir``, and its caption."""

    name: str
    png: bytes
    alt: str
    caption: str = ""

    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI, for an ``<img src=...>`` that needs no other file."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def with_name(self, names: _Names) -> Plot:
        """This plot, its file name made unique among the report's."""
        self.name = names.take(self.name)
        return self


@dataclass
class Report:
    """A rendered report: the HTML text and the plots it embeds, in page order."""

    html: str
    plots: list[Plot] = field(default_factory=list)
    #: What the reader should know about the inputs (a folder's file that is not a results file, skipped).
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Run:
    """A results file as the report shows it."""

    path: Path
    results: RunResults
    label: str


# ----------------------------------------------------------------------------- entry points


def write_report(
    paths: Sequence[str | Path],
    html_path: str | Path,
    png_dir: str | Path | None = None,
    metric: str = "latency",
    title: str | None = None,
) -> Report:
    """Build the report of the results files ``paths`` and write it to ``html_path`` (atomically).

    With ``png_dir``, each plot is also written there as a PNG named after what it shows (the case
    id, made safe as a file name).  A results file that cannot be read, or no matplotlib, is a
    one-line :class:`BenchError`.
    """
    report = build_report(paths, metric=metric, title=title)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(html_path, report.html)
    if png_dir is not None:
        folder = Path(png_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for plot in report.plots:
            atomic_write_bytes(folder / f"{plot.name}.png", plot.png)
    return report


def build_report(paths: Sequence[str | Path], metric: str = "latency", title: str | None = None) -> Report:
    """The report of the results files ``paths``, as HTML text and the plots it embeds.

    One file is shown as it is; two or more go through :func:`benchharness.history.load_history`,
    which orders them by commit date, and the history charts follow the newest run.
    """
    if not paths:
        raise BenchError("report: name at least one results file")
    _matplotlib()  # fail on a missing matplotlib before any work
    history = None
    warnings: list[str] = []
    if len(paths) == 1 and not Path(paths[0]).is_dir():
        path = Path(paths[0])
        runs = [_Run(path, load_results(path), path.name)]
    else:
        history, warnings = _history(paths)
        runs = [_Run(r.path, r.results, r.path.name) for r in history.runs]
        if len(runs) < 2:
            history = None
    page = _Page(title or _default_title(runs))
    names = _Names()
    newest = runs[-1]
    detailed = list(reversed(runs)) if len(runs) <= DETAILED_RUNS else [newest]
    page.add(_runs_list(runs, detailed))
    for line in warnings:
        page.note(f"warning: {line}")
    _run_section(page, names, detailed[0], metric, newest=len(runs) > 1)
    if history is not None:
        _history_section(page, names, history, metric)
    for run in detailed[1:]:
        _run_section(page, names, run, metric, newest=False)
    return Report(html=page.html(), plots=page.plots, warnings=warnings)


def _history(paths: Sequence[str | Path]) -> tuple[Any, list[str]]:
    """The runs of ``paths`` in commit order (:func:`benchharness.history.load_history`), and its warnings.

    History skips a file it cannot read, with a warning, as befits a folder of many runs; a file the
    user named is different: one that cannot be read is the one-line error :func:`load_results` gives.
    """
    from benchharness.history import load_history

    files = [Path(p) for p in paths if Path(p).is_file()]
    try:
        history = load_history([Path(p) for p in paths])
    except BenchError:  # no run at all: say what is wrong with the first file named, if it is a file
        for path in files:
            load_results(path)
        raise
    loaded = {r.path.resolve() for r in history.runs}
    for path in files:
        if path.resolve() not in loaded:
            load_results(path)  # raises for a file that cannot be read; a second copy of a run is no error
    return history, list(history.warnings)


# ----------------------------------------------------------------------------- page


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1250px;
       padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 12.5px; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff1f0; } tr.skipped td { color: #6e7781; }
.note, .meta, figcaption { color: #57606a; font-size: 12.5px; }
.note { margin: .15em 0; } .empty { padding: .6em 1em; background: #f6f8fa; border-left: 4px solid #d0d7de; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.grid { display: flex; flex-wrap: wrap; gap: .5em 1em; } .grid figure { margin: .3em 0; width: 600px; }
code { font-size: 12px; background: #f6f8fa; padding: 0 .25em; }
"""
#: Nothing may load from anywhere: images are data: URIs and the style is inline.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class _Page:
    """HTML fragments and the plots they embed, in order."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.plots: list[Plot] = []

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def heading(self, level: int, text: str) -> None:
        self.add(f"<h{level}>{_e(text)}</h{level}>")

    def note(self, text: str, cls: str = "note") -> None:
        self.add(f'<p class="{cls}">{_e(text)}</p>')

    def figure(self, plot: Plot) -> None:
        self.plots.append(plot)
        caption = f"<figcaption>{_e(plot.caption)}</figcaption>" if plot.caption else ""
        self.add(f'<figure><img alt="{_e(plot.alt)}" src="{plot.data_uri()}">{caption}</figure>')

    def grid(self, plots: list[Plot]) -> None:
        self.add('<div class="grid">')
        for plot in plots:
            self.figure(plot)
        self.add("</div>")

    def html(self) -> str:
        body = "\n".join(self.parts)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(self.title)}</h1>\n{body}\n</body>\n</html>\n"
        )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _default_title(runs: list[_Run]) -> str:
    suites = list(dict.fromkeys(r.results.suite.name for r in runs))
    what = f"{len(runs)} runs of {', '.join(suites)}" if len(runs) > 1 else f"suite {suites[0]}"
    return f"benchharness report: {what}"


def _runs_list(runs: list[_Run], detailed: list[_Run]) -> str:
    """A line per run, newest first: its file, suite, start, machine and commit."""
    items = []
    for run in reversed(runs):
        res = run.results
        git = res.machine.git
        commit = f", commit {git.commit[:10]}" if git is not None and getattr(git, "commit", None) else ""
        shown = "" if run in detailed else " (table and plots not shown: see the newest runs)"
        items.append(
            f"<li><code>{_e(run.label)}</code>: suite {_e(res.suite.name)}, {len(res.cases)} cases, started "
            f"{_e(res.started_at)} on {_e(res.machine.hostname)} ({_e(res.machine.cpu)}){_e(commit)}{_e(shown)}</li>"
        )
    files = f"{len(runs)} results file{'s' if len(runs) != 1 else ''}"
    return f'<div class="meta"><p>{files}:</p><ul>{"".join(items)}</ul></div>'


# ----------------------------------------------------------------------------- one run


def _run_section(page: _Page, names: _Names, run: _Run, metric: str, newest: bool) -> None:
    """A run's table, its distributions and (with accuracy) its scatter."""
    page.heading(2, f"{'Newest run: ' if newest else 'Run: '}{run.label}")
    note = completeness_note(run.results, run.path)
    if note:
        page.note(note)
    if not run.results.cases:
        page.note("This run holds no cases: nothing to show.", "empty")
        return
    page.add(table_html(build(run.results)))
    stem = _safe(Path(run.label).stem)
    labels = case_labels(run.results.cases)
    page.heading(3, f"{metric}: distribution of each case")
    plots = distribution_plots(run.results.cases, metric, labels, f"{stem}__{metric}")
    if plots:
        for plot in plots:
            page.figure(plot.with_name(names))
    else:
        page.note(_nothing_to_plot(run.results.cases, metric), "empty")
    scatter = accuracy_plot(run.results.cases, metric, labels, f"{stem}__{ACCURACY}-vs-{metric}")
    if scatter is not None:
        page.heading(3, f"{ACCURACY} against {metric}")
        page.figure(scatter.with_name(names))


def table_html(table: Table) -> str:
    """The comparison table as an HTML table, its notes beneath it."""
    head = "".join(f"<th>{_e(col.header)}</th>" for col in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for col in table.columns:
            value = row.get(col.key)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(
                f'<td class="num">{_e(_cell(value, col.fmt))}</td>' if numeric else f"<td>{_e(_cell(value, ''))}</td>"
            )
        status = row.get("status")
        cls = "skipped" if status == "skipped" else "failed" if status not in (None, "ok") else ""
        if str(row.get("note", "")).startswith("fastest"):
            cls = (cls + " fastest").strip()
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f'<p class="note">note: {_e(n)}</p>' for n in table.notes)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{notes}"


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def case_labels(cases: Sequence[CaseResult]) -> dict[str, str]:
    """A short label per case id: the axes that vary between ``cases`` (as the table shows them), joined by ``/``."""
    axes = {c.case_id: c.config.axes() for c in cases}
    varying = [a for a in AXES if len({getattr(ax, a) for ax in axes.values()}) > 1]
    labels = {}
    for case_id, ax in axes.items():
        text = "/".join(str(getattr(ax, a)) for a in varying) if varying else case_id
        labels[case_id] = _shorten(text, 60)
    return labels


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nothing_to_plot(cases: Sequence[CaseResult], metric: str) -> str:
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.status] = counts.get(case.status, 0) + 1
    how = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"Nothing to plot: no case of this run has {metric} samples ({how})."


# ----------------------------------------------------------------------------- distributions


@dataclass
class CaseSamples:
    """A case's samples of one figure, in the figure's unit, pooled over its processes; and each process's median."""

    case_id: str
    unit: str
    pooled: list[float]
    process_medians: list[float]
    value: float | None


def sample_scale(metric: MetricValue) -> float | None:
    """The factor that turns the figure's raw samples into its value's unit (latency: ns to ms, ``1e-6``).

    It is the value over the samples' median rounded to a power of ten: a unit change, never a
    correction.  ``None`` when the figure has no samples or no value and median to compare.
    """
    if not metric.samples or metric.value is None or metric.summary is None or metric.summary.median <= 0:
        return None
    if not math.isfinite(metric.value) or metric.value <= 0:
        return None
    return 10.0 ** round(math.log10(metric.value / metric.summary.median))


def case_samples(case: CaseResult, metric: str) -> CaseSamples | None:
    """Figure ``metric``'s samples of ``case`` from every process that ended ok, or ``None`` when there are none."""
    pooled: list[float] = []
    medians: list[float] = []
    unit = ""
    for run in process_runs(case):
        figure = run.metrics.get(metric)
        if run.status != "ok" or figure is None:
            continue
        scale = sample_scale(figure)
        if scale is None:
            continue
        values = [s * scale for s in figure.samples or [] if math.isfinite(s)]
        if not values:
            continue
        pooled += values
        medians.append(figure.value if figure.value is not None else statistics.median(values))
        unit = figure.unit
    if not pooled:
        return None
    headline = case.metrics.get(metric)
    return CaseSamples(case.case_id, unit, pooled, medians, headline.value if headline is not None else None)


def distribution_plots(cases: Sequence[CaseResult], metric: str, labels: dict[str, str], stem: str) -> list[Plot]:
    """Violins of each case's samples of ``metric`` (processes pooled, each process's median a dot).

    Cases are split over figures of :data:`CASES_PER_FIGURE` at most, all on one scale; a case
    without samples (skipped, failed, or a figure without raw samples) is named in the caption.
    """
    data = [s for s in (case_samples(c, metric) for c in cases) if s is not None]
    if not data:
        return []
    import numpy as np

    missing = [labels.get(c.case_id, c.case_id) for c in cases if c.case_id not in {d.case_id for d in data}]
    trimmed = [_trimmed(np.asarray(d.pooled, dtype=float)) for d in data]
    low = min(float(t.min()) for t in trimmed)
    high = max(float(t.max()) for t in trimmed)
    log = low > 0 and high / low > LOG_SPAN
    unit = data[0].unit
    chunks = _chunks(len(data), CASES_PER_FIGURE)
    plots = []
    for number, (start, stop) in enumerate(chunks, 1):
        part = data[start:stop]
        fig = _figure(9.5, 1.0 + 0.36 * len(part))
        ax = fig.add_subplot()
        _violins(ax, part, trimmed[start:stop], [labels.get(d.case_id, d.case_id) for d in part], log)
        span = (math.log10(low), math.log10(high)) if log else (low, high)
        pad = 0.04 * (span[1] - span[0] or abs(span[0]) or 1)
        ax.set_xlim(span[0] - pad, span[1] + pad)
        if log:
            _log_ticks(ax, low, high)
        ax.set_xlabel(f"{metric} ({unit}{', log scale' if log else ''})")
        which = f" ({number} of {len(chunks)})" if len(chunks) > 1 else ""
        ax.set_title(f"{metric} per case{which}", fontsize=10, loc="left")
        name = f"{stem}__{_safe(part[0].case_id)}" + (f"__to__{_safe(part[-1].case_id)}" if len(part) > 1 else "")
        counts = [len(d.process_medians) for d in part]
        processes = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
        caption = (
            f"{metric} of each case: its samples pooled over {processes} worker process"
            f"{'es' if max(counts) > 1 else ''} (violin; the bar is their median), each process's median a dot. "
            f"Each tail's {100 * TRIM:g}% of samples is left out of the violin when that is a sample or more."
        )
        if missing and number == len(chunks):
            caption += f" No {metric} samples: {', '.join(missing)}."
        plots.append(_plot(fig, name, f"{metric} distribution of {len(part)} cases", caption))
    return plots


def _trimmed(values: Any) -> Any:
    import numpy as np

    if len(values) * TRIM < 1:
        return values
    low, high = np.percentile(values, [100 * TRIM, 100 * (1 - TRIM)])
    kept = values[(values >= low) & (values <= high)]
    return kept if len(kept) else values


def _violins(ax: Any, part: list[CaseSamples], trimmed: list[Any], labels: list[str], log: bool) -> None:
    import numpy as np

    positions = list(range(len(part), 0, -1))  # first case at the top
    shape = [np.log10(t) if log else t for t in trimmed]
    spread = [i for i, t in enumerate(shape) if len(t) > 1 and float(np.ptp(t)) > 0]
    if spread:  # a KDE needs some spread; a case whose samples are all equal gets its median bar only
        body = ax.violinplot(
            [shape[i] for i in spread],
            positions=[positions[i] for i in spread],
            **_horizontal(ax.violinplot),
            widths=0.85,
            showmedians=False,
            showextrema=False,
        )
        for patch in body["bodies"]:
            patch.set_facecolor("#8fb8de")
            patch.set_edgecolor("#4a79a8")
            patch.set_alpha(0.85)
    for pos, case in zip(positions, part):
        median = float(np.median(case.pooled))
        x = math.log10(median) if log else median
        ax.plot([x, x], [pos - 0.32, pos + 0.32], color="#0b3d6b", linewidth=2, solid_capstyle="butt")
        dots = [math.log10(m) if log else m for m in case.process_medians if not log or m > 0]
        ax.scatter(dots, [pos] * len(dots), s=16, color="#d1495b", edgecolor="white", linewidth=0.5, zorder=3)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(0.4, len(part) + 0.6)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=8)


def _horizontal(draw: Any) -> dict[str, Any]:
    """The keyword that lays a violin or box plot on its side: ``orientation`` since matplotlib 3.10, else ``vert``."""
    import inspect

    return {"orientation": "horizontal"} if "orientation" in inspect.signature(draw).parameters else {"vert": False}


def _log_ticks(ax: Any, low: float, high: float) -> None:
    """Ticks of a log10-transformed axis at 1, 2 and 5 times a power of ten, labelled with the values themselves."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if low <= t <= high]
    if len(inside) > 12:  # a wide span: powers of ten only
        inside = [t for t in inside if math.isclose(t, 10.0 ** round(math.log10(t)))]
    ax.xaxis.set_major_locator(FixedLocator([math.log10(t) for t in inside]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{10**x:.3g}"))


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``n`` items in ``ceil(n / size)`` runs of nearly equal length, as (start, stop) pairs."""
    parts = max(1, math.ceil(n / size))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:]))


# ----------------------------------------------------------------------------- accuracy


def pareto_staircase(front: Sequence[tuple[float, float]], x_lower: bool = True) -> list[tuple[float, float]]:
    """The vertices of the step line through Pareto-optimal ``front`` points: the edge of what they dominate.

    With lower x better (latency) each point holds its y until the next, faster-to-slower, point: the
    line runs across, then up.  With higher x better (throughput) it runs up, then across.
    """
    points = sorted(front)
    line: list[tuple[float, float]] = []
    for (x, y), after in zip(points, [*points[1:], None]):
        line.append((x, y))
        if after is not None:
            line.append((after[0], y) if x_lower else (x, after[1]))
    return line


#: Cases whose points share one Pareto front in the scatter: the table's widest comparison (its ``**``).
FRONT_AXES = ("model", "scenario", "batch")


def accuracy_plot(cases: Sequence[CaseResult], metric: str, labels: dict[str, str], name: str) -> Plot | None:
    """Accuracy against ``metric``, a point per case that has both; ``None`` when no case has an accuracy figure.

    The Pareto front is drawn per model, scenario and batch (its variants on every backend and target,
    as the table's ``**`` marks): its points circled and labelled, a step line along each front.
    """
    if not any(_value(c, ACCURACY) is not None for c in cases):
        return None
    rows = [(c, _value(c, metric), _value(c, ACCURACY)) for c in cases if c.status == "ok"]
    rows = [(c, x, y) for c, x, y in rows if x is not None and y is not None]
    fig = _figure(9.5, 5.6)
    ax = fig.add_subplot()
    x_unit = y_unit = ""
    fronts = 0
    if rows:
        first = rows[0][0]
        x_fig, y_fig = first.metrics[metric], first.metrics[ACCURACY]
        x_unit, y_unit = x_fig.unit, y_fig.unit
        x_lower = x_fig.better != "higher"
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (case, _, _) in enumerate(rows):
            case_axes = case.config.axes()
            groups.setdefault(tuple(getattr(case_axes, a) for a in FRONT_AXES), []).append(i)
        optimal = [False] * len(rows)
        for members in groups.values():
            flags = pareto_optimal([rows[i][1:] for i in members], x_lower=x_lower, y_higher=y_fig.better != "lower")
            for i, best in zip(members, flags):
                optimal[i] = best
        xs, ys = [x for _, x, _ in rows], [y for _, _, y in rows]
        ax.scatter(xs, ys, s=28, color="#8fb8de", edgecolor="#4a79a8", zorder=2, label="case")
        for members in groups.values():
            front = [rows[i][1:] for i in members if optimal[i]]
            if len(front) > 1:
                line = pareto_staircase(front, x_lower)
                ax.plot([x for x, _ in line], [y for _, y in line], color="#d1495b", linewidth=1, zorder=1,
                        label="Pareto front" if not fronts else None)  # fmt: skip
                fronts += 1
        best_points = [(x, y) for (_, x, y), best in zip(rows, optimal) if best]
        ax.scatter(
            [x for x, _ in best_points], [y for _, y in best_points], s=70, facecolor="none", edgecolor="#d1495b",
            linewidth=1.6, zorder=3, label="Pareto-optimal",
        )  # fmt: skip
        if min(xs) > 0 and max(xs) / min(xs) > LOG_SPAN:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))  # 0.1, not 10⁻¹
        shown = [
            (case, x, y, best) for (case, x, y), best in zip(rows, optimal) if best or len(rows) <= LABELLED_POINTS
        ]
        shown.sort(key=lambda item: not item[3])  # the Pareto-optimal cases' labels are placed first
        ax.margins(x=0.06, y=0.08)
        ax.legend(fontsize=8, loc="best")
    else:
        shown = []
        ax.text(0.5, 0.5, f"no case has both {metric} and {ACCURACY}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{metric} ({x_unit})" if x_unit else metric)
    ax.set_ylabel(f"{ACCURACY} ({y_unit})" if y_unit else ACCURACY)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(f"{ACCURACY} against {metric}, one point per case", fontsize=10, loc="left")
    _place_labels(fig, ax, [(labels.get(c.case_id, c.case_id), x, y, best) for c, x, y, best in shown])
    caption = (
        f"{len(rows)} cases with both figures. Circled: Pareto-optimal among the cases of its model, scenario and "
        f"batch (its variants on every backend and target): no other is at least as good on both figures and better "
        f"on one. The step line along each front ({fronts} drawn) bounds what its points dominate."
    )
    return _plot(fig, name, f"{ACCURACY} against {metric}", caption)


#: Where a point's label may go, in points from the point (x, y, horizontal alignment), tried in order.
_LABEL_SPOTS = [(5, 3, "left"), (5, -9, "left"), (-5, 3, "right"), (-5, -9, "right"), (5, 11, "left"),
                (5, -17, "left"), (-5, 11, "right"), (-5, -17, "right"), (5, 19, "left"), (5, -25, "left")]  # fmt: skip


def _place_labels(fig: Any, ax: Any, items: list[tuple[str, float, float, bool]], size: float = 7.5) -> None:
    """Label points where the labels do not overlap each other or the points, when one of a few spots allows.

    Points of equal accuracy (one model on several backends) would otherwise print their labels over
    one another.  Text extents are estimated from the font size (the Agg renderer is not needed), the
    layout is fixed first so that data coordinates map to their final pixels.
    """
    if not items:
        return
    fig.canvas.draw()  # the constrained layout places the axes (title and axis labels set): pixels are now final
    scale = fig.dpi / 72  # points to pixels
    to_px = ax.transData.transform
    frame = ax.bbox  # labels stay inside the axes, where the figure has room for them
    points = [to_px((x, y)) for _, x, y, _ in items]
    taken = [(px - 4, py - 4, px + 4, py + 4) for px, py in points]
    legend = ax.get_legend()
    if legend is not None:
        taken.append(tuple(legend.get_window_extent().extents))
    height = size * 1.2 * scale
    for (text, x, y, best), (px, py) in zip(items, points):
        width = 0.6 * size * scale * len(text)
        box = spot = None
        for dx, dy, align in _LABEL_SPOTS:
            left = px + dx * scale - (width if align == "right" else 0)
            bottom = py + dy * scale
            box = (left, bottom, left + width, bottom + height)
            spot = (dx, dy, align)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            if inside and not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
                break
        taken.append(box)
        dx, dy, align = spot
        note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=align, va="bottom",
                           fontsize=size, color="#1f2328" if best else "#57606a")  # fmt: skip
        note.set_in_layout(False)


def _value(case: CaseResult, name: str) -> float | None:
    figure = case.metrics.get(name)
    if figure is None or figure.value is None or not math.isfinite(figure.value):
        return None
    return float(figure.value)


# ----------------------------------------------------------------------------- history


def _history_section(page: _Page, names: _Names, history: Any, metric: str) -> None:
    """Each case's ``metric`` over the runs, with its CI, and the steps history detects marked."""
    from benchharness.history import case_steps, series

    page.heading(2, f"History: {metric} over {len(history.runs)} runs")
    lines = series(history, metric)
    if not lines:
        page.note(f"Nothing to plot: no case has a {metric} figure in these runs.", "empty")
        return
    steps = case_steps(history, metric)
    run_labels = [str(r.label) for r in history.runs]
    cases = [c for r in history.runs for c in r.results.cases]
    labels = case_labels(list({c.case_id: c for c in cases}.values()))
    unit = next((c.metrics[metric].unit for c in cases if metric in c.metrics), "")
    page.note(
        f"One chart per case: the {metric} of each run with its CI as a bar, oldest run at the left; "
        "a cross on the axis marks a run where the case failed; a dashed line marks a step the history detects "
        "(a change of level of 5% or more that lasted 2 runs or more), the ratio of the new level to the old above it."
    )
    plots = [
        history_plot(case_id, points, steps.get(case_id, []), run_labels, labels.get(case_id, case_id), metric, unit)
        for case_id, points in lines.items()
    ]
    page.grid([p.with_name(names) for p in plots])


def history_plot(
    case_id: str, points: Sequence[Any], steps: Sequence[Any], run_labels: list[str], label: str, metric: str, unit: str
) -> Plot:
    """One case's figure over the runs: a point per run with its CI bar, a dashed line at each step."""
    fig = _figure(6.0, 2.9)
    ax = fig.add_subplot()
    xs, ys, bars, gaps = [], [], [], []
    for point in points:
        if point.value is None:
            gaps.append(point.run)
            continue
        xs.append(point.run)
        ys.append(point.value)
        if point.ci_low is not None and point.ci_high is not None:
            bars.append((point.run, point.ci_low, point.ci_high))
    # The CI is drawn as it is, not as an error around the value: a CI between processes bounds their
    # geometric mean, and the value (their median) may lie outside it.
    if bars:
        ax.vlines([b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars], color="#8fb8de", linewidth=3)
    line = sorted([*zip(xs, ys), *((x, math.nan) for x in gaps)])  # a failed run breaks the line
    ax.plot([x for x, _ in line], [y for _, y in line], "o-", color="#4a79a8", markersize=4, linewidth=1)
    for x in gaps:  # a run where the case failed: no value, a cross on the axis
        ax.plot([x], [0.02], marker="x", color="#d1495b", transform=ax.get_xaxis_transform(), clip_on=False)
    for step in steps:
        at = step.run  # the first run after the step (``index`` counts the case's values, not the runs)
        ax.axvline(at - 0.5, color="#d1495b", linestyle="--", linewidth=1.2)
        if math.isfinite(step.ratio):
            ax.annotate(f"×{step.ratio:.2f}", (at - 0.5, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                        textcoords="offset points", fontsize=7.5, color="#d1495b")  # fmt: skip
    ticks = list(range(len(run_labels)))
    every = max(1, math.ceil(len(ticks) / 8))
    ax.set_xticks(ticks[::every])
    ax.set_xticklabels([_shorten(run_labels[i], 18) for i in ticks[::every]], fontsize=7, rotation=20, ha="right")
    ax.set_xlim(-0.5, len(run_labels) - 0.5)
    ax.tick_params(axis="y", labelsize=7.5)
    ax.set_ylabel(f"{metric} ({unit})" if unit else metric, fontsize=8)
    ax.grid(color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(_shorten(label, 70), fontsize=9, loc="left")
    found = "; ".join(step.describe() for step in steps) or "no step"
    name = f"history__{metric}__{_safe(case_id)}"
    return _plot(fig, name, f"{metric} of {case_id} over the runs", f"{case_id}: {found}")


# ----------------------------------------------------------------------------- drawing and names


def _matplotlib() -> Any:
    """matplotlib, or a one-line error that says how to install it."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise BenchError(
            f"the HTML report draws its plots with matplotlib, which is not installed: {REPORT_EXTRA_HINT}"
        ) from None
    return matplotlib


def _figure(width: float, height: float) -> Any:
    """A figure on the Agg canvas, outside pyplot's registry (so it is freed once its PNG is written)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _plot(fig: Any, name: str, alt: str, caption: str) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    fig.clear()
    return Plot(name=name, png=buffer.getvalue(), alt=alt, caption=caption)


def _safe(text: str, limit: int = 80) -> str:
    """``text`` as part of a file name: letters, digits, ``.``, ``_``, ``-``; others as ``_``; at most ``limit``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "case"
    return name[:limit]


class _Names:
    """Unique file names for the plots of one report (``-2``, ``-3`` ... on a clash)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        name = _safe(name, 150)
        unique, n = name, 1
        while unique.lower() in self.used:  # a case-insensitive file system would merge them
            n += 1
            unique = f"{name}-{n}"
        self.used.add(unique.lower())
        return unique
