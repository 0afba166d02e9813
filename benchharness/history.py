"""A suite's figures over many runs, and the persistent steps in them (``benchharness history``).

Users run a suite on every commit and keep the results files.  :func:`load_history` reads a pile of
them into runs ordered by commit date, :func:`series` follows one figure of each case across those
runs, and :func:`detect_steps` finds where its level changed for good, not where one run was off.

Step detection follows the idea of asv's ``step_detect``, in an implementation of its own: fit a
piecewise-constant function to the log of the values, minimising the sum of absolute deviations
from each segment's median plus a penalty per segment (optimal partitioning, solved exactly by
dynamic programming in O(n²)); the penalty is scaled to the noise, estimated robustly from successive
differences, so noisy figures need larger or longer changes.  A segment shorter than ``min_run``
runs may not stand as a level of its own, so a one-run blip is absorbed; adjacent levels that differ
by less than ``threshold`` are then merged, so what remains is a change that matters and that lasted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchharness.compare import direction, is_time_based, parse_threshold
from benchharness.errors import BenchError
from benchharness.results import CaseResult, MetricValue, RunResults, load_results

#: The penalty per segment is this many robust noise units times ``log(n)`` (a BIC-like growth with n),
#: on the log of the values: pure noise then almost never pays for a split, while a 20% step lasting
#: a few runs in ±5% noise does.
PENALTY_SCALE = 2.5
#: The smallest noise estimate used for the penalty (on the log scale: 0.1%).  A figure that never
#: varies (a model's size) would otherwise split at any change; the threshold still decides what counts.
NOISE_FLOOR = 1e-3
FORMATS = ("table", "markdown", "json")


# ----------------------------------------------------------------------------- runs


@dataclass
class HistoryRun:
    """One results file in a history: its run, and where it falls in the order."""

    path: Path
    results: RunResults
    commit: str | None
    #: The commit's date (ISO 8601) when the file records it; else the run is placed by ``started_at``.
    committed_at: str | None
    started_at: str
    #: A short name for axes and tables: the short commit, else the start date and time.
    label: str
    dirty: bool = False

    @property
    def date(self) -> str:
        """The day of the commit, else of the run: ``2026-11-03``."""
        return (self.committed_at or self.started_at)[:10]


@dataclass
class History:
    """Runs in order (by commit date, then start time), and one line per file that was skipped."""

    runs: list[HistoryRun]
    warnings: list[str] = field(default_factory=list)


def load_history(paths: Sequence[Path], *, warn: Callable[[str], None] | None = None) -> History:
    """Load results files and folders (searched recursively for ``*.json``) into an ordered :class:`History`.

    A file that is not a results file is skipped with a warning.  A run seen twice (the same
    ``run_id``: the copies ``run --save-baseline`` keeps in ``baselines/``, or a file named twice)
    counts once; a folder's files outside ``baselines/`` are read first, so the original is the one
    kept.  Runs are ordered by their commit's date (a run without one by its start time), then by
    start time; runs of one commit stay separate.  A path that does not exist, a folder without a
    single results file, or no results at all is a one-line :class:`BenchError`.  ``warn``, when
    given, also receives each warning as it arises (before any such error).
    """
    warnings = _Warnings(warn)
    runs: list[HistoryRun] = []
    seen: set[str] = set()
    for path in map(Path, paths):
        if path.is_dir():
            files = _json_files(path)
            found = 0
            for file in files:
                run = _load(file, warnings)
                if run is not None:
                    found += 1
                    if run.results.run_id not in seen:
                        seen.add(run.results.run_id)
                        runs.append(run)
            if not found:
                what = f"none of its {_plural(len(files), 'JSON file')} is one" if files else "it has no *.json file"
                raise BenchError(f"{path}: no results files in this folder ({what})")
        elif path.exists():
            run = _load(path, warnings)
            if run is not None and run.results.run_id not in seen:
                seen.add(run.results.run_id)
                runs.append(run)
        else:
            raise BenchError(f"{path}: no such results file or folder")
    if not runs:
        raise BenchError(f"no results files in {', '.join(map(str, paths)) or 'no paths'}")
    runs.sort(key=_order_key)
    return History(runs=runs, warnings=list(warnings))


class _Warnings(list[str]):
    """A list of warnings that also hands each one to ``warn`` as it is added."""

    def __init__(self, warn: Callable[[str], None] | None) -> None:
        super().__init__()
        self.warn = warn

    def append(self, line: str) -> None:
        super().append(line)
        if self.warn is not None:
            self.warn(line)


def _json_files(folder: Path) -> list[Path]:
    """``*.json`` under ``folder``, recursively (symlinked folders not followed), ``baselines/`` copies last."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(root) / name for name in sorted(files) if name.endswith(".json")]

    def key(path: Path) -> tuple[bool, str]:
        return "baselines" in path.relative_to(folder).parts[:-1], str(path)

    return sorted(found, key=key)


def _load(path: Path, warnings: list[str]) -> HistoryRun | None:
    try:
        results = load_results(path)
    except BenchError as exc:
        warnings.append(f"skipped {exc}")
        return None
    if _when(results.started_at) is None:
        warnings.append(f"skipped {path}: started_at {results.started_at!r} is not an ISO 8601 time")
        return None
    git = results.machine.git
    committed_at = git.committed_at if git is not None else None
    if committed_at is not None and _when(committed_at) is None:
        warnings.append(f"{path}: committed_at {committed_at!r} is not an ISO 8601 time; placed by its start time")
        committed_at = None
    return HistoryRun(
        path=path,
        results=results,
        commit=git.commit if git is not None else None,
        committed_at=committed_at,
        started_at=results.started_at,
        label=git.commit[:7] if git is not None else results.started_at[:16].replace("T", " "),
        dirty=git.dirty if git is not None else False,
    )


def _when(text: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (a time without a zone taken as UTC); ``None`` when unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _order_key(run: HistoryRun) -> tuple[datetime, datetime]:
    started = _when(run.started_at)
    assert started is not None  # _load skipped the others
    return _when(run.committed_at) or started, started


# ----------------------------------------------------------------------------- series


@dataclass
class Point:
    """One case's figure in one run: a value with its CI, or a gap (``value`` ``None``) where it failed."""

    #: Index into :attr:`History.runs`.
    run: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    #: ``ok``, else the case's status in that run (``error`` also for an ok case whose figure failed).
    status: str = "ok"
    error: str | None = None


def series(history: History, metric: str = "latency") -> dict[str, list[Point]]:
    """Figure ``metric`` of every case across the runs: ``case_id`` to its points, in run order.

    Only a case that ended ok gives a value; a run where it failed (or its figure failed) is a gap
    with the status.  A case whose runs never gave the figure, and whose suite does not name it, is
    left out.  The CI is the one between processes (``between``) when the case ran in several, else
    the CI of the median within its one process, scaled from the samples' unit to the value's.
    """
    out: dict[str, list[Point]] = {}
    named: set[str] = set()
    for index, run in enumerate(history.runs):
        for case in run.results.cases:
            points = out.setdefault(case.case_id, [])
            if points and points[-1].run == index:
                continue  # a case twice in one file: the first counts
            point = _point(index, case, metric)
            if point is not None:
                points.append(point)
            if any(spec.name == metric for spec in case.config.metrics):
                named.add(case.case_id)
    return {
        case_id: points
        for case_id, points in out.items()
        if points and (case_id in named or any(p.value is not None for p in points))
    }


def _point(index: int, case: CaseResult, metric: str) -> Point | None:
    if case.status != "ok":
        return Point(run=index, value=None, status=case.status, error=_first_line(case.error))
    if metric in case.metric_errors:
        return Point(run=index, value=None, status="error", error=_first_line(case.metric_errors[metric]))
    figure = case.metrics.get(metric)
    if figure is None or figure.value is None or not math.isfinite(figure.value):
        return None
    low, high = figure_ci(figure)
    return Point(run=index, value=figure.value, ci_low=low, ci_high=high)


def figure_ci(figure: MetricValue) -> tuple[float | None, float | None]:
    """The CI of a figure's value, in its unit: between processes when it has one, else within its one process."""
    between = figure.between
    if between is not None and between.ci_low is not None and between.ci_high is not None:
        return between.ci_low, between.ci_high
    summary = figure.summary
    if figure.value is None or summary is None or summary.median == 0 or not summary.ci_known:
        return None, None
    scale = figure.value / summary.median  # samples in ns, the value in ms
    low, high = summary.ci_low * scale, summary.ci_high * scale
    return (low, high) if math.isfinite(low) and math.isfinite(high) else (None, None)


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text and text.strip() else text


# ----------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """A persistent change of level in a series of values."""

    #: Index of the first value after the step.
    index: int
    #: The median of the values of the level before, and of the level after.
    before: float
    after: float
    #: ``after / before`` (``inf`` when ``before`` is 0).
    ratio: float
    #: How many values each level holds.
    runs_before: int
    runs_after: int


def detect_steps(values: Sequence[float], *, threshold: float = 0.05, min_run: int = 2) -> list[Step]:
    """The persistent steps in ``values`` (in run order): where their level changed by ``threshold`` or more.

    A piecewise-constant fit to the log of the values (to the values scaled by their median absolute
    value when one is not positive) minimises the sum of absolute deviations from each level's median
    plus a penalty per level of ``PENALTY_SCALE * log(n)`` noise units (:func:`noise_scale`).  No
    level may hold fewer than ``min_run`` values, so with the default 2 a one-run spike is never a
    step.  Adjacent levels whose medians differ by less than ``threshold`` (relative: 0.05 is 5%) are
    then merged.  O(n²) time and memory.
    """
    if min_run < 1:
        raise ValueError(f"min_run must be 1 or more, not {min_run}")
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, 0 or more, not {threshold}")
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("values must be finite numbers")
    n = len(numbers)
    if n < 2 * min_run or n < 2:
        return []
    if all(v > 0 for v in numbers):
        y = [math.log(v) for v in numbers]
    else:
        scale = statistics.median(abs(v) for v in numbers) or max(abs(v) for v in numbers) or 1.0
        y = [v / scale for v in numbers]
    penalty = PENALTY_SCALE * math.log(n) * noise_scale(y)
    starts = _partition(y, penalty, min_run)
    bounds = _merge([*starts, n], numbers, threshold)
    levels = [statistics.median(numbers[a:b]) for a, b in zip(bounds, bounds[1:])]
    steps = []
    for i in range(1, len(levels)):
        before, after = levels[i - 1], levels[i]
        steps.append(
            Step(
                index=bounds[i],
                before=before,
                after=after,
                ratio=after / before if before else math.inf,
                runs_before=bounds[i] - bounds[i - 1],
                runs_after=bounds[i + 1] - bounds[i],
            )
        )
    return steps


def noise_scale(y: Sequence[float]) -> float:
    """A robust estimate of the noise's standard deviation in ``y``, at least :data:`NOISE_FLOOR`.

    Taken from successive differences, since a step changes only one of them: the larger of their
    MAD and their mean absolute deviation with the largest tenth left out (room for that many steps),
    each scaled to a normal's σ and over √2 (a difference holds two noises).  The MAD alone misses
    heavy tails, which timings have (a process that ran 30% slow now and then): a penalty scaled to it
    would let two adjacent outliers stand as a level of their own.
    """
    diffs = [b - a for a, b in zip(y, y[1:])]
    if len(diffs) < 2:
        return NOISE_FLOOR
    centre = statistics.median(diffs)
    deviations = sorted(abs(d - centre) for d in diffs)
    mad = 1.4826 * statistics.median(deviations)
    trimmed = statistics.fmean(deviations[: -max(1, len(deviations) // 10)]) * math.sqrt(math.pi / 2)
    return max(max(mad, trimmed) / math.sqrt(2), NOISE_FLOOR)


def _segment_costs(y: Sequence[float]) -> list[list[float]]:
    """``cost[s][k]``: the sum of absolute deviations of ``y[s : s + k + 1]`` from its median, for every s and k.

    O(n²): for each start, the values from it to the end are linked in sorted order (one global sort),
    then removed from the end one by one; each removal moves the median by at most one link, and the
    sums below and above it are kept as it goes (the sliding-median idea, run backwards).
    """
    n = len(y)
    order = sorted(range(n), key=lambda i: (y[i], i))
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    ys = [y[i] for i in order]  # by rank
    prev = [-1] * n
    nxt = [-1] * n
    costs: list[list[float]] = []
    for s in range(n):
        members = [r for r in range(n) if order[r] >= s]
        for a, b in zip(members, members[1:]):
            nxt[a], prev[b] = b, a
        prev[members[0]], nxt[members[-1]] = -1, -1
        k = len(members)
        m = (k - 1) // 2
        med = members[m]
        below, above = m, k - m - 1
        sum_below = math.fsum(ys[r] for r in members[:m])
        sum_above = math.fsum(ys[r] for r in members[m + 1 :])
        row = [0.0] * k
        for e in range(n - 1, s - 1, -1):  # the segment y[s : e + 1] holds k values
            v = ys[med]
            row[e - s] = max(0.0, v * (below - above) - sum_below + sum_above)
            if e == s:
                break
            r = rank[e]
            if r == med:  # the median leaves: a neighbour takes its place
                if nxt[r] != -1:
                    med = nxt[r]
                    above -= 1
                    sum_above -= ys[med]
                else:
                    med = prev[r]
                    below -= 1
                    sum_below -= ys[med]
            elif r < med:
                below -= 1
                sum_below -= ys[r]
            else:
                above -= 1
                sum_above -= ys[r]
            if prev[r] != -1:
                nxt[prev[r]] = nxt[r]
            if nxt[r] != -1:
                prev[nxt[r]] = prev[r]
            k -= 1
            target = (k - 1) // 2  # the lower median's rank
            while below > target:
                above += 1
                sum_above += ys[med]
                med = prev[med]
                below -= 1
                sum_below -= ys[med]
            while below < target:
                below += 1
                sum_below += ys[med]
                med = nxt[med]
                above -= 1
                sum_above -= ys[med]
        costs.append(row)
    return costs


def _partition(y: Sequence[float], penalty: float, min_run: int) -> list[int]:
    """The starts of the segments of the optimal partition of ``y``: least cost plus ``penalty`` per segment."""
    n = len(y)
    costs = _segment_costs(y)
    best = [math.inf] * (n + 1)
    best[0] = 0.0
    start = [0] * (n + 1)
    for t in range(min_run, n + 1):  # best[t]: the cheapest partition of y[:t]
        for s in range(t - min_run + 1):
            if best[s] < math.inf:
                total = best[s] + costs[s][t - 1 - s] + penalty
                if total < best[t]:
                    best[t], start[t] = total, s
    starts = []
    t = n
    while t > 0:
        t = start[t]
        starts.append(t)
    return starts[::-1]


def _merge(bounds: list[int], values: Sequence[float], threshold: float) -> list[int]:
    """``bounds`` (segment starts, then ``len(values)``) with adjacent levels closer than ``threshold`` merged.

    The closest pair goes first, and levels are taken again after each merge.
    """
    bounds = list(bounds)
    while len(bounds) > 2:
        levels = [statistics.median(values[a:b]) for a, b in zip(bounds, bounds[1:])]
        gaps = [_relative_gap(a, b) for a, b in zip(levels, levels[1:])]
        closest = min(range(len(gaps)), key=gaps.__getitem__)
        if gaps[closest] >= threshold:
            break
        del bounds[closest + 1]
    return bounds


def _relative_gap(a: float, b: float) -> float:
    """How far apart two levels are: ``max / min - 1`` for positive ones, else relative to the larger size."""
    if a > 0 and b > 0:
        return max(a, b) / min(a, b) - 1
    size = max(abs(a), abs(b))
    return abs(a - b) / size if size else 0.0


# ----------------------------------------------------------------------------- steps of cases


@dataclass(frozen=True)
class CaseStep(Step):
    """A step in one case's figure, placed in the history: which run, which commit, and which way."""

    #: Index into :attr:`History.runs` of the first run after the step (``index`` counts the case's values).
    run: int
    #: ``slower``/``faster`` for a figure of time, ``worse``/``better`` for other figures,
    #: ``up``/``down`` when the figure's direction is unknown.
    verdict: str
    unit: str | None
    commit: str | None
    committed_at: str | None
    started_at: str
    label: str

    def describe(self) -> str:
        """``1.18× slower at abc1234 (2026-11-03), 6 runs before, 4 after``."""
        if self.verdict in ("slower", "faster"):
            factor = self.ratio if self.ratio >= 1 else 1 / self.ratio
            change = f"{factor:.2f}× {self.verdict}"
        elif math.isfinite(self.ratio):
            change = f"{self.ratio - 1:+.1%} ({self.verdict})"
        else:
            change = f"{self.verdict} from 0"
        date = (self.committed_at or self.started_at)[:10]
        where = f"{self.label} ({date})" if self.commit else f"the run of {self.label}"
        before = _plural(self.runs_before, "run")
        return f"{change} at {where}, {before} before, {self.runs_after} after"


def verdict(ratio: float, better: str | None, time_based: bool) -> str:
    """``slower``/``faster`` for a lower-is-better timing, ``worse``/``better`` for other figures, else ``up``/``down``.

    ``better`` is the figure's direction (:func:`benchharness.compare.direction`: its own ``better``,
    else its unit's); ``time_based`` whether it is a timing (:func:`benchharness.compare.is_time_based`).
    """
    up = ratio > 1
    if better not in ("lower", "higher"):
        return "up" if up else "down"
    if better == "lower" and time_based:
        return "slower" if up else "faster"
    return "worse" if up == (better == "lower") else "better"


def latest_figures(history: History, metric: str) -> dict[str, MetricValue]:
    """Each case's figure ``metric`` from the latest run where it ended ok with it (for its unit and direction)."""
    out: dict[str, MetricValue] = {}
    for run in reversed(history.runs):
        for case in run.results.cases:
            figure = case.metrics.get(metric)
            if case.case_id not in out and case.status == "ok" and figure is not None and figure.value is not None:
                out[case.case_id] = figure
    return out


def case_steps(
    history: History, metric: str = "latency", *, threshold: float = 0.05, min_run: int = 2
) -> dict[str, list[CaseStep]]:
    """The steps of every case's figure ``metric`` (see :func:`detect_steps`), placed and judged.

    Only the runs where a case gave a value count (gaps are skipped); each step names the first
    run after it, its commit and date, and a verdict from the figure's ``better`` (else its unit).
    Every case of :func:`series` has an entry, an empty list when its figure held steady.
    """
    figures = latest_figures(history, metric)
    out: dict[str, list[CaseStep]] = {}
    for case_id, points in series(history, metric).items():
        ok = [p for p in points if p.value is not None]
        figure = figures.get(case_id)
        unit = figure.unit if figure is not None else None
        better = direction(metric, figure)
        placed = []
        for step in detect_steps([p.value for p in ok], threshold=threshold, min_run=min_run):  # type: ignore[misc]
            run = history.runs[ok[step.index].run]
            placed.append(
                CaseStep(
                    **vars(step),
                    run=ok[step.index].run,
                    verdict=verdict(step.ratio, better, is_time_based(metric, unit)),
                    unit=unit,
                    commit=run.commit,
                    committed_at=run.committed_at,
                    started_at=run.started_at,
                    label=run.label,
                )
            )
        out[case_id] = placed
    return out


# ----------------------------------------------------------------------------- the command


def parse_min_run(text: str) -> int:
    """A whole number of runs, 1 or more; a bad value is a one-line :class:`BenchError`."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BenchError(f"--min-run {text!r}: expected a whole number of runs, 1 or more")
    return value


def cmd_history(args: argparse.Namespace) -> int:
    """``benchharness history``: each case's figure over the runs in ``args.paths``, with its steps."""
    threshold = parse_threshold(args.threshold)
    min_run = parse_min_run(args.min_run)
    history = load_history(args.paths, warn=_warn)
    points = series(history, args.metric)
    if not points:
        present = sorted({name for run in history.runs for case in run.results.cases for name in case.metrics})
        raise BenchError(
            f"no case has the figure {args.metric!r} in these {_plural(len(history.runs), 'run')}; "
            f"they have: {', '.join(present) or 'none'}"
        )
    if args.case is not None:
        points = {case_id: p for case_id, p in points.items() if args.case in case_id}
        if not points:
            raise BenchError(f"--case {args.case!r}: no case id contains it")
    steps = case_steps(history, args.metric, threshold=threshold, min_run=min_run)
    steps = {case_id: steps[case_id] for case_id in points}
    if args.format == "json":
        print(json.dumps(history_json(history, args.metric, points, steps, threshold, min_run), indent=1))
    else:
        print(render_table(history, args.metric, points, steps, threshold, min_run, markdown=args.format == "markdown"))
    return 0


def _warn(line: str) -> None:
    sys.stdout.flush()  # keep stdout and stderr in order when both go to one pipe
    print(f"benchharness: warning: {line}", file=sys.stderr)


def render_table(
    history: History,
    metric: str,
    points: dict[str, list[Point]],
    steps: dict[str, list[CaseStep]],
    threshold: float,
    min_run: int,
    *,
    markdown: bool = False,
) -> str:
    """One row per case: its latest value, runs, min and max, and its steps; then notes."""
    from tabulate import tabulate

    figures = latest_figures(history, metric)
    units = {figures[c].unit for c in points if c in figures}
    one_unit = next(iter(units)) if len(units) == 1 else None

    def number(value: float | None, case_id: str) -> str:
        if value is None:
            return ""
        unit = figures[case_id].unit if one_unit is None and case_id in figures else ""
        return f"{value:.4g} {unit}".strip()

    rows = []
    for case_id, case_points in points.items():
        values = [p.value for p in case_points if p.value is not None]
        failed = sum(p.value is None and p.status != "skipped" for p in case_points)
        skipped = sum(p.status == "skipped" for p in case_points)
        extra = [f"{failed} failed"] * bool(failed) + [f"{skipped} skipped"] * bool(skipped)
        runs = str(len(values)) + (f" ({', '.join(extra)})" if extra else "")
        notes = []
        last = case_points[-1]
        if last.value is None:
            notes.append(f"latest run ({history.runs[last.run].label}): {last.status}")
        rows.append(
            [
                case_id,
                number(values[-1] if values else None, case_id),
                runs,
                number(min(values) if values else None, case_id),
                number(max(values) if values else None, case_id),
                "; ".join(s.describe() for s in steps.get(case_id, [])) or "no step",
                "; ".join(notes),
            ]
        )
    suffix = f" ({one_unit})" if one_unit else ""
    headers = ["case", f"latest {metric}{suffix}", "runs", f"min{suffix}", f"max{suffix}", "steps", "note"]
    if not any(row[-1] for row in rows):
        headers.pop()
        rows = [row[:-1] for row in rows]
    text = tabulate(rows, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True)
    first, last = history.runs[0], history.runs[-1]
    span = (
        f"from {first.label} ({first.date}) to {last.label} ({last.date})" if last is not first else f"({first.label})"
    )
    notes = [
        f"{_plural(len(history.runs), 'run')} {span}, ordered by commit date, then start time",
        f"steps: changes of level of {threshold:.0%} or more that lasted {_plural(min_run, 'run')} or more "
        "(a blip shorter than that is not one); 'at' names the first run after the step",
    ]
    machines = list(dict.fromkeys(run.results.machine.hostname for run in history.runs))
    if len(machines) > 1:
        notes.append(
            f"the runs come from {len(machines)} machines ({', '.join(machines[:4])}{', …' * (len(machines) > 4)}): "
            "a step may be a change of machine"
        )
    if markdown:
        return "\n".join([text, "", *(f"- {note}" for note in notes)])
    return "\n".join([text, *(f"note: {note}" for note in notes)])


def history_json(
    history: History,
    metric: str,
    points: dict[str, list[Point]],
    steps: dict[str, list[CaseStep]],
    threshold: float,
    min_run: int,
) -> dict[str, Any]:
    """Every run, every point of every case's series, and the steps, as plain JSON data."""
    figures = latest_figures(history, metric)
    runs = [
        {
            "index": i,
            "path": str(run.path),
            "run_id": run.results.run_id,
            "suite": run.results.suite.name,
            "machine": run.results.machine.hostname,
            "label": run.label,
            "commit": run.commit,
            "dirty": run.dirty,
            "committed_at": run.committed_at,
            "started_at": run.started_at,
        }
        for i, run in enumerate(history.runs)
    ]
    cases = {}
    for case_id, case_points in points.items():
        figure = figures.get(case_id)
        cases[case_id] = {
            "unit": figure.unit if figure is not None else None,
            "better": direction(metric, figure),
            "points": [_finite_dict(vars(p)) for p in case_points],
            "steps": [{**_finite_dict(vars(s)), "text": s.describe()} for s in steps.get(case_id, [])],
        }
    return {
        "metric": metric,
        "threshold": threshold,
        "min_run": min_run,
        "runs": runs,
        "cases": cases,
        "warnings": history.warnings,
    }


def _finite_dict(data: dict[str, Any]) -> dict[str, Any]:
    # JSON has no infinity or NaN.
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()}


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
