"""Repeats of a case across worker processes: how many, and how their figures combine into one.

The noise between fresh processes dominates the noise inside one (docs/regressions.md has the figures), so
a case can run in several worker processes (``--repeat N``, ``measure.repeat``).  Each process's outcome is
kept as a :class:`~benchharness.results.ProcessRun`, raw samples included; the case's figure is the median
of the processes' values, and its CI comes from their spread (:func:`between_ci`), not from the samples
inside one process.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence

from benchharness.case import Case
from benchharness.errors import BenchError
from benchharness.results import CaseResult, MetricValue, Outcome, ProcessRun, Provenance, Spread
from benchharness.settings import MAX_REPEAT
from benchharness.stats import summarize

#: Worker processes per case when neither ``--repeat``, ``measure.repeat`` nor the environment says.  One:
#: suites/mobile.yaml then takes 1m52s on 2 cores, and 3m58s with 3 processes (docs/regressions.md has the
#: trade-off); the table says that its CI is within one process only.
DEFAULT_REPEAT = 1
#: Environment variable that changes that default for every run (``--repeat`` and ``measure.repeat`` win).
REPEAT_ENV = "BENCHHARNESS_REPEAT"


def default_repeat() -> int:
    """:data:`DEFAULT_REPEAT`, or ``BENCHHARNESS_REPEAT`` when set; a bad value is a one-line error."""
    text = os.environ.get(REPEAT_ENV, "").strip()
    if not text:
        return DEFAULT_REPEAT
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_REPEAT:
        raise BenchError(f"{REPEAT_ENV}={text!r}: expected a whole number of processes from 1 to {MAX_REPEAT}")
    return value


def case_repeat(case: Case, override: int | None = None) -> int:
    """Processes for ``case``: ``override`` (``--repeat``), else its ``measure.repeat``, else :func:`default_repeat`."""
    return override or case.measure.repeat or default_repeat()


def between_ci(values: Sequence[float], level: float = 0.95) -> Spread:
    """The spread of one figure between processes, with a CI of their centre.

    The CI is Student's t on the logarithms of the values: a CI of their
    geometric mean.  Timings are ratios at heart (a slowdown multiplies),
    and with 3 to 10 processes an order-statistic CI of the median cannot
    reach 95% (it needs 6), while t makes use of every value.  No CI with
    fewer than 2 values, or when a value is not a positive finite number.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        why = "one process" if n < 2 else "a value that is not positive"
        return Spread(values=values, ci_level=level, method=f"no CI between processes: {why}")
    from scipy import stats as _stats

    logs = [math.log(v) for v in values]
    centre = statistics.fmean(logs)
    half = float(_stats.t.ppf((1 + level) / 2, n - 1)) * statistics.stdev(logs) / math.sqrt(n)
    return Spread(
        values=values,
        ci_low=math.exp(centre - half),
        ci_high=math.exp(centre + half),
        ci_level=level,
        method=f"Student t on the log of {n} process values (a CI of their geometric mean)",
    )


def as_process(result: CaseResult, index: int) -> ProcessRun:
    """One worker's :class:`CaseResult` as process ``index`` of a repeated case."""
    return ProcessRun(index=index, **{name: getattr(result, name) for name in Outcome.model_fields})


def process_runs(result: CaseResult) -> list[ProcessRun]:
    """Every worker process of a case: its ``processes``, or the case itself as process 1 when it ran in one."""
    return list(result.processes) or [as_process(result, 1)]


def process_ok(run: ProcessRun) -> bool:
    """Whether a process's figures count: it ended ok and none of its figures failed."""
    return run.status == "ok" and not run.metric_errors


def process_values(result: CaseResult, name: str) -> list[float]:
    """Figure ``name``'s value in each process of ``result`` that ended ok (a process without it is left out)."""
    out = []
    for run in process_runs(result):
        metric = run.metrics.get(name)
        if run.status == "ok" and metric is not None and metric.value is not None and math.isfinite(metric.value):
            out.append(float(metric.value))
    return out


def combine(case: Case, runs: list[ProcessRun], provenance: list[Provenance]) -> CaseResult:
    """One result for a case run in ``runs`` (at least one): the figures combined, every process kept.

    The case ended ok when every process did; otherwise it takes the first
    failure's status and error, and the figures of the processes that ended
    ok are still combined (a failure never loses data).  Each figure's value
    is the median of the processes' values, ``between`` their spread, and
    ``summary`` the statistics of their samples pooled (tail percentiles need
    them all); the samples themselves stay in each process.
    """
    if not runs:
        raise ValueError("combine needs at least one process")
    failed = next((r for r in runs if r.status != "ok"), None)
    first_ok = next((r for r in runs if r.status == "ok"), runs[0])
    errors: dict[str, str] = {}
    for run in runs:
        for name, error in run.metric_errors.items():
            errors.setdefault(name, f"process {run.index}: {error}")
    names = list(dict.fromkeys(n for r in runs if r.status == "ok" for n in r.metrics))
    metrics = {name: _combined([r.metrics[name] for r in runs if r.status == "ok" and name in r.metrics])
               for name in names}  # fmt: skip
    warnings = list(dict.fromkeys(w for r in runs for w in r.warnings))
    kinds = list(dict.fromkeys(r.node.kind() for r in runs if r.node is not None))
    if len(kinds) > 1:  # a launcher keeps a case's processes on one node; a resumed case may still have moved
        warnings.append(
            f"its processes ran on {len(kinds)} kinds of machine ({'; '.join(kinds)}): the spread between them "
            "includes the hardware"
        )
    return CaseResult(
        case_id=case.id,
        config=case,
        status=failed.status if failed else "ok",
        error=None if failed is None else _error(failed),
        traceback=None if failed is None else failed.traceback,
        started_at=runs[0].started_at,
        duration_s=sum(r.duration_s for r in runs),
        launcher=runs[0].launcher,
        metrics=metrics,
        metric_errors=errors,
        runtime=first_ok.runtime,
        provenance=provenance,
        warnings=warnings,
        processes=runs,
        node=first_ok.node,
    )


def _error(run: ProcessRun) -> str:
    """A failed process's error, naming the process; a skip's reason stands alone (the machine's, not the run's)."""
    if run.status == "skipped":
        return run.error or "skipped"
    return f"process {run.index}: {run.error or run.status}"


def _combined(values: list[MetricValue]) -> MetricValue:
    """One figure from each process's: the median value, the spread between them, the samples pooled."""
    first = values[0]
    numbers = [v.value for v in values if v.value is not None and math.isfinite(v.value)]
    if not numbers:
        return first.model_copy(deep=True)
    summary = None
    if all(v.samples for v in values) and first.summary is not None:
        pooled = [s for v in values for s in v.samples or []]
        summary = summarize(pooled, first.summary.ci_level)
    level = first.summary.ci_level if first.summary is not None else 0.95
    return MetricValue(
        value=statistics.median(numbers),
        unit=first.unit,
        summary=summary,
        method=first.method,
        details=first.details,
        better=first.better,
        between=between_ci(numbers, level),
    )
