"""Comparing two runs: for each case's figures a ratio, its CI, a significance test and a verdict.

``benchharness compare BASELINE CURRENT`` matches cases by id and, for each figure present on both
sides, gives the ratio CURRENT / BASELINE with a confidence interval, a p-value and a verdict; it
exits 1 when a figure that gates got worse (see :attr:`Comparison.exit_code`).  ``run --baseline``
and ``run --save-baseline`` use the same code (the baselines section at the end).

Which test, and why
-------------------
The noise between fresh worker processes dominates the noise inside one (on a shared 2-core
machine the same case's median moves 12-40% between processes while one process reports a CI of
±0.5%), so the unit of evidence is the **process**, not the sample:

* **Both sides ran in 2 or more processes** (``--repeat``): Welch's t-test on the logarithms of the
  per-process values (``scipy.stats.ttest_ind(equal_var=False)``).  The ratio is the ratio of the
  geometric means, and its CI is the Welch t interval of the difference of the log means
  (Welch-Satterthwaite degrees of freedom), exponentiated, at level ``1 - alpha`` (so the CI leaves
  out 1 exactly when p < alpha).  Timings are positive and a slowdown multiplies, so the log scale
  is the natural one, and pyperf compares with a t-test too.  Not Mann-Whitney (asv's choice): with
  3 vs 3 processes its smallest two-sided p is 0.10, with 5 vs 5 it is 0.008, so at the process
  counts users can afford it cannot reach a useful alpha.  With no spread on either side (accuracy
  is deterministic) the test is degenerate: equal values give p = 1, different ones p = 0 (a
  deterministic difference).  A value that is not positive (an accuracy of 0%) rules out logs: the
  test then runs on the values and the ratio is that of the means.
* **A side ran in one process**: nothing is known of the noise between processes.  When both sides
  kept their raw samples, a two-sided Mann-Whitney U test on them (all samples of a side's
  processes), the ratio of their medians, and a conservative CI: each median's distribution-free
  CI at level ``1 - alpha/2`` (order statistics, :func:`benchharness.stats.median_ci`), the ratio's
  bounds being the extreme ratios of those bounds (both intervals hold with probability at least
  ``1 - alpha``, and then so does the ratio's).  Such a row is labelled :data:`WITHIN_ONE_PROCESS`
  and the output says so under the table: its p-value ignores the larger noise between runs.
* **One value per side and no samples** (accuracy, memory or a derived throughput of a run in one
  process): no test; p is ``None`` and the verdict comes from the threshold alone, labelled
  :data:`ONE_VALUE`.

A change verdict needs both the ratio beyond the threshold and p < alpha (or no test, as above):
for a lower-is-better figure a ratio above ``1 + threshold`` is a regression and one below
``1 / (1 + threshold)`` an improvement; a higher-is-better figure mirrors that.  Interleaved A/B
rounds (``benchharness ab``) give paired ratios instead: ``compare_results(paired=True)`` pairs process
*k* of each side and tests the ratios with :func:`judge_paired` (a one-sample t-test on their logarithms).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from benchharness.errors import BenchError
from benchharness.machine import hardware_kind
from benchharness.repeats import process_runs, process_values
from benchharness.results import FAILED_STATUSES, CaseResult, MetricValue, RunResults

#: What a row of a comparison says about one figure of one case.
Verdict = Literal[
    "faster",
    "slower",
    "better",
    "worse",
    "no significant change",
    "missing",
    "new",
    "failed",
    "no direction",
    "not comparable",
]
#: Verdicts that count as a regression (they fail the comparison when their figure gates).
REGRESSIONS: tuple[str, ...] = ("slower", "worse", "failed")
IMPROVEMENTS: tuple[str, ...] = ("faster", "better")

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
#: The ``--fail-on`` token that makes a case missing from the current run fail the comparison.
MISSING_TOKEN = "missing"
FORMATS = ("table", "markdown", "json")

#: Units whose smaller values are better: time, bytes, energy, and millions (of parameters or MACs).
LOWER_UNITS = frozenset({"ms", "s", "us", "µs", "ns", "B", "KB", "kB", "KiB", "MB", "MiB", "GB", "GiB", "J", "mJ", "M"})
#: Units whose larger values are better (any unit ending in ``/s`` too: a rate).
HIGHER_UNITS = frozenset({"items/s", "%"})
#: Units of timings and rates: their verdicts say faster or slower.
TIME_UNITS = frozenset({"ms", "s", "us", "µs", "ns", "items/s"})
#: Figures that are timings or rates, whatever their unit.
TIME_FIGURES = frozenset({"latency", "throughput", "request_latency"})
#: The direction of the built-in figures, for a figure with no value to read it from (one that failed).
BUILTIN_DIRECTIONS = {
    "latency": "lower",
    "request_latency": "lower",
    "throughput": "higher",
    "accuracy": "higher",
    "fidelity": "higher",
    "memory": "lower",
    "energy": "lower",
    "model_size": "lower",
    "params": "lower",
    "macs": "lower",
}

#: The label of a row tested on the samples inside one process per side.
WITHIN_ONE_PROCESS = "within one process only: the noise between runs is unknown"
#: The label of a row with one value per side and no samples.
ONE_VALUE = "one value per side: no significance test"
#: The label of a row with one process on a side, several on the other, and no samples.
NO_SAMPLES = "one process on a side and no raw samples: no significance test"
BETWEEN_PROCESSES = "between processes"
#: The label of a row tested on paired ratios of interleaved A/B rounds.
PAIRED_ROUNDS = "paired rounds: the drift between rounds cancels in each ratio"


# ----------------------------------------------------------------------------- directions


def direction(name: str, metric_value: MetricValue | None) -> str | None:
    """Which way figure ``name`` is better: ``"lower"``, ``"higher"`` or ``None`` (unknown: shown, never judged).

    The figure's own ``better`` when it has one; else from its unit (results written before
    ``better`` existed): time, bytes, energy and millions (``ms s us ns B KB MB GB J mJ M``) are
    lower-is-better, rates (``items/s``, any unit ending in ``/s``) and ``%`` higher-is-better, any
    other unit has no direction.  With no figure at all (it failed), a built-in figure's name says.
    """
    if metric_value is None:
        return BUILTIN_DIRECTIONS.get(name)
    if metric_value.better is not None:
        return metric_value.better
    unit = metric_value.unit.strip()
    if unit in LOWER_UNITS:
        return "lower"
    if unit in HIGHER_UNITS or unit.endswith("/s"):
        return "higher"
    return None


def is_time_based(name: str, unit: str | None) -> bool:
    """Whether a figure is a timing or a rate (its verdicts read faster/slower, not better/worse)."""
    return name in TIME_FIGURES or (unit or "").strip() in TIME_UNITS


# ----------------------------------------------------------------------------- judgements


class Judgement(BaseModel):
    """A test's answer for one figure: the ratio current / base with its CI, the p-value and the verdict.

    ``p_value`` is ``None`` when no test could be made (the verdict then rests on the threshold
    alone); ``ci_low``/``ci_high`` are ``None`` when there is no interval.  ``regression`` and
    ``improvement`` say whether the verdict is a change for the worse or the better.
    """

    model_config = ConfigDict(extra="forbid")

    ratio: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    test: str
    verdict: Verdict
    regression: bool = False
    improvement: bool = False


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _check_direction(better: str | None) -> None:
    if better not in ("lower", "higher", None):
        raise ValueError(f"better must be 'lower', 'higher' or None, not {better!r}")


def _decide(
    ratio: float | None,
    p_value: float | None,
    *,
    better: str | None,
    threshold: float,
    alpha: float,
    time_based: bool,
) -> tuple[Verdict, bool, bool]:
    """The verdict, and whether it is a regression or an improvement: beyond the threshold AND p < alpha."""
    if better is None:
        return "no direction", False, False
    if ratio is None or math.isnan(ratio):
        return "no significant change", False, False
    if better == "lower":
        worse_by = ratio
    else:
        worse_by = math.inf if ratio == 0 else 1 / ratio
    significant = p_value is None or p_value < alpha
    if significant and worse_by > 1 + threshold:
        return ("slower" if time_based else "worse"), True, False
    if significant and worse_by < 1 / (1 + threshold):
        return ("faster" if time_based else "better"), False, True
    return "no significant change", False, False


def _judgement(
    ratio: float | None,
    ci: tuple[float | None, float | None],
    p_value: float | None,
    test: str,
    *,
    better: str | None,
    threshold: float,
    alpha: float,
    time_based: bool,
) -> Judgement:
    verdict, regression, improvement = _decide(
        ratio, p_value, better=better, threshold=threshold, alpha=alpha, time_based=time_based
    )
    return Judgement(
        ratio=_finite(ratio),
        ci_low=_finite(ci[0]),
        ci_high=_finite(ci[1]),
        p_value=p_value,
        test=test,
        verdict=verdict,
        regression=regression,
        improvement=improvement,
    )


def _numbers(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{what}: no values")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what}: values must be finite numbers")
    return out


def _ratio(current: float, base: float) -> float:
    if base == 0:
        return 1.0 if current == 0 else math.copysign(math.inf, current)
    return current / base


def _no_spread(size: float, *scale: float) -> bool:
    """Whether ``size`` is zero but for rounding (values that differ only in their last bits have no spread)."""
    return size <= 1e-12 * max([1.0, *map(abs, scale)])


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def judge(
    base_values: Sequence[float],
    current_values: Sequence[float],
    *,
    better: str | None,
    threshold: float,
    alpha: float,
    time_based: bool,
) -> Judgement:
    """Judge unpaired values of one figure, one per worker process, on each side (see the module's docstring).

    Welch's t-test on the logarithms; the ratio is that of the geometric means and its CI the
    Welch t interval at ``1 - alpha``, exponentiated.  No spread on either side: p = 1 for equal
    values, 0 for different ones.  Fewer than 2 values on a side: no test (``p_value`` is ``None``).

    Example::

        judge([10.0, 10.2, 9.9], [11.0, 11.2, 10.9], better="lower", threshold=0.05, alpha=0.05, time_based=True)
        # Judgement(ratio=1.10..., p_value=0.0002..., verdict='slower', regression=True, ...)
    """
    _check_direction(better)
    base = _numbers(base_values, "base_values")
    current = _numbers(current_values, "current_values")
    nb, nc = len(base), len(current)
    args: dict[str, Any] = {"better": better, "threshold": threshold, "alpha": alpha, "time_based": time_based}
    positive = all(v > 0 for v in base + current)
    if nb < 2 or nc < 2:
        ratio = (
            _ratio(_geomean(current), _geomean(base))
            if positive
            else _ratio(statistics.fmean(current), statistics.fmean(base))
        )
        return _judgement(ratio, (None, None), None, f"no test: {nb} vs {nc} values", **args)
    what = f"{nb} vs {nc} processes"
    xb = [math.log(v) for v in base] if positive else base
    xc = [math.log(v) for v in current] if positive else current
    mb, mc = statistics.fmean(xb), statistics.fmean(xc)
    vb, vc = statistics.variance(xb) / nb, statistics.variance(xc) / nc
    diff = mc - mb
    if positive:
        ratio, to_ratio = math.exp(diff), math.exp
    else:
        ratio = _ratio(mc, mb)
        to_ratio = None
    if _no_spread(math.sqrt(vb + vc), mb, mc):
        p = 1.0 if _no_spread(abs(diff), mb, mc) else 0.0
        return _judgement(ratio, (ratio, ratio), p, f"no spread on either side, {what}", **args)
    from scipy import stats

    p = float(stats.ttest_ind(xc, xb, equal_var=False).pvalue)
    df = (vb + vc) ** 2 / ((vb**2 / (nb - 1)) + (vc**2 / (nc - 1)))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * math.sqrt(vb + vc)
    if to_ratio is not None:
        ci: tuple[float | None, float | None] = (to_ratio(diff - half), to_ratio(diff + half))
        test = f"Welch t on log values, {what}"
    else:
        ci = (None, None)
        test = f"Welch t on the values (one is not positive), {what}"
    return _judgement(ratio, ci, p, test, **args)


def judge_paired(
    ratios: Sequence[float],
    *,
    better: str | None,
    threshold: float,
    alpha: float,
    time_based: bool,
) -> Judgement:
    """Judge per-round paired ratios current / base from interleaved A/B rounds.

    On the logarithms of the ratios: Wilcoxon's signed-rank test against 0 (exact), the
    Hodges-Lehmann estimate (the median of the pairwise averages) as the ratio, and the
    distribution-free CI that goes with them.  Rank-based on purpose: now and then one worker
    process runs 30-50% slow, caught in a slow spell of its core (measured on this machine,
    docs/regressions.md), and one such round must not make a 3% change look like 6%; ``benchharness
    ab --same-core`` keeps such spells out of the ratios in the first place.  With too
    few rounds for the signed-rank test to reach ``alpha`` at all (fewer than 6 at 0.05) it falls
    back to a one-sample t-test and the geometric mean, and says so.  No spread: p = 1 when every
    ratio is 1, else 0.  Fewer than 2 ratios: no test (``p_value`` is ``None``).  A ratio that is
    not a positive finite number is a ``ValueError``.

    Example::

        judge_paired([1.08, 1.11, 1.10, 1.12, 1.09, 1.10], better="lower", threshold=0.05, alpha=0.05,
                     time_based=True)
        # Judgement(ratio=1.10, verdict='slower', test='paired signed-rank on log ratios, 6 rounds', ...)
    """
    _check_direction(better)
    values = _numbers(ratios, "ratios")
    if not all(v > 0 for v in values):
        raise ValueError("ratios must be positive")
    args: dict[str, Any] = {"better": better, "threshold": threshold, "alpha": alpha, "time_based": time_based}
    n = len(values)
    logs = [math.log(v) for v in values]
    centre = statistics.fmean(logs)
    if n < 2:
        return _judgement(math.exp(centre), (None, None), None, "no test: one round", **args)
    spread = statistics.stdev(logs)
    if _no_spread(spread, centre):
        p = 1.0 if _no_spread(abs(centre)) else 0.0
        return _judgement(math.exp(centre), (math.exp(centre),) * 2, p, f"paired ratios with no spread, {n} rounds",
                          **args)  # fmt: skip
    from scipy import stats

    lowest = _signed_rank_cdf(n)
    if 2 * lowest[0] > alpha:  # even n rounds all one way could not reach alpha: the signed-rank test is blind
        p = float(stats.ttest_1samp(logs, 0.0).pvalue)
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * spread / math.sqrt(n)
        test = f"paired t on log ratios, {n} rounds (too few for the signed-rank test)"
        return _judgement(math.exp(centre), (math.exp(centre - half), math.exp(centre + half)), p, test, **args)
    walsh = sorted((logs[i] + logs[j]) / 2 for i in range(n) for j in range(i, n))
    # The CI runs from the d-th smallest Walsh average to the d-th largest, d the largest rank with
    # P(T+ <= d - 1) <= alpha / 2 under no change (d >= 1 here: the test can reach alpha).
    d = max(k for k in range(1, len(lowest) + 1) if lowest[k - 1] <= alpha / 2)
    ci = (math.exp(walsh[d - 1]), math.exp(walsh[-d]))
    p = float(stats.wilcoxon(logs, zero_method="wilcox", alternative="two-sided").pvalue)
    return _judgement(math.exp(statistics.median(walsh)), ci, p, f"paired signed-rank on log ratios, {n} rounds",
                      **args)  # fmt: skip


def _signed_rank_cdf(n: int) -> list[float]:
    """``P(T+ <= t)`` for t = 0, 1, ..., n(n+1)/2 under no change: Wilcoxon's exact null distribution, untied."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    for rank in range(1, n + 1):  # each rank is in the positive sum or not
        for total in range(len(counts) - 1, rank - 1, -1):
            counts[total] += counts[total - rank]
    out, running = [], 0
    for c in counts:
        running += c
        out.append(running / 2**n)
    return out


def judge_samples(
    base_samples: Sequence[float],
    current_samples: Sequence[float],
    *,
    better: str | None,
    threshold: float,
    alpha: float,
    time_based: bool,
) -> Judgement:
    """Judge raw samples from inside worker processes: a two-sided Mann-Whitney U test, the ratio of medians.

    The CI is conservative: each median's order-statistic CI at ``1 - alpha/2``, and the ratio's
    bounds the extreme ratios of those.  Its p-value knows only the noise within the processes
    that took the samples, not the larger noise between runs.
    """
    import numpy as np
    from scipy import stats

    from benchharness.stats import median_ci

    _check_direction(better)
    base = np.sort(np.asarray(_numbers(base_samples, "base_samples")))
    current = np.sort(np.asarray(_numbers(current_samples, "current_samples")))
    args: dict[str, Any] = {"better": better, "threshold": threshold, "alpha": alpha, "time_based": time_based}
    ratio = _ratio(float(np.median(current)), float(np.median(base)))
    if base[0] == base[-1] and current[0] == current[-1]:
        p = 1.0 if base[0] == current[0] else 0.0
    else:
        p = float(stats.mannwhitneyu(current, base, alternative="two-sided").pvalue)
        p = 1.0 if math.isnan(p) else p
    b_low, b_high = median_ci(base, 1 - alpha / 2)
    c_low, c_high = median_ci(current, 1 - alpha / 2)
    ci: tuple[float | None, float | None] = (None, None)
    if b_low > 0 and c_low > 0:
        ci = (c_low / b_high, c_high / b_low)
    test = f"Mann-Whitney U on {len(base)} vs {len(current)} samples"
    return _judgement(ratio, ci, p, test, **args)


# ----------------------------------------------------------------------------- comparing runs


class MetricComparison(BaseModel):
    """One row of a comparison: one figure of one case (or a whole case that is missing or new).

    ``noise`` says which noise the test saw: :data:`BETWEEN_PROCESSES`, :data:`PAIRED_ROUNDS`,
    :data:`WITHIN_ONE_PROCESS`, :data:`ONE_VALUE` or :data:`NO_SAMPLES` (empty where nothing was
    tested).  ``gating`` is true when this row fails the comparison (exit 1).
    """

    model_config = ConfigDict(extra="forbid")

    case_id: str
    label: str
    metric: str
    unit: str | None = None
    better: Literal["lower", "higher"] | None = None
    base: float | None = None
    current: float | None = None
    base_processes: int = 0
    current_processes: int = 0
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    test: str = ""
    noise: str = ""
    verdict: Verdict
    regression: bool = False
    improvement: bool = False
    gating: bool = False
    note: str | None = None


class RunDescription(BaseModel):
    """One side of a comparison: which run it is, and where it ran."""

    model_config = ConfigDict(extra="forbid")

    label: str
    run_id: str
    suite: str
    suite_hash: str
    started_at: str
    complete: bool
    hostname: str
    cpu: str
    benchharness: str
    git_commit: str | None = None

    @classmethod
    def of(cls, results: RunResults, label: str | None = None) -> RunDescription:
        """Describe ``results``, under ``label`` (its file or baseline name; default: its run id)."""
        git = results.machine.git
        return cls(
            label=label or results.run_id,
            run_id=results.run_id,
            suite=results.suite.name,
            suite_hash=results.suite.hash,
            started_at=results.started_at,
            complete=results.complete,
            hostname=results.machine.hostname,
            cpu=results.machine.cpu,
            benchharness=results.tool.version,
            git_commit=None if git is None else git.commit[:12] + ("+dirty" if git.dirty else ""),
        )


class Comparison(BaseModel):
    """A whole comparison of two runs: one row per case and figure, the settings and the warnings.

    Rendered by :func:`render` as a table, markdown or JSON (this model, dumped).  ``summary`` is
    its one-line verdict and ``exit_code`` the command's exit status: 1 when a row gates.
    """

    base: RunDescription
    current: RunDescription
    threshold: float
    alpha: float
    #: The figures compared (``--metric``, else every one in either run).
    metrics: list[str]
    #: The figures whose regressions fail the comparison (``--fail-on``, else every compared one).
    fail_on: list[str]
    #: Whether a case missing from the current run fails it (``--fail-on missing``).
    fail_on_missing: bool = False
    #: Cases in either run.
    cases: int
    #: The two runs are from different machines (CPU, cores, memory, OS or hostname differ).
    across_machines: bool = False
    rows: list[MetricComparison]
    warnings: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def exit_code(self) -> int:
        """1 when a gating regression passed both tests (or a figure failed, or a gating case is missing), else 0."""
        return 1 if any(r.gating for r in self.rows) else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> str:
        """The comparison in one line, e.g. ``benchharness: 1 regression in 12 cases (threshold 5%, ...): ...``."""
        head, rest = self._summary_parts()
        return head + rest

    def _summary_parts(self) -> tuple[str, str]:
        gating = [r for r in self.rows if r.gating]
        ungated = [r for r in self.rows if r.regression and not r.gating]
        improved = [r for r in self.rows if r.improvement]
        if gating:
            head, listed = _plural(len(gating), "regression"), gating
        elif ungated:
            head, listed = "no gating regression", ungated
        elif improved:
            head, listed = _plural(len(improved), "improvement"), improved
        else:
            head, listed = "no significant change", []
        where = "; across different machines" if self.across_machines else ""
        rest = f" in {_plural(self.cases, 'case')} (threshold {_percent(self.threshold)}, alpha {self.alpha:g}{where})"
        sentences = [_sentence(r) for r in listed[:3]]
        if len(listed) > 3:
            sentences.append(f"and {len(listed) - 3} more")
        if sentences:
            rest += ": " + "; ".join(sentences)
        extras = []
        if gating and ungated:
            extras.append(f"{_plural(len(ungated), 'regression')} not gating (--fail-on)")
        if (gating or ungated) and improved:
            extras.append(_plural(len(improved), "improvement"))
        for verdict in ("missing", "new"):
            count = sum(r.verdict == verdict and not r.gating for r in self.rows)
            if count:
                extras.append(f"{_plural(count, 'case')} {verdict}")
        if extras:
            rest += " (" + ", ".join(extras) + ")"
        return f"benchharness: {head}", rest


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.4g}%"


def _p_text(p: float | None) -> str:
    if p is None:
        return "no test"
    if 0 < p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}"


def _sentence(row: MetricComparison) -> str:
    """One row in words, for the summary line."""
    if row.verdict == "missing":
        return f"{row.case_id} is missing" + (f" ({_short(row.note, 60)})" if row.note else "")
    if row.verdict == "failed":
        return f"{row.metric} of {row.case_id} failed" + (f" ({_short(row.note, 60)})" if row.note else "")
    if row.ratio is None:
        return f"{row.metric} of {row.case_id} is {row.verdict} ({_p_text(row.p_value)})"
    if row.verdict in ("faster", "slower"):
        factor = row.ratio if row.ratio >= 1 else (math.inf if row.ratio == 0 else 1 / row.ratio)
        size = f"{factor:.2f}× {row.verdict}"
    else:
        size = f"{row.ratio:.3g}× the baseline: {row.verdict}"
    return f"{row.metric} of {row.case_id} is {size} ({_p_text(row.p_value)})"


def _short(text: str | None, limit: int = 80) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def figure_names(results: RunResults) -> list[str]:
    """Every figure a run holds (measured or failed), in the order its cases name them."""
    return list(dict.fromkeys(n for c in results.cases for n in [*c.metrics, *c.metric_errors]))


def _names_option(option: str, names: Sequence[str], known: list[str], extra: Sequence[str] = ()) -> list[str]:
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    unknown = [n for n in wanted if n not in known and n not in extra]
    if not wanted or unknown:
        what = f"no figure {', '.join(map(repr, unknown))} in either run" if unknown else "name at least one figure"
        raise BenchError(f"{option}: {what}; they have: {', '.join(known) or 'none'}")
    return wanted


def compare_results(
    base: RunResults,
    current: RunResults,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    metrics: Sequence[str] | None = None,
    fail_on: Sequence[str] | None = None,
    paired: bool = False,
    labels: tuple[str, str] | None = None,
) -> Comparison:
    """Compare two runs case by case (matched by ``case_id``) and figure by figure.

    ``metrics`` narrows the figures compared (default: all); ``fail_on`` names the figures whose
    regressions gate (default: every compared one), and its token ``missing`` makes a case missing
    from ``current`` gate too (``["missing"]`` alone: every figure, plus missing cases).  A name in
    neither run is a :class:`BenchError`.  ``paired``: process *k* of a case on one side was run
    beside process *k* on the other (interleaved A/B rounds), so the per-process ratios are tested
    with :func:`judge_paired`.  ``labels`` name the two sides (default: their run ids).  See the
    module's docstring for the tests and verdicts.
    """
    if not 0 <= threshold or not math.isfinite(threshold):
        raise BenchError(f"threshold must be a finite number of at least 0, not {threshold!r}")
    if not 0 < alpha < 1:
        raise BenchError(f"alpha must be between 0 and 1, not {alpha!r}")
    known = list(dict.fromkeys([*figure_names(base), *figure_names(current)]))
    compared = known if metrics is None else _names_option("--metric", metrics, known)
    fail_on_missing = False
    gating = compared
    if fail_on is not None:
        names = _names_option("--fail-on", fail_on, known, extra=(MISSING_TOKEN,))
        fail_on_missing = MISSING_TOKEN in names
        chosen = [n for n in names if n != MISSING_TOKEN]
        gating = [n for n in compared if n in chosen] if chosen else compared
    settings = _Settings(threshold=threshold, alpha=alpha, compared=compared, gating=gating, paired=paired)

    base_cases = {c.case_id: c for c in base.cases}
    current_cases = {c.case_id: c for c in current.cases}
    ids = list(dict.fromkeys([*base_cases, *current_cases]))
    case_labels = _labels([*base.cases, *current.cases])
    rows: list[MetricComparison] = []
    one_sided: dict[tuple[str, str], int] = {}
    for case_id in ids:
        b, c = base_cases.get(case_id), current_cases.get(case_id)
        label = case_labels.get(case_id, case_id)
        rows += _case_rows(case_id, label, b, c, settings, fail_on_missing, one_sided)
    warnings, across = run_differences(base, current)
    for (name, side), count in one_sided.items():
        warnings.append(f"{name}: in the {side} run only, in {_plural(count, 'case')}: not compared")
    return Comparison(
        base=RunDescription.of(base, labels[0] if labels else None),
        current=RunDescription.of(current, labels[1] if labels else None),
        threshold=threshold,
        alpha=alpha,
        metrics=compared,
        fail_on=gating,
        fail_on_missing=fail_on_missing,
        cases=len(ids),
        across_machines=across,
        rows=rows,
        warnings=warnings,
    )


@dataclass(frozen=True)
class _Settings:
    threshold: float
    alpha: float
    compared: list[str]
    gating: list[str]
    paired: bool = False


def _labels(cases: list[CaseResult]) -> dict[str, str]:
    """Each case's shown axes (model and backend, and every axis that varies), joined by '/'."""
    from benchharness.case import AXES

    axes = {c.case_id: c.config.axes() for c in cases}
    shown = [a for a in AXES if a in ("model", "backend") or len({getattr(ax, a) for ax in axes.values()}) > 1]
    return {
        case_id: "/".join(f"b{getattr(ax, a)}" if a == "batch" else str(getattr(ax, a)) for a in shown)
        for case_id, ax in axes.items()
    }


def _case_rows(
    case_id: str,
    label: str,
    base: CaseResult | None,
    current: CaseResult | None,
    settings: _Settings,
    fail_on_missing: bool,
    one_sided: dict[tuple[str, str], int],
) -> list[MetricComparison]:
    """The rows of one case: one for a case missing or new, else one per compared figure."""
    if current is None or (current.status == "skipped" and base is not None and base.status != "skipped"):
        note = None if current is None else f"skipped: {current.error or 'no reason given'}"
        return [
            MetricComparison(
                case_id=case_id, label=label, metric="", verdict="missing", gating=fail_on_missing, note=note
            )
        ]
    if base is None or base.status == "skipped":
        note = None if base is None else f"skipped in the baseline: {base.error or 'no reason given'}"
        if current.status == "skipped":
            return [MetricComparison(case_id=case_id, label=label, metric="", verdict="not comparable",
                                     note="skipped in both runs")]  # fmt: skip
        return [MetricComparison(case_id=case_id, label=label, metric="", verdict="new", note=note)]
    rows = []
    names = [*base.metrics, *base.metric_errors, *current.metrics, *current.metric_errors]
    for name in dict.fromkeys(n for n in names if n in settings.compared):
        row = _metric_row(case_id, label, name, base, current, settings)
        if row is None:
            side = "baseline" if name in base.metrics else "current"
            one_sided[(name, side)] = one_sided.get((name, side), 0) + 1
        else:
            rows.append(row)
    return rows


def _metric_row(
    case_id: str, label: str, name: str, base: CaseResult, current: CaseResult, settings: _Settings
) -> MetricComparison | None:
    """One figure of a case present in both runs; ``None`` when the figure is in one run only."""
    bm, cm = base.metrics.get(name), current.metrics.get(name)
    better = direction(name, cm) or direction(name, bm)
    unit = (cm or bm).unit if (cm or bm) is not None else None
    row: dict[str, Any] = {
        "case_id": case_id,
        "label": label,
        "metric": name,
        "unit": unit,
        "better": better,
        "base": None if bm is None else _finite(bm.value),
        "current": None if cm is None else _finite(cm.value),
        "base_processes": len(process_runs(base)),
        "current_processes": len(process_runs(current)),
    }
    gates = name in settings.gating
    if current.status in FAILED_STATUSES or name in current.metric_errors:
        note = current.metric_errors.get(name) or current.error or current.status
        return MetricComparison(**row, verdict="failed", regression=True, gating=gates, note=_short(note, 200))
    if base.status in FAILED_STATUSES or name in base.metric_errors:
        note = base.metric_errors.get(name) or base.error or base.status
        return MetricComparison(**row, verdict="not comparable", note=_short(f"failed in the baseline: {note}", 200))
    if bm is None or cm is None:
        return None
    if bm.unit != cm.unit:
        return MetricComparison(**row, verdict="not comparable", note=f"units differ: {bm.unit} vs {cm.unit}")
    if bm.value is None or cm.value is None or not (math.isfinite(bm.value) and math.isfinite(cm.value)):
        return MetricComparison(**row, verdict="not comparable", note="no value on a side")
    judgement, noise = _judge_figure(name, base, current, bm, cm, better, settings)
    return MetricComparison(
        **row,
        ratio=judgement.ratio,
        ci_low=judgement.ci_low,
        ci_high=judgement.ci_high,
        p_value=judgement.p_value,
        test=judgement.test,
        noise=noise,
        verdict=judgement.verdict,
        regression=judgement.regression,
        improvement=judgement.improvement,
        gating=judgement.regression and gates,
    )


def _judge_figure(
    name: str,
    base: CaseResult,
    current: CaseResult,
    bm: MetricValue,
    cm: MetricValue,
    better: str | None,
    settings: _Settings,
) -> tuple[Judgement, str]:
    """The right test for what the two sides hold: processes, else samples, else one value each."""
    args: dict[str, Any] = {
        "better": better,
        "threshold": settings.threshold,
        "alpha": settings.alpha,
        "time_based": is_time_based(name, cm.unit),
    }
    if settings.paired:
        ratios = _paired_ratios(base, current, name)
        if len(ratios) >= 2:
            return judge_paired(ratios, **args), PAIRED_ROUNDS
    bv, cv = process_values(base, name), process_values(current, name)
    if len(bv) >= 2 and len(cv) >= 2:
        return judge(bv, cv, **args), BETWEEN_PROCESSES
    bs, cs = _samples(base, name), _samples(current, name)
    if bs and cs and bm.details.get("samples_unit") == cm.details.get("samples_unit"):
        return judge_samples(bs, cs, **args), WITHIN_ONE_PROCESS
    # Headline values: a single process's value, or the median of several (``value`` of a combined figure).
    judgement = judge([bm.value], [cm.value], **args)  # type: ignore[list-item]
    judgement.test = "none"
    return judgement, (ONE_VALUE if len(bv) <= 1 and len(cv) <= 1 else NO_SAMPLES)


def _paired_ratios(base: CaseResult, current: CaseResult, name: str) -> list[float]:
    """Current / base of figure ``name`` for each process index both sides ran ok with a positive value."""

    def values(result: CaseResult) -> dict[int, float]:
        out = {}
        for run in process_runs(result):
            metric = run.metrics.get(name)
            if run.status == "ok" and metric is not None and metric.value is not None:
                if math.isfinite(metric.value) and metric.value > 0:
                    out[run.index] = float(metric.value)
        return out

    b, c = values(base), values(current)
    return [c[i] / b[i] for i in sorted(b.keys() & c.keys())]


def _samples(result: CaseResult, name: str) -> list[float] | None:
    """Every raw sample of figure ``name`` over the case's processes; ``None`` unless each process kept some."""
    out: list[float] = []
    for run in process_runs(result):
        metric = run.metrics.get(name)
        if run.status != "ok" or metric is None or not metric.samples:
            return None
        out.extend(metric.samples)
    return out if all(math.isfinite(s) for s in out) else None


def run_differences(base: RunResults, current: RunResults) -> tuple[list[str], bool]:
    """Warnings for what differs between two runs besides the code under test, and whether the machines differ.

    The machine (CPU model, logical cores, memory, OS, hostname), framework versions, the
    benchharness version and the suite (its hash); and a run that did not finish.
    """
    warnings = []
    bm, cm = base.machine, current.machine
    machine = []
    clustered = any(c.node is not None for c in [*base.cases, *current.cases])
    if clustered:  # cases ran on cluster nodes: their hardware is each case's node's, not the driver's
        machine = _moved_cases(base, current)
        if machine:
            warnings.append(
                f"{_plural(len(machine), 'case')} ran on different kinds of machine in the two runs ({machine[0]}"
                f"{', ...' if len(machine) > 1 else ''}); their ratios mix the change with the hardware"
            )
    else:
        for field, what in (("cpu", "CPU"), ("cores_logical", "logical cores"), ("memory_bytes", "memory"),
                            ("os", "OS"), ("hostname", "hostname")):  # fmt: skip
            old, new = getattr(bm, field), getattr(cm, field)
            if old != new:
                if field == "memory_bytes":
                    old, new = f"{old / 2**30:.1f} GiB", f"{new / 2**30:.1f} GiB"
                machine.append(f"{what} {_short(str(old), 60)!r} vs {_short(str(new), 60)!r}")
        if machine:
            warnings.append(
                "different machines: " + ", ".join(machine) + "; the ratios mix the change with the machines"
            )
    frameworks = []
    for name in sorted(set(bm.frameworks) | set(cm.frameworks)):
        old, new = bm.frameworks.get(name, "none"), cm.frameworks.get(name, "none")
        if old != new:
            frameworks.append(f"{name} {old} vs {new}")
    if frameworks:
        warnings.append("framework versions differ: " + ", ".join(frameworks))
    if base.tool.version != current.tool.version:
        warnings.append(f"benchharness versions differ: {base.tool.version} vs {current.tool.version}")
    if base.suite.hash != current.suite.hash:
        warnings.append(
            f"the suites differ (suite hash {base.suite.hash[:12]} vs {current.suite.hash[:12]}): "
            "a case may not measure the same thing in both"
        )
    for side, results in (("baseline", base), ("current", current)):
        if not results.complete:
            warnings.append(f"the {side} run did not finish ({_plural(len(results.cases), 'case')} saved)")
    return warnings, bool(machine)


def _moved_cases(base: RunResults, current: RunResults) -> list[str]:
    """``CASE: KIND vs KIND`` for each case both runs have whose hardware differs (a node's, else the run's)."""

    def kind(results: RunResults, case: CaseResult) -> str:
        return case.node.kind() if case.node is not None else hardware_kind(results.machine)

    before = {c.case_id: kind(base, c) for c in base.cases if c.status == "ok"}
    moved = []
    for case in current.cases:
        if case.status == "ok" and case.case_id in before and before[case.case_id] != kind(current, case):
            moved.append(f"{case.case_id}: {before[case.case_id]!r} vs {kind(current, case)!r}")
    return moved


# ----------------------------------------------------------------------------- rendering


HEADERS = ["case", "metric", "base", "current", "ratio", "CI of ratio", "p", "test", "verdict"]
#: The marks of rows whose test saw less than the noise between runs, and the notes that explain them.
_MARKS = {WITHIN_ONE_PROCESS: "*", ONE_VALUE: "†", NO_SAMPLES: "†"}


def _value_cell(value: float | None, unit: str | None) -> str:
    if value is None:
        return ""
    return f"{value:.4g} {unit}" if unit else f"{value:.4g}"


def _cells(row: MetricComparison) -> list[str]:
    ci = f"{row.ci_low:.3f}–{row.ci_high:.3f}" if row.ci_low is not None and row.ci_high is not None else ""
    p = "" if row.p_value is None else (_p_text(row.p_value).removeprefix("p = ").removeprefix("p "))
    test = row.test + (f" {_MARKS[row.noise]}" if row.noise in _MARKS else "")
    verdict = row.verdict + (f" ({_short(row.note, 60)})" if row.note else "")
    if row.regression and not row.gating:
        verdict += " (not gating)"
    return [
        row.label,
        row.metric or "-",
        _value_cell(row.base, row.unit),
        _value_cell(row.current, row.unit),
        "" if row.ratio is None else f"{row.ratio:.3f}",
        ci,
        p,
        test,
        verdict,
    ]


def notes(comparison: Comparison) -> list[str]:
    """The lines under the table: what the ratio is, and what rows marked * or † could not test."""
    level = f"{100 * (1 - comparison.alpha):.4g}%"
    out = [
        f"ratio = current / baseline; its CI at {level}; a change needs the ratio beyond "
        f"{_percent(comparison.threshold)} and p < {comparison.alpha:g}"
    ]
    kinds = {r.noise for r in comparison.rows}
    if WITHIN_ONE_PROCESS in kinds:
        out.append(
            f"* {WITHIN_ONE_PROCESS}. These rows were tested on the samples inside one process per side "
            "(Mann-Whitney U), whose p-values leave out the far larger noise between processes; "
            "run both with --repeat 3 or more"
        )
    if ONE_VALUE in kinds or NO_SAMPLES in kinds:
        out.append(f"† {ONE_VALUE if ONE_VALUE in kinds else NO_SAMPLES}: the verdict rests on the threshold alone")
    if comparison.fail_on != comparison.metrics:
        out.append(f"only {', '.join(comparison.fail_on) or 'no figure'} can fail the comparison (--fail-on)")
    return out


def _table(comparison: Comparison, tablefmt: str, escape: bool = False) -> str:
    from tabulate import tabulate

    body = [_cells(r) for r in comparison.rows]
    if escape:  # a '|' in a markdown cell would end it
        body = [[cell.replace("|", "\\|") for cell in cells] for cells in body]
    if not body:
        return "(no case in either run)"
    return tabulate(body, headers=HEADERS, tablefmt=tablefmt, disable_numparse=True)


def render(comparison: Comparison, fmt: str) -> str:
    """``comparison`` as ``table`` (the terminal), ``markdown`` (a pull-request comment) or ``json`` (tools).

    The markdown's first line is the one-line summary; the JSON is the :class:`Comparison` model,
    which loads back with ``Comparison.model_validate_json``.
    """
    if fmt == "json":
        return comparison.model_dump_json(indent=1)
    if fmt == "table":
        lines = [_table(comparison, "simple"), *(f"note: {n}" for n in notes(comparison)), comparison.summary]
        return "\n".join(lines)
    if fmt == "markdown":
        head, rest = comparison._summary_parts()
        base, current = comparison.base, comparison.current
        lines = [
            f"**{head}**{rest}",
            "",
            f"Baseline `{base.label}` ({_run_text(base)}) vs current `{current.label}` ({_run_text(current)}).",
            "",
            _table(comparison, "github", escape=True),
            "",
            *(f"- {n}".replace("- * ", "- \\* ") for n in notes(comparison)),
        ]
        if comparison.warnings:
            lines += ["", "**Warnings**", "", *(f"- {w}" for w in comparison.warnings)]
        return "\n".join(lines)
    raise BenchError(f"unknown comparison format {fmt!r}; known: {', '.join(FORMATS)}")


def _run_text(run: RunDescription) -> str:
    parts = [run.run_id, run.hostname]
    if run.git_commit:
        parts.append(f"commit {run.git_commit}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- command-line values


def parse_threshold(text: str) -> float:
    """``--threshold``: a fraction (``0.05``) or a percentage (``5%``); a one-line error otherwise."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%").strip())
    except ValueError:
        value = math.nan
    if percent:
        value /= 100
    if not math.isfinite(value) or not 0 <= value <= 10:
        raise BenchError(f"--threshold {text!r}: expected a fraction such as 0.05 or a percentage such as 5%")
    if not percent and value >= 1:
        raise BenchError(f"--threshold {text!r}: a fraction is below 1 (did you mean {raw}%?)")
    return value


def parse_alpha(text: str) -> float:
    """``--alpha``: a significance level between 0 and 1, such as 0.05."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise BenchError(f"--alpha {text!r}: expected a significance level between 0 and 1, such as 0.05")
    return value


def split_names(text: str | None) -> list[str] | None:
    """A comma-separated option's names, or ``None`` when the option was not given."""
    return None if text is None else text.split(",")


# ----------------------------------------------------------------------------- baselines

#: Saved baselines live in ``<results dir>/baselines/NAME.json``.
BASELINES_FOLDER = "baselines"
_BASELINE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def check_baseline_name(name: str) -> str:
    """``name`` when it is a safe file stem (letters, digits, ``.``, ``_``, ``-``; not starting with ``.``)."""
    if not _BASELINE_NAME.fullmatch(name):
        raise BenchError(
            f"baseline name {_short(repr(name), 60)}: use letters, digits, '.', '_' and '-' (up to 100, "
            "not starting with '.')"
        )
    return name


def baseline_path(name: str, results_dir: Path) -> Path:
    """Where baseline ``name`` is kept: ``results_dir/baselines/NAME.json``."""
    return results_dir / BASELINES_FOLDER / f"{check_baseline_name(name)}.json"


def save_baseline(results_file: Path, name: str, results_dir: Path) -> Path:
    """Copy a finished results file to baseline ``name`` (atomically: a reader sees the old one or the new one)."""
    from benchharness.fileio import atomic_write_bytes

    target = baseline_path(name, results_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, results_file.read_bytes())
    return target


def saved_baselines(results_dir: Path) -> list[str]:
    """The names of the baselines saved under ``results_dir``."""
    folder = results_dir / BASELINES_FOLDER
    try:
        return sorted(p.stem for p in folder.glob("*.json") if _BASELINE_NAME.fullmatch(p.stem))
    except OSError:
        return []


def resolve_run(spec: str, results_dir: Path) -> Path:
    """The results file ``spec`` names: a file, else a saved baseline's name; a one-line error for neither."""
    path = Path(spec)
    if path.is_file():
        return path
    if _BASELINE_NAME.fullmatch(spec) and not spec.endswith(".json"):
        candidate = baseline_path(spec, results_dir)
        if candidate.is_file():
            return candidate
    if path.exists():
        return path  # a folder: load_results says so
    if not _BASELINE_NAME.fullmatch(spec) or spec.endswith(".json"):
        raise BenchError(f"{_short(spec, 200)}: no such results file")
    saved = saved_baselines(results_dir)
    listing = ", ".join(saved) if saved else "none saved"
    raise BenchError(
        f"{_short(repr(spec), 80)}: no such results file, nor a baseline of that name in "
        f"{results_dir / BASELINES_FOLDER} (baselines: {listing})"
    )


def load_run(spec: str, results_dir: Path) -> tuple[RunResults, str]:
    """Load the run ``spec`` names (file or baseline name) and a label for it."""
    from benchharness.results import load_results

    path = resolve_run(spec, results_dir)
    label = spec if path != Path(spec) else str(path)
    return load_results(path), label


# ----------------------------------------------------------------------------- commands


def compare_command(args: Any, err: Callable[[str], None]) -> int:
    """``benchharness compare``: load, compare, print (or write ``-o``), warn on stderr; the exit code."""
    threshold = parse_threshold(args.threshold)
    alpha = parse_alpha(args.alpha)
    base, base_label = load_run(args.baseline, args.results_dir)
    current, current_label = load_run(args.current, args.results_dir)
    comparison = compare_results(
        base,
        current,
        threshold=threshold,
        alpha=alpha,
        metrics=split_names(args.metric),
        fail_on=split_names(args.fail_on),
        labels=(base_label, current_label),
    )
    text = render(comparison, args.format)
    if args.output is not None:
        from benchharness.fileio import atomic_write_text

        atomic_write_text(args.output, text + "\n")
        print(comparison.summary)
    else:
        print(text)
    for warning in comparison.warnings:
        err(f"benchharness: warning: {warning}")
    return comparison.exit_code


def run_baseline_before(args: Any) -> tuple[RunResults, str] | None:
    """For ``run``, before anything runs: check ``--save-baseline``'s name and load ``--baseline`` (one-line errors)."""
    if args.save_baseline is not None:
        check_baseline_name(args.save_baseline)
    if args.baseline is None:
        return None
    return load_run(args.baseline, args.output)


def run_baseline_after(
    results: RunResults, path: Path, baseline: tuple[RunResults, str] | None, args: Any, err: Callable[[str], None]
) -> bool:
    """For ``run``, after the table: save ``--save-baseline``, print the comparison with ``--baseline``.

    Returns whether the comparison found a gating regression (the run then exits 1).
    """
    if args.save_baseline is not None:
        err(f"baseline {args.save_baseline!r}: {save_baseline(path, args.save_baseline, args.output)}")
    if baseline is None:
        return False
    comparison = compare_results(baseline[0], results, labels=(baseline[1], str(path)))
    print(render(comparison, args.format if args.format in FORMATS else "table"))
    for warning in comparison.warnings:
        err(f"benchharness: warning: {warning}")
    return comparison.exit_code != 0
