"""Timing loop: warm up until timings settle, then sample adaptively.

The references are pyperf's warmup calibration (compare consecutive groups of
values until they agree) and ``torch.utils.benchmark``'s ``adaptive_autorange``
(keep sampling until a precision target or a time budget is hit). Unlike
both, every call of ``fn`` is timed on its own, because inference calls are
long enough for a per-call clock and the raw per-call samples are kept for
significance tests later.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchharness.settings import MIN_SAMPLES_TIME_FACTOR, MeasureSettings, WarmupSettings
from benchharness.stats import Summary, preload, summarize

Clock = Callable[[], int]
"""A monotonic clock in integer nanoseconds; ``time.perf_counter_ns`` by default."""

_NS_PER_S = 1_000_000_000


@dataclass
class WarmupReport:
    """What warm-up did: calls made, seconds spent, and whether timings settled."""

    iterations: int
    elapsed_s: float
    settled: bool


@dataclass
class Sampling:
    """The samples of one sampling phase, why it stopped, and how long it took.

    ``stop_reason`` is ``"ci_reached"``, ``"max_samples"`` or ``"time_budget"``.
    """

    samples_ns: list[int]
    stop_reason: str
    elapsed_s: float


@dataclass
class Measurement:
    """Warm-up report, raw samples and their summary for one function.

    ``elapsed_s`` covers the sampling phase only; warm-up time is in
    ``warmup.elapsed_s``.
    """

    samples_ns: list[int]
    warmup: WarmupReport
    stop_reason: str
    elapsed_s: float
    summary: Summary


def _calls_that_fit(remaining_ns: float, elapsed_ns: float, calls: int) -> int:
    """How many more calls fit in ``remaining_ns``, judging by the wall time per call so far."""
    if remaining_ns <= 0:
        return 0
    per_call_ns = elapsed_ns / calls
    return int(remaining_ns / per_call_ns) if per_call_ns > 0 else 1 << 62


def time_batch(fn: Callable[[], object], n: int, clock: Clock = time.perf_counter_ns) -> list[int]:
    """Call ``fn`` ``n`` times and return each call's duration in clock units (ns).

    This is the only timed region of the harness, so the loop body is just
    two clock reads around the call and a store into a preallocated list.
    ``fn`` must include whatever makes its work complete, e.g. a CUDA
    synchronize, since the clock only sees the host.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    samples = [0] * n
    for i in range(n):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return samples


def warm_up(fn: Callable[[], object], settings: WarmupSettings, clock: Clock = time.perf_counter_ns) -> WarmupReport:
    """Call ``fn`` until its timings settle, as described by :class:`WarmupSettings`.

    Timings have settled once ``stable_windows`` windows in a row agree with
    the one before (after ``min_iterations`` calls); warm-up then goes on
    until ``min_time`` has passed.  It is unsettled when the budget runs out
    first.  The first call is timed alone: its cost sizes the windows, so near
    the deadline a window shrinks to half the calls that still fit, and a call
    that would not end in time is not started.  Warm-up thus ends within
    ``max_time`` plus about one call, even before ``min_iterations`` (a 1.7 s
    model must not spend 17 s warming up).  A final window cut short by
    ``max_iterations`` is still compared.
    """
    start = clock()
    budget_ns = settings.max_time * _NS_PER_S
    min_time_ns = settings.min_time_capped * _NS_PER_S
    time_batch(fn, 1, clock)
    iterations = 1
    streak = 0
    previous: float | None = None
    stable = False  # windows have agreed, stable_windows in a row, after min_iterations
    while iterations < settings.max_iterations:
        elapsed_ns = clock() - start
        fits = _calls_that_fit(budget_ns - elapsed_ns, elapsed_ns, iterations)
        if fits < 1:
            break  # out of time
        # Half of what fits: windows shrink towards the deadline, so calls that slow down overrun it little.
        n = min(settings.window, settings.max_iterations - iterations, max(1, fits // 2))
        current = statistics.median(time_batch(fn, n, clock))
        iterations += n
        # Written as a product so a zero median (coarse clock) cannot divide by zero.
        if previous is not None and abs(current - previous) <= settings.tolerance * previous:
            streak += 1
        else:
            streak = 0
        previous = current
        stable = stable or (streak >= settings.stable_windows and iterations >= settings.min_iterations)
        if stable and clock() - start >= min_time_ns:
            break
    return WarmupReport(iterations=iterations, elapsed_s=(clock() - start) / _NS_PER_S, settled=stable)


def sample(fn: Callable[[], object], settings: MeasureSettings, clock: Clock = time.perf_counter_ns) -> Sampling:
    """Time ``fn`` in growing batches until a stop rule of :class:`MeasureSettings` fires.

    The CI check sorts all samples, so it runs only between batches, never
    inside the timed region.  The first batch is a single call, because the
    cost of ``fn`` is unknown; later batches double the sample count
    (amortising the check) but are capped by ``max_samples`` and by the calls
    that fit before the deadline, estimated from the wall time per call so far
    (check cost included).  A call that would not end before the deadline is
    not started, so sampling ends within its budget unless one call alone is
    longer.  Until ``min_samples`` are taken the deadline is
    ``MIN_SAMPLES_TIME_FACTOR`` times ``max_time``; past it, sampling stops
    with ``"time_budget"`` and fewer than ``min_samples``.
    """
    preload(settings.ci_level)  # the CI check's imports must not eat the budget
    start = clock()
    budget_ns = settings.max_time * _NS_PER_S
    min_time_ns = settings.min_time_capped * _NS_PER_S
    samples: list[int] = []
    batch = 1
    while True:
        samples += time_batch(fn, batch, clock)
        count = len(samples)
        enough = count >= settings.min_samples
        elapsed_ns = clock() - start
        if (
            enough
            and elapsed_ns >= min_time_ns
            and summarize(samples, settings.ci_level).ci_rel_halfwidth <= settings.target_ci
        ):
            reason = "ci_reached"
            break
        if count >= settings.max_samples:
            reason = "max_samples"
            break
        deadline_ns = budget_ns if enough else MIN_SAMPLES_TIME_FACTOR * budget_ns
        fits = _calls_that_fit(deadline_ns - elapsed_ns, elapsed_ns, count)
        if fits < 1:
            reason = "time_budget"
            break
        # Double the count; before min_samples, land on it exactly so the first check comes early.
        growth = count if enough else min(count, settings.min_samples - count)
        batch = max(1, min(growth, settings.max_samples - count, fits))
    return Sampling(samples_ns=samples, stop_reason=reason, elapsed_s=(clock() - start) / _NS_PER_S)


def measure(fn: Callable[[], object], settings: MeasureSettings, clock: Clock = time.perf_counter_ns) -> Measurement:
    """Warm ``fn`` up, sample it, and summarize the samples at ``settings.ci_level``."""
    report = warm_up(fn, settings.warmup, clock)
    sampled = sample(fn, settings, clock)
    return Measurement(
        samples_ns=sampled.samples_ns,
        warmup=report,
        stop_reason=sampled.stop_reason,
        elapsed_s=sampled.elapsed_s,
        summary=summarize(sampled.samples_ns, settings.ci_level),
    )
